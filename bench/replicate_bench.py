#!/usr/bin/env python3
"""Benchmarks of kvship's consul-replicate (BENCHMARKS.md B1, B2, B3, B5, B6), on consul-kvsim or real Consul,
optionally side by side with HashiCorp's consul-replicate v0.4.0 in the same run.

Two federated DCs (dc1 source, dc2 destination): sims with -commit-latency 1ms (--backend sim, the default) or
two real Consul servers (--backend real: realconsul.py, $KVSHIP_CONSUL_BIN). Data spread over 256
sub-prefixes (bench/d000/... to bench/d255/...), 100-byte values. --compare consul-replicate runs every chosen
scenario once more with the real v0.4.0 ($KVSHIP_CONSUL_REPLICATE_BIN) and prints the ratios.

  B1  initial copy of N keys into an empty destination (`-once`), against the floor measured in the
      same run: the same keys loaded into an empty sim by 64-op txns over 4 connections.
      Also: requests and bytes sent to the destination.
  B5  the replicator's CPU seconds (user + sys) for B1.
  B2  steady state: single-key writes at 20/s to random sub-prefixes of a prefix holding N keys,
      write-to-visible latency in the destination, p50 / p99 (at 10,000 and 100,000 keys).
  B3  sustained load: 200 and 2,000 writes/s for 30 s on 10,000 keys; lag of a marker key written every
      100 ms (p50/p99/max, and p99 of the first third against the last third: does it grow?).
  B6  during B2: bytes of the replicator's forwarded source reads (?dc=dc1), counted by a proxy in front of its
      agent (harness.CountingProxy, the same on both backends), per change, against one full read of the prefix.

  --layout vault (B2/B6 only): a Vault-like prefix instead of bench/d000..d255: N keys under vault/,
      60% tokens (vault/sys/token/id/h<sha1>), 35% secrets in 20 mounts
      (vault/logical/<uuid>/app<NNN>/secret<N>), the rest in vault/core/ and 4 vault/auth/<uuid>/ mounts;
      100-byte values, loaded by 64-op txns. Writes change random existing keys (so 60% hit tokens).

  python3 bench/replicate_bench.py [--bin build/bin] [--replicator PATH] [--keys 100000]
                                   [--latency-keys 10000,100000] [--writes 200] [--only b1,b2,b3]
                                   [--env K=V ...] [--layout bench|vault] [--backend sim|real]
                                   [--compare consul-replicate] [--record]
"""
import argparse
import base64
import datetime
import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration_replicate"))
import harness  # noqa: E402  (CountingProxy: request and byte counts on any backend)
import realconsul  # noqa: E402
import simctl  # noqa: E402

BACKEND = "sim"  # --backend: sim (consul-kvsim) or real (real Consul servers, realconsul.py)


def federation(bin_dir, dcs):
    """{dc: server}: sims with SIM_ARGS, or real Consul servers (one per DC, WAN-joined)."""
    if BACKEND == "real":
        return realconsul.federation(list(dcs))
    return simctl.federation(os.path.join(bin_dir, "consul-kvsim"), list(dcs), args=SIM_ARGS)

SIM_ARGS = ["-commit-latency", "1ms"]


def sim_load(bin_dir, addr, keys, conns=4, ops=64):
    out = subprocess.run([os.path.join(bin_dir, "kvship-sim-load"), "load", "--addr", addr, "--keys", str(keys),
                          "--conns", str(conns), "--ops", str(ops)], capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError("load failed: %s %s" % (out.stdout, out.stderr))
    fields = dict(kv.split("=", 1) for kv in out.stdout.split() if "=" in kv)
    return float(fields["ms"]) / 1000.0


def stats(sim):
    return sim.json("GET", "/_sim/stats")


def keys_count(sim, prefix="bench/"):
    status, hdrs, body = sim.request("GET", "/v1/kv/%s?keys" % prefix)
    return 0 if status == 404 else len(json.loads(body))


REPLICATOR = None  # --replicator: the consul-replicate binary (default: <bin>/consul-replicate)
EXTRA_ENV = {}
CURRENT = None  # set per run: the binary measured now (kvship's, or HashiCorp's v0.4.0 with --compare)


def replicator_bin(bin_dir):
    return CURRENT or REPLICATOR or os.path.join(bin_dir, "consul-replicate")


def replicator_env():
    env = dict(os.environ)
    env.update(EXTRA_ENV)
    return env


def run_replicator_once(bin_dir, dst, extra=(), addr=None):
    cmd = [replicator_bin(bin_dir), "-consul-addr", addr or dst.addr, "-prefix", "bench/@dc1", "-once",
           *extra]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=replicator_env())
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError("consul-replicate -once exited %d: %s" % (code, err[-2000:]))
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def stop_replicator(proc):
    """SIGTERM, then SIGKILL after 5 s (consul-replicate v0.4.0 may sit out a blocking query first)."""
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def b1_b5(bin_dir, keys, report):
    # The floor: the same keys into an empty server by 64-op txns over 4 connections.
    with federation(bin_dir, ["dc1"]) as one:
        floor = sim_load(bin_dir, one["dc1"].addr, keys)
    with federation(bin_dir, ["dc1", "dc2"]) as dcs:
        src, dst = dcs["dc1"], dcs["dc2"]
        sim_load(bin_dir, src.addr, keys)
        if BACKEND == "sim":
            dst.admin("PUT", "stats/reset")
        wall, cpu, rss = run_replicator_once(bin_dir, dst)  # timed directly, no proxy in the way
        got = keys_count(dst)
        if got != keys:
            raise RuntimeError("destination holds %d keys, expected %d" % (got, keys))
        if BACKEND == "sim":
            st = stats(dst)
            requests = st["totals"]["requests"]
            txns = st["by_class"].get("txn_write", {}).get("requests", 0)
            what = "destination got %d requests (%d txns), %.1f MB" % (requests, txns, st["totals"]["bytes_in"] / 1e6)
        else:
            requests, what = 0, "request counts: sim backend only"
        report("B1 initial copy of %d keys: %.2f s; floor (64-op txns, 4 connections) %.2f s; ratio %.2f "
               "(target <= 1.3); %s" % (keys, wall, floor, wall / floor, what),
               figures={"b1_s": wall, "b1_floor_s": floor, "b1_vs_floor": wall / floor})
        report("B5 replicator CPU for B1: %.2f s user+sys (target <= 3 s; consul-replicate 30.7 s), max RSS %.0f MB"
               % (cpu, rss), figures={"b5_cpu_s": cpu, "b5_rss_mb": rss})


def diff_bench(bin_dir, keys, report):
    """-diff (the drift report) on N keys: wall time, CPU and max RSS (wait4: the figure /usr/bin/time -v
    reports), equal and with 1% drift, next to a -once round over the same keys (which reads both sides whole).
    Timed directly, no proxy in the way; the destination's raft index before and after shows it wrote nothing."""
    def measured(dst):
        cmd = [replicator_bin(bin_dir), "-consul-addr", dst.addr, "-prefix", "bench/@dc1", "-diff"]
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=replicator_env())
        out = proc.stdout.read()
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        proc.stdout.close()
        proc.stderr.close()
        return (os.waitstatus_to_exitcode(status), out.decode(errors="replace"), err.decode(errors="replace"),
                wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0)

    with federation(bin_dir, ["dc1", "dc2"]) as dcs:
        src, dst = dcs["dc1"], dcs["dc2"]
        sim_load(bin_dir, src.addr, keys)
        run_replicator_once(bin_dir, dst)
        _, once_cpu, once_rss = run_replicator_once(bin_dir, dst)
        before = dst.index("/v1/kv/?keys")
        code, out, err, wall, cpu, rss = measured(dst)
        if code != 0:
            raise RuntimeError("-diff on an equal copy exited %d: %s %s" % (code, out[-500:], err[-2000:]))
        report("DIFF drift report of %d equal keys: %.2f s, %.2f s CPU, max RSS %.0f MB (a -once round over "
               "the same equal keys: %.2f s CPU, max RSS %.0f MB)" % (keys, wall, cpu, rss, once_cpu, once_rss),
               figures={"diff_s": wall, "diff_cpu_s": cpu, "diff_rss_mb": rss, "once_rss_mb": once_rss})
        if dst.index("/v1/kv/?keys") != before:
            raise RuntimeError("-diff changed the destination")
        _, _, body = dst.request("GET", "/v1/kv/bench/?keys")
        names = json.loads(body)[::100]
        txn_load(dst, names, value=b"drift")
        before = dst.index("/v1/kv/?keys")
        code, out, err, wall, cpu, rss = measured(dst)
        lines = out.splitlines()
        if code != 1 or len(lines) != len(names) + 1:
            raise RuntimeError("-diff with %d changed keys exited %d with %d lines: %s" % (
                len(names), code, len(lines), err[-2000:]))
        report("DIFF drift report of %d keys, %d different: %.2f s, %.2f s CPU, max RSS %.0f MB" % (
            keys, len(names), wall, cpu, rss), figures={"diff_drift_s": wall, "diff_drift_rss_mb": rss})
        if dst.index("/v1/kv/?keys") != before:
            raise RuntimeError("-diff changed the destination")


def vault_keys(n):
    """The keys of the Vault-like layout (see --layout vault), sorted."""
    rng = random.Random(11)
    uuid = lambda: "%08x-%04x-%04x-%04x-%012x" % tuple(rng.getrandbits(b) for b in (32, 16, 16, 16, 48))
    mounts = [uuid() for _ in range(20)]
    auths = [uuid() for _ in range(4)]
    tokens, logical = n * 60 // 100, n * 35 // 100
    rest = n - tokens - logical
    keys = ["vault/sys/token/id/h" + hashlib.sha1(b"token %d" % i).hexdigest() for i in range(tokens)]
    keys += ["vault/logical/%s/app%03d/secret%06d" % (mounts[i % 20], (i // 20) % 40, i) for i in range(logical)]
    keys += ["vault/core/%s/k%05d" % (("cluster", "mounts", "auth", "audit", "wrapping")[i % 5], i)
             for i in range(rest // 5)]
    keys += ["vault/auth/%s/entity%06d" % (auths[i % 4], i) for i in range(rest - rest // 5)]
    return sorted(keys)


def txn_load(sim, keys, value=b"v" * 100, conns=4, ops=64):
    """Loads keys by `ops`-op txns over `conns` threads."""
    v = base64.b64encode(value).decode()
    chunks = [keys[i:i + ops] for i in range(0, len(keys), ops)]
    errors = []

    def worker(part):
        for chunk in part:
            body = json.dumps([{"KV": {"Verb": "set", "Key": k, "Value": v}} for k in chunk]).encode()
            status, _, data = sim.request("PUT", "/v1/txn", body)
            if status != 200:
                errors.append("txn: %s %r" % (status, data[:200]))
                return

    threads = [threading.Thread(target=worker, args=(chunks[i::conns],)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[0])


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def b2(bin_dir, keys, writes, report, layout="bench"):
    prefix = "vault/" if layout == "vault" else "bench/"
    with federation(bin_dir, ["dc1", "dc2"]) as dcs, harness.CountingProxy(dcs["dc2"].addr) as proxy:
        src, dst = dcs["dc1"], dcs["dc2"]
        if layout == "vault":
            names = vault_keys(keys)
            txn_load(src, names)
        else:
            sim_load(bin_dir, src.addr, keys)
        # The replicator talks to its agent through a counting proxy (B6: the bytes of its forwarded
        # source reads), on both backends alike.
        proc = subprocess.Popen([replicator_bin(bin_dir), "-consul-addr", proxy.addr, "-prefix",
                                 prefix + "@dc1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=replicator_env())
        try:
            deadline = time.monotonic() + 900
            while keys_count(dst, prefix) < keys:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("initial copy did not finish")
                time.sleep(0.2)
            full = len(src.request("GET", "/v1/kv/%s?recurse" % prefix)[2])
            time.sleep(1.0)  # let the pair settle (grouped watching starts after the first round)
            proxy.reset()
            rng = random.Random(7)
            latencies = []
            for n in range(writes):
                if layout == "vault":
                    key = names[rng.randrange(len(names))]
                else:
                    key = "bench/d%03d/k%08d" % (rng.randrange(256), rng.randrange(keys))
                value = ("change-%d" % n).encode()
                status, hdrs, _ = dst.request("GET", "/v1/kv/" + key)
                index = hdrs.get("x-consul-index", "1")
                t0 = time.monotonic()
                src.put(key, value)
                # Wait on the destination key with a blocking query until the new value is there.
                while True:
                    status, hdrs, body = dst.request("GET", "/v1/kv/%s?index=%s&wait=10s" % (key, index))
                    index = hdrs.get("x-consul-index", index)
                    if status == 200 and json.loads(body)[0]["Value"] and \
                            base64.b64decode(json.loads(body)[0]["Value"]) == value:
                        break
                    if time.monotonic() - t0 > 30:
                        raise RuntimeError("change to %s did not arrive" % key)
                latencies.append((time.monotonic() - t0) * 1000.0)
                pause = 0.05 - (time.monotonic() - t0)
                if pause > 0:
                    time.sleep(pause)
            read = proxy.forwarded_bytes
            what = "%d keys" % keys if layout == "bench" else "%d keys (Vault-like layout)" % keys
            report("B2 change latency on %s, %d writes at <= 20/s: p50 %.0f ms, p99 %.0f ms, max %.0f ms "
                   "(target p50 <= 50 ms, p99 <= 200 ms; consul-replicate p50 129 ms at 10k, 958 ms at 100k)"
                   % (what, writes, percentile(latencies, 50), percentile(latencies, 99), max(latencies)),
                   figures={"b2_p50_ms_%d" % keys: percentile(latencies, 50),
                            "b2_p99_ms_%d" % keys: percentile(latencies, 99)})
            report("B6 source bytes read per change on %s: %.0f KB (%d writes; one full read is %.1f MB; "
                   "target <= 1 MB at 100k)" % (what, read / writes / 1e3, writes, full / 1e6),
                   figures={"b6_kb_%d" % keys: read / writes / 1e3})
        finally:
            stop_replicator(proc)


def b3(bin_dir, keys, rates, seconds, report, workload="update"):
    """Sustained load: writer threads put random keys into the source at `rate` writes/s for `seconds`;
    every 100 ms a marker key carries the monotonic time it was written; a blocking watcher on the
    destination records how long each marker it sees took to arrive (lag). Growth: p99 of the first
    third against the last third.

    workload "update" (the default) changes random keys of the `keys` loaded ones, so the prefix keeps its
    size; "insert" writes random names of which almost all are new (the loader's names are d<i % 256>/k<i>,
    these d<random>/k<random>), so the prefix grows by about the number of writes: at 2,000/s for 60 s from
    10,000 to about 130,000 keys (before 2026-12-04 this was the only workload, by accident)."""
    import http.client
    with federation(bin_dir, ["dc1", "dc2"]) as dcs:
        src, dst = dcs["dc1"], dcs["dc2"]
        sim_load(bin_dir, src.addr, keys)
        proc = subprocess.Popen([replicator_bin(bin_dir), "-consul-addr", dst.addr, "-prefix", "bench/@dc1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=replicator_env())
        try:
            deadline = time.monotonic() + 900
            while keys_count(dst) < keys:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("initial copy did not finish")
                time.sleep(0.2)
            time.sleep(1.0)
            for rate in rates:
                stop = threading.Event()
                done = [0]
                lock = threading.Lock()
                lags = []  # (seconds since start, lag ms)
                marker = "bench/d000/marker-%d" % rate
                start = time.monotonic()

                def writer(share, seed):
                    rng = random.Random(seed)
                    conn = http.client.HTTPConnection("127.0.0.1", src.port, timeout=30)
                    next_t = time.monotonic()
                    n = 0
                    while not stop.is_set():
                        if workload == "insert":
                            key = "/v1/kv/bench/d%03d/k%08d" % (rng.randrange(256), rng.randrange(keys))
                        else:
                            i = rng.randrange(keys)
                            key = "/v1/kv/bench/d%03d/k%08d" % (i % 256, i)
                        conn.request("PUT", key, body=("w%d" % rng.randrange(1 << 30)).encode())
                        conn.getresponse().read()
                        n += 1
                        next_t += 1.0 / share
                        pause = next_t - time.monotonic()
                        if pause > 0:
                            time.sleep(pause)
                    with lock:
                        done[0] += n
                    conn.close()

                def marker_writer():
                    conn = http.client.HTTPConnection("127.0.0.1", src.port, timeout=30)
                    while not stop.is_set():
                        conn.request("PUT", "/v1/kv/" + marker, body=str(time.monotonic()).encode())
                        conn.getresponse().read()
                        time.sleep(0.1)
                    conn.close()

                def watcher():
                    conn = http.client.HTTPConnection("127.0.0.1", dst.port, timeout=30)
                    index = "0"
                    seen = None
                    while not stop.is_set():
                        conn.request("GET", "/v1/kv/%s?index=%s&wait=2s" % (marker, index))
                        res = conn.getresponse()
                        body = res.read()
                        index = res.getheader("X-Consul-Index", index)
                        if res.status == 200:
                            value = base64.b64decode(json.loads(body)[0]["Value"] or "")
                            if value != seen:
                                seen = value
                                now = time.monotonic()
                                lags.append((now - start, (now - float(value)) * 1000.0))
                    conn.close()

                threads_n = max(1, rate // 200)
                threads = [threading.Thread(target=writer, args=(rate / threads_n, 100 + i))
                           for i in range(threads_n)]
                threads += [threading.Thread(target=marker_writer), threading.Thread(target=watcher)]
                for t in threads:
                    t.start()
                time.sleep(seconds)
                stop.set()
                for t in threads:
                    t.join(60)
                if proc.poll() is not None:
                    raise RuntimeError("the replicator exited")
                achieved = done[0] / seconds
                ms = [l for _, l in lags if _ > 1.0]  # the first second is the start-up
                if not ms:
                    raise RuntimeError("no marker arrived")
                first = [l for t, l in lags if 1.0 < t <= seconds / 3]
                last = [l for t, l in lags if t > 2 * seconds / 3]
                report("B3 sustained %d writes/s (%s) for %d s on %d keys (achieved %.0f/s): marker lag p50 %.0f ms, "
                       "p99 %.0f ms, max %.0f ms; p99 first third %.0f ms, last third %.0f ms "
                       "(target p99 <= 100 ms at 200/s, <= 1 s at 2,000/s, no growth; consul-replicate p99 2.7 s at 200/s)"
                       % (rate, workload, seconds, keys_count(dst) if workload == "insert" else keys, achieved, percentile(ms, 50), percentile(ms, 99), max(ms),
                          percentile(first, 99) if first else float("nan"),
                          percentile(last, 99) if last else float("nan")),
                       figures={"b3_p50_ms_%d" % rate: percentile(ms, 50), "b3_p99_ms_%d" % rate: percentile(ms, 99),
                                "b3_achieved_%d" % rate: achieved})
        finally:
            stop_replicator(proc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--latency-keys", default="10000,100000")
    ap.add_argument("--writes", type=int, default=200)
    ap.add_argument("--replicator", help="the consul-replicate binary (default: <bin>/consul-replicate)")
    ap.add_argument("--only", default="b1,b2,b3", help="scenarios to run: b1 (B1+B5), b2 (B2+B6), b3, diff (the -diff drift report)")
    ap.add_argument("--b3-keys", type=int, default=10000)
    ap.add_argument("--b3-rates", default="200,2000")
    ap.add_argument("--b3-seconds", type=int, default=30)
    ap.add_argument("--b3-workload", choices=("update", "insert"), default="update",
                    help="update: change the loaded keys (the prefix keeps its size); insert: new names (it grows)")
    ap.add_argument("--env", action="append", default=[], help="K=V for the replicator's environment")
    ap.add_argument("--layout", default="bench", choices=("bench", "vault"),
                    help="B2/B6 data: bench/d000..d255 (default) or a Vault-like vault/ prefix")
    ap.add_argument("--backend", default="sim", choices=("sim", "real"),
                    help="sim: two consul-kvsim (-commit-latency 1ms); real: two real Consul servers "
                         "($KVSHIP_CONSUL_BIN or consul on PATH)")
    ap.add_argument("--compare", choices=("consul-replicate",),
                    help="also run HashiCorp's consul-replicate v0.4.0 ($KVSHIP_CONSUL_REPLICATE_BIN or on PATH) "
                         "through the same scenarios, and print both and their ratio")
    ap.add_argument("--record", action="store_true", help="prepend the figures to bench/RESULTS.md")
    args = ap.parse_args()
    global REPLICATOR, BACKEND, CURRENT
    REPLICATOR = args.replicator
    BACKEND = args.backend
    if BACKEND == "real" and not realconsul.find_consul():
        sys.exit("--backend real: no consul program (set KVSHIP_CONSUL_BIN or put consul on PATH)")
    for kv in args.env:
        k, _, v = kv.partition("=")
        EXTRA_ENV[k] = v
    only = set(args.only.split(","))
    lines = []
    runs = [("kvship", REPLICATOR or os.path.join(args.bin, "consul-replicate"))]
    if args.compare:
        theirs = realconsul.find_consul_replicate()
        if not theirs:
            sys.exit("--compare consul-replicate: set KVSHIP_CONSUL_REPLICATE_BIN or put it on PATH")
        runs.append(("consul-replicate v0.4.0", theirs))
    figures = {}

    for label, binary in runs:
        CURRENT = binary
        figs = figures.setdefault(label, {})

        def report(text, figures=None, label=label, figs=figs):
            line = "[%s on %s] %s" % (label, BACKEND, text)
            print(line, flush=True)
            lines.append(line)
            figs.update(figures or {})

        if "b1" in only:
            b1_b5(args.bin, args.keys, report)
        if "b2" in only:
            for n in (int(x) for x in args.latency_keys.split(",") if x):
                b2(args.bin, n, args.writes, report, args.layout)
        if "diff" in only:
            diff_bench(args.bin, args.keys, report)
        if "b3" in only:
            b3(args.bin, args.b3_keys, [int(x) for x in args.b3_rates.split(",") if x], args.b3_seconds, report,
               args.b3_workload)
    if args.compare:
        ours, theirs = figures["kvship"], figures["consul-replicate v0.4.0"]
        for name in sorted(set(ours) & set(theirs)):
            if ours[name]:
                line = "ratio %s: consul-replicate %.4g / kvship %.4g = %.1fx" % (
                    name, theirs[name], ours[name], theirs[name] / ours[name])
                print(line, flush=True)
                lines.append(line)
    print("figures: %s" % json.dumps(figures, sort_keys=True), flush=True)

    if args.record:
        path = os.path.join(HERE, "RESULTS.md")
        old = open(path).read() if os.path.exists(path) else "# Benchmark results (newest first)\n"
        head, _, rest = old.partition("\n")
        section = ["", "## %s: %s (`python3 bench/replicate_bench.py %s`)"
                   % (datetime.date.today(), "real Consul" if BACKEND == "real" else "consul-kvsim",
                      " ".join(sys.argv[1:])),
                   "Machine: %s, %d cores, shared; load average before: %s. %s, 100-byte values, 256 sub-prefixes."
                   % (platform.machine(), os.cpu_count() or 0, " ".join("%.2f" % x for x in os.getloadavg()),
                      "Real Consul servers, one per DC" if BACKEND == "real" else "Sims with -commit-latency 1ms"),
                   ""]
        section += ["- " + l for l in lines]
        with open(path, "w") as fh:
            fh.write(head + "\n" + "\n".join(section) + "\n" + rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
