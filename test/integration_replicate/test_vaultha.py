#!/usr/bin/env python3
"""The Vault HA model (vaultha.py) checked against Vault 1.4.3's behaviour (../shared/docs/vault-ha.md §2, §3),
on consul-kvsim (ctest integration_replicate:test_vaultha) and on real Consul 1.10 (real:vaultha_model, with
--backend real). The comparison with real Vault itself is test/real/test_vaultha_vs_vault.py.

    python3 test_vaultha.py <consul-replicate> <consul-kvsim> [--backend sim|real] [case ...]

Timing: vaultha.Timing.fast() (Vault's timers / 10; session TTL 10 s, Consul's minimum; LockDelay 2 s sent
explicitly), except default_timing_is_vaults, which runs Vault's own defaults.

Cases:
  default_timing_is_vaults   one node, Vault's defaults: the session ("Vault Lock", TTL 15s, LockDelay 15s,
                             release), the key (flags, uuid), core/leader, the catalog; clean stop leaves the
                             key unheld with its value and flags, deletes core/leader, deregisters
  one_dc_pair                two nodes, one DC: one active, one standby naming it; a write through the standby
                             is forwarded; step-down moves the active; seal hands over without lock-delay;
                             kill() hands over after session expiry + lock-delay; cleanLeaderPrefix
  copied_lock_without_session  the issue-9 bug: dc1's core/lock copied into dc2 by a plain PUT (value +
                             flags, no session): dc2's unsealed node is active at once, two actives
  held_by_another_session    dc2's key held by another session (Vault's flags, dc1 leader's uuid, its
                             core/leader copied): dc2's node stays standby, reports dc1's leader, forwards to
                             it; released: dc2's node takes it at once (no lock-delay)
  flags_conflict             a key with other flags: conflict, retried with new sessions, never active, no
                             leader (500 "...active cluster node not found"); key deleted: acquired
  key_deleted_while_active   DELETE of the held key: step-down (core/leader deleted, tag standby), contends
                             again, active with a new uuid
  session_destroyed_while_active  the active's session destroyed: step-down, then lock-delay, then active
  plain_put_new_value        a plain PUT of another value keeps the session: the active stays active; the
                             standby follows the new value as leader uuid (missing advertisement: no leader)
  unheld_key_means_no_leader during the lock-delay after a crashed active's session is destroyed, the key is
                             unheld but names an existing advertisement: the standby reports no leader
  race_gate_with_model       georace's schedule (10 leader moves) with both gates reading sys/leader of one
                             modelled node per DC (path vaultha/, outside the replicated vault/; moving the
                             leader = seal the old DC's node, unseal the new one: the sealed-standby setup);
                             georace's checks, and a 200 ms sampler sees at most one active node
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness as h  # noqa: E402
import vaultha  # noqa: E402

PATH = "vault/"
LOCK = PATH + "core/lock"
FAST = vaultha.Timing.fast()


# ---------------------------------------------------------------- helpers

def lock_entry(srv, key=LOCK):
    status, _, data = srv.request("GET", "/v1/kv/%s" % key)
    if status == 404:
        return None
    assert status == 200, (status, data[:200])
    return json.loads(data)[0]


def lock_value(srv):
    e = lock_entry(srv)
    return vaultha.value_of(e).decode() if e else None


def leader_uuids(srv):
    status, _, data = srv.request("GET", "/v1/kv/%score/leader/?keys" % PATH)
    if status == 404:
        return []
    return sorted(k.rsplit("/", 1)[1] for k in json.loads(data))


def session_info(srv, sid):
    info = srv.json("GET", "/v1/session/info/%s" % sid)
    return info[0] if info else None


def catalog(srv, tag, passing=True):
    """Service IDs of `vault` with `tag` (passing only by default) in the agent's DC."""
    q = "?tag=%s%s" % (tag, "&passing" if passing else "")
    return sorted(e["Service"]["ID"] for e in srv.json("GET", "/v1/health/service/vault%s" % q))


def check_status(srv, node):
    return srv.json("GET", "/v1/agent/checks").get(node.check_id, {}).get("Status")


def wait(pred, what, timeout=60, nodes=()):
    try:
        return h.wait_for(pred, timeout, what=what)
    except AssertionError:
        raise AssertionError("%s\n%s" % (what, "\n".join("---- %s (%s) ----\n%s" % (n.name, n.state, n.log_tail(40))
                                                          for n in nodes)))


def copy_key(src, dst, key):
    """A plain copy of a key (value and flags, no session): what a KV replicator does."""
    e = lock_entry(src, key)
    assert e is not None, "copy_key: %s missing in the source" % key
    h.put(dst, key, vaultha.value_of(e), flags=e.get("Flags", 0))


def cluster(ctx, nodes, timing=FAST):
    return vaultha.VaultCluster(nodes, timing=timing)


# ---------------------------------------------------------------- cases

def default_timing_is_vaults(ctx):
    with ctx.servers(["dc1"]) as dcs, cluster(ctx, {"a": dcs["dc1"]}, timing=vaultha.Timing()) as vc:
        srv, a = dcs["dc1"], vc["a"]
        assert a.state == "sealed" and a.health()[0] == 503
        assert a.request("GET", "/v1/sys/leader")[0] == 503
        wait(lambda: check_status(srv, a) == "critical", "sealed check registered critical", 10, [a])
        assert catalog(srv, "standby", passing=False) == [a.service_id]
        assert catalog(srv, "standby") == [], "a sealed node is not passing"
        a.unseal()
        a.wait_active(timeout=30)
        e = lock_entry(srv)
        assert e["Flags"] == vaultha.LOCK_FLAG and e["Session"] == a.session_id, e
        assert vaultha.value_of(e).decode() == a.lock_uuid
        s = session_info(srv, a.session_id)
        assert s["Name"] == "Vault Lock" and s["TTL"] == "15s" and s["LockDelay"] == 15 * 10**9, s
        assert s["Behavior"] == "release", s
        assert leader_uuids(srv) == [a.lock_uuid]
        adv = json.loads(vaultha.value_of(lock_entry(srv, PATH + "core/leader/" + a.lock_uuid)))
        assert adv == {"redirect_addr": a.api_addr, "cluster_addr": a.cluster_addr}, adv
        wait(lambda: catalog(srv, "active") == [a.service_id], "tag active, check passing", 15, [a])
        lead = a.sys_leader()
        assert lead["is_self"] and lead["leader_address"] == a.api_addr
        assert lead["leader_cluster_address"] == a.cluster_addr
        uuid, sid = a.lock_uuid, a.session_id
        a.stop()
        e = lock_entry(srv)
        assert e is not None and e.get("Session", "") == "", "Vault never deletes the key: %r" % e
        assert vaultha.value_of(e).decode() == uuid and e["Flags"] == vaultha.LOCK_FLAG
        assert leader_uuids(srv) == []
        wait(lambda: session_info(srv, sid) is None, "session destroyed", 10, [a])
        assert catalog(srv, "active", passing=False) == [] and catalog(srv, "standby", passing=False) == []
        # restart (same ports): sealed again, then active at once on the unheld key, with a new uuid
        a.start()
        assert a.state == "sealed" and a.health()[0] == 503
        a.unseal()
        a.wait_active(timeout=30)
        assert a.lock_uuid != uuid and lock_value(srv) == a.lock_uuid and a.counters["lock_delay_waits"] == 0


def one_dc_pair(ctx):
    with ctx.servers(["dc1"]) as dcs, cluster(ctx, {"a": dcs["dc1"], "b": dcs["dc1"]}) as vc:
        srv = dcs["dc1"]
        vc.unseal_all()
        act = vc.wait_one_active(timeout=30)
        sb = vc["b"] if act is vc["a"] else vc["a"]
        lead = sb.wait_standby(leader=act.api_addr, timeout=30)
        assert lead["leader_cluster_address"] == act.cluster_addr and not lead["is_self"]
        assert sb.health()[0] == 429 and act.health()[0] == 200
        wait(lambda: catalog(srv, "active") == [act.service_id] and catalog(srv, "standby") == [sb.service_id],
             "catalog: one active, one standby, both passing", 15, vc.nodes)
        # a write through the standby is forwarded to the active, stored under logical/<mount uuid>/
        before = act.counters["forwarded_in"]
        sb.write("secret/pair", {"v": "1"})
        assert act.counters["forwarded_in"] == before + 1 and sb.counters["forwarded_out"] >= 1
        assert act.read("secret/pair") == {"v": "1"} and sb.read("secret/pair") == {"v": "1"}
        stored = lock_entry(srv, "%slogical/%s/pair" % (PATH, vaultha.MOUNT_UUID))
        assert stored is not None and json.loads(vaultha.value_of(stored)) == {"v": "1"}
        # step-down: the other one takes it (released: no lock-delay); the old one waits 10 s/10, then contends
        old_uuid, old_sid = act.lock_uuid, act.session_id
        delays = sb.counters["lock_delay_waits"]
        sessions = act.counters["sessions"]
        act.step_down()
        sb.wait_active(timeout=30)
        act.wait_standby(leader=sb.api_addr, timeout=30)
        assert sb.counters["lock_delay_waits"] == delays, "a released lock has no lock-delay"
        wait(lambda: leader_uuids(srv) == [sb.lock_uuid], "only the new active's core/leader", 15, vc.nodes)
        assert old_uuid != sb.lock_uuid
        wait(lambda: session_info(srv, old_sid) is None, "old session destroyed", 10, vc.nodes)
        wait(lambda: act.counters["sessions"] > sessions, "the old active contends again (new session)", 15,
             vc.nodes)
        assert act.state == "standby"
        wait(lambda: catalog(srv, "active") == [sb.service_id], "catalog follows the step-down", 15, vc.nodes)
        # seal of the active: it steps down and releases; the other takes over at once
        a1, a2 = sb, act
        delays = a2.counters["lock_delay_waits"]
        a1.seal()
        a2.wait_active(timeout=30)
        assert a2.counters["lock_delay_waits"] == delays, "sealing releases: no lock-delay"
        assert a1.health()[0] == 503
        wait(lambda: check_status(srv, a1) == "critical", "sealed node's check critical", 10, vc.nodes)
        a1.unseal()
        a1.wait_standby(leader=a2.api_addr, timeout=30)
        # kill of the active: the session lives until Consul expires it (2 x TTL), then lock-delay
        dead_uuid, dead_sid = a2.lock_uuid, a2.session_id
        delays = a1.counters["lock_delay_waits"]
        t0 = time.monotonic()
        a2.kill()
        assert lock_entry(srv)["Session"] == dead_sid, "a crash leaves the lock held"
        a1.wait_active(timeout=90)
        took = time.monotonic() - t0
        assert a1.counters["lock_delay_waits"] > delays, "takeover after a crash goes through the lock-delay"
        assert session_info(srv, dead_sid) is None
        wait(lambda: leader_uuids(srv) == [a1.lock_uuid], "dead node's core/leader cleaned (cleanLeaderPrefix)",
             15, vc.nodes)
        assert dead_uuid not in leader_uuids(srv)
        wait(lambda: check_status(srv, a2) == "critical", "dead node's TTL check critical", 15, vc.nodes)
        assert a1.read("secret/pair") == {"v": "1"}
        print("     kill -> takeover %.1fs (TTL %ss, LockDelay %ss)" % (took, FAST.session_ttl, FAST.lock_delay))


def _dc1_active(vc):
    a = vc["a"]
    a.unseal()
    a.wait_active(timeout=30)
    return a


def copied_lock_without_session(ctx):
    with ctx.servers(["dc1", "dc2"]) as dcs, cluster(ctx, {"a": dcs["dc1"], "b": dcs["dc2"]}) as vc:
        dc1, dc2 = dcs["dc1"], dcs["dc2"]
        a = _dc1_active(vc)
        copy_key(dc1, dc2, LOCK)
        copy_key(dc1, dc2, PATH + "core/leader/" + a.lock_uuid)
        e = lock_entry(dc2)
        assert e["Flags"] == vaultha.LOCK_FLAG and not e.get("Session"), e
        b = vc["b"]
        b.unseal()
        b.wait_active(timeout=30)
        assert b.log_has("key was unheld) on attempt 1"), "taken at the first attempt:\n" + b.log_tail()
        assert b.counters["acquire_refused"] == 0 and b.counters["conflicts"] == 0  # b is alone in dc2
        assert sorted(vc.active_nodes()) == ["a", "b"], "two actives: the bug vault-ha.md §6.1 describes"
        wait(lambda: catalog(dc2, "active") == [b.service_id] and catalog(dc1, "active") == [a.service_id],
             "both DCs' catalogs say active", 15, vc.nodes)
        wait(lambda: leader_uuids(dc2) == [b.lock_uuid], "b deleted the copied advertisement", 15, vc.nodes)


def held_by_another_session(ctx):
    with ctx.servers(["dc1", "dc2"]) as dcs, cluster(ctx, {"a": dcs["dc1"], "b": dcs["dc2"]}) as vc:
        dc1, dc2 = dcs["dc1"], dcs["dc2"]
        a = _dc1_active(vc)
        # what a proxy lock does: a dc2 session holds dc2's key with Vault's flags and dc1's value
        copy_key(dc1, dc2, PATH + "core/leader/" + a.lock_uuid)
        sid = dc2.json("PUT", "/v1/session/create", {"Name": "proxy", "TTL": "30s"})["ID"]
        assert dc2.put(LOCK, a.lock_uuid, "?acquire=%s&flags=%d" % (sid, vaultha.LOCK_FLAG)).strip() == b"true"
        b = vc["b"]
        b.unseal()
        lead = b.wait_standby(leader=a.api_addr, timeout=30)
        assert lead["leader_cluster_address"] == a.cluster_addr
        # it stays standby: several more blocking rounds on the held key and leader refreshes, never acquiring
        gets = b.counters["lock_gets"]
        b.wait_counter("lock_gets", gets + 3, timeout=30)
        b.wait_counter("leader_lookups", 3, timeout=30)
        assert b.state == "standby" and b.counters["acquires"] == 0, b.log_tail()
        assert vc.active_nodes() == ["a"]
        dc2.json("PUT", "/v1/session/renew/%s" % sid)
        # requests through b are forwarded across DCs to a, and land in dc1's storage
        fin = a.counters["forwarded_in"]
        b.write("secret/fwd", {"v": "dc2"})
        assert b.read("secret/fwd") == {"v": "dc2"}
        assert a.counters["forwarded_in"] == fin + 2
        assert lock_entry(dc1, "%slogical/%s/fwd" % (PATH, vaultha.MOUNT_UUID)) is not None
        assert lock_entry(dc2, "%slogical/%s/fwd" % (PATH, vaultha.MOUNT_UUID)) is None
        # a release (promotion) wakes b at once: no lock-delay
        assert dc2.put(LOCK, a.lock_uuid, "?release=%s&flags=%d" % (sid, vaultha.LOCK_FLAG)).strip() == b"true"
        b.wait_active(timeout=30)
        assert b.counters["lock_delay_waits"] == 0, b.log_tail()
        assert lock_value(dc2) == b.lock_uuid


def flags_conflict(ctx):
    with ctx.servers(["dc1"]) as dcs, cluster(ctx, {"b": dcs["dc1"]}) as vc:
        srv, b = dcs["dc1"], vc["b"]
        h.put(srv, LOCK, b"0b1d0c2e-copied-with-flags-0")  # flags 0
        b.unseal()
        b.wait_counter("conflicts", 3, timeout=30)
        assert b.state == "standby" and b.counters["acquires"] == 0
        assert b.counters["sessions"] >= 3, "a new session per attempt"
        assert b.log_has("failed to acquire lock: existing key does not match lock use")
        lead = b.sys_leader()
        assert not lead["is_self"] and lead["leader_address"] == "", lead
        st, _, body = b.request("GET", "/v1/secret/x")
        assert st == 500 and json.loads(body)["errors"] == [vaultha.NO_LEADER_ERR], (st, body)
        assert b.health()[0] == 429
        assert vc.active_nodes() == []
        h.delete(srv, LOCK)
        b.wait_active(timeout=30)
        assert lock_entry(srv)["Flags"] == vaultha.LOCK_FLAG


def key_deleted_while_active(ctx):
    with ctx.servers(["dc1"]) as dcs, cluster(ctx, {"b": dcs["dc1"]}) as vc:
        srv, b = dcs["dc1"], vc["b"]
        b.unseal()
        b.wait_active(timeout=30)
        first = b.lock_uuid
        wait(lambda: catalog(srv, "active") == [b.service_id], "active tag", 15, [b])
        lost = b.counters["lost"]
        h.delete(srv, LOCK)
        wait(lambda: b.counters["lost"] > lost, "lock lost seen by the monitor", 30, [b])
        wait(lambda: b.state == "active" and b.lock_uuid != first, "active again with a new uuid", 30, [b])
        states = [s for _, s in b.history]
        assert states[-3:] == ["active", "standby", "active"], states
        assert b.log_has("core/leader/%s deleted" % first)
        assert b.counters["lock_delay_waits"] == 0, "a deleted key has no lock-delay"
        assert leader_uuids(srv) == [b.lock_uuid]


def session_destroyed_while_active(ctx):
    with ctx.servers(["dc1"]) as dcs, cluster(ctx, {"b": dcs["dc1"]}) as vc:
        srv, b = dcs["dc1"], vc["b"]
        b.unseal()
        b.wait_active(timeout=30)
        first, sid = b.lock_uuid, b.session_id
        srv.json("PUT", "/v1/session/destroy/%s" % sid)
        wait(lambda: b.state == "active" and b.lock_uuid != first, "active again after the lock-delay", 40, [b])
        assert b.counters["lost"] >= 1 and b.counters["lock_delay_waits"] >= 1, b.log_tail()
        assert b.log_has("lock lost (session is now ''")
        assert session_info(srv, b.session_id) is not None and b.session_id != sid


def plain_put_new_value(ctx):
    with ctx.servers(["dc1"]) as dcs, cluster(ctx, {"a": dcs["dc1"], "b": dcs["dc1"]}) as vc:
        srv = dcs["dc1"]
        vc.unseal_all()
        act = vc.wait_one_active(timeout=30)
        sb = vc["b"] if act is vc["a"] else vc["a"]
        sid = act.session_id
        h.put(srv, LOCK, b"11111111-2222-3333-4444-555555555555", flags=vaultha.LOCK_FLAG)
        assert lock_entry(srv)["Session"] == sid, "a plain PUT keeps the session"
        wait(lambda: sb.sys_leader()["leader_address"] == "", "standby: no advertisement for the new value", 15,
             vc.nodes)
        assert act.state == "active" and act.sys_leader()["is_self"]
        h.put(srv, PATH + "core/leader/11111111-2222-3333-4444-555555555555",
              json.dumps({"redirect_addr": "http://127.0.0.1:1", "cluster_addr": "https://127.0.0.1:2"}).encode())
        wait(lambda: sb.sys_leader()["leader_address"] == "http://127.0.0.1:1", "standby follows the new value",
             15, vc.nodes)
        st, hdrs, _ = sb.request("GET", "/v1/secret/x")
        assert st == 307 and hdrs["location"] == "http://127.0.0.1:1/v1/secret/x", (st, hdrs)


def unheld_key_means_no_leader(ctx):
    """Leader lookup checks that the key is held (any session): during the lock-delay after a crashed active's
    session was destroyed, the key is unheld while its value still names an existing core/leader entry, and the
    standby reports no leader."""
    timing = vaultha.Timing.fast(lock_delay=5.0)
    with ctx.servers(["dc1"]) as dcs, cluster(ctx, {"a": dcs["dc1"], "b": dcs["dc1"]}, timing=timing) as vc:
        srv = dcs["dc1"]
        vc.unseal_all()
        act = vc.wait_one_active(timeout=30)
        sb = vc["b"] if act is vc["a"] else vc["a"]
        uuid, sid = act.lock_uuid, act.session_id
        act.kill()  # a crash leaves core/leader/<uuid> behind; its session then ends (destroyed here, not expired)
        srv.json("PUT", "/v1/session/destroy/%s" % sid)

        def seen_unheld():
            e1 = lock_entry(srv)
            if e1 is None or e1.get("Session"):
                return None
            lead = sb.sys_leader()
            e2 = lock_entry(srv)
            if e2 is None or e2.get("Session") or e2["ModifyIndex"] != e1["ModifyIndex"]:
                return None  # the key changed meanwhile: look again
            return lead, vaultha.value_of(e2).decode()
        lead, value = wait(seen_unheld, "the key unheld during the lock-delay", 30, vc.nodes)
        assert value == uuid and uuid in leader_uuids(srv), "the advertisement still exists"
        assert lead["leader_address"] == "" and not lead["is_self"], lead
        sb.wait_active(timeout=30)
        wait(lambda: leader_uuids(srv) == [sb.lock_uuid], "the crashed node's advertisement cleaned", 15, vc.nodes)


class ModelLeader:
    """georace's leader mover (VaultControl's vault_cluster) backed by the model: one node per DC, storage path
    vaultha/ (outside the replicated vault/, so the race's quiet-window and equality checks see only the writer's
    keys); moving the leader seals the old DC's node (it steps down and releases) and unseals the new DC's,
    which then takes its own DC's lock and answers is_self: the sealed-standby setup."""

    def __init__(self, vc):
        self.vc = vc
        self.nodes = vc.nodes

    def set_leader_in(self, dc):
        for n in self.nodes:
            if n.dc != dc:
                n.seal()
        for n in self.nodes:
            if n.dc == dc:
                n.unseal()
                n.wait_active(timeout=60)


def race_gate_with_model(ctx):
    """georace's schedule (10 leader moves, the writer, the checks) with both replicators' gates reading
    GET /v1/sys/leader of modelled Vault nodes (one per DC, address -> DC map), whose answers come from each
    DC's core/lock; a 200 ms sampler sees at most one active node throughout. Same assertions as
    test_georedundancy.race."""
    import georace
    dcs = ["dc1", "dc2"]
    schedule = georace.Schedule(settle_deadline=60.0)
    replicators, log = [], []
    with ctx.servers(dcs, args=georace.SIM_ARGS) as sims, \
            vaultha.VaultCluster({"vault-%s" % dc: sims[dc] for dc in dcs}, path="vaultha/", timing=FAST) as vc:
        leader = ModelLeader(vc)
        metrics = {dc: "127.0.0.1:%d" % h.simctl.free_port() for dc in dcs}

        def start():
            for dc in dcs:
                args = ["-consul-addr", sims[dc].addr] + georace.replicator_args(
                    dc, dcs, True, metrics[dc], "1s", "200ms", vault=leader, vault_dc_map=True)
                replicators.append(h.Replicator(ctx.replicate_bin, args))

        def check():
            for dc, r in zip(dcs, replicators):
                if not r.running():
                    raise AssertionError("the replicator in %s exited with %s:\n%s" % (dc, r.proc.poll(), r.log()))
        turn = georace.GateTurn(metrics, h.http_get, h.parse_metrics, deadline=60, check=check)
        try:
            with vc.sampler(0.2) as samp:
                res = georace.run(sims, schedule, turn, start, log=log.append, vault_cluster=leader)
            report = []
            res.report(report.append)
            detail = "\n".join(log + report) + "".join(
                "\n---- replicator in %s (last 40 lines)\n%s" % (dc, "\n".join(r.lines[-40:]))
                for dc, r in zip(dcs, replicators))
            c = res.counts()
            assert c["writer_ops"] == (schedule.moves + 1) * schedule.ops_per_phase, detail
            for name in ("keys_lost", "deleted_keys_back", "flaps", "quiet_window_changes", "final_differences",
                         "pauses_not_settled", "turns_not_seen", "excluded_keys_crossed"):
                assert c[name] == 0, "%s = %d\n%s" % (name, c[name], detail)
            assert not res.watch_errors, detail
            final = {dc: georace.values(georace.listing(sims[dc])[1]) for dc in dcs}
            assert final["dc1"] == final["dc2"] == dict(res.parts[0].model), detail
            samp.assert_at_most_one()
            assert samp.max_active == 1 and len(samp.samples) > 10, (samp.max_active, len(samp.samples))
            moves = [n.counters["acquires"] for n in vc.nodes]
            assert sum(moves) == schedule.moves + 1, moves  # one acquisition per phase, each at the first try
            assert all(n.counters["lost"] == 0 and n.counters["lock_delay_waits"] == 0 for n in vc.nodes)
        finally:
            for r in replicators:
                r.kill()


CASES = {f.__name__: f for f in (default_timing_is_vaults, one_dc_pair, copied_lock_without_session,
                                 held_by_another_session, flags_conflict, key_deleted_while_active,
                                 session_destroyed_while_active, plain_put_new_value, unheld_key_means_no_leader,
                                 race_gate_with_model)}

if __name__ == "__main__":
    h.main(CASES)
