"""Grouped watching (DRIVER.md "Grouped watching"): a large source is watched as disjoint groups plus
a root watch of its top-level names, so a change reads one group instead of the whole prefix.
Forced on small data with KVSHIP_GROUP_MIN_KEYS=1. Changes in many groups, a key under a brand-new
top-level name, a deleted group, a whole-prefix delete (refused by the guard), the index going
backwards, a Vault-like layout split below the first '/' with an excluded tree; every case checks
the exact destination content."""
import hashlib
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


def start(ctx, p, args=(), env=None, addr=None):
    r = ctx.replicator(p, ["-prefix", "app/@dc1", "-log-level", "debug"] + list(args), env=dict(GROUPED, **(env or {})),
                       addr=addr)
    wait_converged(p)
    r.wait_log("watching the source in")
    return r


def source_read_bytes(proxy):
    """Bytes of the replicator's source reads: the destination agent forwards them (?dc=dc1); counted by the
    CountingProxy the replicator talks through (the test's own listings go to dc1 directly)."""
    return proxy.forwarded_bytes


def test_changes_in_many_groups(ctx):
    with ctx.federation() as p, h.CountingProxy(p.dst.addr) as proxy:
        load(p)
        with start(ctx, p, addr=proxy.addr) as r:
            full = len(p.src.request("GET", "/v1/kv/app/?recurse")[2])
            proxy.reset()
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
            read = source_read_bytes(proxy)
            assert read > 0, "no source read counted"
            # a full read per change would be `full` bytes each; a group is about 1/16 of it
            assert read < changes * full / 3, "read %d bytes for %d changes (full listing %d bytes)" % (
                read, changes, full)
            assert "starting over" not in r.log(), r.log()
            assert r.running(), r.log()


def test_known_destination_over_budget(ctx):
    """Past KVSHIP_KNOWN_DESTINATION_BYTES the pair keeps only the checkpoint of its destination: a grouped
    round reads its ranges from the destination (never the whole prefix), and so also repairs a key edited
    by hand in a changed group at once."""
    reads = []

    def record(method, path, body, headers, status, rbody, rheaders):
        if method == "GET" and "dc=" not in path and path.startswith("/v1/kv/app/"):
            reads.append(path)

    with ctx.federation() as p, h.CountingProxy(p.dst.addr) as proxy:
        load(p)
        proxy.on_exchange = record
        with start(ctx, p, env={"KVSHIP_KNOWN_DESTINATION_BYTES": "1"}, addr=proxy.addr) as r:
            r.wait_log("grouped rounds read their ranges")
            del reads[:]
            h.put(p.dst, "app/d03/k05", b"edited by hand")
            for d in (3, 11, 12, 30):
                h.put(p.src, "app/d%02d/k01" % d, b"changed %d" % d)
            h.put(p.src, "app/d12/new", b"new")
            h.delete(p.src, "app/d30/k09")
            wait_converged(p)
            assert reads, "no destination range read"
            assert all(not path.startswith("/v1/kv/app/?") for path in reads), reads
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
        port = __import__("simctl").free_port()
        # as in test_daemon: a short wait bounds how long the reset takes to show
        with start(ctx, p, ["-metrics-addr", "127.0.0.1:%d" % port], env={"KVSHIP_BLOCKING_WAIT": "2s"}) as r:
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
            # kvship_full_syncs_total by reason (engine::reason_for_full_read): the start, then the reset
            m = h.parse_metrics(h.http_get("127.0.0.1:%d" % port, "/metrics")[1])
            syncs = {k[k.index('reason="') + 8:].split('"')[0]: v for k, v in m.items()
                     if k.startswith("kvship_full_syncs_total{")}
            assert syncs.get("startup") == 1 and syncs.get("index_reset", 0) >= 1, syncs
            assert syncs.get("retry", 0) == 0 and syncs.get("refresh", 0) == 0, syncs


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


# ---- A Vault-like layout: groups below the first '/', names watches of split directories, an
# excluded tree never read. Tokens dominate (as in a real Vault), so vault/sys/, vault/sys/token/,
# vault/sys/token/id/ and vault/logical/ are split; -exclude vault/sys/expire is never read after the
# initial full read.

VAULT_ENV = {"KVSHIP_GROUP_MIN_KEYS": "1", "KVSHIP_SOURCE_WATCHES": "48", "KVSHIP_BLOCKING_WAIT": "30s"}
MOUNTS = ["%d%07x-1111-2222-3333-444455556666" % (m + 1, m * 7919) for m in range(6)]
EXCLUDE = "vault/sys/expire"


def token(i):
    return "vault/sys/token/id/h" + hashlib.sha1(b"token %d" % i).hexdigest()


def vault_load(p):
    items = {token(i): b"t" * 300 for i in range(160)}
    items.update({"vault/sys/expire/id/auth/token/create/h%08x" % i: b"e" * 300 for i in range(40)})
    for m in MOUNTS:
        items.update({"vault/logical/%s/secret/s%02d" % (m, i): b"l" * 150 for i in range(8)})
    items.update({"vault/core/k%d" % i: b"c" for i in range(5)})
    items.update({"vault/auth/a1b2c3d4-aaaa-bbbb-cccc-ddddeeeeffff/k%d" % i: b"a" for i in range(5)})
    items["vault/sys/policy/default"] = b"p"
    for start in range(0, len(items), 64):
        h.txn_put(p.src, dict(list(items.items())[start:start + 64]))


def vault_converged(p):
    # dumps of "" (not "vault/") keep the sims' request logs free of reads that look like the pair's
    want = h.mapped(h.dump(p.src, ""), "vault/", "vault/", excludes=[EXCLUDE])
    got = {k: v for k, v in h.dump(p.dst, "").items() if k.startswith("vault/")}
    return want == got


def source_gets(p, since=0):
    """Paths of the GETs the source sim served after its log line `since` (-log-level debug)."""
    out = []
    for line in p.src.lines[since:]:
        parts = line.split()
        for i, word in enumerate(parts[:-1]):
            if word == "GET" and parts[i + 1].startswith("/v1/kv/"):
                out.append(parts[i + 1])
    return out


def test_vault_layout(ctx):
    with ctx.federation(src_args=["-log-level", "debug"]) as p:
        vault_load(p)
        r = ctx.replicator(p, ["-prefix", "vault/@dc1", "-exclude", EXCLUDE, "-log-level", "debug"], env=VAULT_ENV)
        with r:
            h.wait_for(lambda: vault_converged(p), 30, what="the initial copy")
            r.wait_log("watching the source in")
            for d in ("vault/sys/", "vault/sys/token/", "vault/sys/token/id/", "vault/logical/"):
                r.wait_log('watching the names in "%s"' % d)
            since = len(p.src.lines)
            # a token changes, a new one appears, one is revoked
            h.put(p.src, token(7), b"renewed")
            h.put(p.src, token(1000), b"a new token")
            h.delete(p.src, token(9))
            h.wait_for(lambda: vault_converged(p), 30, what="token changes")
            # changes deep inside a mount
            h.put(p.src, "vault/logical/%s/secret/deeper/still/s99" % MOUNTS[2], b"deep")
            h.put(p.src, "vault/logical/%s/secret/s03" % MOUNTS[4], b"changed")
            # a new mount whose uuid starts with a character no group covers
            h.put(p.src, "vault/logical/f00dfeed-0000-1111-2222-333344445555/config", b"new mount")
            # the excluded tree changes too; none of it may be read or copied
            h.put(p.src, "vault/sys/expire/id/auth/token/create/hnew", b"lease")
            h.delete(p.src, "vault/sys/expire/id/auth/token/create/h00000001")
            h.wait_for(lambda: vault_converged(p), 30, what="mount changes")
            r.wait_log('new source name "vault/logical/f00dfeed-0000-1111-2222-333344445555/"')
            h.put(p.src, "vault/logical/f00dfeed-0000-1111-2222-333344445555/config", b"changed again")
            h.wait_for(lambda: vault_converged(p), 30, what="a change in the new mount")
            dst = h.dump(p.dst, "")
            assert dst["vault/logical/f00dfeed-0000-1111-2222-333344445555/config"][0] == b"changed again"
            assert not any(k.startswith(EXCLUDE) for k in dst), sorted(dst)[:5]

            gets = source_gets(p, since)
            assert not any(g.startswith("/v1/kv/" + EXCLUDE) for g in source_gets(p)), \
                [g for g in source_gets(p) if EXCLUDE in g]
            assert "/v1/kv/vault/" in gets, gets            # the root names watch
            assert "/v1/kv/vault/sys/token/id/" in gets, gets  # the names watch of a split directory
            assert any(g.startswith("/v1/kv/vault/sys/token/id/h") for g in gets), gets  # a token group
            assert any(g.startswith("/v1/kv/vault/logical/%s" % MOUNTS[2][:1]) for g in gets), gets
            # never the whole prefix again: `/v1/kv/vault/` is only ever the root names watch
            assert "starting over" not in r.log(), r.log()
            assert r.running(), r.log()


SIM_ONLY = {
    "test_index_backwards_in_a_group": "restores an older snapshot into the source (/_sim/restore)",
    "test_vault_layout": "checks which source paths were read in the sim's debug request log",
}

if __name__ == "__main__":
    h.main({name: fn for name, fn in globals().items() if name.startswith("test_")}, SIM_ONLY)
