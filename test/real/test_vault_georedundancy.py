#!/usr/bin/env python3
"""Georedundant Vault on the real programs: real Vault 1.4.3 on two federated real Consul 1.10.12 DCs, one
kvship (`-vault-path vault/ -vault-datacenters dc1,dc2`) per DC, **every Vault unsealed** the whole time.

    python3 test/real/test_vault_georedundancy.py <consul-replicate binary>

One Vault node per DC (the CI machine has two cores; each Vault is a Go server and real Consul runs two more).
A sampler asks every Vault's sys/health every 200 ms all along and the test fails if two answer "active" at
one sample. Steps, each asserted through Vault's own answers:
  1. kvship runs in both DCs before Vault starts: dc2's kvship holds dc2's vault/core/lock (its own session,
     Vault's flags). A (dc1) init + unseal -> active. B (dc2) unsealed with A's key once dc2 has A's keyring ->
     a standby whose sys/leader names A (it found A's replicated core/leader/<uuid> through the proxy lock).
  2. 100 secrets written through A; 10 more written through B (forwarded to A); all read back through B.
  3. Planned failover: A stopped, `-promote dc2` (drained: dc1's kvship takes dc1's lock, dc2's applies up to
     it, then releases dc2's lock) -> B active; writes through B.
  4. A restarted and unsealed -> standby of B (dc1's lock held by dc1's kvship, pointing at B).
  5. Failback with both Vaults up: `-promote dc1` -> dc2's kvship fences B (takes dc2's lock from B's session),
     dc1 drains, A active, B standby again.
  6. Uncontrolled failover: dc2's replicator is stopped (replication stalls), a secret is acknowledged by A,
     then dc1's Consul server is stopped (the DC is lost). dc2's kvship restarted, `-promote dc2
     -promote-force` -> B active, writes through B. dc1's Consul comes back: dc1's kvship fences A (a split
     brain for a moment, ended by the designation records), follows dc2.
  7. At the end: both DCs' vault/ equal outside the DC-local keys, every acknowledged secret readable through
     both Vaults except the one acknowledged after the last replication, which is kept in dc1's lost+found
     (asserted: its key is saved there, nothing is saved in dc2).
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
sys.path.insert(0, os.path.join(HERE, "..", "integration_replicate"))
import harness as h  # noqa: E402
import realconsul  # noqa: E402
import realvault  # noqa: E402

LOCAL = ("vault/core/lock", "vault/core/migration", "vault/sys/expire/")
FLAGS = 3304740253564472344
T0 = time.monotonic()


def mark(what):
    print("[%7.2fs] %s" % (time.monotonic() - T0, what), flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def kv_dump(consul, prefix="vault/"):
    st, _, body = consul.request("GET", "/v1/kv/%s?recurse" % prefix)
    if st == 404:
        return {}
    check(st == 200, "GET %s?recurse on %s: %s" % (prefix, consul.dc, st))
    return {e["Key"]: (e["Flags"], base64.b64decode(e["Value"] or "")) for e in json.loads(body)
            if not any(e["Key"].startswith(x) for x in LOCAL)}


def lock_entry(consul):
    st, _, body = consul.request("GET", "/v1/kv/vault/core/lock")
    if st == 404:
        return None
    e = json.loads(body)[0]
    return {"value": base64.b64decode(e["Value"] or "").decode(), "flags": e["Flags"], "session": e.get("Session")}


def wait(what, pred, timeout=90, interval=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
            last = v
        except (OSError, realvault.VaultError, ValueError, KeyError) as e:
            last = e
        time.sleep(interval)
    raise AssertionError("not %s after %ss (last %r)" % (what, timeout, last))


def wait_equal(dc1, dc2, what, timeout=90):
    def same():
        a, b = kv_dump(dc1), kv_dump(dc2)
        return a == b and a
    try:
        wait(what, same, timeout)
    except AssertionError:
        a, b = kv_dump(dc1), kv_dump(dc2)
        raise AssertionError("%s: dc1/dc2 differ: only dc1 %s, only dc2 %s, different %s" % (
            what, sorted(set(a) - set(b))[:10], sorted(set(b) - set(a))[:10],
            sorted(k for k in set(a) & set(b) if a[k] != b[k])[:10]))
    mark("replicated: %s" % what)


class Sampler:
    """Every 200 ms: which Vaults answer sys/health 200 (active). Two at one sample is a failure."""

    def __init__(self, vaults):
        self.vaults = vaults
        self.samples = 0
        self.violations = []
        self.stop_ = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop_:
            t = time.monotonic()
            active = []
            for v in self.vaults:
                try:
                    st, _ = v.health()
                    if st == 200:
                        active.append(v.name)
                except (OSError, realvault.VaultError, ValueError):
                    pass
            self.samples += 1
            if len(active) > 1:
                self.violations.append((round(t - T0, 2), active))
            time.sleep(max(0.0, 0.2 - (time.monotonic() - t)))

    def stop(self):
        self.stop_ = True
        self.t.join(5)


def start_kvship(binary, consul):
    addr = "127.0.0.1:%d" % realconsul.free_port()
    r = h.Replicator(binary, ["-consul-addr", consul.addr, "-vault-path", "vault/", "-vault-datacenters", "dc1,dc2",
                              "-gate-interval", "250ms", "-lock", "locks/kvship", "-lock-ttl", "10s",
                              "-lock-delay", "0s", "-metrics-addr", addr, "-log-level", "info"])
    r.metrics_addr = addr
    return r


def role(r):
    try:
        st, text = h.http_get(r.metrics_addr, "/metrics")
    except OSError:
        return None
    m = h.parse_metrics(text)
    for x in ("primary", "taking_over", "handing_over", "follower"):
        if m.get('kvship_vault_role{role="%s"}' % x) == 1:
            return x
    return None


def promote(binary, consul, dc, *extra):
    p = subprocess.run([binary, "-consul-addr", consul.addr, "-vault-path", "vault/", "-vault-datacenters", "dc1,dc2",
                        "-promote", dc] + list(extra), capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "-promote %s: exit %s\n%s%s" % (dc, p.returncode, p.stdout, p.stderr))
    mark("-promote %s %s: %s" % (dc, " ".join(extra), p.stdout.strip().splitlines()[-1]))


def main():
    if len(sys.argv) != 2:
        print("usage: test_vault_georedundancy.py <consul-replicate binary>", file=sys.stderr)
        return 2
    binary = sys.argv[1]
    if not realconsul.find_consul():
        realconsul.skip_or_fail("real Consul")
    vault_bin = realconsul.find_vault()
    if not vault_bin:
        realconsul.skip_or_fail("real Vault")

    k1 = k2 = sampler = None
    with realconsul.federation(["dc1", "dc2"]) as dcs, realvault.VaultSet() as vs:
        dc1, dc2 = dcs["dc1"], dcs["dc2"]
        try:
            k1, k2 = start_kvship(binary, dc1), start_kvship(binary, dc2)
            wait("dc2's proxy lock", lambda: (lock_entry(dc2) or {}).get("session"))
            check(lock_entry(dc2)["flags"] == FLAGS, "proxy lock flags: %s" % lock_entry(dc2))
            check(lock_entry(dc1) is None, "dc1 (the primary) must hold no proxy lock: %s" % lock_entry(dc1))
            mark("1. kvship in both DCs; dc2's vault/core/lock held by dc2's kvship, dc1's free")

            a = vs.add(vault_bin, dc1, name="A-dc1")
            b = vs.add(vault_bin, dc2, name="B-dc2")
            sampler = Sampler([a, b])
            a.init()
            a.unseal()
            a.wait_active()
            mark("A active")
            wait_equal(dc1, dc2, "A's init")
            b.adopt(a)
            b.unseal()
            lead = b.wait_standby(leader=a.addr, timeout=90)
            mark("B unsealed: standby, sys/leader -> %s" % lead["leader_address"])

            a.enable_kv("kvtest")
            secrets = {}
            for i in range(100):
                secrets["kvtest/s%03d" % i] = {"v": "a-%03d" % i}
                a.write("kvtest/s%03d" % i, secrets["kvtest/s%03d" % i])
            for i in range(10):
                secrets["kvtest/b%02d" % i] = {"v": "via-b-%02d" % i}
                b.write("kvtest/b%02d" % i, secrets["kvtest/b%02d" % i])
            for p, d in secrets.items():
                check(b.read(p) == d, "B reads %s (forwarded to A)" % p)
            mark("2. 100 secrets through A, 10 through B (forwarded), all read back through B")
            wait_equal(dc1, dc2, "110 secrets")

            # 3. Planned failover.
            a.stop()
            mark("3. A stopped")
            promote(binary, dc1, "dc2")
            b.wait_active(timeout=90)
            wait("dc2's kvship primary", lambda: role(k2) == "primary")
            mark("B active after the drained promotion")
            for i in range(10):
                secrets["kvtest/c%02d" % i] = {"v": "after-failover-%02d" % i}
                b.write("kvtest/c%02d" % i, secrets["kvtest/c%02d" % i])
            wait_equal(dc1, dc2, "writes through B")

            # 4. A back: a standby of B.
            a.start()
            a.unseal()
            lead = a.wait_standby(leader=b.addr, timeout=90)
            check(lock_entry(dc1)["session"], "dc1's lock held by dc1's kvship")
            mark("4. A restarted and unsealed: standby, sys/leader -> %s" % lead["leader_address"])
            check(a.read("kvtest/c03") == secrets["kvtest/c03"], "A reads through B")

            # 5. Failback with both Vaults unsealed.
            promote(binary, dc2, "dc1")
            a.wait_active(timeout=120)
            b.wait_standby(leader=a.addr, timeout=120)
            wait("dc1's kvship primary", lambda: role(k1) == "primary")
            mark("5. failback: A active, B standby of A")
            for i in range(10):
                secrets["kvtest/d%02d" % i] = {"v": "after-failback-%02d" % i}
                b.write("kvtest/d%02d" % i, secrets["kvtest/d%02d" % i])
            wait_equal(dc1, dc2, "writes after the failback")

            # 6. Uncontrolled failover: the last write never reaches dc2.
            k2.signal(signal.SIGINT)
            k2.wait(60)
            lost = {"v": "acknowledged-by-A-never-replicated"}
            a.write("kvtest/lost", lost)
            mark("6. dc2's kvship stopped; kvtest/lost acknowledged by A")
            a.kill()
            dc1.stop()
            mark("dc1 lost (Vault A and dc1's Consul stopped)")
            k2 = start_kvship(binary, dc2)
            wait("dc2's kvship follower", lambda: role(k2) in ("follower", "taking_over"), timeout=60)
            promote(binary, dc2, "dc2", "-promote-force")
            b.wait_active(timeout=120)
            mark("B active after the forced promotion")
            for i in range(5):
                secrets["kvtest/e%02d" % i] = {"v": "while-dc1-lost-%02d" % i}
                b.write("kvtest/e%02d" % i, secrets["kvtest/e%02d" % i])
            dc1.start()
            a.start()
            a.unseal()
            a.wait_standby(leader=b.addr, timeout=120)
            wait("dc1's kvship follower", lambda: role(k1) == "follower", timeout=120)
            mark("dc1 back: A standby of B, dc1's kvship follows dc2")
            wait_equal(dc1, dc2, "after the uncontrolled failover")

            # 7. Every acknowledged secret readable through both Vaults.
            for p, d in secrets.items():
                check(b.read(p) == d, "B reads %s" % p)
                check(a.read(p) == d, "A reads %s (forwarded)" % p)
            check(b.read("kvtest/lost") is None, "the unreplicated write is not in the new primary")
            lf = kv_dump(dc1, "service/kvship/lost+found/")
            # The kvtest/ mount is KV v1: the secret is stored as vault/logical/<mount uuid>/lost.
            saved = [k for k in lf if "/vault/logical/" in k and k.endswith("/lost")]
            check(saved, "kvtest/lost kept in dc1's lost+found: %s" % sorted(lf)[:20])
            check(not kv_dump(dc2, "service/kvship/lost+found/"), "nothing saved in dc2 (it lost nothing)")
            keys = [k for k in lf if not k.endswith("/.turn")]
            mark("lost+found in dc1: %d saved keys and the turn record, kvtest/lost among them (%s)"
                 % (len(keys), saved[0]))
            mark("7. %d acknowledged secrets readable through both Vaults" % len(secrets))
            sampler.stop()
            check(not sampler.violations, "two active Vaults at once: %s" % sampler.violations[:10])
            mark("sampler: %d samples every 200 ms, never more than one active Vault" % sampler.samples)
        except Exception:
            for name, r in (("kvship dc1", k1), ("kvship dc2", k2)):
                if r is not None:
                    print("---- %s log tail ----\n%s" % (name, r.log()[-6000:]), flush=True)
            raise
        finally:
            if sampler:
                sampler.stop()
            for r in (k1, k2):
                if r is not None:
                    r.kill()
    print("ok: georedundant Vault on real Vault and real Consul, %.1fs" % (time.monotonic() - T0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
