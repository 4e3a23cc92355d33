"""Grouped watching (DRIVER.md "Grouped watching"): a large source is watched as disjoint groups plus
a root watch of its top-level names, so a change reads one group instead of the whole prefix.
Forced on small data with KVSHIP_GROUP_MIN_KEYS=1. Changes in many groups, a key under a brand-new
top-level name, a deleted group, a whole-prefix delete (refused by the guard), the index going
backwards; every case checks the exact destination content."""
import json
import time

import harness as h

GROUPED = {"KVSHIP_GROUP_MIN_KEYS": "1", "KVSHIP_SOURCE_WATCHES": "16", "KVSHIP_BLOCKING_WAIT": "30s"}
DIRS = 40
PER_DIR = 10


def load(p):
    h.txn_put(p.src, {"app/d%02d/k%02d" % (d, k): b"v%d.%d" % (d, k) for d in range(DIRS) for k in range(PER_DIR)})


def converged(p):
    return h.dump(p.dst, "app/") == h.dump(p.src, "app/")


def wait_converged(p, timeout=30):
    try:
        h.wait_for(lambda: converged(p), timeout, what="destination to mirror the source")
    except AssertionError:
        src, dst = h.dump(p.src, "app/"), h.dump(p.dst, "app/")
        raise AssertionError("not converged: only at dst %r, only at src %r, differing %r" % (
            sorted(set(dst) - set(src))[:10], sorted(set(src) - set(dst))[:10],
            sorted(k for k in set(src) & set(dst) if src[k] != dst[k])[:10]))


def start(ctx, p, args=(), env=None):
    r = ctx.replicator(p, ["-prefix", "app/@dc1", "-log-level", "debug"] + list(args), env=dict(GROUPED, **(env or {})))
    wait_converged(p)
    r.wait_log("watching the source in")
    return r


def source_read_bytes(p):
    """Bytes of the replicator's source reads: the destination agent forwards them (?dc=dc1), and the
    test's own listings of the source go to dc1 directly, so they are not counted."""
    return h.stats(p.dst)["by_class"].get("forwarded", {}).get("bytes_out", 0)


def test_changes_in_many_groups(ctx):
    with ctx.federation() as p:
        load(p)
        with start(ctx, p) as r:
            full = len(p.src.request("GET", "/v1/kv/app/?recurse")[2])
            p.dst.admin("PUT", "stats/reset")
            changes = 0
            for d in range(0, DIRS, 2):                          # an update in every other group
                h.put(p.src, "app/d%02d/k03" % d, b"changed %d" % d)
                changes += 1
                wait_converged(p)
            for d in range(1, DIRS, 4):                          # new keys and single deletes
                h.put(p.src, "app/d%02d/new" % d, b"new")
                h.delete(p.src, "app/d%02d/k00" % d)
                changes += 2
            h.put(p.src, "app/d07/k01", b"flags", flags=42)
            changes += 1
            wait_converged(p)
            read = source_read_bytes(p)
            # a full read per change would be `full` bytes each; a group is about 1/16 of it
            assert read < changes * full / 3, "read %d bytes for %d changes (full listing %d bytes)" % (
                read, changes, full)
            assert "starting over" not in r.log(), r.log()
            assert r.running(), r.log()


def test_new_top_level_names(ctx):
    with ctx.federation() as p:
        load(p)
        with start(ctx, p) as r:
            h.put(p.src, "app/zz/new", b"under a new directory")
            h.put(p.src, "app/loose", b"a new top-level key")
            wait_converged(p)
            r.wait_log("new source name")
            # the new names are watched from now on
            h.put(p.src, "app/zz/new", b"changed")
            h.put(p.src, "app/zz/second", b"2")
            h.delete(p.src, "app/loose")
            wait_converged(p)
            d = h.dump(p.dst, "app/")
            assert d["app/zz/new"] == (b"changed", 0) and "app/loose" not in d, d
            assert r.running(), r.log()


def test_deleted_group(ctx):
    with ctx.federation() as p:
        load(p)
        with start(ctx, p) as r:
            h.delete(p.src, "app/d05/", recurse=True)
            h.delete(p.src, "app/d3", recurse=True)              # ten directories at once: 25%
            wait_converged(p)
            d = h.dump(p.dst, "app/")
            assert not any(k.startswith("app/d05/") or k.startswith("app/d3") for k in d), sorted(d)[:20]
            assert len(d) == (DIRS - 11) * PER_DIR, len(d)
            h.put(p.src, "app/d05/back", b"again")
            h.put(p.src, "app/d31/back", b"again")
            wait_converged(p)
            assert r.running(), r.log()


def test_whole_source_deleted_is_refused(ctx):
    with ctx.federation() as p:
        load(p)
        with start(ctx, p) as r:
            before = h.dump(p.dst, "app/")
            h.delete(p.src, "app/", recurse=True)
            r.wait_log("delete guard refused")
            time.sleep(0.5)
            assert h.dump(p.dst, "app/") == before, "the guard must hold back every delete"
            # the source comes back: the pair follows it again
            h.put(p.src, "app/d00/k00", b"restored")
            h.wait_for(lambda: h.dump(p.dst, "app/").get("app/d00/k00") == (b"restored", 0), 30,
                       what="the restored key")
            assert r.running(), r.log()


def test_index_backwards_in_a_group(ctx):
    with ctx.federation() as p:
        load(p)
        snap = p.src.request("GET", "/_sim/snapshot")[2]
        # as in test_daemon: a short wait bounds how long the reset takes to show
        with start(ctx, p, env={"KVSHIP_BLOCKING_WAIT": "2s"}) as r:
            for d in (3, 17, 29):
                h.put(p.src, "app/d%02d/late" % d, b"written after the snapshot")
            wait_converged(p)
            status, _, body = p.src.request("PUT", "/_sim/restore", snap)
            assert status == 200, body
            wait_converged(p)
            assert not any(k.endswith("/late") for k in h.dump(p.dst, "app/"))
            r.wait_log("starting over with a full read")
            r.wait_log("watching the source in")
            h.put(p.src, "app/d11/after", b"after restore")
            wait_converged(p)
            assert r.running(), r.log()


def test_metrics_name_grouped_watching(ctx):
    with ctx.federation() as p:
        load(p)
        port = __import__("simctl").free_port()
        with start(ctx, p, ["-metrics-addr", "127.0.0.1:%d" % port]) as r:
            h.put(p.src, "app/d09/k09", b"x")
            wait_converged(p)
            m = h.parse_metrics(h.http_get("127.0.0.1:%d" % port, "/metrics")[1])
            groups = [v for k, v in m.items() if k.startswith("kvship_source_watches{")]
            assert groups and 2 <= groups[0] <= 15, m
            assert r.running(), json.dumps(m)[:500]


if __name__ == "__main__":
    h.main({name: fn for name, fn in globals().items() if name.startswith("test_")})
