#!/usr/bin/env python3
"""The kvship demo: two simulated Consul datacenters (consul-kvsim) federated over a WAN, Vault-like data
in dc1, and kvship's consul-replicate running against dc2's agent, copying `vault/` from dc1 with
`vault/sys/expire/` excluded. A change and a delete in dc1 then arrive in dc2, and the replicator's
Prometheus metrics are scraped."""
import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "integration"))
import simctl  # noqa: E402

VAULT_DATA = {
    "vault/core/keyring": b"\x00keyring-bytes\xff",
    "vault/core/master": b"m" * 64,
    "vault/core/mounts": b'{"entries":[]}',
    "vault/logical/4f1e/app/db-password": b"s3cr3t",
    "vault/logical/4f1e/app/api-key": b"k-123",
    "vault/sys/expire/id/auth/token/abc": b"lease-only-the-primary-may-act-on",
    "vault/sys/token/accessor/9d2c": b"accessor",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listing(sim, prefix):
    status, _, body = sim.request("GET", "/v1/kv/%s?recurse" % prefix)
    if status == 404:
        return {}
    return {e["Key"]: base64.b64decode(e["Value"] or "") for e in json.loads(body)}


def wait_until(what, predicate, timeout=20):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic() - t0
        time.sleep(0.02)
    raise SystemExit("demo: timed out waiting for " + what)


def show(title, data):
    print(title)
    for k, v in sorted(data.items()):
        print("    %-42s %r" % (k, v if len(v) < 40 else v[:37] + b"..."))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin")
    args = ap.parse_args()
    sim_bin = os.path.join(args.bin, "consul-kvsim")
    replicate_bin = os.path.join(args.bin, "consul-replicate")
    with simctl.federation(sim_bin, ["dc1", "dc2"], args=["-commit-latency", "1ms"]) as dcs:
        dc1, dc2 = dcs["dc1"], dcs["dc2"]
        print("dc1 (source) on %s, dc2 (destination) on %s, WAN-federated\n" % (dc1.addr, dc2.addr))
        for k, v in VAULT_DATA.items():
            dc1.put(k, v)
        show("dc1 holds:", listing(dc1, "vault/"))

        metrics_addr = "127.0.0.1:%d" % free_port()
        cmd = [replicate_bin, "-consul-addr", dc2.addr, "-prefix", "vault/@dc1", "-exclude", "vault/sys/expire/",
               "-metrics-addr", metrics_addr, "-log-level", "info"]
        print("\n$ " + " ".join(cmd))
        rep = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        try:
            expected = {k: v for k, v in VAULT_DATA.items() if not k.startswith("vault/sys/expire/")}
            secs = wait_until("the initial copy", lambda: listing(dc2, "vault/") == expected)
            show("\ndc2 after the initial copy (%.2fs; vault/sys/expire/ excluded):" % secs, listing(dc2, "vault/"))

            dc1.put("vault/logical/4f1e/app/db-password", b"rotated")
            status, _, _ = dc1.request("DELETE", "/v1/kv/vault/logical/4f1e/app/api-key")
            expected["vault/logical/4f1e/app/db-password"] = b"rotated"
            del expected["vault/logical/4f1e/app/api-key"]
            secs = wait_until("the change and the delete", lambda: listing(dc2, "vault/") == expected)
            show("\nA change and a delete in dc1 reached dc2 in %.3fs:" % secs, listing(dc2, "vault/"))

            status, _, body = dc2.request("GET", "/v1/kv/service/consul-replicate/statuses/?recurse")
            record = json.loads(body)[0]
            print("\nCheckpoint in dc2 (consul-replicate's own format) at %s:\n%s"
                  % (record["Key"], base64.b64decode(record["Value"]).decode()))

            metrics = urllib.request.urlopen("http://%s/metrics" % metrics_addr, timeout=5).read().decode()
            print("\nSome metrics from http://%s/metrics:" % metrics_addr)
            for line in metrics.splitlines():
                if line.startswith("kvship_") and any(w in line for w in (
                        "keys_put_total", "keys_deleted_total", "txns_total", "lag", "applied_index",
                        "source_index")):
                    print("    " + line)
            ready = urllib.request.urlopen("http://%s/readyz" % metrics_addr, timeout=5).status
            print("    /readyz -> %d" % ready)
        finally:
            rep.terminate()
            _, err = rep.communicate(timeout=15)
        print("\nconsul-replicate exited with %d after SIGTERM; its log:" % rep.returncode)
        for line in err.splitlines()[-12:]:
            print("    " + line)
    print("\ndemo done")


if __name__ == "__main__":
    main()
