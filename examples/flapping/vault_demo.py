#!/usr/bin/env python3
"""Georedundant Vault before and after: two DCs, one Vault per DC, **both unsealed**, clients in each DC
writing secrets through their local Vault, a failover (dc1's Vault stopped) and a failback, once with the
seed's setup and once with kvship's `vault { }`. Counts what an operator would see.

    python3 examples/flapping/vault_demo.py --setup ungated [--backend real|sim]   # before
    python3 examples/flapping/vault_demo.py --setup vault   [--backend real|sim]   # after

  --setup ungated  the seed's setup: one replicator per DC pulling vault/ from the other DC
                   (`-prefix vault/@<other> -exclude vault/sys/expire/`), as consul-replicate is deployed
                   (kvship's binary with consul-replicate's flags; the behaviour is consul-replicate's);
  --setup vault    `-vault-path vault/ -vault-datacenters dc1,dc2` in each DC, promotions by `-promote`.
  --backend real   real Vault 1.4.3 on real Consul 1.10.12 (../shared/realbin: eval "$(../shared/realbin/unpack
                   --env)"); sim: vaultha.py's modelled Vault on consul-kvsim.

What is counted (README.md in this folder has a recorded run of both):
  two_active_samples   samples (every 200 ms) at which both Vaults answered sys/health 200 (active)
  writes_acknowledged  secret writes a Vault acknowledged (204)
  writes_refused       writes a Vault refused or that failed
  lost                 acknowledged secrets not readable (or older) through one Vault or the other at the end
  saved_in_lost_found  keys kvship saved in lost+found (vault setup; an unreplicated write of an uncontrolled
                       failover; none is expected in this controlled schedule)
  final_differences    keys of vault/ (outside the DC-local ones) that differ between the DCs at the end
Exit status 0 when lost and two_active_samples are 0.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "test", "integration_replicate"))
sys.path.insert(0, os.path.join(ROOT, "test", "integration"))
import harness as h  # noqa: E402
import realconsul  # noqa: E402
import realvault  # noqa: E402
import test_vault_georedundancy as geo  # noqa: E402
import vaultha  # noqa: E402

ERRORS = (OSError, AssertionError, realvault.VaultError, vaultha.VaultError, ValueError, KeyError)


def log(msg):
    geo.mark(msg)


def ungated(binary, consul, other):
    addr = "127.0.0.1:%d" % realconsul.free_port()
    r = h.Replicator(binary, ["-consul-addr", consul.addr, "-prefix", "vault/@%s" % other,
                              "-exclude", "vault/sys/expire/", "-metrics-addr", addr, "-log-level", "info"])
    r.metrics_addr = addr
    return r


def try_(what, fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except ERRORS as e:
        log("%s: %s" % (what, str(e).splitlines()[0][:160]))
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setup", choices=("ungated", "vault"), required=True)
    ap.add_argument("--backend", choices=("real", "sim"), default="real")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"), help="folder with the two programs")
    ap.add_argument("--secrets", type=int, default=20, help="secrets written through each Vault per phase")
    a = ap.parse_args()
    binary = os.path.join(a.bin, "consul-replicate")
    if a.backend == "real" and not realconsul.find_consul():
        sys.exit("real Consul not found: eval \"$(../shared/realbin/unpack --env)\" first")
    world = geo.RealWorld() if a.backend == "real" else geo.SimWorld(os.path.join(a.bin, "consul-kvsim"))
    mount = world.mount
    counts = {"writes_acknowledged": 0, "writes_refused": 0}
    acked = {}
    reps = []
    sampler = None
    exc = (None, None, None)

    def write(v, name, value):
        path = "%s/%s" % (mount, name)
        try:
            v.write(path, {"v": value})
            counts["writes_acknowledged"] += 1
            acked[path] = {"v": value}
        except ERRORS:
            counts["writes_refused"] += 1

    log("setup %s on %s: one Vault per DC, both unsealed" % (a.setup, a.backend))
    try:
        dc1, dc2 = world.dcs["dc1"], world.dcs["dc2"]
        if a.setup == "ungated":
            reps = [ungated(binary, dc1, "dc2"), ungated(binary, dc2, "dc1")]
        else:
            reps = [geo.start_kvship(binary, dc1), geo.start_kvship(binary, dc2)]
            geo.wait("dc2's proxy lock", lambda: (geo.lock_entry(dc2) or {}).get("session"), 60)
        va = world.vault("dc1", "A-dc1")
        vb = world.vault("dc2", "B-dc2")
        sampler = geo.Sampler([va, vb])
        va.init()
        va.unseal()
        va.wait_active()
        try_("dc2 has A's keyring", geo.wait, "dc2 has A's keyring",
             lambda: any(k.startswith("vault/core/keyring") for k in geo.kv_dump(dc2)), 30)
        vb.adopt(va)
        try_("B unseal", vb.unseal)
        time.sleep(3)
        log("A active; B unsealed: %s" % (try_("B health", vb.health) or ("no answer",))[0])
        va.enable_kv(mount)
        time.sleep(1)

        for i in range(a.secrets):
            write(va, "a1-%02d" % i, "through A, phase 1")
            write(vb, "b1-%02d" % i, "through B, phase 1")
        log("phase 1: %d writes through each Vault" % a.secrets)
        time.sleep(2)

        va.stop()
        log("failover: A stopped")
        if a.setup == "vault":
            geo.promote(binary, dc1, "dc2")
        try_("B active", vb.wait_active, timeout=60)
        for i in range(a.secrets):
            write(vb, "b2-%02d" % i, "through B after the failover")
        log("phase 2: %d writes through B" % a.secrets)
        time.sleep(2)

        va.start()
        try_("A unseal", va.unseal)
        log("A restarted and unsealed")
        if a.setup == "vault":
            try_("A standby", va.wait_standby, leader=vb.addr, timeout=60)
            geo.promote(binary, dc2, "dc1")
            try_("A active", va.wait_active, timeout=90)
            try_("B standby", vb.wait_standby, leader=va.addr, timeout=60)
        else:
            time.sleep(5)
        for i in range(a.secrets):
            write(va, "a3-%02d" % i, "through A after the failback")
            write(vb, "b3-%02d" % i, "through B after the failback")
        log("phase 3: %d writes through each Vault" % a.secrets)
        time.sleep(5)

        lost = set()
        for v in (va, vb):
            for p, d in acked.items():
                got = try_("%s reads %s" % (v.name, p), v.read, p)
                if got != d:
                    lost.add(p)
        d1, d2 = geo.kv_dump(dc1), geo.kv_dump(dc2)
        counts["lost"] = len(lost)
        counts["saved_in_lost_found"] = sum(
            1 for dc in (dc1, dc2) for k in geo.kv_dump(dc, "service/kvship/lost+found/") if not k.endswith("/.turn"))
        counts["final_differences"] = sum(1 for k in set(d1) | set(d2) if d1.get(k) != d2.get(k))
        sampler.stop()
        counts["two_active_samples"] = len(sampler.violations)
        counts["samples"] = sampler.samples
        print("\nsetup %s on %s" % (a.setup, a.backend))
        for k in ("samples", "two_active_samples", "writes_acknowledged", "writes_refused", "lost",
                  "saved_in_lost_found", "final_differences"):
            print("%-22s %d" % (k, counts[k]))
        if lost:
            print("  lost: %s" % ", ".join(sorted(lost)[:12]))
        if sampler.violations:
            print("  two active from %.1fs to %.1fs" % (sampler.violations[0][0], sampler.violations[-1][0]))
        return 0 if not lost and not sampler.violations else 1
    except BaseException:
        exc = sys.exc_info()
        for r in reps:
            print("---- replicator log tail ----\n%s" % r.log()[-3000:])
        raise
    finally:
        if sampler:
            sampler.stop()
        for r in reps:
            r.kill()
        world.close(exc)


if __name__ == "__main__":
    sys.exit(main())
