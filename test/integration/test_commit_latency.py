#!/usr/bin/env python3
"""-commit-latency: writes wait for a group commit; writes arriving together share one; reads never wait.

Usage: test_commit_latency.py <path to consul-kvsim> [unittest args]
"""
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simctl  # noqa: E402

BIN = simctl.binary_from_argv(sys.argv)
LATENCY = 0.4


class GroupCommit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = simctl.Sim(BIN, args=["-commit-latency", "%dms" % int(LATENCY * 1000)])

    @classmethod
    def tearDownClass(cls):
        cls.sim.kill()

    def stats(self):
        return self.sim.admin("GET", "stats")["store"]

    def test_a_write_waits_for_its_commit(self):
        t0 = time.monotonic()
        self.sim.put("w/a")
        self.assertGreaterEqual(time.monotonic() - t0, LATENCY * 0.9)
        self.assertEqual(self.sim.get("w/a")[0], 200, "visible once acknowledged")

    def test_concurrent_writes_share_one_commit(self):
        before = self.stats()
        n = 12
        errors = []

        def writer(i):
            try:
                self.sim.put("g/k%d" % i)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        ts = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
        t0 = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        after = self.stats()
        writes = after["committed_writes"] - before["committed_writes"]
        commits = after["commits"] - before["commits"]
        self.assertEqual(writes, n)
        self.assertLessEqual(commits, 3, "writes that arrive together are applied together")
        self.assertLess(time.monotonic() - t0, n * LATENCY, "not one commit interval per write")
        self.assertEqual(len(self.sim.json("GET", "/v1/kv/g/?keys")), n)

    def test_txn_and_sessions_are_writes_too(self):
        t0 = time.monotonic()
        st, _, _ = self.sim.request("PUT", "/v1/txn", [{"KV": {"Verb": "set", "Key": "t/a", "Value": "dg=="}}])
        self.assertEqual(st, 200)
        self.assertGreaterEqual(time.monotonic() - t0, LATENCY * 0.9)
        t0 = time.monotonic()
        self.sim.json("PUT", "/v1/session/create", {"TTL": "20s"})
        self.assertGreaterEqual(time.monotonic() - t0, LATENCY * 0.9)

    def test_reads_do_not_wait(self):
        self.sim.put("r/a")
        done = threading.Event()
        threading.Thread(target=lambda: (self.sim.put("r/b"), done.set())).start()
        time.sleep(0.05)
        t0 = time.monotonic()
        st, _, _ = self.sim.get("r/a")
        self.assertEqual(st, 200)
        self.assertLess(time.monotonic() - t0, LATENCY * 0.75)
        st, _, _ = self.sim.request("PUT", "/v1/txn", [{"KV": {"Verb": "get", "Key": "r/a"}}])
        self.assertEqual(st, 200)
        done.wait(5)


class NoLatency(unittest.TestCase):
    def test_each_write_is_its_own_commit(self):
        with simctl.Sim(BIN) as sim:
            before = sim.admin("GET", "stats")["store"]
            for i in range(5):
                sim.put("k%d" % i)
            after = sim.admin("GET", "stats")["store"]
            self.assertEqual(after["commits"] - before["commits"], 5)


if __name__ == "__main__":
    unittest.main()
