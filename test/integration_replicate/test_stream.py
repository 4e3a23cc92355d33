"""Streamed full rounds: the source listing is decoded as it arrives and its puts are written while
the rest comes in. A source cut midway never drives deletes or the checkpoint (what went out early
are values of that one snapshot), a retry converges, and streamed rounds leave the destination
exactly as whole-listing rounds (KVSHIP_STREAM_FULL_READS=0) do."""
import harness as h

NO_RETRY = ["-consul-retry=false"]
FAST_RETRY = ["-consul-retry-backoff", "10ms", "-consul-retry-max-backoff", "50ms"]


def load_source(sim, n, prefix="app/"):
    items = {"%sd%02d/k%05d" % (prefix, i % 37, i): (b"value %05d " % i) * 8 for i in range(n)}
    h.txn_put(sim, items)
    return items


def cut_source_read(dst_sim, after_bytes):
    # The replicator reads the source through the destination agent (?dc=dc1): cut that response.
    dst_sim.admin("PUT", "fault", {"path_prefix": "/v1/kv/app/", "method": "GET", "count": 1,
                                   "drop_after_bytes": after_bytes})


def checkpoint_keys(sim):
    return [k for k in h.dump(sim, h.STATUS_DIR + "/", with_status=True)]


def test_cut_source_deletes_nothing(ctx):
    with ctx.federation() as p:
        load_source(p.src, 6000)  # ~1.5 MB of listing
        stale = {"copy/stale/%d" % i: (b"old", 0) for i in range(3)}
        for k in stale:
            h.put(p.dst, k, b"old")
        cut_source_read(p.dst, 700000)
        rc, err, _ = ctx.once(p, ["-prefix", "app/@dc1:copy/"] + NO_RETRY)
        assert rc == 14, "exit %s:\n%s" % (rc, err[-3000:])
        got = h.dump(p.dst, "copy/")
        source = h.mapped(h.dump(p.src, "app/"), "app/", "copy/")
        copied = {k: v for k, v in got.items() if k not in stale}
        # Some puts went out before the cut, every one a value of the source; nothing was deleted and
        # no checkpoint was written.
        assert 0 < len(copied) < len(source), "%d of %d copied" % (len(copied), len(source))
        for k, v in copied.items():
            assert source.get(k) == v, k
        for k, v in stale.items():
            assert got.get(k) == v, "%s was deleted by a round whose source was cut" % k
        assert checkpoint_keys(p.dst) == [], "a checkpoint was written for a cut source"
        # The next run converges: everything copied, the stale keys deleted, the checkpoint written.
        rc, err, _ = ctx.once(p, ["-prefix", "app/@dc1:copy/"])
        assert rc == 0, err[-3000:]
        assert h.dump(p.dst, "copy/") == source
        assert len(checkpoint_keys(p.dst)) == 1


def test_cut_source_retried_in_one_run(ctx):
    with ctx.federation() as p:
        load_source(p.src, 6000)
        h.put(p.dst, "copy/stale", b"old")
        cut_source_read(p.dst, 500000)
        rc, err, _ = ctx.once(p, ["-prefix", "app/@dc1:copy/"] + FAST_RETRY)
        assert rc == 0, err[-3000:]
        assert "retry attempt" in err, err[-3000:]
        assert h.dump(p.dst, "copy/") == h.mapped(h.dump(p.src, "app/"), "app/", "copy/")


def test_streamed_matches_whole(ctx):
    with ctx.federation() as p:
        items = load_source(p.src, 5000)
        # The destinations start alike: some keys equal, some edited, some stale.
        for dest in ("one/", "two/"):
            for i, (k, v) in enumerate(sorted(items.items())):
                if i % 7 == 0:
                    h.put(p.dst, dest + k[len("app/"):], v)
                elif i % 11 == 0:
                    h.put(p.dst, dest + k[len("app/"):], b"edited")
            for i in range(5):
                h.put(p.dst, dest + "gone/%d" % i, b"x")
        # Excluded keys are neither written nor deleted: what the destination held there stays.
        kept = {k[len("one/"):]: v for k, v in h.dump(p.dst, "one/d03/").items()}
        assert kept
        args = ["-exclude", "app/d03/", "-consul-retry-backoff", "10ms"]
        rc, err, _ = ctx.once(p, ["-prefix", "app/@dc1:one/"] + args)
        assert rc == 0, err[-3000:]
        rc, err, _ = ctx.once(p, ["-prefix", "app/@dc1:two/"] + args, env={"KVSHIP_STREAM_FULL_READS": "0"})
        assert rc == 0, err[-3000:]
        one = {k[len("one/"):]: v for k, v in h.dump(p.dst, "one/").items()}
        two = {k[len("two/"):]: v for k, v in h.dump(p.dst, "two/").items()}
        assert one == two
        expected = {k[len("app/"):]: (v, 0) for k, v in items.items() if not k.startswith("app/d03/")}
        expected.update(kept)
        assert one == expected


SIM_ONLY = {
    "cut_source_deletes_nothing": "cuts the source's answer midway (/_sim/fault drop_after_bytes)",
    "cut_source_retried_in_one_run": "cuts the source's answer midway (/_sim/fault drop_after_bytes)",
}

if __name__ == "__main__":
    h.main({
        "cut_source_deletes_nothing": test_cut_source_deletes_nothing,
        "cut_source_retried_in_one_run": test_cut_source_retried_in_one_run,
        "streamed_matches_whole": test_streamed_matches_whole,
    }, SIM_ONLY)
