"""Refusing two-way replication: each replicator publishes its pairs under service/kvship/replicators/<host>-<pid>
in its own DC (a session with behavior delete); two ungated replicators copying overlapping prefixes towards each
other are refused with an error naming both (the second at its start, before it writes anything; the first keeps
going); a running one that finds such a partner later (its periodic check) stops with exit 14; a gated pair of
the same shape runs; the entry goes on a clean stop and after SIGKILL (session TTL); -once checks but publishes
nothing; an unreadable registry only warns."""
import json
import signal
import socket
import time

import harness as h

REGISTRY = "service/kvship/replicators/"
FAST = {"KVSHIP_REGISTRY_INTERVAL": "500ms", "KVSHIP_REGISTRY_TTL": "10s"}
ROOT = "root-token"


def entries(sim, token=None):
    """{key: decoded JSON entry} of the registry of `sim`'s DC."""
    return {k: json.loads(v) for k, (v, _) in h.dump(sim, REGISTRY, token=token, with_status=True).items()}


def wait_entry(sim, pid, timeout=20):
    key = REGISTRY + "%s-%d" % (host_id(), pid)
    return h.wait_for(lambda: entries(sim).get(key), timeout, what="registry entry %s" % key)


def host_id():
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in socket.gethostname())


def test_second_refused_first_goes_on(ctx):
    with ctx.federation() as p:
        h.put(p.src, "app/a", b"1")
        a = ctx.replicator(p, ["-prefix", "app/@dc1", "-log-level", "info"], env=FAST)
        with a:
            h.wait_for(lambda: h.dump(p.dst).get("app/a"), 20, what="app/a copied")
            e = wait_entry(p.dst, a.proc.pid)
            assert e == {"ID": "%s-%d" % (host_id(), a.proc.pid), "Host": socket.gethostname(), "PID": a.proc.pid,
                         "Datacenter": "dc2", "Gated": False,
                         "Pairs": [{"SourceDatacenter": "dc1", "Source": "app/", "Destination": "app/"}]}, e
            # the other way round, renamed but overlapping both ways: dc2:app/sub/ -> dc1:app/sub/
            b = h.Replicator(ctx.replicate_bin, ["-consul-addr", p.src.addr, "-prefix", "app/sub/@dc2"], env=FAST)
            rc = b.wait(30)
            assert rc == 14, "exit %s\n%s" % (rc, b.log())
            err = b.log()
            assert "two-way replication refused" in err, err
            assert "host %s pid %d in dc1 (ungated: dc2:app/sub/ -> dc1:app/sub/)" % (
                socket.gethostname(), b.proc.pid) in err, err
            assert "host %s pid %d in dc2 (ungated: dc1:app/ -> dc2:app/)" % (socket.gethostname(), a.proc.pid) in err, err
            assert h.dump(p.src, with_status=True).keys() == {"app/a"}, "the refused replicator wrote"
            # the first one goes on: several periodic checks later it still runs and copies
            time.sleep(2)
            assert a.running(), a.log()
            h.put(p.src, "app/b", b"2")
            h.wait_for(lambda: h.dump(p.dst).get("app/b"), 20, what="app/b copied")
            assert "two-way" not in a.log(), a.log()
        # a disjoint pair the other way is fine
        with ctx.replicator(p, ["-prefix", "app/@dc1"], env=FAST) as a2:
            wait_entry(p.dst, a2.proc.pid)
            with h.Replicator(ctx.replicate_bin, ["-consul-addr", p.src.addr, "-prefix", "other/@dc2"], env=FAST) as b2:
                wait_entry(p.src, b2.proc.pid)
                time.sleep(1.5)
                assert a2.running() and b2.running(), a2.log() + b2.log()


def test_periodic_check_stops_a_running_replicator(ctx):
    """Two replicators started at the same moment both check before either has published; the periodic check
    then finds the partner. Here the partner's entry is written as a replicator in dc1 publishes it."""
    with ctx.federation() as p:
        h.put(p.src, "vault/a", b"1")
        with ctx.replicator(p, ["-prefix", "vault/@dc1"], env=FAST) as a:
            wait_entry(p.dst, a.proc.pid)
            partner = {"ID": "other-host-4242", "Host": "other-host", "PID": 4242, "Datacenter": "dc1", "Gated": False,
                       "Pairs": [{"SourceDatacenter": "dc2", "Source": "vault/", "Destination": "vault/"}]}
            h.put(p.src, REGISTRY + "other-host-4242", json.dumps(partner).encode())
            rc = a.wait(30)
            assert rc == 14, "exit %s\n%s" % (rc, a.log())
            assert "two-way replication refused" in a.log() and "host other-host pid 4242 in dc1" in a.log(), a.log()
            assert REGISTRY + "%s-%d" % (host_id(), a.proc.pid) not in entries(p.dst), "entry left behind"


def test_gated_pair_runs(ctx):
    with ctx.federation() as p:
        for sim in (p.src, p.dst):
            h.put(sim, "ops/primary", b"dc1")
        h.txn_put(p.src, {"vault/a": b"1", "vault/b": b"2"})
        args = ["-gate=key", "-gate-key=ops/primary", "-gate-settle", "1s", "-gate-interval", "200ms",
                "-prefix", "vault/"]
        with h.Replicator(ctx.replicate_bin, ["-consul-addr", p.src.addr] + args, env=FAST) as r1, \
                h.Replicator(ctx.replicate_bin, ["-consul-addr", p.dst.addr] + args, env=FAST) as r2:
            e1, e2 = wait_entry(p.src, r1.proc.pid), wait_entry(p.dst, r2.proc.pid)
            assert e1["Gated"] and e2["Gated"], (e1, e2)
            assert e2["Pairs"] == [{"SourceDatacenter": "", "Source": "vault/", "Destination": "vault/"}], e2
            h.wait_for(lambda: h.dump(p.dst, "vault/") == h.dump(p.src, "vault/"), 30, what="dc2 follows dc1")
            time.sleep(2)  # several periodic checks
            assert r1.running() and r2.running(), r1.log() + r2.log()
            assert "two-way" not in r1.log() + r2.log()
        # an ungated replicator pointed at a gated one's DC is refused: the gated one may read from it
        with h.Replicator(ctx.replicate_bin, ["-consul-addr", p.src.addr] + args, env=FAST) as r1:
            wait_entry(p.src, r1.proc.pid)
            b = h.Replicator(ctx.replicate_bin, ["-consul-addr", p.dst.addr, "-prefix", "vault/@dc1"], env=FAST)
            assert b.wait(30) == 14 and "(gated: <primary>:vault/ -> dc1:vault/)" in b.log(), b.log()


def test_entry_removed_on_stop_and_kill(ctx):
    with ctx.federation() as p:
        h.put(p.src, "app/a", b"1")
        r = ctx.replicator(p, ["-prefix", "app/@dc1"], env=FAST)
        wait_entry(p.dst, r.proc.pid)
        r.signal(signal.SIGTERM)
        assert r.wait(30) == 12, r.log()
        assert entries(p.dst) == {}, "entry left after a clean stop: %r" % entries(p.dst)
        sessions = [x for x in p.dst.json("GET", "/v1/session/list") if x["Name"].startswith("kvship replicator ")]
        assert sessions == [], sessions
        # SIGKILL: the session is no longer renewed; the sim, as Consul, ends it 2 x TTL after the last renewal
        r = ctx.replicator(p, ["-prefix", "app/@dc1"], env=FAST)
        wait_entry(p.dst, r.proc.pid)
        r.proc.kill()
        r.proc.wait()
        killed = time.monotonic()
        h.wait_for(lambda: entries(p.dst) == {}, 40, interval=0.5, what="the entry to go with its session")
        gone = time.monotonic() - killed
        assert gone <= 25, "the entry went %.1f s after SIGKILL" % gone


def test_once_checks_without_publishing(ctx):
    with ctx.federation() as p, h.CountingProxy(p.src.addr) as proxy:
        h.put(p.src, "app/a", b"1")
        with ctx.replicator(p, ["-prefix", "app/@dc1"], env=FAST) as a:
            wait_entry(p.dst, a.proc.pid)
            # the other way round with -once through a proxy: refused before any write
            rc, err, _ = h.run_once(ctx.replicate_bin, ["-consul-addr", proxy.addr, "-prefix", "app/@dc2"], env=FAST)
            assert rc == 14 and "two-way replication refused" in err, "exit %s\n%s" % (rc, err)
            writes = {r: n for r, n in proxy.routes.items() if not r.startswith("GET ")}
            assert not writes, writes
        # alone, -once copies and leaves no entry (and creates no session)
        proxy.reset()
        h.put(p.dst, "back/x", b"y")
        rc, err, _ = h.run_once(ctx.replicate_bin, ["-consul-addr", proxy.addr, "-prefix", "back/@dc2"], env=FAST)
        assert rc == 0, err
        assert proxy.count("PUT /v1/session/create") == 0 and entries(p.src) == {}, proxy.routes
        assert proxy.count("GET /v1/kv/" + REGISTRY) == 1, proxy.routes  # but it did look


def test_unreadable_registry_only_warns(ctx):
    with ctx.federation(src_args=["-acl-default-policy", "deny", "-acl-master-token", ROOT]) as p:
        hdr = {"X-Consul-Token": ROOT}
        p.src.json("PUT", "/v1/acl/policy", {"Name": "app-only", "Rules": 'key_prefix "app/" { policy = "read" }'},
                   headers=hdr)
        token = "7eaa7eaa-0000-4000-8000-0000000000a1"
        p.src.json("PUT", "/v1/acl/token", {"Policies": [{"Name": "app-only"}], "SecretID": token}, headers=hdr)
        h.put(p.src, "app/a", b"1", token=ROOT)
        h.put(p.src, REGISTRY + "x", b"{}", token=ROOT)  # something the token cannot see
        with ctx.replicator(p, ["-prefix", "app/@dc1", "-source-token", token], env=FAST) as r:
            h.wait_for(lambda: h.dump(p.dst).get("app/a"), 20, what="app/a copied")
            r.wait_log("replicator registry", 10)
            time.sleep(1.5)  # periodic checks: warned once only
            lines = [line for line in r.lines if "replicator registry" in line]
            assert len(lines) == 1 and "[WARN]" in lines[0] and 'key_prefix "service/kvship/replicators/"' in lines[0], \
                r.log()
            assert token not in r.log()
            assert r.running()


def test_registry_is_not_replicated(ctx):
    """A pair whose destination covers the registry neither deletes the entries there (its own included) nor
    copies the source DC's; -diff does not report them."""
    with ctx.federation() as p:
        h.put(p.src, "service/web/a", b"1")
        h.put(p.src, REGISTRY + "someone-1", b'{"ID":"someone-1"}')  # a dc1 entry: not to be copied
        with ctx.replicator(p, ["-prefix", "service/@dc1", "-status-dir", "kvship-status"], env=FAST) as r:
            h.wait_for(lambda: h.dump(p.dst).get("service/web/a"), 20, what="service/web/a copied")
            own = REGISTRY + "%s-%d" % (host_id(), r.proc.pid)
            wait_entry(p.dst, r.proc.pid)
            h.put(p.src, "service/web/b", b"2")  # one more round
            h.wait_for(lambda: h.dump(p.dst).get("service/web/b"), 20, what="service/web/b copied")
            time.sleep(1)
            assert list(entries(p.dst)) == [own], entries(p.dst)
            d = h.Replicator(ctx.replicate_bin, ["-consul-addr", p.dst.addr, "-prefix", "service/@dc1", "-diff",
                                                 "-status-dir", "kvship-status"])
            assert d.wait(30) == 0 and d.out[-1].startswith("service/@dc1:service/: no differences"), \
                d.log() + "\n".join(d.out)


CASES = {f.__name__[5:]: f for f in [
    test_second_refused_first_goes_on,
    test_periodic_check_stops_a_running_replicator,
    test_gated_pair_runs,
    test_entry_removed_on_stop_and_kill,
    test_once_checks_without_publishing,
    test_unreadable_registry_only_warns,
    test_registry_is_not_replicated,
]}

SIM_ONLY = {
    "unreadable_registry_only_warns": "ACLs in the source DC alone (sim)",
}

if __name__ == "__main__":
    h.main(CASES, SIM_ONLY)
