"""consul-replicate as a daemon: changes arriving over blocking queries (updates, deletes, flags),
excludes both ways, the index going backwards (snapshot restore), WAN cut and heal, signals (kill,
SIGTERM, reload), pid file, metrics and health endpoints."""
import os
import signal
import time

import harness as h
import simctl

FAST_RETRY = ["-consul-retry-attempts", "0", "-consul-retry-backoff", "100ms",
              "-consul-retry-max-backoff", "500ms"]


def managed(d, dst, src, excludes):
    """Destination keys the pair manages: those whose source key is not excluded."""
    return {k: v for k, v in d.items() if not any((src + k[len(dst):]).startswith(e) for e in excludes)}


def converged(p, src, dst, excludes=()):
    def check():
        return managed(h.dump(p.dst, dst), dst, src, excludes) == h.mapped(h.dump(p.src), src, dst, excludes)
    return check


def wait_converged(p, src, dst, excludes=(), timeout=20):
    try:
        h.wait_for(converged(p, src, dst, excludes), timeout, what="destination to mirror the source")
    except AssertionError:
        raise AssertionError("not converged:\n dst=%r\n want=%r" % (
            h.dump(p.dst, dst), h.mapped(h.dump(p.src), src, dst, excludes)))


def test_changes_arrive(ctx):
    with ctx.federation() as p:
        h.put(p.src, "app/a", b"1")
        h.put(p.src, "app/b", b"2")
        h.put(p.dst, "backup/extra", b"only at the destination")
        with ctx.replicator(p, ["-prefix", "app/@dc1:backup/", "-log-level", "info"]) as r:
            wait_converged(p, "app/", "backup/")
            h.put(p.src, "app/c", b"3")                 # new key
            wait_converged(p, "app/", "backup/")
            h.put(p.src, "app/a", b"1 changed")         # update
            wait_converged(p, "app/", "backup/")
            h.put(p.src, "app/b", b"2", flags=99)        # flags only
            wait_converged(p, "app/", "backup/")
            h.delete(p.src, "app/c")                    # delete of the newest key
            wait_converged(p, "app/", "backup/")
            h.delete(p.src, "app/a")                    # delete of an older key
            wait_converged(p, "app/", "backup/")
            for i in range(50):                         # a burst
                h.put(p.src, "app/burst/%02d" % i, b"%d" % i)
            wait_converged(p, "app/", "backup/")
            assert r.running(), r.log()


def test_excludes_both_ways(ctx):
    with ctx.federation() as p:
        h.put(p.src, "app/keep", b"k")
        h.put(p.src, "app/local/x", b"source side, excluded")
        h.put(p.dst, "app/local/mine", b"destination-only, excluded: must survive")
        with ctx.replicator(p, ["-prefix", "app/@dc1", "-exclude", "app/local"]) as r:
            wait_converged(p, "app/", "app/", ["app/local"])
            h.put(p.src, "app/local/y", b"new excluded")
            h.put(p.src, "app/z", b"marker")
            h.wait_for(lambda: "app/z" in h.dump(p.dst), what="marker")
            time.sleep(0.3)
            d = h.dump(p.dst)
            assert "app/local/x" not in d and "app/local/y" not in d, d
            assert d["app/local/mine"][0].startswith(b"destination-only"), d
            assert r.running()


def test_index_backwards_resync(ctx):
    with ctx.federation() as p:
        for i in range(20):
            h.put(p.src, "app/base/%02d" % i, b"b")
        snap = p.src.request("GET", "/_sim/snapshot")[2]
        with ctx.replicator(p, ["-prefix", "app/@dc1", "-log-level", "info"],
                            env={"KVSHIP_BLOCKING_WAIT": "2s"}) as r:
            wait_converged(p, "app/", "app/")
            for i in range(5):
                h.put(p.src, "app/late/%d" % i, b"written after the snapshot")
            wait_converged(p, "app/", "app/")
            status, _, body = p.src.request("PUT", "/_sim/restore", snap)
            assert status == 200, body
            # the late keys are gone from the source: a full resync must delete them downstream
            wait_converged(p, "app/", "app/", timeout=30)
            assert not any(k.startswith("app/late/") for k in h.dump(p.dst)), h.dump(p.dst)
            r.wait_log("starting over with a full read")
            h.put(p.src, "app/after", b"after restore")
            wait_converged(p, "app/", "app/")


def test_wan_cut_and_heal(ctx):
    with ctx.federation() as p:
        h.put(p.src, "app/a", b"1")
        with ctx.replicator(p, ["-prefix", "app/@dc1"] + FAST_RETRY) as r:
            wait_converged(p, "app/", "app/")
            if ctx.real:
                # real Consul: the source DC's server goes down (its data kept), then comes back
                h.put(p.src, "app/during", b"written before the outage")
                h.delete(p.src, "app/a")
                p.src.stop()
            else:
                p.dst.admin("PUT", "wan/dc1/cut")
                h.put(p.src, "app/during", b"written while cut")
                h.delete(p.src, "app/a")
            r.wait_log("retry attempt", timeout=30)
            time.sleep(1)
            if not ctx.real:
                assert "app/a" in h.dump(p.dst), "nothing may change while the source is unreachable"
            assert r.running(), r.log()
            if ctx.real:
                p.src.start()
            else:
                p.dst.admin("PUT", "wan/dc1/restore")
            wait_converged(p, "app/", "app/", timeout=30)
            assert r.running(), r.log()


def test_kill_signal_exit_12(ctx):
    with ctx.federation() as p:
        h.put(p.src, "app/a", b"1")
        for sig in (signal.SIGINT, signal.SIGTERM):
            pid_file = os.path.join(os.environ.get("TMPDIR", "/tmp"), "kvship-cr-%d.pid" % os.getpid())
            r = ctx.replicator(p, ["-prefix", "app/@dc1", "-pid-file", pid_file])
            try:
                wait_converged(p, "app/", "app/")
                # The file is created, then written: wait for its content, not only for it to exist
                # (CI once read it empty in between).
                def pid_written():
                    try:
                        with open(pid_file) as f:
                            return f.read() == str(r.proc.pid)
                    except FileNotFoundError:
                        return False
                h.wait_for(pid_written, what="pid file with the pid")
                r.signal(sig)
                rc = r.wait(15)
                assert rc == 12, "exit %s after %s:\n%s" % (rc, sig, r.log())
                assert "Cleaning up..." in r.log()
                assert not os.path.exists(pid_file), "pid file left behind"
            finally:
                r.kill()


def test_custom_kill_signal(ctx):
    with ctx.federation() as p:
        h.put(p.src, "app/a", b"1")
        with ctx.replicator(p, ["-prefix", "app/@dc1", "-kill-signal", "SIGUSR1"]) as r:
            wait_converged(p, "app/", "app/")
            r.signal(signal.SIGINT)                     # not the kill signal any more: ignored
            time.sleep(0.5)
            assert r.running(), r.log()
            r.signal(signal.SIGUSR1)
            assert r.wait(15) == 12, r.log()


def test_reload(ctx):
    with ctx.federation() as p:
        h.put(p.src, "app/a", b"1")
        h.put(p.src, "more/b", b"2")
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "kvship-cr-reload-%d.json" % os.getpid())
        with open(path, "w") as f:
            f.write('{"prefix": ["app/@dc1"]}')
        try:
            with ctx.replicator(p, ["-config", path, "-log-level", "info"]) as r:
                wait_converged(p, "app/", "app/")
                assert h.dump(p.dst, "more/") == {}
                with open(path, "w") as f:
                    f.write('{"prefix": ["app/@dc1", "more/@dc1"]}')
                r.signal(signal.SIGHUP)
                wait_converged(p, "more/", "more/")
                assert "Reloading configuration..." in r.log()
                with open(path, "w") as f:
                    f.write('{"prefix": [')
                r.signal(signal.SIGHUP)
                rc = r.wait(15)
                assert rc == 15, "a broken config on reload must end with 15, got %s:\n%s" % (rc, r.log())
        finally:
            os.unlink(path)


def test_metrics_and_health(ctx):
    with ctx.federation() as p:
        for i in range(5):
            h.put(p.src, "app/%d" % i, b"v")
        port = simctl.free_port()
        addr = "127.0.0.1:%d" % port
        with ctx.replicator(p, ["-prefix", "app/@dc1:m/", "-metrics-addr", addr]) as r:
            wait_converged(p, "app/", "m/")
            h.wait_for(lambda: h.http_get(addr, "/readyz")[0] == 200, what="/readyz 200")
            assert h.http_get(addr, "/healthz") == (200, "ok\n")
            status, text = h.http_get(addr, "/metrics")
            assert status == 200
            m = h.parse_metrics(text)
            pair = 'pair="app/@dc1:m/"'
            assert m["kvship_keys_put_total{%s}" % pair] == 5, text
            assert m['kvship_txn_total{%s,result="ok"}' % pair] >= 1, text
            assert m["kvship_applied_index{%s}" % pair] == m["kvship_source_index{%s}" % pair] > 0, text
            assert m["kvship_lag_index{%s}" % pair] == 0
            assert m["kvship_last_success_timestamp_seconds{%s}" % pair] > 1e9
            assert m["kvship_up"] == 1 and m["kvship_ready"] == 1
            assert "# TYPE kvship_keys_put_total counter" in text
            h.delete(p.src, "app/0")
            h.wait_for(lambda: h.parse_metrics(h.http_get(addr, "/metrics")[1]).get(
                "kvship_keys_deleted_total{%s}" % pair) == 1, what="delete counted")
            assert h.http_get(addr, "/nope")[0] == 404
            assert r.running()


def test_guard_blocks_mass_delete(ctx):
    with ctx.federation() as p:
        for i in range(30):
            h.put(p.src, "app/%02d" % i, b"v")
        port = simctl.free_port()
        addr = "127.0.0.1:%d" % port
        with ctx.replicator(p, ["-prefix", "app/@dc1", "-metrics-addr", addr]) as r:
            wait_converged(p, "app/", "app/")
            h.delete(p.src, "app/", recurse=True)        # the source empties
            h.wait_for(lambda: h.http_get(addr, "/readyz")[0] == 503, what="/readyz 503")
            status, reason = h.http_get(addr, "/readyz")
            assert "delete guard" in reason, reason
            assert len(h.dump(p.dst, "app/")) == 30, "the guard must keep every key"
            m = h.parse_metrics(h.http_get(addr, "/metrics")[1])
            assert m['kvship_safety_guard_trips_total{pair="app/@dc1:app/",guard="empty_source"}'] >= 1, m
            assert m['kvship_paused{pair="app/@dc1:app/"}'] == 1
            assert any("[ERR]" in line and "delete guard" in line for line in r.lines), r.log()
            # one key back is still a mass delete (29 of 30): held back too
            h.put(p.src, "app/00", b"back")
            h.wait_for(lambda: any("mass_delete" in l or "more than" in l for l in r.lines), what="mass delete")
            assert len(h.dump(p.dst, "app/")) == 30
            # the source comes back: the pair resumes
            h.txn_put(p.src, {"app/%02d" % i: b"v" for i in range(30)})
            h.wait_for(lambda: h.http_get(addr, "/readyz")[0] == 200, what="/readyz 200 again")
            assert r.running()


def test_quiescence(ctx):
    with ctx.federation() as p, h.CountingProxy(p.dst.addr) as proxy:
        h.put(p.src, "app/a", b"0")
        with ctx.replicator(p, ["-prefix", "app/@dc1", "-wait", "300ms:3s", "-log-level", "info"],
                            addr=proxy.addr) as r:
            wait_converged(p, "app/", "app/")
            proxy.reset()
            for i in range(10):                 # a burst, 100 ms apart: one round at the end
                h.put(p.src, "app/q%d" % i, b"v")
                time.sleep(0.1)
            wait_converged(p, "app/", "app/")
            r.wait_log("quiescence minTimer fired")
            assert proxy.count("PUT /v1/txn") <= 2, proxy.routes


def test_source_faults_retried(ctx):
    with ctx.federation() as p:
        for i in range(10):
            h.put(p.src, "app/%d" % i, b"v")
        args = ["-prefix", "app/@dc1:copy/", "-consul-retry-backoff", "20ms", "-log-level", "info"]
        with ctx.replicator(p, args) as r:
            wait_converged(p, "app/", "copy/")
            p.dst.admin("PUT", "fault", {"path_prefix": "/v1/kv/app", "method": "GET", "count": 2,
                                         "status": 500, "body": "injected"})
            h.put(p.src, "app/x", b"after the faults")
            wait_converged(p, "app/", "copy/")
            r.wait_log("injected")
            assert r.running()


CASES = {f.__name__[5:]: f for f in [
    test_quiescence,
    test_source_faults_retried,
    test_changes_arrive,
    test_excludes_both_ways,
    test_index_backwards_resync,
    test_wan_cut_and_heal,
    test_kill_signal_exit_12,
    test_custom_kill_signal,
    test_reload,
    test_metrics_and_health,
    test_guard_blocks_mass_delete,
]}

SIM_ONLY = {
    "source_faults_retried": "injects 500s into source reads (/_sim/fault)",
    "index_backwards_resync": "restores an older snapshot into the source (/_sim/restore); real Consul's "
                              "snapshot restore needs the operator API and a server restart",
}

if __name__ == "__main__":
    h.main(CASES, SIM_ONLY)
