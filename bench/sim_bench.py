#!/usr/bin/env python3
"""Benchmark of consul-kvsim itself (issue: the sim must never be the bottleneck).

Figures: keys/s through /v1/txn (128-op and 64-op txns over 4 connections, commit latency 0), time to
serve a 100,000-key ?recurse, the sim's RSS holding 1,000,000 keys of 100 bytes, and 2,000 concurrent
blocking queries woken by one write.

  python3 bench/sim_bench.py [--bin build/bin] [--keys 100000] [--big 1000000] [--watchers 2000]

Prints one line per figure and, with --record, prepends a dated section to bench/RESULTS.md.
"""
import argparse
import datetime
import os
import platform
import re
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sim:
    def __init__(self, binary, *extra):
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.proc = subprocess.Popen([binary, "-dc", "dc1", "-http-addr", self.addr, *extra],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                urllib.request.urlopen("http://%s/v1/status/leader" % self.addr, timeout=1).read()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("consul-kvsim did not start on " + self.addr)

    def rss_mb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        return float("nan")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def load_tool(binary_dir, *args):
    out = subprocess.run([os.path.join(binary_dir, "kvship-sim-load"), *args], capture_output=True, text=True,
                         timeout=900)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if out.returncode != 0:
        raise RuntimeError("kvship-sim-load %s failed: %s %s" % (args[0], line, out.stderr.strip()))
    fields = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
    return line, fields


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--big", type=int, default=1000000)
    ap.add_argument("--watchers", type=int, default=2000)
    ap.add_argument("--record", action="store_true", help="prepend the figures to bench/RESULTS.md")
    args = ap.parse_args()
    sim_bin = os.path.join(args.bin, "consul-kvsim")
    lines = []

    def report(text):
        print(text, flush=True)
        lines.append(text)

    for ops in (128, 64):
        sim = Sim(sim_bin)
        try:
            _, f = load_tool(args.bin, "load", "--addr", sim.addr, "--keys", str(args.keys), "--conns", "4",
                             "--ops", str(ops))
            report("txn load: %d keys, %d-op txns, 4 connections: %.0f keys/s (%s ms)"
                   % (args.keys, ops, float(f["keys_per_s"]), f["ms"]))
            if ops == 128:
                _, r = load_tool(args.bin, "recurse", "--addr", sim.addr, "--prefix", "bench/", "--repeat", "5")
                report("recurse of %d keys: best %s ms, median %s ms, %s bytes"
                       % (args.keys, r["best_ms"], r["median_ms"], r["bytes"]))
        finally:
            sim.stop()

    sim = Sim(sim_bin)
    try:
        base = sim.rss_mb()
        _, f = load_tool(args.bin, "load", "--addr", sim.addr, "--keys", str(args.big), "--conns", "4",
                         "--ops", "128")
        time.sleep(0.5)
        report("RSS with %d keys of 100 bytes: %.0f MB (empty: %.0f MB; loaded at %.0f keys/s)"
               % (args.big, sim.rss_mb(), base, float(f["keys_per_s"])))
    finally:
        sim.stop()

    sim = Sim(sim_bin)
    try:
        _, w = load_tool(args.bin, "watchers", "--addr", sim.addr, "--count", str(args.watchers))
        report("%s concurrent blocking queries: %s woken by one write in %s ms, %s errors, %s early, sim RSS %.0f MB"
               % (w["count"], w["woken"], w["all_woken_ms"], w["errors"], w["early"], sim.rss_mb()))
    finally:
        sim.stop()

    if args.record:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
        old = open(path).read() if os.path.exists(path) else "# Benchmark results (newest first)\n"
        head, _, rest = old.partition("\n")
        section = ["", "## %s: consul-kvsim (`python3 bench/sim_bench.py --record`)" % datetime.date.today(),
                   "Machine: %s, %d cores. Commit latency 0." % (platform.machine(), os.cpu_count() or 0), ""]
        section += ["- " + l for l in lines]
        with open(path, "w") as fh:
            fh.write(head + "\n" + "\n".join(section) + "\n" + rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
