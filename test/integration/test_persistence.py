#!/usr/bin/env python3
"""-data-dir: data and indexes survive graceful stops, crashes and journal compaction.

Usage: test_persistence.py <path to consul-kvsim> [unittest args]
"""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simctl  # noqa: E402

BIN = simctl.binary_from_argv(sys.argv)


class Persistence(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = os.path.join(self.tmp.name, "data")

    def tearDown(self):
        self.tmp.cleanup()

    def fill(self, sim):
        sim.put("p/a", b"alpha", "?flags=3304740253564472344")
        sim.put("p/b", b"beta")
        sim.request("DELETE", "/v1/kv/p/b")
        sim.request("PUT", "/v1/txn", [{"KV": {"Verb": "set", "Key": "p/t%d" % i, "Value": "dA=="}} for i in range(5)])
        sid = sim.json("PUT", "/v1/session/create", {"TTL": "60s", "Name": "keep"})["ID"]
        sim.put("p/lock", b"", "?acquire=" + sid)
        return sid

    def snapshot_of(self, sim):
        entries = sim.json("GET", "/v1/kv/p/?recurse")
        return entries, sim.index("/v1/kv/p/?recurse"), sim.index("/v1/kv/zzz-missing")

    def check_restart(self, kill):
        sim = simctl.Sim(BIN, data_dir=self.dir)
        try:
            sid = self.fill(sim)
            before, list_idx, max_idx = self.snapshot_of(sim)
            sim.restart(kill=kill)
            after, list_idx2, max_idx2 = self.snapshot_of(sim)
            self.assertEqual(after, before, "every entry, index and flag survives")
            self.assertEqual(list_idx2, list_idx, "the tombstone's index survives")
            self.assertEqual(max_idx2, max_idx)
            info = sim.json("GET", "/v1/session/info/" + sid)
            self.assertEqual([s["Name"] for s in info], ["keep"])
            sim.put("p/new")
            self.assertGreater(sim.index("/v1/kv/p/new"), max_idx, "indexes never go backwards")
        finally:
            sim.kill()

    def test_graceful_restart(self):
        self.check_restart(kill=False)

    def test_crash_restart_replays_the_journal(self):
        self.check_restart(kill=True)

    def test_compaction_keeps_everything(self):
        sim = simctl.Sim(BIN, data_dir=self.dir, args=["-journal-compact-bytes", "2000"])
        try:
            for i in range(200):
                sim.put("c/k%03d" % i, b"x" * 50)
            size = os.path.getsize(os.path.join(self.dir, "journal"))
            self.assertLess(size, 4000, "the journal was compacted into the snapshot")
            self.assertTrue(os.path.exists(os.path.join(self.dir, "snapshot")))
            idx = sim.index("/v1/kv/c/?recurse")
            sim.restart(kill=True)
            self.assertEqual(len(sim.json("GET", "/v1/kv/c/?keys")), 200)
            self.assertEqual(sim.index("/v1/kv/c/?recurse"), idx)
        finally:
            sim.kill()

    def test_restore_is_persisted(self):
        sim = simctl.Sim(BIN, data_dir=self.dir)
        try:
            sim.put("r/a")
            snap = sim.request("GET", "/_sim/snapshot")[2]
            sim.put("r/b")
            self.assertEqual(sim.request("PUT", "/_sim/restore", snap)[0], 200)
            sim.restart(kill=True)
            self.assertEqual(sim.get("r/a")[0], 200)
            self.assertEqual(sim.get("r/b")[0], 404)
        finally:
            sim.kill()

    def test_without_data_dir_nothing_survives(self):
        sim = simctl.Sim(BIN)
        try:
            sim.put("m/a")
            sim.restart()
            self.assertEqual(sim.get("m/a")[0], 404)
        finally:
            sim.kill()

    def test_corrupt_journal_fails_clearly(self):
        sim = simctl.Sim(BIN, data_dir=self.dir)
        sim.put("a")
        sim.kill()
        with open(os.path.join(self.dir, "journal"), "ab") as f:
            f.write(b"this is not a record\nnor this\n")
        p = subprocess.run([BIN, "-data-dir", self.dir, "-http-addr", "127.0.0.1:0"], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertIn("journal", p.stderr)
        self.assertIn("not a journal record", p.stderr)

    def test_torn_last_record_is_dropped(self):
        sim = simctl.Sim(BIN, data_dir=self.dir)
        try:
            sim.put("a", b"kept")
            sim.kill()
            with open(os.path.join(self.dir, "journal"), "ab") as f:
                f.write(b"put =half-written")
            sim.start()
            self.assertEqual(sim.get("a?raw")[2], b"kept")
            sim.put("b")
            sim.restart(kill=True)
            self.assertEqual(sim.get("b")[0], 200)
        finally:
            sim.kill()

    def test_data_dir_in_use(self):
        with simctl.Sim(BIN, data_dir=self.dir):
            p = subprocess.run([BIN, "-data-dir", self.dir, "-http-addr", "127.0.0.1:0"], capture_output=True,
                               text=True, timeout=10)
            self.assertEqual(p.returncode, 1)
            self.assertIn("in use", p.stderr)


if __name__ == "__main__":
    unittest.main()
