"""Crash-point matrix: consul-replicate is killed with SIGKILL at seeded random points while the source is
being written, in five kinds of point: an initial copy with streamed full reads, an initial copy with the
listing read whole, steady-state (grouped) watching, a lock handover and a turn of the gate. After every
kill of the first three:

  * the checkpoint is never ahead of the data: for the status record's LastReplicated = I, every source
    write with ModifyIndex <= I is in the destination (the key's value at I, or a later one);
  * nothing the source has is deleted: every key seen in the destination before stays there (the source
    never deletes in this test, so any disappearance is a wrongful delete);
  * the next replicator started converges: every 10 points (and at the end) the writer pauses and a -once
    run must leave the destination exactly equal to the source.

lock: two replicators of the same pair with -lock (same key, -lock-ttl 10s, -lock-delay 0s), each behind a
recording proxy; the holder is SIGKILLed at a random delay, its session ends (sim: /_sim/session/<id>/expire,
what its TTL running out does; real Consul: the TTL itself, 10-20 s), the other takes over and is stopped with
SIGTERM after a random while. The same checks after the kill and after the stop, and one writer at a time:
each replicator's data txns come after its acquire and carry a check-session op with its own session, and in
the destination's index order the killed holder's last data write precedes the taker's acquire, which
precedes the taker's first.

gate: g/ replicated both ways under the key-mode gate (ops/primary in each DC names the primary), one
replicator per DC, a second writer writing the primary's g/. A point is one turn X -> Y: Y names itself, Y's
replicator stops copying, the writer moves to Y, X names Y, X's replicator follows Y; X's (2/3) or Y's
replicator is SIGKILLed at a random step of that and restarted. An era is the time one DC is the primary; its
source history is exact from its start (the primary's listing then, plus the writer's writes). Checked after
the kill and around the turn: the follower's status record, once written in this era for this source, is
not ahead of the data (LastReplicated and MirroredIndex: the follower holds the source's value at that
index or a later one, never a value the source never had); the primary loses no key, the follower no key
the primary had at the era's start. At the end of the point both DCs' g/ are equal; every value X had and Y
lacked at the turn is in X's lost+found (service/kvship/lost+found/<turn>/<key>), and what lost+found holds
beyond that is a value X did hold (a save of what had reached Y: MirroredIndex is the last full read's, so
grouped rounds since are saved again; counted as "beyond" in the point's line).

The writers send /v1/txn batches of 1-8 sets (new keys and updates, values "<key>|<version>" with versions
increasing per key) and record each write's ModifyIndex with the version written, so the source's history is
known exactly.

Usage: test_crashpoints.py <consul-replicate> <consul-kvsim> [--backend sim|real] [--points N] [--seed S]
                           [--share K] [--kinds k1,k2]
(100 points by default; in every 10, K (2) lock and K gate points, the rest one of the first three kinds;
--kinds draws only from those kinds. The seed is printed, and every failure names it, the point and kind.)
"""
import base64
import hashlib
import json
import random
import signal
import sys
import threading
import time
import urllib.parse

import harness as h
import simctl

SRC, DST = "src/", "dst/"
STATUS_KEY = "%s/%s" % (h.STATUS_DIR, hashlib.md5((SRC + "-" + DST).encode()).hexdigest())


class Writer:
    """Writes the source in txns and remembers, per key, [(ModifyIndex, version), ...] in index order."""

    def __init__(self, sim, rng, names=24000, prefix=SRC):
        self.sim = sim
        self.rng = rng
        self.names = ["%sd%02d/k%05d" % (prefix, i % 40, i) for i in range(names)]
        self.history = {}
        self.version = {}
        self.lock = threading.Lock()
        self.paused = threading.Event()
        self.stopped = threading.Event()
        self.thread = None
        self.errors = []
        self.busy = threading.Lock()  # held around each write of run()'s loop

    def write(self, keys):
        ops, versions = [], []
        for k in keys:
            v = self.version.get(k, -1) + 1
            self.version[k] = v
            versions.append(v)
            ops.append({"KV": {"Verb": "set", "Key": k, "Value": base64.b64encode(b"%s|%d" % (k.encode(), v)).decode()}})
        status, _, body = self.sim.request("PUT", "/v1/txn", json.dumps(ops).encode())
        if status != 200:
            raise AssertionError("writer txn: %s %r" % (status, body[:200]))
        with self.lock:
            # the version written (a txn's results carry no values: "Value": null)
            for k, v, res in zip(keys, versions, json.loads(body)["Results"]):
                self.history.setdefault(k, []).append((res["KV"]["ModifyIndex"], v))

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
                    with self.busy:
                        if not self.paused.is_set():
                            self.write(list(dict.fromkeys(
                                self.rng.choice(self.names) for _ in range(self.rng.randint(1, 8)))))
                except Exception as e:  # noqa: BLE001 - reported by the test
                    self.errors.append(repr(e))
                    return
                time.sleep(4.5 / rate)
        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()

    def quiesce(self):
        """Pauses and returns once no write is in flight (every write so far has its answer)."""
        self.paused.set()
        with self.busy:
            pass

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


def fresh_destination(dst):
    """The pair's destination and status record gone (the gate kind's g/ and the rest of dc2 stay)."""
    h.delete(dst, DST, recurse=True)
    h.delete(dst, STATUS_KEY)


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


# ---------------------------------------------------------------- lock handover

LOCK = "service/kvship/crash"
LOCK_KEY = LOCK + "/.lock"
WRITE_VERBS = ("set", "cas", "delete", "delete-cas", "delete-tree", "lock", "unlock")


def dechunk(body, headers):
    """The payload of a body the proxy passed on as it came (chunked framing removed)."""
    if headers.get("transfer-encoding", "").lower() != "chunked":
        return body
    out, i = [], 0
    while True:
        j = body.index(b"\r\n", i)
        size = int(body[i:j].split(b";")[0] or b"0", 16)
        if size == 0:
            return b"".join(out)
        out.append(body[j + 2:j + 2 + size])
        i = j + 2 + size + 2


def is_data(key):
    """A key the pair writes: the replicated data or its status record."""
    return key.startswith(DST) or key.startswith(h.STATUS_DIR + "/")


class Fence:
    """A proxy in front of one -lock replicator's agent that records, in the order the agent answered them,
    the replicator's successful acquires of the lock key and its writes of data keys: per txn the sessions
    of its check-session ops on the lock key and, once committed, the ModifyIndex of every data key it set."""

    def __init__(self, target):
        self.proxy = h.CountingProxy(target)
        self.proxy.on_exchange = self._record
        self.addr = self.proxy.addr
        self.events = []
        self.errors = []

    def _record(self, method, path, body, hdrs, status, rbody, rhdrs):
        try:
            route, _, query = path.partition("?")
            q = urllib.parse.parse_qs(query)
            if "dc" in q:
                return  # another DC's (the source reads)
            if route == "/v1/kv/" + LOCK_KEY and method == "PUT" and "acquire" in q:
                if status == 200 and dechunk(rbody, rhdrs).strip() == b"true":
                    self.events.append(("acquire", q["acquire"][0]))
            elif route == "/v1/txn" and method == "PUT":
                ops = [op["KV"] for op in json.loads(dechunk(body, hdrs)) if "KV" in op]
                if not any(op["Verb"] in WRITE_VERBS and is_data(op["Key"]) for op in ops):
                    return
                fences = [op.get("Session") for op in ops if op["Verb"] == "check-session" and op["Key"] == LOCK_KEY]
                indexes = []
                if status == 200:
                    for res in json.loads(dechunk(rbody, rhdrs)).get("Results") or []:
                        kv = res.get("KV") or {}
                        if is_data(kv.get("Key", "")):
                            indexes.append(kv["ModifyIndex"])
                self.events.append(("txn", fences, status, indexes))
            elif route.startswith("/v1/kv/") and method in ("PUT", "DELETE") and is_data(route[len("/v1/kv/"):]):
                self.events.append(("plain", method, route, status))
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append("%s %s: %r" % (method, path, e))

    def check(self, where, name):
        """Every data write came after an acquire and carried a check-session op with the session acquired;
        returns (sessions acquired, committed data indexes)."""
        assert not self.errors, "%s: %s's proxy: %r" % (where, name, self.errors)
        held, acquired, committed = None, [], []
        for e in self.events:
            if e[0] == "acquire":
                held = e[1]
                acquired.append(held)
            elif e[0] == "plain":
                raise AssertionError("%s: %s wrote a data key outside a txn (unfenced): %r" % (where, name, e))
            else:
                _, fences, status, indexes = e
                assert held is not None, "%s: %s sent a data txn before it held the lock: %r" % (where, name, e)
                assert fences == [held], "%s: %s's data txn is not fenced by its session %s: %r" % (
                    where, name, held, e)
                committed += indexes
        return acquired, committed

    def close(self):
        self.proxy.close()


def lock_holder(sim):
    """(session, session name, lock key ModifyIndex), or (None, None, None) while nobody holds the key."""
    status, _, data = sim.request("GET", "/v1/kv/%s" % LOCK_KEY)
    entry = json.loads(data)[0] if status == 200 else {}
    sid = entry.get("Session")
    if not sid:
        return None, None, None
    info = sim.json("GET", "/v1/session/info/%s" % sid) or [{}]
    return sid, info[0].get("Name"), entry["ModifyIndex"]


def lock_point(ctx, p, rng, writer, seen, where):
    """Two -lock replicators of the pair; the holder is SIGKILLed at a random delay, its session ends (the
    sim's expire hook: what its TTL running out does; real Consul: the TTL itself), the other one takes over
    and is stopped with SIGTERM after a random while. Returns a one-line summary."""
    if rng.random() < 0.5:
        fresh_destination(p.dst)  # the taker finds a partial copy
        seen.clear()
    delay, run = rng.uniform(0.0, 1.5), rng.uniform(0.2, 1.5)
    nodes = {}
    try:
        for name in rng.sample(["crash-a", "crash-b"], 2):  # the first started usually gets the lock
            fence = Fence(p.dst.addr)
            r = ctx.replicator(p, ["-prefix", "%s@dc1:%s" % (SRC, DST), "-lock", LOCK, "-lock-name", name,
                                   "-lock-ttl", "10s", "-lock-delay", "0s"], addr=fence.addr)
            nodes[name] = (r, fence)
        holder = h.wait_for(lambda: lock_holder(p.dst)[1], 30, 0.02, "%s: a replicator to hold the lock" % where)
        old_sid = lock_holder(p.dst)[0]
        taker = "crash-b" if holder == "crash-a" else "crash-a"
        time.sleep(delay)
        nodes[holder][0].proc.send_signal(signal.SIGKILL)
        nodes[holder][0].wait(10)
        time.sleep(0.1)  # a txn sent before the kill may still commit
        # the dead holder's session still holds the key: nobody can write now
        assert not writer.errors, writer.errors
        check_point(where + " holder killed", writer, p.dst, seen)
        t0 = time.monotonic()
        if ctx.real:
            pass  # its TTL (10s) runs out: 10-20s after the last renewal
        else:
            p.dst.admin("PUT", "session/%s/expire" % old_sid)
        h.wait_for(lambda: lock_holder(p.dst)[1] == taker, 90, 0.05, "%s: %s to take the lock over" % (where, taker))
        took = time.monotonic() - t0
        _, _, acquire_index = lock_holder(p.dst)
        time.sleep(run)
        assert nodes[taker][0].running(), "%s: %s exited:\n%s" % (where, taker, nodes[taker][0].log()[-3000:])
        nodes[taker][0].signal(signal.SIGTERM)
        rc = nodes[taker][0].wait(30)
        assert rc == 12, "%s: %s exited %s on SIGTERM:\n%s" % (where, taker, rc, nodes[taker][0].log()[-3000:])
        cp, n = check_point(where + " taker stopped", writer, p.dst, seen)
        # one writer at a time, in the destination's own order: the killed holder's last commit comes before
        # the taker's acquire, the taker's first after it, and each wrote only under its own session
        acq_old, old_commits = nodes[holder][1].check(where, holder)
        acq_new, new_commits = nodes[taker][1].check(where, taker)
        assert acq_old == [old_sid], "%s: %s acquired %r, the key showed %s" % (where, holder, acq_old, old_sid)
        assert len(acq_new) == 1, "%s: %s acquired %r" % (where, taker, acq_new)
        assert not old_commits or max(old_commits) < acquire_index, (
            "%s: %s (killed) committed at %d, after %s acquired the lock at %d" % (
                where, holder, max(old_commits), taker, acquire_index))
        assert not new_commits or min(new_commits) > acquire_index, (
            "%s: %s committed at %d, before its acquire at %d" % (where, taker, min(new_commits), acquire_index))
        return "holder %s killed after %4.0f ms (%d data writes), %s took over in %.1fs (%d data writes): %5d keys, " \
               "checkpoint %s" % (holder, delay * 1000, len(old_commits), taker, took, len(new_commits), n, cp)
    finally:
        for r, fence in nodes.values():
            r.kill()
            fence.close()


# ---------------------------------------------------------------- gate turn

GATE = "g/"  # the gated pair g/ -> g/, in both DCs
GATE_KEY = "ops/primary"
GATE_STATUS_KEY = "%s/%s" % (h.STATUS_DIR, hashlib.md5((GATE + "-" + GATE).encode()).hexdigest())
LOST_FOUND = "service/kvship/lost+found/"
OTHER = {"dc1": "dc2", "dc2": "dc1"}


def gate_metrics(r):
    try:
        status, text = h.http_get(r.metrics_addr, "/metrics", timeout=5)
    except OSError:
        return {}
    return h.parse_metrics(text) if status == 200 else {}


def gate_state(r):
    """(state, primary) from the gate's metrics, (None, None) while unknown."""
    m = gate_metrics(r)
    for state in ("following", "primary", "paused"):
        if m.get('kvship_gate_state{state="%s"}' % state) == 1:
            primary = [k for k in m if k.startswith("kvship_gate_primary{") and m[k] == 1]
            return state, (primary[0].split('"')[1] if primary else None)
    return None, None


def gate_dump(sim):
    """{key: (version, ModifyIndex)} of g/ in one DC."""
    status, _, data = sim.request("GET", "/v1/kv/%s?recurse" % GATE)
    if status == 404:
        return {}
    assert status == 200, "list %s: %s %r" % (GATE, status, data[:200])
    return {e["Key"]: (int(base64.b64decode(e["Value"]).rsplit(b"|", 1)[1]), e["ModifyIndex"])
            for e in json.loads(data)}


def gate_record(sim):
    """(record as a dict, its ModifyIndex) of the gated pair's status record in a DC, or (None, 0)."""
    status, _, data = sim.request("GET", "/v1/kv/%s" % GATE_STATUS_KEY)
    if status != 200:
        return None, 0
    e = json.loads(data)[0]
    return json.loads(base64.b64decode(e["Value"])), e["ModifyIndex"]


def lost_found(sim):
    """{(turn, key): version} of the saved entries in a DC's lost+found."""
    out = {}
    for k, (v, _) in h.dump(sim, LOST_FOUND).items():
        turn, _, key = k[len(LOST_FOUND):].partition("/")
        if key != ".turn":
            out[(turn, key)] = int(v.rsplit(b"|", 1)[1])
    return out


class GateWorld:
    """Gated replication of g/ between dc1 and dc2, key mode (GATE_KEY in each DC names the primary), one
    replicator per DC, a writer writing the primary's g/. An era is the time one DC is the primary; its
    history of the primary's g/ is exact from its start: the primary's listing then, plus the writer's writes
    (a primary is written by nobody else)."""

    def __init__(self, ctx, p, rng):
        self.ctx = ctx
        self.sims = {"dc1": p.src, "dc2": p.dst}
        self.writer = Writer(p.src, rng, names=3000, prefix=GATE)
        self.reps = {}
        self.seen = {"dc1": set(), "dc2": set()}
        self.primary = "dc1"
        for sim in self.sims.values():
            h.put(sim, GATE_KEY, b"dc1")
        self.writer.preload(2000)
        self.start_era("dc1")
        for dc in self.sims:
            self.start(dc)
        self.writer.paused.set()
        self.writer.run()
        self.converge("gate setup")

    def start(self, dc):
        addr = "127.0.0.1:%d" % simctl.free_port()
        r = h.Replicator(self.ctx.replicate_bin, [
            "-consul-addr", self.sims[dc].addr, "-gate=key", "-gate-key=" + GATE_KEY, "-gate-settle", "300ms",
            "-gate-interval", "100ms", "-prefix", GATE, "-metrics-addr", addr, "-log-level", "info"])
        r.metrics_addr = addr
        self.reps[dc] = r

    def start_era(self, primary):
        """The writer is quiet; `primary` is the DC written from now on."""
        self.primary = primary
        follower = self.sims[OTHER[primary]]
        self.era_start = {k: mi for k, (_, mi) in gate_dump(self.sims[primary]).items()}
        self.writer.history = {k: [(mi, v)] for k, (v, mi) in gate_dump(self.sims[primary]).items()}
        self.record_mark = gate_record(follower)[1]
        self.seen[primary] = set(self.era_start)  # (what it lost as a follower before was a turn's to take)
        self.writer.sim = self.sims[primary]

    def check(self, where):
        """Checkpoint never ahead of the data (the follower's record, once written in this era, against the
        era's history) and no wrongful delete, in both DCs."""
        src, dst = self.primary, OTHER[self.primary]
        rec, rec_index = gate_record(self.sims[dst])
        got = gate_dump(self.sims[dst])
        cp = None
        if rec is not None and rec_index > self.record_mark and rec.get("SourceDatacenter") == src:
            cp = rec["LastReplicated"]
            with self.writer.lock:
                history = {k: list(v) for k, v in self.writer.history.items()}
            # both claims: LastReplicated, and MirroredIndex (the last full read's index, <= it when grouped)
            for field in ("LastReplicated", "MirroredIndex"):
                index = rec.get(field, 0)
                for key in set(history) | set(got):
                    entries = history.get(key, [])
                    want = max([e for e in entries if e[0] <= index], default=(0, None))[1]
                    allowed = {want} | {v for mi, v in entries if mi > index}
                    have = got[key][0] if key in got else None
                    assert have in allowed, (
                        "%s: %s's checkpoint (%s %s %d) ahead of the data: %s is %s there, %s had %s at %d "
                        "(or later %r)" % (where, dst, field, src, index, key, have, src, want, index,
                                           sorted(allowed - {want})))
        dumps = {dst: got, src: gate_dump(self.sims[src])}
        for dc, keys in dumps.items():
            # the primary loses nothing; the follower nothing the primary had at the era's start
            gone = [k for k in self.seen[dc] if k not in keys and (dc == src or k in self.era_start)]
            assert not gone, "%s: keys deleted from %s's %s although %s has them: %r" % (
                where, dc, GATE, src, sorted(gone)[:10])
            self.seen[dc].update(keys)
        return cp

    def converge(self, where, timeout=60):
        """The writer paused: both DCs' g/ end up equal, the gates agree on the primary."""
        self.writer.quiesce()
        src, dst = self.primary, OTHER[self.primary]
        values = lambda dc: {k: v for k, (v, _) in gate_dump(self.sims[dc]).items()}  # noqa: E731
        try:
            h.wait_for(lambda: values(dst) == values(src) and gate_state(self.reps[dst]) == ("following", src)
                       and gate_state(self.reps[src]) == ("primary", src), timeout, 0.1, "g/ equal in both DCs")
        except AssertionError:
            a, b = values(dst), values(src)
            raise AssertionError("%s: %s's %s did not converge to %s's: %d keys vs %d, %d differ; gates %s %s:\n%s" % (
                where, dst, GATE, src, len(a), len(b), sum(1 for k in set(a) | set(b) if a.get(k) != b.get(k)),
                gate_state(self.reps[dst]), gate_state(self.reps[src]), "\n".join(self.reps[dst].lines[-40:])))

    def point(self, rng, where):
        """One turn from the primary X to Y, with X's or Y's replicator SIGKILLed at a random step of it."""
        x, y = self.primary, OTHER[self.primary]
        victim = x if rng.random() < 2 / 3 else y
        step = rng.randrange(6)
        delay = rng.uniform(0.0, 1.5 if step == 5 else 0.6)
        steady = rng.uniform(0.2, 1.0)
        lf_before = lost_found(self.sims[x])
        self.writer.paused.clear()
        time.sleep(steady)

        def maybe_kill(i):
            if i != step:
                return
            time.sleep(delay)
            r = self.reps[victim]
            r.proc.send_signal(signal.SIGKILL)
            r.wait(10)
            time.sleep(0.1)  # a txn sent before the kill may still commit
            self.check("%s killed %s's replicator at step %d" % (where, victim, step))
            self.start(victim)

        maybe_kill(0)
        h.put(self.sims[y], GATE_KEY, y.encode())  # 1: Y names itself
        maybe_kill(1)
        # 2: Y's replicator stops copying from X (a replicator started after the flip never copies)
        h.wait_for(lambda: gate_state(self.reps[y])[0] not in (None, "following"), 30, 0.05,
                   "%s: %s's gate to leave following" % (where, y))
        time.sleep(0.2)  # a txn sent before may still commit
        maybe_kill(2)
        # 3: the writer moves to Y; what X has that Y lacks is what the turn may take from X (lost+found)
        self.writer.quiesce()
        before = {k: v for k, (v, _) in gate_dump(self.sims[x]).items()}
        at_y = {k: v for k, (v, _) in gate_dump(self.sims[y]).items()}
        self.check(where + " before the turn")
        unreplicated = {k: v for k, v in before.items() if at_y.get(k) != v}
        self.start_era(y)
        self.seen[x] = set(before)
        self.writer.paused.clear()
        maybe_kill(3)
        h.put(self.sims[x], GATE_KEY, y.encode())  # 4: X follows Y
        maybe_kill(4)
        h.wait_for(lambda: gate_state(self.reps[x]) == ("following", y), 30, 0.05,
                   "%s: %s's gate to follow %s" % (where, x, y))  # 5
        maybe_kill(5)
        time.sleep(0.2)
        self.check(where + " after the turn")
        self.converge(where)
        cp = self.check(where + " converged")
        # lost+found: every value X had that Y lacked at the turn is saved in X; what is saved beyond that
        # (a crash before the record moved saves again, or saves what already reached Y) is a value X held
        saved = {k: v for k, v in lost_found(self.sims[x]).items() if k not in lf_before}
        saved_values = {}
        for (_, key), v in saved.items():
            saved_values.setdefault(key, set()).add(v)
        missing = {k: v for k, v in unreplicated.items() if v not in saved_values.get(k, ())}
        assert not missing, "%s: %d values %s had, %s lacked, were lost without a copy in lost+found: %r" % (
            where, len(missing), x, y, sorted(missing.items())[:10])
        y_history = {k: {v for _, v in e} for k, e in self.writer.history.items()}
        invented = {k: vs for k, vs in saved_values.items()
                    if not vs <= ({before.get(k)} | y_history.get(k, set()))}
        assert not invented, "%s: lost+found saved values %s never held: %r" % (where, x, sorted(invented.items())[:10])
        extra = sum(len(vs - {unreplicated.get(k)}) for k, vs in saved_values.items())
        return "%s -> %s, %s's replicator killed at step %d after %4.0f ms: %d unreplicated, %d saved (%d beyond), " \
               "%d keys, checkpoint %s" % (x, y, victim, step, delay * 1000, len(unreplicated), len(saved), extra,
                                          len(before), cp)

    def stop(self):
        self.writer.stop()
        for r in self.reps.values():
            r.kill()


OLD_KINDS = ("copy-streamed", "copy-whole", "steady")
NEW_KINDS = ("lock", "gate")


def schedule(rng, points, share, only):
    """The kinds of the points: in every 10, `share` lock and `share` gate points, the rest one of the three
    older kinds each (rng.choice as before), in an order drawn from rng. `only`: just those kinds."""
    out = []
    while len(out) < points:
        if only:
            out.append(rng.choice(only))
            continue
        block = [k for k in NEW_KINDS for _ in range(share)]
        block += [rng.choice(OLD_KINDS) for _ in range(10 - len(block))]
        rng.shuffle(block)
        out += block
    return out[:points]


def run_matrix(ctx, points, seed, share=2, only=None):
    rng = random.Random(seed)
    print("crash-point matrix: seed %d, %d points" % (seed, points), flush=True)
    kinds = {k: 0 for k in OLD_KINDS + NEW_KINDS}
    plan = schedule(rng, points, share, only)
    gate = None
    with ctx.federation(dst_args=["-commit-latency", "10ms"], src_args=["-commit-latency", "1ms"]) as p:
        writer = Writer(p.src, random.Random(seed + 1))
        writer.preload(20000)
        writer.run()
        seen = set()
        try:
            for point in range(points):
                kind = plan[point]
                kinds[kind] += 1
                where = "seed %d point %d (%s)" % (seed, point, kind)
                t0 = time.monotonic()
                if kind == "lock":
                    line = lock_point(ctx, p, rng, writer, seen, where)
                elif kind == "gate":
                    writer.quiesce()  # the src/ writer rests: the turn's timing is the gate's
                    if gate is None:
                        gate = GateWorld(ctx, p, random.Random(seed + 2))
                    line = gate.point(rng, where)
                    writer.paused.clear()
                else:
                    env = {"KVSHIP_STREAM_FULL_READS": "0" if kind == "copy-whole" else "1"}
                    if kind.startswith("copy"):
                        fresh_destination(p.dst)  # the initial copy
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
                    line = "killed after %4.0f ms: %5d keys, checkpoint %s" % (delay * 1000, n, cp)
                assert not writer.errors, writer.errors
                assert gate is None or not gate.writer.errors, gate.writer.errors
                print("point %3d %-14s %s (%.1fs)" % (point, kind, line, time.monotonic() - t0), flush=True)
                if point % 10 == 9 or point + 1 == points:
                    converge(ctx, p, writer, where)
                    seen.update(dest_versions(p.dst))
        finally:
            writer.stop()
            if gate is not None:
                gate.stop()
    print("kinds: %r" % kinds, flush=True)


def main():
    argv = sys.argv
    opts = {"--points": 100, "--seed": int(time.time()) % 100000, "--share": 2, "--kinds": None}
    for flag in opts:
        if flag in argv:
            i = argv.index(flag)
            opts[flag] = argv[i + 1] if flag == "--kinds" else int(argv[i + 1])
            del argv[i:i + 2]
    only = opts["--kinds"].split(",") if opts["--kinds"] else None
    assert not only or set(only) <= set(OLD_KINDS + NEW_KINDS), "--kinds: some of %r" % (OLD_KINDS + NEW_KINDS,)
    h.main({"matrix": lambda ctx: run_matrix(ctx, opts["--points"], opts["--seed"], opts["--share"], only)})


if __name__ == "__main__":
    main()
