#!/usr/bin/env python3
"""Georedundant Vault (`vault { }` / -vault-*) end to end on two federated DCs: the proxy of Vault's HA lock in
the follower DC, the drained promotion (-promote), the old primary fenced and rejoining as a follower, a forced
promotion while the primary is lost, and the split brain ended by the designation records.

Vault's side is played by `LockHolder`: a Consul session and `?acquire` on `vault/core/lock` with Vault's flags
and a UUID value, plus `core/leader/<uuid>`, exactly the calls Vault 1.4.3 makes (../shared/docs/vault-ha.md §2);
test_vault_georedundancy.py runs the whole story with Vault itself: real Vault on real Consul, or vaultha.py."""
import json
import os
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import simctl  # noqa: E402

T = 60
LOCK = "vault/core/lock"
FLAGS = 3304740253564472344
RECORD = "service/kvship/vault/primary"


class LockHolder:
    """What a Vault node does to its DC's Consul for the HA lock (no seal, no barrier)."""

    def __init__(self, sim, name="vault"):
        self.sim = sim
        self.name = name
        self.session = None
        self.uuid = None

    def _session(self):
        status, _, data = self.sim.request("PUT", "/v1/session/create",
                                           json.dumps({"Name": "Vault Lock", "TTL": "1h"}).encode())
        assert status == 200, data
        self.session = json.loads(data)["ID"]

    def try_acquire(self):
        """Vault's Lock(): False when the key is held by another session or has other flags."""
        entry = lock_entry(self.sim)
        if entry and entry["Flags"] != FLAGS:
            return False
        if entry and entry.get("Session"):
            return entry["Session"] == self.session
        if not self.session:
            self._session()
        self.uuid = str(uuid.uuid4())
        status, _, data = self.sim.request(
            "PUT", "/v1/kv/%s?acquire=%s&flags=%d" % (LOCK, self.session, FLAGS), self.uuid.encode())
        assert status == 200, data
        if data.strip() != b"true":
            return False
        h.put(self.sim, "vault/core/leader/%s" % self.uuid,
              json.dumps({"redirect_addr": "http://%s" % self.name, "cluster_addr": "https://%s" % self.name}).encode())
        return True

    def release(self):
        """Vault stopping: release the lock, delete its core/leader entry, destroy the session."""
        status, _, data = self.sim.request("PUT", "/v1/kv/%s?release=%s" % (LOCK, self.session), b"")
        assert status == 200, data
        h.delete(self.sim, "vault/core/leader/%s" % self.uuid)
        status, _, data = self.sim.request("PUT", "/v1/session/destroy/%s" % self.session, b"")
        assert status == 200, data
        self.session = None

    def holds(self):
        entry = lock_entry(self.sim)
        return bool(entry and self.session and entry.get("Session") == self.session)


def lock_entry(sim):
    status, _, data = sim.request("GET", "/v1/kv/%s?consistent" % LOCK)
    if status == 404:
        return None
    assert status == 200, data
    return json.loads(data)[0]


def record(sim):
    status, _, data = sim.request("GET", "/v1/kv/%s?raw" % RECORD)
    if status == 404:
        return None
    assert status == 200, data
    return json.loads(data)


def cut(dc1, dc2, down):
    for sim, other in ((dc1, "dc2"), (dc2, "dc1")):
        status, _, data = sim.request("PUT", "/_sim/wan/%s/%s" % (other, "cut" if down else "restore"), b"")
        assert status == 200, data


def vault_args(metrics_addr, extra=()):
    return ["-vault-path", "vault/", "-vault-datacenters", "dc1,dc2", "-gate-interval", "200ms",
            "-metrics-addr", metrics_addr, "-log-level", "info", "-lock", "locks/kvship", "-lock-ttl", "10s", "-lock-delay", "0s"] + list(extra)


def start_in(ctx, sim, extra=()):
    addr = "127.0.0.1:%d" % simctl.free_port()
    r = h.Replicator(ctx.replicate_bin, ["-consul-addr", sim.addr] + vault_args(addr, extra))
    r.metrics_addr = addr
    return r


def metric(r, name):
    try:
        status, text = h.http_get(r.metrics_addr, "/metrics")
    except OSError:
        return None
    return h.parse_metrics(text).get(name) if status == 200 else None


def role(r):
    for x in ("primary", "taking_over", "handing_over", "follower"):
        if metric(r, 'kvship_vault_role{role="%s"}' % x) == 1:
            return x
    return None


def wait_role(r, want):
    def check():
        assert r.running(), "replicator exited:\n%s" % r.log()
        return role(r) == want
    try:
        h.wait_for(check, T, 0.1, "role %s" % want)
    except AssertionError:
        raise AssertionError("never %s (now %s):\n%s" % (want, role(r), r.log()))


def promote(ctx, sim, dc, *extra):
    p = subprocess.run([ctx.replicate_bin, "-consul-addr", sim.addr, "-vault-path", "vault/",
                        "-vault-datacenters", "dc1,dc2", "-promote", dc] + list(extra),
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def restore(ctx, sim, what, *extra):
    """-lost-found-restore under vault { } against sim's agent: (exit code, output)."""
    p = subprocess.run([ctx.replicate_bin, "-consul-addr", sim.addr, "-vault-path", "vault/",
                        "-vault-datacenters", "dc1,dc2", "-lost-found-restore", what] + list(extra),
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def shared(sim):
    return {k: v for k, v in h.dump(sim, "vault/").items()
            if k != LOCK and not k.startswith("vault/sys/expire/")}


def wait_same(a, b):
    h.wait_for(lambda: shared(a) == shared(b), T, what="vault/ equal in both DCs (outside the DC-local keys)")


def test_proxy_lock_and_drained_promotion(ctx):
    with ctx.federation() as p:
        dc1, dc2 = p.src, p.dst
        with start_in(ctx, dc1) as r1, start_in(ctx, dc2) as r2:
            # Before any Vault runs, dc2's kvship holds dc2's lock: dc1 is the primary (first in the order).
            wait_role(r1, "primary")
            wait_role(r2, "follower")
            h.wait_for(lambda: (lock_entry(dc2) or {}).get("Session"), T, what="the proxy lock in dc2")
            assert lock_entry(dc2)["Flags"] == FLAGS
            assert lock_entry(dc1) is None, "the primary DC holds no proxy lock"

            a = LockHolder(dc1, "vault-a")
            assert a.try_acquire(), "dc1's Vault takes its own lock"
            h.txn_put(dc1, {"vault/logical/s%d" % i: b"secret %d" % i for i in range(20)})
            b = LockHolder(dc2, "vault-b")
            assert not b.try_acquire(), "dc2's Vault must stay a standby"
            # The standbys are pointed at dc1's leader once its advertisement arrived.
            h.wait_for(lambda: (lock_entry(dc2) or {}).get("Value") and
                       __import__("base64").b64decode(lock_entry(dc2)["Value"]).decode() == a.uuid, T,
                       what="dc2's lock value = dc1's leader UUID")
            assert h.dump(dc2, "vault/core/leader/").get("vault/core/leader/%s" % a.uuid)
            wait_same(dc1, dc2)
            assert metric(r2, "kvship_vault_proxy_lock_held") == 1
            assert metric(r1, "kvship_vault_proxy_lock_held") == 0

            # The drained promotion of dc2.
            code, out = promote(ctx, dc1, "dc2")
            assert code == 0, out
            assert "requested" in out, out
            wait_role(r2, "primary")
            wait_role(r1, "follower")
            assert not a.holds(), "dc1's Vault was fenced"
            assert lock_entry(dc1)["Flags"] == FLAGS and lock_entry(dc1)["Session"]
            h.wait_for(lambda: not (lock_entry(dc2) or {}).get("Session"), T, what="dc2's proxy lock released")
            assert b.try_acquire(), "dc2's Vault takes the released lock"
            assert not a.try_acquire(), "dc1's Vault stays a standby"
            h.put(dc2, "vault/logical/after", b"written through dc2")
            wait_same(dc1, dc2)
            assert shared(dc1)["vault/logical/after"][0] == b"written through dc2"
            assert record(dc1)["Primary"] == "dc2" and record(dc1)["Phase"] == "primary"
            assert record(dc2)["Epoch"] == 1
            assert metric(r2, "kvship_vault_promotions_total") == 1
            assert metric(r1, "kvship_vault_fences_total") == 1
            assert h.http_get(r1.metrics_addr, "/readyz")[0] == 200

            # Failback, the same way.
            code, out = promote(ctx, dc2, "dc1")
            assert code == 0, out
            wait_role(r1, "primary")
            wait_role(r2, "follower")
            h.wait_for(lambda: a.try_acquire(), T, what="dc1's Vault active again")
            assert not b.holds()
            h.put(dc1, "vault/logical/back", b"written through dc1 again")
            wait_same(dc1, dc2)
            code, out = promote(ctx, dc2, "dc1")
            assert code == 0 and "nothing to do" in out, out


def test_forced_promotion_and_rejoin(ctx):
    with ctx.federation() as p:
        dc1, dc2 = p.src, p.dst
        with start_in(ctx, dc1) as r1, start_in(ctx, dc2) as r2:
            wait_role(r2, "follower")
            a = LockHolder(dc1, "vault-a")
            assert a.try_acquire()
            h.put(dc1, "vault/logical/early", b"replicated")
            wait_same(dc1, dc2)
            r1.kill()
            # dc1 is cut off (its kvship and its WAN link gone): an unforced promotion waits, a forced one runs.
            cut(dc1, dc2, True)
            code, out = promote(ctx, dc2, "dc2")
            assert code == 0, out
            h.wait_for(lambda: "cannot be reached" in (h.http_get(r2.metrics_addr, "/readyz")[1]), T,
                       what="readyz names the unreachable old primary")
            assert role(r2) == "taking_over"
            code, out = promote(ctx, dc2, "dc2", "-promote-force")
            assert code == 0, out
            wait_role(r2, "primary")
            b = LockHolder(dc2, "vault-b")
            h.wait_for(b.try_acquire, T, what="dc2's Vault active")
            # Both Vaults active now (a split brain): the old primary's kvship, back, fences its Vault.
            h.put(dc1, "vault/logical/late", b"acknowledged by dc1 during the cut")
            cut(dc1, dc2, False)
            with start_in(ctx, dc1) as r1b:
                wait_role(r1b, "follower")
                h.wait_for(lambda: not a.holds(), T, what="dc1's Vault fenced")
                assert b.holds()
                h.put(dc2, "vault/logical/new", b"through dc2")
                wait_same(dc1, dc2)
                assert metric(r1b, "kvship_vault_fences_total") == 1
                assert metric(r1b, "kvship_vault_split_brains_total") == 1
                assert metric(r1b, "kvship_vault_split_brain") == 0

                # dc1's acknowledged write is in dc1's lost+found; a restore is refused outside the primary
                # and while a DC's designation record cannot be read, and works in the primary.
                assert "vault/logical/late" not in shared(dc2), "dc2's pairs wrote into dc2 after its Vault took the lock"
                saved = [k for k in h.dump(dc1, "service/kvship/lost+found/") if k.endswith("/vault/logical/late")]
                assert len(saved) == 1, h.dump(dc1, "service/kvship/lost+found/")
                what = saved[0][len("service/kvship/lost+found/"):]
                code, out = restore(ctx, dc1, what)
                assert code == 14 and "refusing to restore" in out and "not this DC (dc1)" in out, (code, out)
                cut(dc1, dc2, True)
                code, out = restore(ctx, dc2, what)
                assert code == 14 and "records of dc1 cannot be read" in out, (code, out)
                cut(dc1, dc2, False)
                code, out = restore(ctx, dc2, what)
                assert code == 0 and 'restored "vault/logical/late"' in out, (code, out)
                h.wait_for(lambda: shared(dc1).get("vault/logical/late", (None,))[0] ==
                           b"acknowledged by dc1 during the cut", T, what="the restored key replicated to dc1")
                wait_same(dc1, dc2)


def test_automatic_failover(ctx):
    """failover_after: dc1's Vault gone (its lock free) for that long makes dc2 promote itself (forced);
    dc2's Vault then takes the lock and dc1's kvship keeps dc1's Vault a standby."""
    extra = ["-vault-failover-after", "2s"]
    with ctx.federation() as p:
        dc1, dc2 = p.src, p.dst
        with start_in(ctx, dc1, extra) as r1, start_in(ctx, dc2, extra) as r2:
            wait_role(r1, "primary")
            wait_role(r2, "follower")
            a = LockHolder(dc1, "vault-a")
            assert a.try_acquire()
            h.put(dc1, "vault/logical/before", b"through dc1")
            wait_same(dc1, dc2)
            # While dc1's Vault is active nothing moves, however long.
            import time
            time.sleep(5)
            assert role(r2) == "follower" and metric(r2, "kvship_vault_failovers_total") == 0, r2.log()
            a.release()
            wait_role(r2, "primary")
            wait_role(r1, "follower")
            assert metric(r2, "kvship_vault_failovers_total") == 1
            r2.wait_log("automatic failover: primary dc1 unreachable or without an active Vault for 2s")
            rec = record(dc2)
            assert rec["Primary"] == "dc2" and rec["Reason"] == "failover", rec
            b = LockHolder(dc2, "vault-b")
            h.wait_for(b.try_acquire, T, what="dc2's Vault active after the failover")
            h.wait_for(lambda: (lock_entry(dc1) or {}).get("Session"), T, what="dc1's proxy lock")
            assert not a.try_acquire(), "dc1's Vault, back, stays a standby"
            h.put(dc2, "vault/logical/after", b"through dc2")
            wait_same(dc1, dc2)


CASES = {
    "proxy_lock_and_drained_promotion": test_proxy_lock_and_drained_promotion,
    "forced_promotion_and_rejoin": test_forced_promotion_and_rejoin,
    "automatic_failover": test_automatic_failover,
}

if __name__ == "__main__":
    h.main(CASES, sim_only={"forced_promotion_and_rejoin": "cuts the WAN with the sim's fault injection"})
