#!/usr/bin/env python3
"""The kvship demo: two simulated Consul datacenters (consul-kvsim) federated over a WAN, Vault-like data
in dc1, and kvship's consul-replicate running against dc2's agent, copying `vault/` from dc1 with
`vault/sys/expire/` excluded. A change and a delete in dc1 then arrive in dc2, and the replicator's
Prometheus metrics are scraped. Then the georedundant setup: one replicator per DC with the leader-DC gate
(`-gate vault`), following Vault's `active` registration in Consul's catalog as it moves from dc1 to dc2."""
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


def register_vault(sim, active):
    """Vault's own catalog registration: service `vault`, tag active or standby, a passing TTL check."""
    body = {"ID": "vault", "Name": "vault", "Tags": ["active" if active else "standby"], "Address": "127.0.0.1",
            "Port": 8200, "Check": {"TTL": "10m", "Status": "passing"}}
    status, _, data = sim.request("PUT", "/v1/agent/service/register", json.dumps(body).encode())
    if status != 200:
        raise SystemExit("demo: service registration failed: %s %r" % (status, data[:200]))


def scrape(addr):
    try:
        text = urllib.request.urlopen("http://%s/metrics" % addr, timeout=5).read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith("kvship_gate_") or line.startswith("kvship_lock_"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def gate_state(addr):
    m = scrape(addr)
    for state in ("following", "primary", "paused"):
        if m.get('kvship_gate_state{state="%s"}' % state) == 1:
            primary = [k.split('"')[1] for k, v in m.items() if k.startswith("kvship_gate_primary{") and v == 1]
            return state + (" " + primary[0] if primary else "")
    return "starting"


def gate_demo(dc1, dc2, replicate_bin):
    print("\n---- Georedundancy: one replicator per DC, both gated on the Vault leader ----\n")
    register_vault(dc1, active=True)
    register_vault(dc2, active=False)
    print("Vault registered in both DCs' catalogs: `active` in dc1, `standby` in dc2.")
    procs, addrs = {}, {}
    try:
        for name, sim in (("dc1", dc1), ("dc2", dc2)):
            addrs[name] = "127.0.0.1:%d" % free_port()
            cmd = [replicate_bin, "-consul-addr", sim.addr, "-prefix", "vault/", "-exclude", "vault/sys/expire/",
                   "-gate", "vault", "-gate-settle", "2s", "-gate-interval", "200ms",
                   "-lock", "locks/consul-replicate", "-metrics-addr", addrs[name], "-log-level", "info"]
            print("$ " + " ".join(cmd))
            procs[name] = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        wait_until("the gates to decide", lambda: gate_state(addrs["dc1"]) == "primary dc1"
                   and gate_state(addrs["dc2"]) == "following dc1")
        print("\ngates: dc1 -> %s, dc2 -> %s" % (gate_state(addrs["dc1"]), gate_state(addrs["dc2"])))
        dc1.put("vault/logical/4f1e/app/written-in-dc1", b"v1")
        secs = wait_until("dc1's write in dc2",
                          lambda: listing(dc2, "vault/").get("vault/logical/4f1e/app/written-in-dc1") == b"v1")
        print("A write in dc1 (the primary) reached dc2 in %.3fs." % secs)

        print("\nVault fails over: `active` moves to dc2 (the gates stop at once, then turn after the 2 s settle).")
        t0 = time.monotonic()
        register_vault(dc1, active=False)
        register_vault(dc2, active=True)
        wait_until("the gates to turn", lambda: gate_state(addrs["dc2"]) == "primary dc2"
                   and gate_state(addrs["dc1"]) == "following dc2", timeout=30)
        print("gates after %.1fs: dc1 -> %s, dc2 -> %s" % (time.monotonic() - t0, gate_state(addrs["dc1"]),
                                                           gate_state(addrs["dc2"])))
        dc2.put("vault/logical/4f1e/app/written-in-dc2", b"v2")
        secs = wait_until("dc2's write in dc1",
                          lambda: listing(dc1, "vault/").get("vault/logical/4f1e/app/written-in-dc2") == b"v2")
        def replicated(sim):
            return {k: v for k, v in listing(sim, "vault/").items() if not k.startswith("vault/sys/expire/")}
        print("A write in dc2 (the new primary) reached dc1 in %.3fs; dc1 and dc2 hold the same vault/ "
              "(outside the excluded vault/sys/expire/): %s" % (secs, replicated(dc1) == replicated(dc2)))
        for name in ("dc1", "dc2"):
            print("\nGate and lock metrics of %s's replicator:" % name)
            for k, v in sorted(scrape(addrs[name]).items()):
                print("    %s %g" % (k, v))
    finally:
        for name, proc in procs.items():
            proc.terminate()
            _, err = proc.communicate(timeout=15)
            gate_lines = [l for l in err.splitlines() if "(gate)" in l or "lock" in l]
            print("\n%s's replicator exited with %d; its gate and lock log lines:" % (name, proc.returncode))
            for line in gate_lines[-8:]:
                print("    " + line)


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
        gate_demo(dc1, dc2, replicate_bin)
    print("\ndemo done")


if __name__ == "__main__":
    main()
