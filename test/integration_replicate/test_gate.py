#!/usr/bin/env python3
"""The leader-DC gate end to end: two federated sims (dc1, dc2), one gated consul-replicate per DC (each talking
to its own DC's agent), the primary found through the catalog (Vault's `vault` service with tag `active`),
through Vault's /v1/sys/leader (vaultsim.py) or from a KV key. Assertions on exact KV content and on the
gate's metrics and /readyz; waits are polls with generous deadlines, never timing asserts."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import simctl  # noqa: E402
import vaultsim  # noqa: E402

T = 45  # generous deadline for anything the gate must reach on a loaded 2-core machine


def gate_args(metrics_addr, settle="2s", extra=()):
    return ["-gate-settle", settle, "-gate-interval", "200ms", "-prefix", "vault/", "-metrics-addr", metrics_addr,
            "-log-level", "info"] + list(extra)


def start_in(ctx, sim, args):
    """A replicator whose local agent is `sim`, and its metrics address."""
    addr = "127.0.0.1:%d" % simctl.free_port()
    r = h.Replicator(ctx.replicate_bin, ["-consul-addr", sim.addr] + list(args(addr)))
    r.metrics_addr = addr
    return r


def metrics(r):
    status, text = h.http_get(r.metrics_addr, "/metrics")
    assert status == 200, text
    return h.parse_metrics(text)


def safe_metrics(r):
    try:
        return metrics(r)
    except OSError:
        return {}


def gate_state(r):
    m = safe_metrics(r)
    for s in ("following", "primary", "paused"):
        if m.get('kvship_gate_state{state="%s"}' % s) == 1:
            primary = [k for k in m if k.startswith("kvship_gate_primary{") and m[k] == 1]
            return s, (primary[0].split('"')[1] if primary else None)
    return None, None


def wait_state(r, state, primary=None, timeout=T):
    def check():
        assert r.running(), "replicator exited:\n%s" % r.log()
        return gate_state(r) == (state, primary)
    try:
        h.wait_for(check, timeout, 0.1, "gate %s %s" % (state, primary))
    except AssertionError:
        raise AssertionError("gate never reached %s %s (now %s):\n%s" % (state, primary, gate_state(r), r.log()))


def counter(r, name):
    return safe_metrics(r).get(name, 0)


def readyz(r):
    return h.http_get(r.metrics_addr, "/readyz")


def register_vault(sim, active, port=8200, passing=True):
    """Vault's own registration: service `vault`, tag active or standby, with a TTL check."""
    body = {"ID": "vault", "Name": "vault", "Tags": ["active" if active else "standby"], "Address": "127.0.0.1",
            "Port": port, "Check": {"TTL": "10m", "Status": "passing" if passing else "critical"}}
    status, _, data = sim.request("PUT", "/v1/agent/service/register", json.dumps(body).encode())
    assert status == 200, "register: %s %r" % (status, data[:200])


def set_check(sim, passing):
    status, _, data = sim.request("PUT", "/v1/agent/check/%s/service:vault" % ("pass" if passing else "fail"), b"")
    assert status == 200, "check: %s %r" % (status, data[:200])


def vault_keys(sim):
    return h.dump(sim, "vault/")


def wait_same(a, b, timeout=T):
    h.wait_for(lambda: vault_keys(a) == vault_keys(b) and vault_keys(a), timeout, what="vault/ equal in both DCs")


def test_catalog_way_turns(ctx):
    with ctx.federation() as p:
        register_vault(p.src, active=True)
        register_vault(p.dst, active=False)
        h.txn_put(p.src, {"vault/k%d" % i: b"v%d" % i for i in range(5)})
        h.put(p.dst, "vault/stale", b"only in dc2")
        with start_in(ctx, p.src, lambda a: ["-gate=vault"] + gate_args(a)) as r1, \
                start_in(ctx, p.dst, lambda a: ["-gate=vault"] + gate_args(a)) as r2:
            wait_state(r2, "following", "dc1")
            wait_state(r1, "primary", "dc1")
            wait_same(p.src, p.dst)
            assert "vault/stale" not in vault_keys(p.dst)
            h.wait_for(lambda: readyz(r2)[0] == 200 and readyz(r1)[0] == 200, T, what="/readyz 200 on both")
            assert not any(k.startswith("kvship_keys_put_total") for k in metrics(r1)), "dc1 wrote"
            deleted_before = counter(r2, 'kvship_keys_deleted_total{pair="vault/:vault/"}')
            assert deleted_before == 1

            # The active Vault moves to dc2. The writer waits until dc2's replicator stopped copying from dc1.
            register_vault(p.src, active=False)
            register_vault(p.dst, active=True)
            h.wait_for(lambda: gate_state(r2)[0] != "following", T, what="dc2 stops following dc1")
            h.put(p.dst, "vault/new", b"written in dc2")
            wait_state(r1, "following", "dc2")
            wait_state(r2, "primary", "dc2")
            h.wait_for(lambda: vault_keys(p.src).get("vault/new") == (b"written in dc2", 0), T,
                       what="dc2's write copied to dc1")
            wait_same(p.src, p.dst)
            for r in (r1, r2):
                assert counter(r, "kvship_gate_direction_changes_total") == 1, r.log()
                assert any("direction_changed" in line for line in r.lines), r.log()
            # dc2 wrote nothing after the turn: its write survives, no more deletes
            assert counter(r2, 'kvship_keys_deleted_total{pair="vault/:vault/"}') == deleted_before
            assert vault_keys(p.dst)["vault/new"] == (b"written in dc2", 0)
            h.wait_for(lambda: readyz(r1)[0] == 200 and readyz(r2)[0] == 200, T, what="/readyz 200 after the turn")
            assert r1.running() and r2.running()


def test_key_mode(ctx):
    with ctx.federation() as p:
        for sim in (p.src, p.dst):
            h.put(sim, "ops/primary", b"dc1\n")  # trimmed
        h.txn_put(p.src, {"vault/a": b"1", "vault/b": b"2"})
        args = lambda a: ["-gate=key", "-gate-key=ops/primary"] + gate_args(a)  # noqa: E731
        with start_in(ctx, p.src, args) as r1, start_in(ctx, p.dst, args) as r2:
            wait_state(r2, "following", "dc1")
            wait_state(r1, "primary", "dc1")
            wait_same(p.src, p.dst)

            # a planned failover: dc2 first (it stops copying), then dc1 turns and copies dc2's writes
            h.put(p.dst, "ops/primary", b"dc2")
            wait_state(r2, "primary", "dc2")
            h.put(p.dst, "vault/c", b"3")
            h.put(p.src, "ops/primary", b"dc2")
            wait_state(r1, "following", "dc2")
            h.wait_for(lambda: vault_keys(p.src).get("vault/c") == (b"3", 0), T, what="vault/c copied to dc1")
            wait_same(p.src, p.dst)
            assert counter(r1, "kvship_gate_direction_changes_total") == 1
            assert counter(r2, "kvship_gate_direction_changes_total") == 1

            # a value that is no DC name pauses (error); a missing key pauses (no primary)
            h.put(p.src, "ops/primary", b"not a dc!")
            wait_state(r1, "paused")
            assert counter(r1, 'kvship_gate_pauses_total{reason="error"}') >= 1
            status, body = readyz(r1)
            assert status == 503 and "error" in body and "not a datacenter name" in body, (status, body)
            h.delete(p.src, "ops/primary")
            h.wait_for(lambda: counter(r1, 'kvship_gate_pauses_total{reason="no_primary"}') >= 1, T,
                       what="no_primary pause")
            status, body = readyz(r1)
            assert status == 503 and "no_primary" in body, (status, body)


def test_settle_flicker_no_turn(ctx):
    with ctx.federation() as p:
        register_vault(p.src, active=True)
        register_vault(p.dst, active=False)
        h.txn_put(p.src, {"vault/x": b"1"})
        args = lambda a: ["-gate=vault"] + gate_args(a, settle="8s")  # noqa: E731
        with start_in(ctx, p.src, args) as r1, start_in(ctx, p.dst, args) as r2:
            wait_state(r2, "following", "dc1")
            wait_state(r1, "primary", "dc1")
            wait_same(p.src, p.dst)
            before = vault_keys(p.src)

            # The leader flickers to dc2, and back as soon as a replicator has seen it (well under 8s).
            register_vault(p.dst, active=True)
            register_vault(p.src, active=False)
            h.wait_for(lambda: gate_state(r2)[0] == "paused" or gate_state(r1)[0] == "paused", T, 0.02,
                       what="the flicker seen")
            register_vault(p.src, active=True)
            register_vault(p.dst, active=False)

            wait_state(r2, "following", "dc1")
            wait_state(r1, "primary", "dc1")
            for r in (r1, r2):
                assert counter(r, "kvship_gate_direction_changes_total") == 0, r.log()
            assert counter(r1, 'kvship_gate_pauses_total{reason="settling"}') + \
                counter(r2, 'kvship_gate_pauses_total{reason="settling"}') >= 1
            assert any("resumed" in line for line in r1.lines + r2.lines)
            assert vault_keys(p.src) == before, "dc1 (the primary) was written"
            assert not any(k.startswith("kvship_keys_put_total") for k in metrics(r1)), "dc1's replicator wrote"
            wait_same(p.src, p.dst)


def test_no_primary_and_two_primaries_pause(ctx):
    with ctx.federation() as p:
        h.txn_put(p.src, {"vault/a": b"1", "vault/b": b"2"})
        with start_in(ctx, p.dst, lambda a: ["-gate=vault"] + gate_args(a)) as r2:
            # nobody registered: no primary
            wait_state(r2, "paused")
            h.wait_for(lambda: counter(r2, 'kvship_gate_pauses_total{reason="no_primary"}') >= 1, T, what="no_primary")
            status, body = readyz(r2)
            assert status == 503 and "no_primary" in body, (status, body)
            assert not any(k.startswith("kvship_gate_primary") for k in metrics(r2))

            # both DCs claim it: two primaries
            register_vault(p.src, active=True)
            register_vault(p.dst, active=True)
            h.wait_for(lambda: counter(r2, 'kvship_gate_pauses_total{reason="two_primaries"}') >= 1, T,
                       what="two_primaries")
            wait_state(r2, "paused")
            status, body = readyz(r2)
            assert status == 503 and "two_primaries" in body and "dc1, dc2" in body, (status, body)
            # an instance whose check fails is no claimant
            set_check(p.dst, passing=False)
            wait_state(r2, "following", "dc1")
            wait_same(p.src, p.dst)
            # nothing had been written while paused: the pair's first puts are the two keys
            assert counter(r2, 'kvship_keys_put_total{pair="vault/:vault/"}') == 2
            assert counter(r2, "kvship_gate_direction_changes_total") == 0  # the first decision is no turn

            set_check(p.src, passing=False)  # the active Vault's check fails: no primary again
            wait_state(r2, "paused")
            h.put(p.src, "vault/later", b"x")
            status, body = readyz(r2)
            assert status == 503 and "no_primary" in body, (status, body)
            # a pause stops the pairs: a running pair copies a change within milliseconds; after 2 s
            # (ten polls) of pause the key is still not there (an absence check, not a timing assert)
            time.sleep(2)
            assert gate_state(r2)[0] == "paused"
            assert "vault/later" not in vault_keys(p.dst), "written while paused"
            assert counter(r2, 'kvship_gate_pauses_total{reason="no_primary"}') == 2


def test_vault_way(ctx):
    with ctx.federation() as p, vaultsim.VaultCluster({"v1": "dc1", "v2": "dc2"}, leader="v1") as vault:
        v1, v2 = vault.node("v1"), vault.node("v2")
        h.txn_put(p.src, {"vault/s1": b"secret"})
        # dc2: a static map from leader address to DC
        mapped = ["-gate=vault", "-gate-vault-addr", v1.url, "-gate-vault-addr", v2.url,
                  "-gate-vault-dc", "%s=dc1" % v1.api_addr, "-gate-vault-dc", "%s=dc2" % v2.api_addr]
        # dc1: no map, the leader's host:port is found in the catalog (Vault's registrations)
        register_vault(p.src, active=False, port=int(v1.api_addr.rsplit(":", 1)[1]))
        register_vault(p.dst, active=False, port=int(v2.api_addr.rsplit(":", 1)[1]))
        via_catalog = ["-gate=vault", "-gate-vault-addr", v1.url, "-gate-vault-addr", v2.url]
        with start_in(ctx, p.dst, lambda a: mapped + gate_args(a)) as r2, \
                start_in(ctx, p.src, lambda a: via_catalog + gate_args(a)) as r1:
            wait_state(r2, "following", "dc1")
            wait_state(r1, "primary", "dc1")
            wait_same(p.src, p.dst)

            vault.set_leader("v2")
            wait_state(r2, "primary", "dc2")
            h.put(p.dst, "vault/s2", b"from dc2")
            wait_state(r1, "following", "dc2")
            h.wait_for(lambda: vault_keys(p.src).get("vault/s2") == (b"from dc2", 0), T, what="s2 copied to dc1")
            assert counter(r1, "kvship_gate_direction_changes_total") == 1
            assert counter(r2, "kvship_gate_direction_changes_total") == 1

            # one node down: the other still answers, nothing changes
            vault.down("v1")
            time.sleep(1)  # let several polls happen (not an assertion on timing)
            assert gate_state(r1) == ("following", "dc2") and gate_state(r2) == ("primary", "dc2")
            # every node sealed: no answer at all is an error, never "no primary"
            vault.seal("v2")
            wait_state(r1, "paused")
            h.wait_for(lambda: counter(r1, 'kvship_gate_pauses_total{reason="error"}') >= 1, T, what="error pause")
            status, body = readyz(r1)
            assert status == 503 and "no Vault answered" in body, (status, body)
            # a standby without a leader: no primary
            vault.up("v1")
            vault.set_leader(None)
            h.wait_for(lambda: counter(r2, 'kvship_gate_pauses_total{reason="no_primary"}') >= 1, T,
                       what="no leader: no_primary")
            # a split brain (each node believes it leads): two primaries
            vault.unseal("v2")
            vault.set_view("v1", "v1")
            vault.set_view("v2", "v2")
            h.wait_for(lambda: counter(r2, 'kvship_gate_pauses_total{reason="two_primaries"}') >= 1, T,
                       what="split brain: two_primaries")
            assert r1.running() and r2.running()


def test_gate_refuses_dc_prefix_and_source_addr(ctx):
    with ctx.federation() as p:
        rc, log, _ = h.run_once(ctx.replicate_bin, ["-consul-addr", p.dst.addr, "-gate=vault", "-prefix=vault/@dc1"])
        assert rc == 15 and 'leave "@dc1" out' in log, (rc, log)
        r = h.Replicator(ctx.replicate_bin, ["-consul-addr", p.dst.addr, "-gate=key", "-prefix=vault/",
                                             "-source-addr", p.src.addr])
        assert r.wait(30) == 15 and "source_addr does not apply with a gate" in r.log(), r.log()
        r = h.Replicator(ctx.replicate_bin, ["-consul-addr", p.dst.addr, "-prefix=vault/"])
        assert r.wait(30) == 13 and 'invalid value "vault/" for flag -prefix: missing datacenter' in r.log(), r.log()


if __name__ == "__main__":
    h.main({name: fn for name, fn in globals().items() if name.startswith("test_")})
