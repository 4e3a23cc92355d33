"""consul-replicate -diff, the drift report: equal pairs exit 0 with "no differences"; each kind of difference
(only in source, only in destination, value, flags) is listed and exits 1, excluded keys are left out; text and
JSON lines; an unreadable source (DC down, a token that cannot read it) exits 14 with the reason; with a gate the
source is the primary the gate names. Every run goes through a CountingProxy: -diff never sends anything but
GETs."""
import json

import harness as h

NO_RETRY = ["-consul-retry-attempts", "1", "-consul-retry-backoff", "10ms", "-consul-retry-max-backoff", "10ms"]
ROOT = "root-token"
PAIR = ["-prefix", "app/@dc1:backup/", "-exclude", "app/private/"]


def run_diff(ctx, addr, args, timeout=120):
    """(exit code, stderr, stdout lines) of `consul-replicate -diff` against `addr`."""
    r = h.Replicator(ctx.replicate_bin, ["-consul-addr", addr, "-diff"] + list(args))
    rc = r.wait(timeout)
    return rc, r.log(), list(r.out)


def assert_only_reads(proxy, seen="GET /v1/kv/backup/"):
    writes = {route: n for route, n in proxy.routes.items() if not route.startswith("GET ")}
    assert not writes, "-diff sent more than reads: %r" % writes
    assert proxy.count(seen) >= 1, proxy.routes  # the proxy did see the run


def load(ctx, p):
    h.txn_put(p.src, {"app/%03d" % i: b"value %d" % i for i in range(50)})
    h.put(p.src, "app/flagged", b"f", flags=7)
    h.put(p.src, "app/private/x", b"excluded")
    h.put(p.src, "other/y", b"not in the pair")
    rc, err, _ = ctx.once(p, PAIR)
    assert rc == 0, err


def test_equal(ctx):
    with ctx.federation() as p, h.CountingProxy(p.dst.addr) as proxy:
        load(ctx, p)
        # an excluded key that differs is no drift
        h.put(p.dst, "backup/private/x", b"something else")
        rc, err, out = run_diff(ctx, proxy.addr, PAIR)
        assert rc == 0, "exit %s\n%s\n%s" % (rc, err, out)
        assert out == ["app/@dc1:backup/: no differences (51 source keys, 51 destination keys compared)"], out
        assert_only_reads(proxy)


def test_differences_text(ctx):
    with ctx.federation() as p, h.CountingProxy(p.dst.addr) as proxy:
        load(ctx, p)
        before = h.dump(p.dst, with_status=True)
        h.put(p.src, "app/new", b"only at the source")
        h.put(p.dst, "backup/stale", b"only at the destination")
        h.put(p.dst, "backup/003", b"edited at the destination")
        h.put(p.dst, "backup/flagged", b"f", flags=8)
        h.put(p.dst, "backup/private/x", b"excluded: not drift")
        h.put(p.dst, "backup/004", b"both", flags=1)
        expect_dst = h.dump(p.dst, with_status=True)
        assert expect_dst != before
        rc, err, out = run_diff(ctx, proxy.addr, PAIR)
        assert rc == 1, "exit %s\n%s\n%s" % (rc, err, out)
        label = "app/@dc1:backup/"
        assert out == [
            label + ": value differs: backup/003 (source 7 bytes, destination 25 bytes)",
            label + ": value and flags differ: backup/004 (source 7 bytes, flags 0; destination 4 bytes, flags 1)",
            label + ": flags differ: backup/flagged (source 7, destination 8)",
            label + ": only in source: app/new (missing at backup/new)",
            label + ": only in destination: backup/stale",
            label + ": 5 differences (1 only in source, 1 only in destination, 3 different; "
                    "52 source keys, 52 destination keys compared)",
        ], "\n".join(out)
        assert "private" not in "\n".join(out)
        assert_only_reads(proxy)
        assert h.dump(p.dst, with_status=True) == expect_dst  # nothing written


def test_differences_json(ctx):
    with ctx.federation() as p, h.CountingProxy(p.dst.addr) as proxy:
        load(ctx, p)
        h.put(p.src, "app/new", b"x")
        h.put(p.dst, "backup/stale", b"y")
        h.put(p.dst, "backup/flagged", b"f", flags=9)
        rc, err, out = run_diff(ctx, proxy.addr, PAIR + ["-log-format", "json"])
        assert rc == 1, "exit %s\n%s\n%s" % (rc, err, out)
        rows = [json.loads(line) for line in out]
        kinds = [(r["kind"], r.get("destination_key")) for r in rows]
        assert kinds == [("different", "backup/flagged"), ("only_in_source", "backup/new"),
                         ("only_in_destination", "backup/stale"), ("summary", None)], kinds
        assert rows[0]["flags_differ"] is True and rows[0]["value_differs"] is False
        assert rows[0]["source_flags"] == 7 and rows[0]["destination_flags"] == 9
        assert rows[1]["source_key"] == "app/new"
        assert rows[-1]["differences"] == 3 and rows[-1]["excluded"] == 1, rows[-1]
        assert all(r["pair"] == "app/@dc1:backup/" for r in rows)
        assert_only_reads(proxy)


def test_several_pairs(ctx):
    with ctx.federation() as p:
        load(ctx, p)
        h.put(p.src, "other/z", b"z")
        args = PAIR + ["-prefix", "other/@dc1:two/"]
        rc, err, out = run_diff(ctx, p.dst.addr, args)
        assert rc == 1, "exit %s\n%s\n%s" % (rc, err, out)
        assert out[0].startswith("app/@dc1:backup/: no differences"), out
        assert "other/@dc1:two/: only in source: other/y (missing at two/y)" in out, out
        assert out[-1].startswith("other/@dc1:two/: 2 differences"), out


def test_source_down(ctx):
    with ctx.federation() as p, h.CountingProxy(p.dst.addr) as proxy:
        load(ctx, p)
        p.src.kill()
        rc, err, out = run_diff(ctx, proxy.addr, PAIR + NO_RETRY)
        assert rc == 14, "exit %s\n%s\n%s" % (rc, err, out)
        assert "[ERR] (diff) app/@dc1:backup/: source: GET /v1/kv/app/?recurse&dc=dc1" in err, err
        assert not any("differences" in line for line in out), out
        assert_only_reads(proxy)


def test_unreadable_source_token(ctx):
    with ctx.federation(src_args=["-acl-default-policy", "deny", "-acl-master-token", ROOT]) as p, \
            h.CountingProxy(p.dst.addr) as proxy:
        for i in range(5):
            h.put(p.src, "app/%d" % i, b"secret", token=ROOT)
        rc, err, _ = h.run_once(ctx.replicate_bin, ["-consul-addr", p.dst.addr, "-consul-token", ROOT] + PAIR)
        assert rc == 0, err
        hdr = {"X-Consul-Token": ROOT}
        p.src.json("PUT", "/v1/acl/policy", {"Name": "other-only", "Rules": 'key_prefix "other/" { policy = "read" }'},
                   headers=hdr)
        weak = "7eaa7eaa-0000-4000-8000-00000000beef"
        p.src.json("PUT", "/v1/acl/token", {"Policies": [{"Name": "other-only"}], "SecretID": weak}, headers=hdr)
        rc, err, out = run_diff(ctx, proxy.addr, PAIR + NO_RETRY + ["-consul-token", ROOT, "-source-token", weak])
        assert rc == 14, "exit %s\n%s\n%s" % (rc, err, out)
        assert "filtered by ACLs" in err and "source" in err, err
        assert weak not in err + "\n".join(out) and ROOT not in err + "\n".join(out), "a token leaked"
        assert_only_reads(proxy)
        # a token the source refuses outright (403 on the listing)
        rc, err, _ = run_diff(ctx, proxy.addr, PAIR + NO_RETRY + ["-consul-token", ROOT, "-source-token",
                                                                   "no-such-token"])
        assert rc == 14 and "[ERR] (diff)" in err, "exit %s\n%s" % (rc, err)
        assert_only_reads(proxy)
        # no token: the anonymous token gets an empty listing that does not say it was filtered (as real
        # Consul before 1.13 does): every key shows as only in the destination, and a warning says why
        rc, err, out = run_diff(ctx, proxy.addr, PAIR + NO_RETRY)
        assert rc == 1, "exit %s\n%s\n%s" % (rc, err, out)
        assert "[WARN] (diff)" in err and "the source listing is empty" in err, err
        assert len(out) == 6 and all("only in destination" in line for line in out[:5]), out


def test_gated(ctx):
    with ctx.federation() as p, h.CountingProxy(p.dst.addr) as proxy:
        h.put(p.src, "vault/a", b"1")
        h.put(p.src, "vault/b", b"2")
        h.put(p.dst, "vault/a", b"1")
        gate = ["-gate=key", "-gate-key=ops/primary", "-prefix", "vault/"]
        # no primary named: nothing to compare with
        rc, err, out = run_diff(ctx, proxy.addr, gate)
        assert rc == 14 and "no datacenter claims the primary" in err, "exit %s\n%s" % (rc, err)
        h.put(p.dst, "ops/primary", b"dc1")
        rc, err, out = run_diff(ctx, proxy.addr, gate)
        assert rc == 1, "exit %s\n%s\n%s" % (rc, err, out)
        assert out == ["vault/@dc1:vault/: only in source: vault/b (missing at vault/b)",
                       "vault/@dc1:vault/: 1 difference (1 only in source, 0 only in destination, 0 different; "
                       "2 source keys, 1 destination keys compared)"], out
        h.put(p.dst, "ops/primary", b"dc2")
        rc, err, out = run_diff(ctx, proxy.addr, gate)
        assert rc == 0 and out == ["this datacenter (dc2) is the primary: it is the source, nothing is "
                                   "replicated into it"], "exit %s\n%s\n%s" % (rc, err, out)
        assert_only_reads(proxy, "GET /v1/kv/vault/")


def test_bad_usage(ctx):
    with ctx.federation() as p:
        rc, err, _ = run_diff(ctx, p.dst.addr, [])
        assert rc == 15 and "-diff needs at least one prefix" in err, "exit %s\n%s" % (rc, err)
        rc, err, _ = run_diff(ctx, p.dst.addr, ["-prefix", "app/@dc2"])
        assert rc == 14 and "local datacenter cannot be the source datacenter" in err, "exit %s\n%s" % (rc, err)


CASES = {f.__name__[5:]: f for f in [
    test_equal,
    test_differences_text,
    test_differences_json,
    test_several_pairs,
    test_source_down,
    test_unreadable_source_token,
    test_gated,
    test_bad_usage,
]}

SIM_ONLY = {
    "unreadable_source_token": "ACLs in the source DC alone (sim); real ACLs are global",
}

if __name__ == "__main__":
    h.main(CASES, SIM_ONLY)
