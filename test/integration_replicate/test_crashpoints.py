"""Crash-point matrix: consul-replicate is killed with SIGKILL at seeded random points while the source is
being written, in three kinds of round: an initial copy with streamed full reads, an initial copy with the
listing read whole, and steady-state (grouped) watching. After every kill:

  * the checkpoint is never ahead of the data: for the status record's LastReplicated = I, every source
    write with ModifyIndex <= I is in the destination (the key's value at I, or a later one);
  * nothing the source has is deleted: every key seen in the destination before stays there (the source
    never deletes in this test, so any disappearance is a wrongful delete);
  * the next replicator started converges: every 10 points (and at the end) the writer pauses and a -once
    run must leave the destination exactly equal to the source.

The writer sends /v1/txn batches of 1-8 sets (new keys and updates, values "<key>|<version>" with versions
increasing per key) and records each result's ModifyIndex, so the source's history is known exactly.

Usage: test_crashpoints.py <consul-replicate> <consul-kvsim> [--points N] [--seed S]
(100 points by default; the seed is printed, and every failure names it and the point.)
"""
import base64
import hashlib
import json
import random
import signal
import sys
import threading
import time

import harness as h

SRC, DST = "src/", "dst/"
STATUS_KEY = "%s/%s" % (h.STATUS_DIR, hashlib.md5((SRC + "-" + DST).encode()).hexdigest())


class Writer:
    """Writes the source in txns and remembers, per key, [(ModifyIndex, version), ...] in index order."""

    def __init__(self, sim, rng, names=24000):
        self.sim = sim
        self.rng = rng
        self.names = ["%sd%02d/k%05d" % (SRC, i % 40, i) for i in range(names)]
        self.history = {}
        self.version = {}
        self.lock = threading.Lock()
        self.paused = threading.Event()
        self.stopped = threading.Event()
        self.thread = None
        self.errors = []

    def write(self, keys):
        ops = []
        for k in keys:
            v = self.version.get(k, -1) + 1
            self.version[k] = v
            ops.append({"KV": {"Verb": "set", "Key": k, "Value": base64.b64encode(b"%s|%d" % (k.encode(), v)).decode()}})
        status, _, body = self.sim.request("PUT", "/v1/txn", json.dumps(ops).encode())
        if status != 200:
            raise AssertionError("writer txn: %s %r" % (status, body[:200]))
        with self.lock:
            for k, res in zip(keys, json.loads(body)["Results"]):
                self.history.setdefault(k, []).append((res["KV"]["ModifyIndex"], self.version_of(res)))

    @staticmethod
    def version_of(res):
        value = base64.b64decode(res["KV"]["Value"]) if res["KV"].get("Value") else b""
        return int(value.rsplit(b"|", 1)[1]) if value else -1

    def preload(self, n):
        keys = self.names[:n]
        for i in range(0, len(keys), 64):
            self.write(keys[i:i + 64])

    def run(self, rate=200):
        def loop():
            while not self.stopped.is_set():
                if self.paused.is_set():
                    time.sleep(0.01)
                    continue
                try:
                    self.write(list(dict.fromkeys(self.rng.choice(self.names) for _ in range(self.rng.randint(1, 8)))))
                except Exception as e:  # noqa: BLE001 - reported by the test
                    self.errors.append(repr(e))
                    return
                time.sleep(4.5 / rate)
        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopped.set()
        if self.thread:
            self.thread.join(10)

    def version_at(self, key, index):
        """The key's version as of source index `index` (-1: not there yet)."""
        with self.lock:
            best = -1
            for mi, v in self.history.get(key, []):
                if mi <= index:
                    best = v
            return best


def dest_versions(dst):
    out = {}
    for k, (v, _) in h.dump(dst, DST).items():
        out[SRC + k[len(DST):]] = int(v.rsplit(b"|", 1)[1])
    return out


def checkpoint(dst):
    raw = h.status_record(dst, STATUS_KEY)
    return json.loads(raw)["LastReplicated"] if raw else None


def check_point(where, writer, dst, seen):
    versions = dest_versions(dst)
    cp = checkpoint(dst)
    if cp is not None:
        for key in list(writer.history):
            want = writer.version_at(key, cp)
            got = versions.get(key, -1)
            assert got >= want, "%s: checkpoint %d ahead of the data: %s has version %d, the source had %d at %d" % (
                where, cp, key, got, want, cp)
    gone = [k for k in seen if k not in versions]
    assert not gone, "%s: keys the source has were deleted from the destination: %r" % (where, gone[:10])
    seen.update(versions)
    return cp, len(versions)


def converge(ctx, p, writer, where):
    writer.paused.set()
    time.sleep(0.2)
    rc, err, _ = ctx.once(p, ["-prefix", "%s@dc1:%s" % (SRC, DST)], timeout=120)
    assert rc == 0, "%s: the converging run exited %s:\n%s" % (where, rc, err[-3000:])
    want = h.mapped(h.dump(p.src), SRC, DST)
    got = h.dump(p.dst, DST)
    assert got == want, "%s: not converged: %d keys vs %d in the source, %d differ" % (
        where, len(got), len(want), sum(1 for k in set(got) | set(want) if got.get(k) != want.get(k)))
    writer.paused.clear()


def run_matrix(ctx, points, seed):
    rng = random.Random(seed)
    print("crash-point matrix: seed %d, %d points" % (seed, points), flush=True)
    kinds = {"copy-streamed": 0, "copy-whole": 0, "steady": 0}
    with ctx.federation(dst_args=["-commit-latency", "10ms"], src_args=["-commit-latency", "1ms"]) as p:
        writer = Writer(p.src, random.Random(seed + 1))
        writer.preload(20000)
        writer.run()
        seen = set()
        try:
            for point in range(points):
                kind = rng.choice(list(kinds))
                kinds[kind] += 1
                where = "seed %d point %d (%s)" % (seed, point, kind)
                env = {"KVSHIP_STREAM_FULL_READS": "0" if kind == "copy-whole" else "1"}
                if kind.startswith("copy"):
                    p.dst.request("DELETE", "/v1/kv/?recurse")  # a fresh destination: the initial copy
                    seen.clear()
                    delay = rng.uniform(0.0, 0.8)
                else:
                    delay = rng.uniform(0.05, 1.5)
                r = ctx.replicator(p, ["-prefix", "%s@dc1:%s" % (SRC, DST)], env=env)
                time.sleep(delay)
                r.proc.send_signal(signal.SIGKILL)
                r.wait(10)
                time.sleep(0.1)  # a txn sent before the kill may still commit
                assert not writer.errors, writer.errors
                cp, n = check_point(where, writer, p.dst, seen)
                print("point %3d %-14s killed after %4.0f ms: %5d keys, checkpoint %s" % (
                    point, kind, delay * 1000, n, cp), flush=True)
                if point % 10 == 9 or point + 1 == points:
                    converge(ctx, p, writer, where)
                    seen.update(dest_versions(p.dst))
        finally:
            writer.stop()
    print("kinds: %r" % kinds, flush=True)


def main():
    argv = sys.argv
    points, seed = 100, int(time.time()) % 100000
    for flag in ("--points", "--seed"):
        if flag in argv:
            i = argv.index(flag)
            value = int(argv[i + 1])
            del argv[i:i + 2]
            if flag == "--points":
                points = value
            else:
                seed = value
    h.main({"matrix": lambda ctx: run_matrix(ctx, points, seed)})


if __name__ == "__main__":
    main()
