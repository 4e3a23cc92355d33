#!/usr/bin/env python3
"""Real Vault 1.4 on two federated real Consul DCs, with kvship's consul-replicate copying dc1's vault/ into dc2:
the "sealed standby" switch-over.

    python3 test/real/test_vault_smoke.py <consul-replicate binary>

Steps (each asserted through Vault's own answers: sys/health, sys/leader, seal-status):
  1. Consul dc1 + dc2 (WAN-joined); consul-replicate against dc2's agent, -prefix vault/@dc1, started before init.
  2. Vault A (storage: dc1's agent) init + unseal -> active, is_self. Vault B (storage: dc2's agent) started and
     left sealed.
  3. 20 secrets written through A (KV v1 mount); wait until dc2's vault/ equals dc1's (keys, values, flags, minus
     the excludes).
  4. Controlled switch: A stopped (SIGTERM); wait until dc2 has A's final state; the replicator stopped.
  5. B unsealed with A's unseal key -> active, is_self, its own address; every secret read through B equals what
     was written; dc2's core/lock is held by a dc2 session with B's UUID.

Known gap (the next issue): core/lock is copied as data without its session, so an unsealed dc2 Vault would take
the copied (unheld) lock at once. B stays sealed while A is active for that reason.
"""
import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import realconsul  # noqa: E402
import realvault  # noqa: E402

N_SECRETS = 20
EXCLUDES = ["vault/sys/expire/", "vault/core/migration"]
T0 = time.monotonic()
TIMES = []


def mark(what):
    t = time.monotonic() - T0
    TIMES.append((what, t))
    print("[%7.2fs] %s" % (t, what), flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def kv_dump(consul, prefix="vault/"):
    """{key: (flags, value bytes, session or None)} of every key under prefix, minus the excludes."""
    st, _, body = consul.request("GET", "/v1/kv/%s?recurse" % prefix)
    if st == 404:
        return {}
    check(st == 200, "GET %s?recurse on %s: %s" % (prefix, consul.dc, st))
    out = {}
    for e in json.loads(body):
        if any(e["Key"].startswith(x) for x in EXCLUDES):
            continue
        out[e["Key"]] = (e["Flags"], base64.b64decode(e["Value"] or ""), e.get("Session"))
    return out


def data_view(dump):
    return {k: (f, v) for k, (f, v, _) in dump.items()}


def wait_replicated(dc1, dc2, what, timeout=60):
    """Until dc2's vault/ equals dc1's (keys, flags, values; sessions are DC-local and not compared)."""
    deadline = time.monotonic() + timeout
    while True:
        a, b = data_view(kv_dump(dc1)), data_view(kv_dump(dc2))
        if a == b and a:
            mark("replicated: %s (%d keys equal in dc1 and dc2)" % (what, len(a)))
            return a
        if time.monotonic() > deadline:
            missing = sorted(set(a) - set(b))
            extra = sorted(set(b) - set(a))
            diff = sorted(k for k in set(a) & set(b) if a[k] != b[k])
            raise AssertionError("dc2 did not catch up with dc1 (%s) in %ss: missing %s, extra %s, different %s"
                                 % (what, timeout, missing[:10], extra[:10], diff[:10]))
        time.sleep(0.2)


class Replicator:
    def __init__(self, binary, args):
        self.lines = []
        self.proc = subprocess.Popen([binary] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def stop(self, timeout=30):
        """SIGINT (consul-replicate's kill signal): finish and exit; returns the exit status."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            self.proc.wait(timeout)
        self._t.join(5)
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def leader_entries(consul):
    st, _, body = consul.request("GET", "/v1/kv/vault/core/leader/?keys")
    return sorted(json.loads(body)) if st == 200 else []


def lock_entry(consul):
    st, _, body = consul.request("GET", "/v1/kv/vault/core/lock")
    if st == 404:
        return None
    e = json.loads(body)[0]
    return {"value": base64.b64decode(e["Value"] or "").decode(), "flags": e["Flags"], "session": e.get("Session")}


def main():
    if len(sys.argv) != 2:
        print("usage: test_vault_smoke.py <consul-replicate binary>", file=sys.stderr)
        return 2
    replicate_bin = sys.argv[1]
    if not realconsul.find_consul():
        realconsul.skip_or_fail("real Consul")
    vault_bin = realconsul.find_vault()
    if not vault_bin:
        realconsul.skip_or_fail("real Vault")

    repl = None
    with realconsul.federation(["dc1", "dc2"]) as dcs, realvault.VaultSet() as vs:
        dc1, dc2 = dcs["dc1"], dcs["dc2"]
        mark("consul dc1 %s, dc2 %s up and federated" % (dc1.addr, dc2.addr))
        try:
            args = ["-consul-addr", dc2.addr, "-prefix", "vault/@dc1", "-log-level", "info"]
            for x in EXCLUDES:
                args += ["-exclude", x]
            repl = Replicator(replicate_bin, args)
            mark("consul-replicate started: %s" % " ".join(args))

            a = vs.add(vault_bin, dc1, name="A-dc1")
            b = vs.add(vault_bin, dc2, name="B-dc2")
            mark("vault A %s (storage dc1) and B %s (storage dc2) answer" % (a.addr, b.addr))
            st, h = a.health()
            check(st == 501 and not h["initialized"], "A before init: sys/health %s %s" % (st, h))

            a.init()
            mark("A initialised (1 share, threshold 1)")
            a.unseal()
            lead = a.wait_active()
            check(lead["is_self"] and lead["leader_address"] == a.addr and lead["ha_enabled"],
                  "A sys/leader after unseal: %s" % lead)
            mark("A active: sys/leader is_self, leader_address %s" % lead["leader_address"])
            rc, out = a.status_cli()
            check(rc == 0 and out and not out["sealed"] and out.get("cluster_id"), "`vault status` on A: %s %s" % (rc, out))
            a_cluster_id = out["cluster_id"]
            a_lock = lock_entry(dc1)
            check(a_lock and a_lock["session"] and a_lock["flags"] == 3304740253564472344,
                  "dc1 core/lock while A is active: %s" % a_lock)
            check(leader_entries(dc1) == ["vault/core/leader/%s" % a_lock["value"]],
                  "dc1 core/leader/ while A is active: %s (lock value %s)" % (leader_entries(dc1), a_lock["value"]))

            a.enable_kv("kvtest")
            secrets = {"kvtest/s%02d" % i: {"value": "secret-%02d-%s" % (i, os.urandom(6).hex()), "n": str(i)}
                       for i in range(N_SECRETS)}
            for path, data in secrets.items():
                a.write(path, data)
            for path, data in secrets.items():
                check(a.read(path) == data, "A reads back %s" % path)
            mark("%d secrets written and read back through A" % N_SECRETS)

            # B: sealed the whole time A is active. Its storage is dc2's copy.
            bs = b.seal_status()
            check(bs["sealed"], "B must be sealed while A is active: %s" % bs)
            st, h = b.health()
            mark("B while sealed: seal-status initialized=%s sealed=%s; sys/health %s" % (bs["initialized"], bs["sealed"], st))

            copied = wait_replicated(dc1, dc2, "A's init, mount and %d secrets" % N_SECRETS)
            groups = {}
            for k in copied:
                rel = k[len("vault/"):]
                g = "logical/<mount>/" if rel.startswith("logical/") else rel.rsplit("/", 1)[0] + "/" if "/" in rel else rel
                groups[g] = groups.get(g, 0) + 1
            mark("dc2 holds: %s" % ", ".join("%s%s" % (g, "" if n == 1 else " x%d" % n) for g, n in sorted(groups.items())))
            check(sum(1 for k in copied if k.startswith("vault/logical/")) >= N_SECRETS, "secrets' storage copied")
            lock2 = lock_entry(dc2)
            mark("dc2 core/lock (copied as data): value==A's %s, flags %s, session %s"
                 % (lock2 and lock2["value"] == a_lock["value"], lock2 and lock2["flags"], lock2 and lock2["session"]))
            mark("dc2 core/leader/: %s" % leader_entries(dc2))
            bs = b.seal_status()
            check(bs["initialized"] and bs["sealed"], "B after replication: initialised (seal config copied) and "
                                                       "sealed: %s" % bs)
            st, h = b.health()
            check(st == 503, "B sealed: sys/health should be 503, got %s %s" % (st, h))
            rc, out = b.status_cli()
            check(rc == 2 and out and out["sealed"], "`vault status` on B: exit %s %s" % (rc, out))
            st, _, body = b.request("GET", "/v1/sys/leader", token="")
            check(st == 503 and b"sealed" in body, "sys/leader on sealed B: %s %r" % (st, body))
            st, _, _ = b.request("GET", "/v1/kvtest/s00", token=a.root_token)
            check(st == 503, "a read through sealed B should be 503, got %s" % st)
            lead = a.sys_leader()
            check(lead["is_self"] and lead["leader_address"] == a.addr and a.health()[0] == 200,
                  "A still active after dc2 caught up: %s" % lead)
            mark("before the switch: A sys/leader is_self; B sys/leader 503 \"Vault is sealed\"")

            # Controlled switch.
            t_switch = time.monotonic()
            rc = a.stop()
            mark("A stopped (SIGTERM), exit %s" % rc)
            check(rc == 0, "A's exit status after SIGTERM: %s" % rc)
            after = lock_entry(dc1)
            mark("dc1 core/lock after A's shutdown: value==A's %s, session %s; core/leader/: %s"
                 % (after and after["value"] == a_lock["value"], after and after["session"], leader_entries(dc1)))
            check(after is None or not after["session"], "A released core/lock on shutdown: %s" % after)
            wait_replicated(dc1, dc2, "A's final state")
            mark("dc2 after the final copy: core/lock %s; core/leader/: %s" % (lock_entry(dc2), leader_entries(dc2)))
            rc = repl.stop()
            for line in repl.lines:
                if "[WARN]" in line or "[ERR]" in line:
                    mark("consul-replicate said: %s" % line.split("] ", 1)[-1])
            mark("consul-replicate stopped (SIGINT), exit %s (12 is its documented status after the kill signal)" % rc)
            check(rc == 12, "consul-replicate (exit 12 on its kill signal, as v0.4.0; DRIVER.md) exit status: %s\n%s" % (rc, "\n".join(repl.lines[-40:])))
            final = data_view(kv_dump(dc2))

            b.adopt(a)
            t_unseal = time.monotonic()
            b.unseal()
            mark("B unsealed with A's key")
            lead = b.wait_active(timeout=60)
            t_active = time.monotonic()
            check(lead["is_self"] and lead["leader_address"] == b.addr and lead["leader_cluster_address"] == b.cluster_addr,
                  "B sys/leader: %s" % lead)
            mark("B active %.2fs after unseal (%.2fs after A's stop): sys/leader is_self, leader_address %s"
                 % (t_active - t_unseal, t_active - t_switch, lead["leader_address"]))
            rc, out = b.status_cli()
            # Vault 1.4's `status -format=json` is the seal status only (no HA fields): check the cluster identity
            check(rc == 0 and out and not out["sealed"] and out.get("cluster_id") == a_cluster_id,
                  "`vault status` on B: exit %s %s (A's cluster_id %s)" % (rc, out, a_cluster_id))
            for path, data in secrets.items():
                got = b.read(path)
                check(got == data, "B reads %s: %r, written %r" % (path, got, data))
            mark("all %d secrets read through B equal what was written through A" % N_SECRETS)
            check(b.list("kvtest/") == sorted(p.split("/")[1] for p in secrets), "LIST kvtest/ through B")
            b.write("kvtest/after-switch", {"value": "b"})
            check(b.read("kvtest/after-switch") == {"value": "b"}, "B writes after the switch")

            b_lock = lock_entry(dc2)
            check(b_lock and b_lock["session"] and b_lock["value"] != a_lock["value"],
                  "dc2 core/lock after B's promotion: %s (A's value %s)" % (b_lock, a_lock["value"]))
            sess = dc2.json("GET", "/v1/session/info/%s" % b_lock["session"])
            check(sess and sess[0]["Name"] == "Vault Lock", "dc2 core/lock session: %s" % sess)
            b_leaders = leader_entries(dc2)
            mark("dc2 core/lock: B's UUID, session %r (node %s); core/leader/: %s"
                 % (sess[0]["Name"], sess[0]["Node"], b_leaders))
            check("vault/core/leader/%s" % b_lock["value"] in b_leaders, "B's advertisement in dc2: %s" % b_leaders)
            changed = sorted(k for k, v in data_view(kv_dump(dc2)).items() if final.get(k) != v)
            mark("keys B changed or added in dc2 since the switch: %s" % changed)
        except BaseException:
            if repl:
                print("---- consul-replicate output (last lines) ----\n%s" % "\n".join(repl.lines[-60:]),
                      file=sys.stderr)
            raise
        finally:
            if repl:
                repl.kill()
    mark("PASS")
    print("timings (s since start): " + ", ".join("%.2f %s" % (t, w.split(":")[0].split(" (")[0][:32]) for w, t in TIMES),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
