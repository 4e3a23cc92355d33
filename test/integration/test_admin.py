#!/usr/bin/env python3
"""The /_sim/ hooks: injected faults, stats, snapshot/restore, tombstone reaping, session expiry.

Usage: test_admin.py <path to consul-kvsim> [unittest args]
"""
import http.client
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simctl  # noqa: E402

BIN = simctl.binary_from_argv(sys.argv)


class Faults(unittest.TestCase):
    def setUp(self):
        self.sim = simctl.Sim(BIN)
        self.sim.put("a", b"hello")

    def tearDown(self):
        self.sim.kill()

    def test_status_fault_for_the_next_n_matching_requests(self):
        self.sim.admin("PUT", "fault", {"path_prefix": "/v1/kv/", "method": "GET", "count": 2, "status": 500,
                                        "body": "injected"})
        self.assertEqual(self.sim.put("b"), b"true", "PUT does not match method GET")
        for _ in range(2):
            st, hdrs, body = self.sim.get("a")
            self.assertEqual((st, body), (500, b"injected"))
            self.assertEqual(hdrs["x-consul-default-acl-policy"], "allow")
        self.assertEqual(self.sim.get("a")[0], 200, "count used up")

    def test_fault_without_count_lasts_until_cleared(self):
        self.sim.admin("PUT", "fault", {"path_prefix": "/v1/txn", "status": 503})
        for _ in range(3):
            self.assertEqual(self.sim.request("PUT", "/v1/txn", [])[0], 503)
        self.assertEqual(self.sim.get("a")[0], 200, "other paths unaffected")
        self.sim.admin("DELETE", "faults")
        self.assertEqual(self.sim.request("PUT", "/v1/txn", [])[0], 200)

    def test_delay(self):
        self.sim.admin("PUT", "fault", {"path_prefix": "/v1/kv/a", "count": 1, "delay_ms": 400})
        t0 = time.monotonic()
        st, _, _ = self.sim.get("a")
        self.assertEqual(st, 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.38)
        t0 = time.monotonic()
        self.sim.get("a")
        self.assertLess(time.monotonic() - t0, 0.3)

    def test_drop_mid_response(self):
        self.sim.put("big", b"x" * 5000)
        self.sim.admin("PUT", "fault", {"path_prefix": "/v1/kv/big", "count": 1, "drop_after_bytes": 1000})
        conn = http.client.HTTPConnection("127.0.0.1", self.sim.port, timeout=10)
        conn.request("GET", "/v1/kv/big?raw")
        with self.assertRaises((http.client.IncompleteRead, http.client.RemoteDisconnected, ConnectionError)):
            r = conn.getresponse()
            r.read()
        conn.close()
        st, _, body = self.sim.get("big?raw")
        self.assertEqual((st, len(body)), (200, 5000))

    def test_bad_fault_specs(self):
        for spec in [{"path_prefix": "/v1/kv/"}, {"status": 42}, {"bogus": 1}, {"count": 0, "status": 500}]:
            st, _, _ = self.sim.request("PUT", "/_sim/fault", spec)
            self.assertEqual(st, 400, spec)
        self.assertEqual(self.sim.request("PUT", "/_sim/fault", b"{not json")[0], 400)

    def test_faults_do_not_touch_admin_paths(self):
        self.sim.admin("PUT", "fault", {"path_prefix": "/", "status": 500})
        self.assertEqual(self.sim.get("a")[0], 500)
        self.sim.admin("DELETE", "faults")
        self.assertEqual(self.sim.get("a")[0], 200)


class Stats(unittest.TestCase):
    def test_counts_by_route_and_class_and_reset(self):
        with simctl.Sim(BIN) as sim:
            sim.admin("PUT", "stats/reset")
            sim.put("s/a", b"12345")
            sim.get("s/a")
            sim.get("s/?recurse")
            sim.request("PUT", "/v1/txn", [{"KV": {"Verb": "get", "Key": "s/a"}}])
            stats = sim.admin("GET", "stats")
            self.assertEqual(stats["totals"]["requests"], 4, stats)
            self.assertEqual(stats["by_route"]["PUT /v1/kv"]["requests"], 1)
            self.assertEqual(stats["by_route"]["GET /v1/kv"]["requests"], 2)
            self.assertEqual(stats["by_route"]["PUT /v1/txn"]["requests"], 1)
            self.assertGreaterEqual(stats["by_route"]["PUT /v1/kv"]["bytes_in"], 5)
            self.assertGreater(stats["by_route"]["GET /v1/kv"]["bytes_out"], 0)
            self.assertEqual(stats["by_class"]["read"]["requests"], 2)
            self.assertEqual(stats["by_class"]["list"]["requests"], 1)
            self.assertEqual(stats["by_class"]["txn_read"]["requests"], 1)
            self.assertEqual(stats["by_status"]["200"], 4)
            self.assertEqual(stats["store"]["keys"], 1)
            sim.admin("PUT", "stats/reset")
            self.assertEqual(sim.admin("GET", "stats")["totals"]["requests"], 0)


class SnapshotRestore(unittest.TestCase):
    def test_restore_moves_indexes_back(self):
        with simctl.Sim(BIN) as sim:
            sim.put("r/a", b"1")
            st, _, snap = sim.request("GET", "/_sim/snapshot")
            self.assertEqual(st, 200)
            old_idx = sim.index("/v1/kv/r/?recurse")
            for i in range(5):
                sim.put("r/b%d" % i)
            new_idx = sim.index("/v1/kv/r/?recurse")
            result = {}

            def watch():
                t0 = time.monotonic()
                st2, hdrs, _ = sim.get("r/?recurse&index=%d&wait=2s" % new_idx)
                result.update(status=st2, index=int(hdrs["x-consul-index"]), secs=time.monotonic() - t0)

            t = threading.Thread(target=watch)
            t.start()
            time.sleep(0.4)
            self.assertEqual(sim.request("PUT", "/_sim/restore", snap)[0], 200)
            t.join(10)
            # Consul re-runs waiters on a restore; their index is now behind the client's, so they block
            # until the wait ends and then report the lower index (consul-api.md §6).
            self.assertEqual(result["status"], 200)
            self.assertEqual(result["index"], old_idx, "the index went back, as after consul snapshot restore")
            self.assertGreaterEqual(result["secs"], 1.9)
            self.assertEqual(sim.get("r/b0")[0], 404)
            self.assertEqual(sim.get("r/a?raw")[2], b"1")
            sim.put("r/c")
            self.assertGreater(sim.index("/v1/kv/r/c"), old_idx, "writes continue from the restored index")

    def test_bad_snapshot_is_400_and_changes_nothing(self):
        with simctl.Sim(BIN) as sim:
            sim.put("k")
            self.assertEqual(sim.request("PUT", "/_sim/restore", b"garbage")[0], 400)
            self.assertEqual(sim.get("k")[0], 200)


class Timers(unittest.TestCase):
    def test_reap_tombstones_lowers_the_prefix_index(self):
        with simctl.Sim(BIN) as sim:
            sim.put("t/a")
            live = sim.index("/v1/kv/t/a")
            sim.put("t/b")
            sim.request("DELETE", "/v1/kv/t/b")
            self.assertGreater(sim.index("/v1/kv/t/?recurse"), live)
            sim.admin("PUT", "tombstones/reap")
            self.assertEqual(sim.index("/v1/kv/t/?recurse"), live)

    def test_tombstone_ttl_reaps_on_its_own(self):
        with simctl.Sim(BIN, args=["-tombstone-ttl", "1s"]) as sim:
            sim.put("t/a")
            live = sim.index("/v1/kv/t/a")
            sim.put("t/b")
            sim.request("DELETE", "/v1/kv/t/b")
            simctl.wait_for(lambda: sim.index("/v1/kv/t/?recurse") == live, timeout=8, what="tombstone reaped")

    def test_expire_session_releases_its_locks(self):
        with simctl.Sim(BIN) as sim:
            sid = sim.json("PUT", "/v1/session/create", {"TTL": "30s", "LockDelay": "0s"})["ID"]
            self.assertEqual(sim.put("l?acquire=" + sid), b"true")
            sim.admin("PUT", "session/%s/expire" % sid)
            self.assertEqual(sim.json("GET", "/v1/session/info/" + sid), [])
            self.assertNotIn("Session", sim.json("GET", "/v1/kv/l")[0])
            self.assertEqual(sim.request("PUT", "/_sim/session/%s/expire" % sid)[0], 404)

    def test_session_ttl_expires(self):
        with simctl.Sim(BIN) as sim:
            sid = sim.json("PUT", "/v1/session/create", {"TTL": "10s"})["ID"]
            idx = sim.index("/v1/session/info/" + sid)
            # The server's timer is 2 x TTL; a blocking query on the session wakes when it goes.
            t0 = time.monotonic()
            st, _, body = sim.request("GET", "/v1/session/info/%s?index=%d&wait=40s" % (sid, idx), timeout=60)
            self.assertEqual((st, body), (200, b"[]"))
            self.assertGreaterEqual(time.monotonic() - t0, 15)

    def test_unknown_admin_endpoint(self):
        with simctl.Sim(BIN) as sim:
            self.assertEqual(sim.request("GET", "/_sim/nothing")[0], 404)


if __name__ == "__main__":
    unittest.main()
