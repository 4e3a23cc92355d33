#!/usr/bin/env python3
"""Two simulated Consul datacenters (consul-kvsim), federated over a WAN: Vault-like data written into
dc1, read back through dc2 with ?dc=dc1, a blocking query woken by a change, the sim's counters."""
import argparse
import base64
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "integration"))
import simctl  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin")
    args = ap.parse_args()
    sim = os.path.join(args.bin, "consul-kvsim")
    with simctl.federation(sim, ["dc1", "dc2"]) as dcs:
        dc1, dc2 = dcs["dc1"], dcs["dc2"]
        print(f"dc1 on {dc1.addr}, dc2 on {dc2.addr}")
        ops = []
        for path, value in [("vault/core/master", "m" * 40), ("vault/logical/abc/secret", "s3cr3t"),
                            ("vault/sys/expire/id/x", "lease"), ("vault/sys/token/accessor/y", "t")]:
            ops.append({"KV": {"Verb": "set", "Key": path, "Value": base64.b64encode(value.encode()).decode()}})
        st, _, body = dc1.request("PUT", "/v1/txn", json.dumps(ops))
        print(f"txn of {len(ops)} sets into dc1: HTTP {st}")
        st, hdr, body = dc2.request("GET", "/v1/kv/vault/?keys&dc=dc1")
        print(f"dc2 lists dc1's vault/ through the WAN: HTTP {st} X-Consul-Index={hdr.get('x-consul-index')}")
        for k in json.loads(body):
            print("   ", k)
        idx = hdr.get("x-consul-index")
        result = {}

        def watch():
            t0 = time.monotonic()
            s, h, b = dc2.request("GET", f"/v1/kv/vault/logical/?recurse&dc=dc1&index={idx}&wait=30s")
            result.update(status=s, index=h.get("x-consul-index"), secs=time.monotonic() - t0, body=b)

        t = threading.Thread(target=watch)
        t.start()
        time.sleep(0.5)
        dc1.request("PUT", "/v1/kv/vault/logical/abc/secret", "rotated")
        t.join()
        value = base64.b64decode(json.loads(result["body"])[0]["Value"]).decode()
        print(f"a blocking query through dc2 woke {result['secs']:.2f}s after a write in dc1: "
              f"index {idx} -> {result['index']}, value now {value!r}")
        st, _, body = dc1.request("GET", "/_sim/stats")
        stats = json.loads(body)
        print("dc1 request counters:", json.dumps(stats, sort_keys=True)[:600])
    print("demo done")


if __name__ == "__main__":
    main()
