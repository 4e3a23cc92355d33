#!/usr/bin/env python3
"""The sim's cost model against real Consul on this machine: the same four probes on a consul-kvsim DC (with
the bench's -commit-latency) and on a real Consul server, in one sitting, and the sim/real ratio of each.

  put      one KV PUT, sequential, on a fresh connection each (p50/p99 of N)
  txn64    one 64-op /v1/txn of sets (p50/p99 of N)
  wake     a blocking GET on a key waiting at its index, then a PUT of that key from another
           connection: time from sending the PUT to the blocking GET's answer (p50/p99 of N)
  list     GET ?recurse of K keys of 100 bytes (p50 of N)

  python3 bench/calibrate.py [--bin build/bin] [--sim-args "-commit-latency 1ms"] [--n 200] [--keys 10000]
"""
import argparse
import base64
import http.client
import json
import os
import shlex
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
import realconsul  # noqa: E402
import simctl  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def timed(server, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    t0 = time.perf_counter()
    conn.request(method, path, body=body)
    r = conn.getresponse()
    data = r.read()
    dt = (time.perf_counter() - t0) * 1000.0
    conn.close()
    if r.status != 200:
        raise RuntimeError("%s %s: %s %r" % (method, path, r.status, data[:200]))
    return dt, r, data


def probe(server, n, keys):
    out = {}
    out["put"] = [timed(server, "PUT", "/v1/kv/cal/put/%d" % i, b"v" * 100)[0] for i in range(n)]
    v = base64.b64encode(b"v" * 100).decode()
    out["txn64"] = []
    for i in range(n):
        ops = [{"KV": {"Verb": "set", "Key": "cal/txn/%d/%d" % (i, j), "Value": v}} for j in range(64)]
        out["txn64"].append(timed(server, "PUT", "/v1/txn", json.dumps(ops).encode())[0])
    out["wake"] = []
    for i in range(n):
        _, r, _ = timed(server, "PUT", "/v1/kv/cal/wake", b"0")
        index = r.getheader("X-Consul-Index") or timed(server, "GET", "/v1/kv/cal/wake")[1].getheader("X-Consul-Index")
        done = {}

        def waiter():
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            conn.request("GET", "/v1/kv/cal/wake?index=%s&wait=10s" % index)
            conn.getresponse().read()
            done["t"] = time.perf_counter()
            conn.close()
        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.02)  # the GET is parked
        t0 = time.perf_counter()
        timed(server, "PUT", "/v1/kv/cal/wake", b"%d" % (i + 1))
        t.join(15)
        out["wake"].append((done["t"] - t0) * 1000.0)
    for i in range(0, keys, 64):
        ops = [{"KV": {"Verb": "set", "Key": "cal/list/%06d" % j, "Value": v}} for j in range(i, min(keys, i + 64))]
        timed(server, "PUT", "/v1/txn", json.dumps(ops).encode())
    out["list"] = [timed(server, "GET", "/v1/kv/cal/list/?recurse")[0] for _ in range(max(5, n // 20))]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--sim-args", default="-commit-latency 1ms")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--keys", type=int, default=10000)
    args = ap.parse_args()
    if not realconsul.find_consul():
        sys.exit("no consul program: set KVSHIP_CONSUL_BIN or put consul on PATH")
    with realconsul.federation(["dc1"]) as real:
        r = probe(real["dc1"], args.n, args.keys)
    with simctl.federation(os.path.join(args.bin, "consul-kvsim"), ["dc1"], args=shlex.split(args.sim_args)) as sim:
        s = probe(sim["dc1"], args.n, args.keys)
    print("probe   %-22s %-22s sim/real (p50)" % ("real Consul p50/p99 ms", "sim (%s) p50/p99 ms" % args.sim_args))
    for name in ("put", "txn64", "wake", "list"):
        print("%-7s %8.2f / %-11.2f %8.2f / %-11.2f %.2f" % (name, pct(r[name], 50), pct(r[name], 99),
                                                          pct(s[name], 50), pct(s[name], 99),
                                                          pct(s[name], 50) / pct(r[name], 50)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
