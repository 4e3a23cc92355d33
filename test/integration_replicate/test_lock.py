"""consul-replicate -lock: one active replicator per DC through a `consul lock`-compatible session lock
on <prefix>/.lock in the destination DC (consul-api.md §9), and fencing: every destination txn carries a
check-session op on the lock key, so a replicator that lost the lock cannot write.

Cases: two replicators, one writer; SIGKILL of the holder and takeover; fencing of a holder whose session
was destroyed while its monitor was blind; interplay with a `consul lock` stand-in doing the CLI's exact
HTTP sequence; a plain value at the lock key; -once with -lock."""
import json
import os
import signal
import threading
import time
import urllib.parse

import harness as h
import simctl

LOCK = "service/kvship/leader"
KEY = LOCK + "/.lock"
LOCK_FLAG = 3304740253564472344
PAIR = 'pair="app/@dc1:backup/"'


# ---------------------------------------------------------------- helpers

def lock_entry(sim):
    """The lock key's entry as a dict, or None."""
    status, _, data = sim.request("GET", "/v1/kv/%s" % KEY)
    if status == 404:
        return None
    assert status == 200, "GET %s: %s %r" % (KEY, status, data[:200])
    return json.loads(data)[0]


def session_name(sim, sid):
    info = sim.json("GET", "/v1/session/info/%s" % sid)
    return info[0]["Name"] if info else None


def metrics(addr):
    try:
        status, text = h.http_get(addr, "/metrics", timeout=5)
    except OSError:
        return {}
    return h.parse_metrics(text) if status == 200 else {}


def readyz(addr):
    try:
        return h.http_get(addr, "/readyz", timeout=5)
    except OSError:
        return (0, "")


def converged(p):
    return h.dump(p.dst, "backup/") == h.mapped(h.dump(p.src), "app/", "backup/")


def wait_converged(p, timeout=30):
    try:
        h.wait_for(lambda: converged(p), timeout, what="destination to mirror the source")
    except AssertionError:
        raise AssertionError("not converged:\n dst=%r\n want=%r" % (
            h.dump(p.dst, "backup/"), h.mapped(h.dump(p.src), "app/", "backup/")))


def wait_metric(addr, name, pred, timeout=30, what=None):
    return h.wait_for(lambda: pred(metrics(addr).get(name)) if metrics(addr).get(name) is not None else False,
                      timeout, interval=0.1, what=what or name)


class Node:
    """One replicator with its own metrics address and lock session name."""

    def __init__(self, ctx, p, name, extra=()):
        self.addr = "127.0.0.1:%d" % simctl.free_port()
        self.name = name
        self.r = ctx.replicator(p, ["-prefix", "app/@dc1:backup/", "-lock", LOCK, "-lock-name", name,
                                    "-metrics-addr", self.addr, "-log-level", "info"] + list(extra))

    def held(self):
        return metrics(self.addr).get("kvship_lock_held") == 1

    def keys_put(self):
        return metrics(self.addr).get("kvship_keys_put_total{%s}" % PAIR, 0)

    def wait_up(self):
        h.wait_for(lambda: "kvship_lock_held" in metrics(self.addr), 30, interval=0.1,
                   what="%s metrics endpoint" % self.name)


class ConsulLockStandIn:
    """What `consul lock -name=<name> <prefix> <cmd>` does over HTTP (consul-api.md §9): agent/self,
    session create {"Name","TTL":"15s"}, renew every TTL/2, blocking GETs on <prefix>/.lock, acquire with the
    lock flag; on exit release, cleanup (DELETE ?cas= when free and still a lock key), session destroy."""

    def __init__(self, sim, name="consul lock stand-in"):
        self.sim = sim
        self.name = name
        self.sid = None
        self._stop = threading.Event()
        self._renewer = None

    def create_session(self):
        self.sim.json("GET", "/v1/agent/self")
        self.sid = self.sim.json("PUT", "/v1/session/create", {"Name": self.name, "TTL": "15s"})["ID"]
        self._renewer = threading.Thread(target=self._renew, daemon=True)
        self._renewer.start()

    def _renew(self):
        wait = 7.5
        while not self._stop.wait(wait):
            status, _, data = self.sim.request("PUT", "/v1/session/renew/%s" % self.sid)
            if status == 404:
                return
            wait = 7.5 if status == 200 else 1.0

    def _get(self, index=0, wait_ms=15000):
        q = "?wait=%dms" % wait_ms + ("&index=%d" % index if index else "")
        status, hdrs, data = self.sim.request("GET", "/v1/kv/%s%s" % (KEY, q))
        assert status in (200, 404), "GET lock key: %s %r" % (status, data[:200])
        entry = json.loads(data)[0] if status == 200 else None
        return entry, int(hdrs["x-consul-index"])

    def _acquire_put(self):
        status, _, data = self.sim.request(
            "PUT", "/v1/kv/%s?acquire=%s&flags=%d" % (KEY, self.sid, LOCK_FLAG), b"")
        assert status == 200, "acquire: %s %r" % (status, data[:200])
        return data.strip() == b"true"

    def acquire(self, timeout):
        """consul lock's Lock() loop; True once held, False when `timeout` seconds passed."""
        if self.sid is None:
            self.create_session()
        deadline = time.monotonic() + timeout
        index = 0
        while time.monotonic() < deadline:
            # LockWaitTime is 15s; a shorter wait here only keeps the stand-in's timeout honest.
            entry, meta_index = self._get(index, max(1, int(min(15, deadline - time.monotonic()) * 1000)))
            if entry is not None and entry.get("Flags", 0) != LOCK_FLAG:
                raise AssertionError("Existing key does not match lock use")
            if entry is not None and entry.get("Session") == self.sid:
                return True
            if entry is not None and entry.get("Session"):
                index = meta_index
                continue
            if self._acquire_put():
                return True
            entry, meta_index = self._get(0)
            if entry is not None and entry.get("Session"):
                index = meta_index
                continue
            index = 0
            time.sleep(min(5, max(0, deadline - time.monotonic())))  # DefaultLockRetryTime
        return False

    def try_acquire_once(self):
        """One acquire attempt (what a contender does when it finds the key free)."""
        if self.sid is None:
            self.create_session()
        return self._acquire_put()

    def release(self):
        self.sim.request("PUT", "/v1/kv/%s?release=%s&flags=%d" % (KEY, self.sid, LOCK_FLAG), b"")
        entry = lock_entry(self.sim)
        if entry is not None and entry.get("Flags", 0) == LOCK_FLAG and not entry.get("Session"):
            self.sim.request("DELETE", "/v1/kv/%s?cas=%d" % (KEY, entry["ModifyIndex"]))
        self._stop.set()
        self.sim.request("PUT", "/v1/session/destroy/%s" % self.sid)
        self.sid = None


# ---------------------------------------------------------------- cases

def test_one_writer(ctx):
    """Two replicators with the same -lock: one holds the key and writes, the other stands by; a graceful
    stop of the holder hands over without a lock-delay."""
    with ctx.federation() as p:
        for i in range(5):
            h.put(p.src, "app/%d" % i, b"v%d" % i)
        a = Node(ctx, p, "replicator-a")
        b = Node(ctx, p, "replicator-b")
        try:
            a.wait_up()
            b.wait_up()
            h.wait_for(lambda: a.held() or b.held(), 30, what="one replicator to hold the lock")
            holder, standby = (a, b) if a.held() else (b, a)
            wait_converged(p)
            h.put(p.src, "app/extra", b"x")
            wait_converged(p)

            entry = lock_entry(p.dst)
            assert entry is not None and entry["Flags"] == LOCK_FLAG and entry.get("Value") is None, entry
            assert session_name(p.dst, entry["Session"]) == holder.name, entry
            assert holder.held() and not standby.held()
            assert holder.keys_put() == 6, metrics(holder.addr)
            assert standby.keys_put() == 0, metrics(standby.addr)
            status, body = readyz(standby.addr)
            assert status == 503 and body.strip() == "standby: waiting for lock %s" % KEY, (status, body)
            assert readyz(holder.addr)[0] == 200

            # Graceful stop: release before destroy, so no lock-delay; the standby takes over at once.
            t0 = time.monotonic()
            holder.r.signal(signal.SIGTERM)
            assert holder.r.wait(30) == 12, holder.r.log()
            assert "released lock" in holder.r.log(), holder.r.log()
            h.wait_for(standby.held, 30, interval=0.1, what="the standby to take the lock over")
            print("  graceful hand-over took %.1fs" % (time.monotonic() - t0), flush=True)
            entry = lock_entry(p.dst)
            assert session_name(p.dst, entry["Session"]) == standby.name, entry
            h.put(p.src, "app/after", b"y")
            wait_converged(p)
            assert standby.keys_put() >= 1
        finally:
            a.r.kill()
            b.r.kill()


def test_takeover_after_kill(ctx):
    """SIGKILL of the holder: its session expires (2 x TTL after the last renewal), the key is released,
    a lock-delay (server default 15s) runs, and the standby acquires."""
    with ctx.federation() as p:
        h.put(p.src, "app/a", b"1")
        a = Node(ctx, p, "replicator-a", ["-lock-ttl", "10s"])
        try:
            a.wait_up()
            h.wait_for(a.held, 30, what="a to hold the lock")
            wait_converged(p)
            b = Node(ctx, p, "replicator-b", ["-lock-ttl", "10s"])
            try:
                b.wait_up()
                b.r.wait_log("is held by session", 30)
                assert not b.held()
                t0 = time.monotonic()
                a.r.proc.kill()
                a.r.proc.wait()
                h.wait_for(b.held, 120, interval=0.2, what="the standby to take over after SIGKILL")
                took = time.monotonic() - t0
                print("  takeover after SIGKILL took %.1fs (TTL 10s, lock-delay 15s)" % took, flush=True)
                h.put(p.src, "app/b", b"2")
                wait_converged(p)
                assert b.keys_put() == 1, metrics(b.addr)
                assert session_name(p.dst, lock_entry(p.dst)["Session"]) == "replicator-b"
            finally:
                b.r.kill()
        finally:
            a.r.kill()


def test_fencing(ctx):
    """The holder's session is destroyed while its monitor is blind (its next GET of the lock key is
    delayed by an injected fault, and renewals hang): the next batch's txn is refused by its check-session
    op, nothing is written, the lock counts as lost and the replicator goes back to standby."""
    with ctx.federation() as p:
        h.put(p.src, "app/a", b"1")
        a = Node(ctx, p, "replicator-a", ["-lock-ttl", "10s"])
        try:
            a.wait_up()
            h.wait_for(a.held, 30, what="a to hold the lock")
            wait_converged(p)
            sid = lock_entry(p.dst)["Session"]

            # Blind the monitor: delay its next GET of the lock key, then wake it with a write that keeps
            # the session (a plain PUT keeps Session), so that it re-issues the GET into the fault.
            path = "/v1/kv/" + KEY
            p.dst.admin("PUT", "fault", {"path_prefix": path, "method": "GET", "count": 1, "delay_ms": 120000})
            status, _, _ = p.dst.request("PUT", "%s?flags=%d" % (path, LOCK_FLAG), b"")
            assert status == 200
            h.wait_for(lambda: h.stats(p.dst)["faults"] == 0, 30, what="the monitor to take the delayed GET")
            assert lock_entry(p.dst)["Session"] == sid  # (read only now: this GET must not take the fault)
            # Renewals hang too, so that the renewer cannot notice the loss before the next batch.
            p.dst.admin("PUT", "fault", {"path_prefix": "/v1/session/renew/", "method": "PUT",
                                         "delay_ms": 120000})

            before = h.dump(p.dst, "")
            status, _, data = p.dst.request("PUT", "/v1/session/destroy/%s" % sid)
            assert status == 200 and data.strip() == b"true"
            assert not lock_entry(p.dst).get("Session")
            h.put(p.src, "app/fenced", b"must not arrive")

            wait_metric(a.addr, "kvship_fenced_batches_total", lambda v: v >= 1, 30, "a fenced batch")
            m = metrics(a.addr)
            assert m["kvship_lock_losses_total"] == 1, m
            assert m["kvship_lock_held"] == 0, m
            assert m['kvship_txn_total{%s,result="rolled_back"}' % PAIR] >= 1, m
            after = h.dump(p.dst, "")
            assert after == before, "the destination changed:\n before=%r\n after=%r" % (before, after)
            assert "backup/fenced" not in h.dump(p.dst, "backup/")
            assert "lock check" in a.r.log(), a.r.log()
            assert a.r.running(), a.r.log()
            status, body = readyz(a.addr)
            assert status == 503 and "standby" in body, (status, body)

            # Back to standby, not an exit: once the faults are gone it contends again, waits out the
            # lock-delay the destroy started, and replicates.
            p.dst.request("DELETE", "/_sim/faults")
            h.wait_for(a.held, 90, interval=0.2, what="a to re-acquire the lock")
            wait_converged(p)
            assert metrics(a.addr)["kvship_lock_losses_total"] == 1
            assert lock_entry(p.dst)["Session"] != sid
            if os.environ.get("KVSHIP_TEST_VERBOSE"):
                print(a.r.log())
        finally:
            a.r.kill()


def test_consul_lock_interplay(ctx):
    """A `consul lock` holder keeps kvship in standby (nothing written); once it releases, kvship acquires
    and replicates; while kvship holds, `consul lock` cannot acquire."""
    with ctx.federation() as p:
        h.put(p.src, "app/a", b"1")
        h.put(p.src, "app/b", b"2")
        cl = ConsulLockStandIn(p.dst)
        assert cl.acquire(10)
        a = Node(ctx, p, "replicator-a")
        try:
            a.wait_up()
            a.r.wait_log("is held by session %s" % cl.sid, 30)
            assert not a.held()
            assert h.dump(p.dst, "backup/") == {}
            assert a.keys_put() == 0
            status, body = readyz(a.addr)
            assert status == 503 and body.strip() == "standby: waiting for lock %s" % KEY, (status, body)
            assert lock_entry(p.dst)["Session"] == cl.sid

            cl.release()
            h.wait_for(a.held, 30, interval=0.1, what="kvship to acquire after consul lock released")
            wait_converged(p)
            entry = lock_entry(p.dst)
            assert entry["Flags"] == LOCK_FLAG and session_name(p.dst, entry["Session"]) == "replicator-a"

            other = ConsulLockStandIn(p.dst, "second consul lock")
            assert other.try_acquire_once() is False
            assert other.acquire(3) is False
            assert lock_entry(p.dst)["Session"] == entry["Session"]
            other.release()  # its release of a key it does not hold changes nothing
            assert lock_entry(p.dst)["Session"] == entry["Session"]
            h.put(p.src, "app/c", b"3")
            wait_converged(p)

            # A standby stopped by SIGTERM ends its blocking read at once, destroys its session, exits 12.
            b = Node(ctx, p, "replicator-b")
            try:
                b.r.wait_log("is held by session %s" % entry["Session"], 30)
                # (the holder's registry session, README "Two-way replication is refused", is not a lock's)
                assert len(lock_sessions(p.dst)) == 2
                b.r.signal(signal.SIGTERM)
                assert b.r.wait(30) == 12, b.r.log()
                sessions = lock_sessions(p.dst)
                assert [s["ID"] for s in sessions] == [entry["Session"]], sessions
                assert lock_entry(p.dst)["Session"] == entry["Session"]
            finally:
                b.r.kill()
        finally:
            a.r.kill()


def lock_sessions(sim):
    return [s for s in sim.json("GET", "/v1/session/list") if not s["Name"].startswith("kvship replicator ")]


def test_real_consul_lock_cli_real(ctx):
    """The real `consul lock` CLI against kvship's -lock, both ways, on real Consul: while `consul lock` holds
    the lock (running a child that only waits), kvship stays in standby and writes nothing; once the CLI
    ends (its child exits: release, then session destroy), kvship acquires and replicates; while kvship
    holds, a second `consul lock` cannot get it (it waits), and gets it after kvship's SIGTERM."""
    import subprocess
    with ctx.federation() as p:
        h.put(p.src, "app/a", b"1")
        marker = os.path.join(os.path.dirname(p.dst.data_dir), "lock-held")
        child = "touch %s && sleep 600" % marker
        cli = p.dst.consul_cli("lock", "-name", "consul-lock-cli", LOCK, child,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            h.wait_for(lambda: os.path.exists(marker), 30, what="consul lock to run its child")
            cli_sid = lock_entry(p.dst)["Session"]
            assert session_name(p.dst, cli_sid) == "consul-lock-cli"
            a = Node(ctx, p, "replicator-a")
            try:
                a.wait_up()
                a.r.wait_log("is held by session %s" % cli_sid, 30)
                time.sleep(1)
                assert not a.held() and h.dump(p.dst, "backup/") == {}
                os.killpg(cli.pid, signal.SIGTERM)  # consul lock forwards it, the child exits, the lock is released
                assert cli.wait(30) is not None
                h.wait_for(a.held, 60, interval=0.1, what="kvship to acquire after consul lock ended")
                wait_converged(p)
                held = lock_entry(p.dst)["Session"]
                assert session_name(p.dst, held) == "replicator-a"

                os.unlink(marker)
                cli2 = p.dst.consul_cli("lock", "-name", "consul-lock-cli-2", LOCK, child,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
                try:
                    time.sleep(3)
                    assert not os.path.exists(marker), "consul lock ran its child while kvship held the lock"
                    assert lock_entry(p.dst)["Session"] == held
                    a.r.signal(signal.SIGTERM)
                    assert a.r.wait(30) == 12, a.r.log()
                    h.wait_for(lambda: os.path.exists(marker), 30, what="consul lock to get the lock after kvship")
                    assert session_name(p.dst, lock_entry(p.dst)["Session"]) == "consul-lock-cli-2"
                finally:
                    if cli2.poll() is None:
                        os.killpg(cli2.pid, signal.SIGKILL)
                    cli2.wait()
            finally:
                a.r.kill()
        finally:
            if cli.poll() is None:
                os.killpg(cli.pid, signal.SIGKILL)
            cli.wait()


def test_plain_value_conflict(ctx):
    """A plain value at <prefix>/.lock is not a lock: a clear error, exit 14, nothing written."""
    with ctx.federation() as p:
        h.put(p.src, "app/a", b"1")
        h.put(p.dst, KEY, b"not a lock")
        for once in (False, True):
            args = ["-prefix", "app/@dc1:backup/", "-lock", "/" + LOCK] + (["-once"] if once else [])
            r = ctx.replicator(p, args)
            try:
                rc = r.wait(60)
            finally:
                r.kill()
            assert rc == 14, (rc, r.log())
            want = 'existing key "%s" (flags 0) does not match lock use' % KEY
            assert want in r.log(), r.log()
            assert h.dump(p.dst, "backup/") == {}
            assert lock_entry(p.dst)["Value"] is not None
            assert p.dst.json("GET", "/v1/session/list") == [], "a session was left behind"


def test_once_with_lock(ctx):
    """-once -lock: acquire, copy, release, clean the key up, destroy the session, exit 0."""
    with ctx.federation() as p:
        for i in range(3):
            h.put(p.src, "app/%d" % i, b"v")
        rc, log, _ = ctx.once(p, ["-prefix", "app/@dc1:backup/", "-lock", LOCK, "-log-level", "info"])
        assert rc == 0, log
        assert converged(p)
        assert "acquired lock" in log and "released lock" in log, log
        assert lock_entry(p.dst) is None, "the lock key was not cleaned up"
        assert p.dst.json("GET", "/v1/session/list") == [], "the session was not destroyed"


if __name__ == "__main__":
    h.main({
        "test_one_writer": test_one_writer,
        "test_takeover_after_kill": test_takeover_after_kill,
        "test_fencing": test_fencing,
        "test_consul_lock_interplay": test_consul_lock_interplay,
        "test_real_consul_lock_cli_real": test_real_consul_lock_cli_real,
        "test_plain_value_conflict": test_plain_value_conflict,
        "test_once_with_lock": test_once_with_lock,
    }, {"test_fencing": "delays the lock monitor's GET and the session renew (/_sim/fault) so the txn itself is refused"})
