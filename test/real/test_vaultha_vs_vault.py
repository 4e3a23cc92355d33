#!/usr/bin/env python3
"""Differential check of the Vault HA model (test/integration_replicate/vaultha.py) against real Vault 1.4.3:
the same steps on the same real Consul 1.10 federation (dc1 + dc2), once with real Vault (storage path vault/)
and once with the model (path vaultm/), and the observations compared. Where they disagree, real Vault is right.

    eval "$(../shared/realbin/unpack --env)"; python3 test/real/test_vaultha_vs_vault.py

Each world: A (storage in dc1) active; dc1's storage copied into dc2 with plain PUTs, except core/lock; B
(storage in dc2) shares A's keys. Then, in order, on dc2's <path>core/lock:
  held      held by a dc2 session ("proxy") with Vault's flags and A's lock value: B unsealed is a standby that
            names A (api and cluster address); a write through B is forwarded to A and readable through A
  released  the proxy releases: B becomes active (no lock-delay: it wakes from its blocking GET)
  copied    B sealed, then dc1's core/lock copied into dc2 with a plain PUT (value + flags, no session):
            B unsealed is active, A is still active: two actives (the issue-9 bug)
  deleted   the key deleted while B is active: B steps down and takes the lock again with a new value
  conflict  B sealed, the key rewritten with flags 0: B unsealed stays standby with no leader, a request
            through it answers 500 "local node not active but active cluster node not found"; the key
            deleted: B becomes active (real Vault after its 10 s lockRetryInterval)
"Stays standby" is observed over a 3 s window (a negative cannot be polled for). The model runs with
vaultha.Timing.fast(); real Vault with its defaults.
"""
import base64
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "integration_replicate"))
import realconsul  # noqa: E402
import realvault  # noqa: E402
import vaultha  # noqa: E402

T0 = time.monotonic()
STANDBY_WINDOW = 3.0


def mark(what):
    print("[%7.2fs] %s" % (time.monotonic() - T0, what), flush=True)


def wait_for(what, pred, timeout=60, interval=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
            last = v
        except (OSError, ValueError, realvault.VaultError, vaultha.VaultError) as e:
            last = e
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last %r)" % (timeout, what, last))


def entry(consul, key):
    st, _, body = consul.request("GET", "/v1/kv/%s" % key)
    return json.loads(body)[0] if st == 200 else None


def copy_tree(src, dst, prefix, skip):
    st, _, body = src.request("GET", "/v1/kv/%s?recurse" % prefix)
    assert st == 200, st
    n = 0
    for e in json.loads(body):
        if e["Key"] in skip:
            continue
        value = base64.b64decode(e["Value"] or "")
        st, _, out = dst.request("PUT", "/v1/kv/%s?flags=%d" % (e["Key"], e["Flags"]), value)
        assert st == 200 and out.strip() == b"true", (e["Key"], st, out)
        n += 1
    return n


class World:
    """One side of the comparison: A and B (real Vault or modelled), their storage path, how to read them."""

    def __init__(self, name, path, a, b, dc1, dc2):
        self.name, self.path, self.a, self.b, self.dc1, self.dc2 = name, path, a, b, dc1, dc2
        self.lock = path + "core/lock"

    @staticmethod
    def addr(v):
        return getattr(v, "api_addr", None) or v.addr

    def role(self, v):
        """"active" / "standby" / "sealed" from sys/health (200 / 429 / 503), else the status code."""
        st, _ = v.health()
        return {200: "active", 429: "standby", 503: "sealed"}.get(st, str(st))

    def leader(self, v):
        lead = v.sys_leader()
        names = {self.addr(self.a): "A", self.addr(self.b): "B", "": "none"}
        return names.get(lead["leader_address"], lead["leader_address"]), lead["is_self"], \
            lead["leader_cluster_address"] == (self.a.cluster_addr if lead["leader_address"] == self.addr(self.a)
                                               else self.b.cluster_addr if lead["leader_address"] else "")

    def request(self, v, method, path, body=None):
        st, _, data = v.request(method, path, body)
        try:
            errors = json.loads(data).get("errors") if data.strip() else None
        except ValueError:
            errors = data[:100]
        return st, errors

    def lock_value(self):
        e = entry(self.dc2, self.lock)
        return base64.b64decode(e["Value"] or "").decode() if e else None

    def stays(self, v, role, seconds=STANDBY_WINDOW):
        """The role seen on every poll for `seconds` (a negative observation)."""
        seen = set()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            seen.add(self.role(v))
            time.sleep(0.1)
        return seen == {role}, sorted(seen)


def shape(w):
    """What B (active) looks like from outside: the JSON fields of sys/leader and sys/health, its catalog entry
    and the lock session's fields that do not depend on the timers."""
    b, dc2 = w.b, w.dc2
    port = int(w.addr(b).rsplit(":", 1)[1])
    wait_for("%s B's catalog entry tagged active and passing" % w.name,
             lambda: any(e["Service"]["Port"] == port
                         for e in dc2.json("GET", "/v1/health/service/vault?tag=active&passing")), 30)
    svc = [e for e in dc2.json("GET", "/v1/health/service/vault") if e["Service"]["Port"] == port][0]
    checks = [c for c in svc["Checks"] if c["CheckID"] != "serfHealth"]
    e = entry(dc2, w.lock)
    sess = dc2.json("GET", "/v1/session/info/%s" % e["Session"])[0]
    return {
        "sys/leader fields": sorted(b.sys_leader()),
        "sys/health fields": sorted(b.health()[1]),
        "service": (svc["Service"]["Service"], svc["Service"]["ID"] == "vault:127.0.0.1:%d" % port,
                    svc["Service"]["Tags"], svc["Service"]["Address"]),
        "checks": [(c["CheckID"] == "vault:127.0.0.1:%d:vault-sealed-check" % port, c["Name"], c["Status"],
                    c["Output"]) for c in checks],
        "session": (sess["Name"], sess["Behavior"], sess["NodeChecks"] if "NodeChecks" in sess else sess.get("Checks")),
        "lock flags": e["Flags"],
    }


def run(w):
    """The steps; returns [(step, observation)]."""
    obs = []

    def note(step, value):
        obs.append((step, value))
        mark("%-6s %-9s %s" % (w.name, step, value))

    a, b, dc1, dc2 = w.a, w.b, w.dc1, w.dc2
    a_value = base64.b64decode(entry(dc1, w.lock)["Value"]).decode()
    n = copy_tree(dc1, dc2, w.path, {w.lock})
    assert n > 0
    # held: a proxy session holds dc2's key with A's value
    sid = dc2.json("PUT", "/v1/session/create", {"Name": "proxy", "TTL": "60s"})["ID"]
    ok = dc2.put(w.lock, a_value, "?acquire=%s&flags=%d" % (sid, vaultha.LOCK_FLAG))
    assert ok.strip() == b"true", ok
    b.unseal()
    wait_for("%s B to answer as unsealed" % w.name, lambda: w.role(b) in ("standby", "active"), 60)
    wait_for("%s B to name a leader" % w.name, lambda: w.role(b) == "active" or w.leader(b)[0] != "none", 30)
    note("held", {"B": w.stays(b, "standby"), "B leader": w.leader(b), "A": w.role(a)})
    st, _ = w.request(b, "PUT", "/v1/secret/fwd", {"v": "through-B"})
    note("held", {"write via B": st, "read via A": (a.read("secret/fwd") or {}).get("v")})
    # released
    ok = dc2.put(w.lock, a_value, "?release=%s&flags=%d" % (sid, vaultha.LOCK_FLAG))
    assert ok.strip() == b"true", ok
    t = time.monotonic()
    wait_for("%s B active after the release" % w.name, lambda: w.role(b) == "active", 60)
    note("released", {"B": w.role(b), "B leader": w.leader(b), "A": w.role(a), "lock is B's": w.lock_value() != a_value})
    mark("%s: B active %.2fs after the release" % (w.name, time.monotonic() - t))
    note("shape", shape(w))
    # copied: B sealed (it releases), then a plain copy of dc1's key
    b.seal()
    wait_for("%s B sealed" % w.name, lambda: w.role(b) == "sealed", 30)
    port = int(w.addr(b).rsplit(":", 1)[1])

    def b_checks():
        return [(c["Name"], c["Status"], c["Output"]) for e in dc2.json("GET", "/v1/health/service/vault")
                if e["Service"]["Port"] == port for c in e["Checks"] if c["CheckID"] != "serfHealth"]
    wait_for("%s B's check critical" % w.name, lambda: all(c[1] == "critical" for c in b_checks()), 30)
    note("sealed", {"sys/leader": w.request(b, "GET", "/v1/sys/leader"), "health": w.role(b), "checks": b_checks(),
                    "lock session": entry(dc2, w.lock).get("Session", "")})
    e = entry(dc1, w.lock)
    st, _, out = dc2.request("PUT", "/v1/kv/%s?flags=%d" % (w.lock, e["Flags"]), base64.b64decode(e["Value"]))
    assert st == 200, (st, out)
    copied = entry(dc2, w.lock)
    assert not copied.get("Session") and copied["Flags"] == vaultha.LOCK_FLAG, copied
    b.unseal()
    t = time.monotonic()
    wait_for("%s B active with the copied key" % w.name, lambda: w.role(b) == "active", 60)
    note("copied", {"B": w.role(b), "A": w.role(a), "A is_self": w.leader(a)[1], "B is_self": w.leader(b)[1]})
    mark("%s: B active %.2fs after the unseal" % (w.name, time.monotonic() - t))
    # deleted while active
    before = wait_for("%s B's value in the key" % w.name,
                      lambda: (lambda e: base64.b64decode(e["Value"]).decode() if e and e.get("Session") else None)(
                          entry(dc2, w.lock)), 30)
    st, _, _ = dc2.request("DELETE", "/v1/kv/%s" % w.lock)
    assert st == 200
    again = wait_for("%s B holding the key again" % w.name,
                     lambda: (lambda e: e and e.get("Session") and base64.b64decode(e["Value"]).decode())(
                         entry(dc2, w.lock)), 60)
    wait_for("%s B active again" % w.name, lambda: w.role(b) == "active", 60)
    note("deleted", {"B": w.role(b), "new value": again != before})
    # conflict: flags 0
    b.seal()
    wait_for("%s B sealed" % w.name, lambda: w.role(b) == "sealed", 30)
    st, _, _ = dc2.request("PUT", "/v1/kv/%s" % w.lock, b"copied-with-flags-0")
    assert st == 200
    b.unseal()
    wait_for("%s B unsealed" % w.name, lambda: w.role(b) != "sealed", 60)
    note("conflict", {"B": w.stays(b, "standby"), "B leader": w.leader(b), "read via B": w.request(b, "GET",
                                                                                                  "/v1/secret/fwd")})
    st, _, _ = dc2.request("DELETE", "/v1/kv/%s" % w.lock)
    t = time.monotonic()
    wait_for("%s B active after the delete" % w.name, lambda: w.role(b) == "active", 60)
    note("conflict", {"after delete": w.role(b)})
    mark("%s: B active %.2fs after the conflicting key was deleted" % (w.name, time.monotonic() - t))
    return obs


EXPECTED = [  # vault-ha.md's account (§2, §6.1); both worlds must match it and each other
    ("held", {"B": (True, ["standby"]), "B leader": ("A", False, True), "A": "active"}),
    ("held", {"write via B": 204, "read via A": "through-B"}),
    ("released", {"B": "active", "B leader": ("B", True, True), "A": "active", "lock is B's": True}),
    ("shape", None),  # filled from real Vault's answer: the model must match it
    ("sealed", {"sys/leader": (503, ["Vault is sealed"]), "health": "sealed",
                "checks": [("Vault Sealed Status", "critical", "Vault Sealed")], "lock session": ""}),
    ("copied", {"B": "active", "A": "active", "A is_self": True, "B is_self": True}),
    ("deleted", {"B": "active", "new value": True}),
    ("conflict", {"B": (True, ["standby"]), "B leader": ("none", False, True),
                  "read via B": (500, [vaultha.NO_LEADER_ERR])}),
    ("conflict", {"after delete": "active"}),
]


def real_world(vbin, dcs, vs):
    dc1, dc2 = dcs["dc1"], dcs["dc2"]
    a = vs.add(vbin, dc1, name="A")
    a.init()
    a.unseal()
    a.wait_active()
    a.enable_kv("secret")
    a.write("secret/seed", {"v": "0"})
    b = vs.add(vbin, dc2, name="B", start=False)
    b.adopt(a)
    return World("real", "vault/", a, b, dc1, dc2), b


def model_world(dcs, vc):
    dc1, dc2 = dcs["dc1"], dcs["dc2"]
    a = vc.add("A", dc1, path="vaultm/", timing=vaultha.Timing.fast())
    a.unseal()
    a.wait_active()
    a.write("secret/seed", {"v": "0"})
    b = vc.add("B", dc2, path="vaultm/", timing=vaultha.Timing.fast())
    return World("model", "vaultm/", a, b, dc1, dc2)


def main():
    if not realconsul.find_consul():
        realconsul.skip_or_fail("real Consul")
    vbin = realconsul.find_vault()
    if not vbin:
        realconsul.skip_or_fail("real Vault")
    with realconsul.federation(["dc1", "dc2"]) as dcs, realvault.VaultSet() as vs, vaultha.VaultCluster({}) as vc:
        real, b_real = real_world(vbin, dcs, vs)
        model = model_world(dcs, vc)
        # B of the real world starts only now: its storage must be a copy of dc1's first (copy_tree in run)
        orig_unseal = b_real.unseal

        def start_then_unseal(key=None):
            if not b_real.running():
                b_real.start()
            return orig_unseal(key)
        b_real.unseal = start_then_unseal
        mark("both worlds ready: A active in dc1")
        got = {"real": run(real), "model": run(model)}
        bad = []
        for i, want in enumerate(EXPECTED):
            r, m = got["real"][i], got["model"][i]
            if r != m:
                bad.append("step %d %s: real Vault %r, model %r" % (i, want[0], r[1], m[1]))
            elif want[1] is not None and r != want:
                bad.append("step %d %s: both %r, vault-ha.md expects %r" % (i, want[0], r[1], want[1]))
        if bad:
            print("\n".join(bad), flush=True)
            print(vc.log_tails(), file=sys.stderr)
            raise AssertionError("the model and real Vault (or the spec) disagree on %d step(s)" % len(bad))
        print("ok: the model and real Vault agree on all %d observations" % len(EXPECTED), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
