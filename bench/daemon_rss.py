#!/usr/bin/env python3
"""Peak RSS of a consul-replicate daemon (not -once) that copies N keys and stays up to watch them:
sim_load N keys into dc1, start the replicator into dc2, wait for the copy, read VmHWM; then 20 changes (a
grouped round) and VmHWM again.

    python3 bench/daemon_rss.py [--keys 1000000] [--bin build/bin] [--replicator <binary>]"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import replicate_bench as rb  # noqa: E402


def vm(pid):
    st = dict(line.split(":", 1) for line in open("/proc/%d/status" % pid))
    return st["VmHWM"].strip(), st["VmRSS"].strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--replicator")
    args = ap.parse_args()
    binary = args.replicator or os.path.join(args.bin, "consul-replicate")
    with rb.federation(args.bin, ["dc1", "dc2"]) as dcs:
        src, dst = dcs["dc1"], dcs["dc2"]
        rb.sim_load(args.bin, src.addr, args.keys)
        t0 = time.monotonic()
        proc = subprocess.Popen([binary, "-consul-addr", dst.addr, "-prefix", "bench/@dc1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=rb.replicator_env())
        try:
            while rb.keys_count(dst) < args.keys:
                if proc.poll() is not None:
                    raise RuntimeError("the replicator exited")
                time.sleep(0.5)
            copied = time.monotonic() - t0
            time.sleep(3)
            hwm, rss = vm(proc.pid)
            print("%s: %d keys copied in %.1f s; VmHWM %s, VmRSS %s" % (binary, args.keys, copied, hwm, rss))
            for i in range(20):
                src.request("PUT", "/v1/kv/bench/d%03d/k%08d" % (i % 256, i), b"changed")
            time.sleep(3)
            hwm, rss = vm(proc.pid)
            print("after 20 changes: VmHWM %s, VmRSS %s" % (hwm, rss))
        finally:
            rb.stop_replicator(proc)


if __name__ == "__main__":
    main()
