#!/usr/bin/env python3
"""The realvault fixture's own test, on real Vault + real Consul (one DC, ACLs on, so the storage token is used):
two Vaults on one storage path form an HA pair; init, unseal, standby with forwarding, step-down, seal, restart.

    python3 test/real/test_realvault.py
"""
import os
import stat
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import realconsul  # noqa: E402
import realvault  # noqa: E402

T0 = time.monotonic()


def mark(what):
    print("[%7.2fs] %s" % (time.monotonic() - T0, what), flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def main():
    if not realconsul.find_consul():
        realconsul.skip_or_fail("real Consul")
    vault_bin = realconsul.find_vault()
    if not vault_bin:
        realconsul.skip_or_fail("real Vault")
    with realconsul.federation(["dc1"], acl=True) as dcs, realvault.VaultSet() as vs:
        c = dcs["dc1"]
        a = vs.add(vault_bin, c, name="a")
        b = vs.add(vault_bin, c, name="b")
        check(a.api_port != b.api_port and len({a.api_port, a.cluster_port, b.api_port, b.cluster_port}) == 4,
              "distinct ports")
        check("token" in a.config_text() and c.master_token in a.config_text(), "storage token with ACLs on")
        st, h = a.health()
        check(st == 501 and not h["initialized"], "before init: %s %s" % (st, h))

        key, root = a.init()
        kp = os.path.join(a.workdir, "keys.json")
        check(stat.S_IMODE(os.stat(kp).st_mode) == 0o600, "keys.json mode")
        check(key and root and key not in a.log() and root not in a.log(), "keys kept, not logged")
        rc, out = a.status_cli()
        check(rc == 2 and out["sealed"] and out["initialized"], "`vault status` sealed: %s %s" % (rc, out))
        a.unseal()
        lead = a.wait_active()
        check(lead["is_self"] and lead["leader_address"] == a.addr and lead["leader_cluster_address"] == a.cluster_addr,
              "a active: %s" % lead)
        rc, out = a.status_cli()
        check(rc == 0 and not out["sealed"], "`vault status` unsealed: %s %s" % (rc, out))
        mark("a initialised, unsealed, active")

        st, _ = b.health()
        check(st == 503, "b sealed before unseal: sys/health %s" % st)
        b.adopt(a).unseal()
        lead = b.wait_standby(leader=a.addr)
        check(not lead["is_self"] and lead["leader_cluster_address"] == a.cluster_addr, "b standby: %s" % lead)
        mark("b standby, follows a")

        a.enable_kv("kvtest")
        a.write("kvtest/k", {"v": "1"})
        check(a.read("kvtest/k") == {"v": "1"}, "read through a")
        check(b.read("kvtest/k") == {"v": "1"}, "read through standby b (forwarded to a)")
        check(a.read("kvtest/missing") is None, "404 -> None")
        check(a.list("kvtest/") == ["k"], "list")

        t = time.monotonic()
        a.step_down()
        lead = b.wait_active()
        check(lead["leader_address"] == b.addr, "b active after a's step-down: %s" % lead)
        a.wait_standby(leader=b.addr)
        mark("step-down: b active, a standby, %.2fs" % (time.monotonic() - t))

        b.seal()
        b.wait_sealed()
        t = time.monotonic()
        a.wait_active(timeout=60)  # a waits out manualStepDownSleepPeriod (10 s) after its step-down
        mark("b sealed: a active again after %.2fs" % (time.monotonic() - t))

        check(b.stop() == 0, "b exits 0 on SIGTERM")
        b.start()
        check(b.seal_status()["sealed"], "b sealed after restart")
        b.unseal()
        b.wait_standby(leader=a.addr)
        check(b.read("kvtest/k") == {"v": "1"}, "read through restarted standby b")
        mark("b restarted, unsealed, standby")

        try:  # Vault 1.4.3 cannot seal a standby through the API (the token check needs the active)
            b.seal()
            raise AssertionError("sys/seal on standby b was accepted")
        except realvault.VaultError as e:
            check("standby mode" in str(e), "sys/seal on a standby: %s" % e)
        check(not b.seal_status()["sealed"] and b.health()[0] == 429, "b still an unsealed standby")
        lead = a.sys_leader()
        check(lead["is_self"] and a.health()[0] == 200, "a still active: %s" % lead)
        mark("sys/seal on standby b refused (400, standby mode); a still active")

        a.kill()
        check(not a.running(), "a killed")
        check(a.log().count("restarted ====") == 0 and b.log().count("restarted ====") == 1, "log kept over restarts")
        mark("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
