#!/usr/bin/env python3
"""consul-kvsim's command line, ready line and graceful shutdown.

Usage: test_cli.py <path to consul-kvsim> [unittest args]
"""
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simctl  # noqa: E402

BIN = simctl.binary_from_argv(sys.argv)


def run(*args, timeout=10):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stderr


class CommandLine(unittest.TestCase):
    def test_unknown_flag_exits_2_naming_it(self):
        rc, err = run("-bogus", "1")
        self.assertEqual(rc, 2)
        self.assertIn("flag provided but not defined: -bogus", err)

    def test_bad_values_name_the_flag(self):
        for args, flag in [(["-txn-max-ops", "x"], "-txn-max-ops"),
                           (["-tombstone-ttl", "15"], "-tombstone-ttl"),
                           (["-commit-latency=abc"], "-commit-latency"),
                           (["--acl-default-policy=maybe"], "-acl-default-policy"),
                           (["-http-addr", "nowhere"], "-http-addr"),
                           (["-wan", "dc2"], "-wan"),
                           (["-log-level", "loud"], "-log-level")]:
            rc, err = run(*args)
            self.assertEqual(rc, 2, args)
            self.assertIn("for flag %s" % flag, err, args)

    def test_missing_value(self):
        rc, err = run("-dc")
        self.assertEqual(rc, 2)
        self.assertIn("flag needs an argument: -dc", err)

    def test_stray_argument(self):
        rc, err = run("-dc", "dc1", "extra")
        self.assertEqual(rc, 2)
        self.assertIn("unexpected argument", err)

    def test_help_exits_0(self):
        rc, err = run("-h")
        self.assertEqual(rc, 0)
        self.assertIn("-http-addr", err)

    def test_go_flag_syntax_forms(self):
        with simctl.Sim(BIN, dc="east", args=["--node-name=n1", "-txn-max-ops=7"]) as sim:
            self.assertEqual(sim.json("GET", "/v1/agent/self")["Config"]["NodeName"], "n1")
            ops = [{"KV": {"Verb": "set", "Key": "k%d" % i, "Value": "dg=="}} for i in range(8)]
            status, _, body = sim.request("PUT", "/v1/txn", ops)
            self.assertEqual((status, body), (413, b"Transaction contains too many operations (8 > 7)"))

    def test_port_zero_prints_the_bound_port(self):
        with simctl.Sim(BIN, dc="dc9") as sim:
            self.assertNotEqual(sim.port, 0)
            self.assertEqual(sim.json("GET", "/v1/agent/self")["Config"]["Datacenter"], "dc9")
            self.assertTrue(any("dc=dc9 listening on 127.0.0.1:%d" % sim.port in l for l in sim.lines))

    def test_port_in_use_fails_clearly(self):
        with simctl.Sim(BIN) as first:
            rc, err = run("-http-addr", first.addr)
            self.assertEqual(rc, 1)
            self.assertIn("cannot listen on %s" % first.addr, err)

    def test_data_dir_that_cannot_be_created(self):
        with tempfile.TemporaryDirectory() as d:
            blocker = os.path.join(d, "file")
            open(blocker, "w").close()
            rc, err = run("-data-dir", os.path.join(blocker, "sub"))
            self.assertEqual(rc, 1)
            self.assertIn("cannot create data dir", err)


class Shutdown(unittest.TestCase):
    def test_sigterm_ends_blocking_queries_and_exits_0(self):
        sim = simctl.Sim(BIN)
        try:
            sim.put("a")
            idx = sim.index("/v1/kv/a")
            result = {}

            def watch():
                t0 = time.monotonic()
                result["status"] = sim.request("GET", "/v1/kv/a?index=%d&wait=60s" % idx)[0]
                result["secs"] = time.monotonic() - t0

            t = threading.Thread(target=watch)
            t.start()
            time.sleep(0.5)
            rc = sim.stop(signal.SIGTERM, timeout=15)
            t.join(15)
            self.assertEqual(rc, 0)
            self.assertEqual(result.get("status"), 200, "the blocking query is answered, not dropped")
            self.assertLess(result["secs"], 10)
        finally:
            sim.kill()

    def test_sigint_exits_0_when_idle(self):
        sim = simctl.Sim(BIN)
        try:
            t0 = time.monotonic()
            self.assertEqual(sim.stop(signal.SIGINT), 0)
            self.assertLess(time.monotonic() - t0, 5)
        finally:
            sim.kill()


if __name__ == "__main__":
    unittest.main()
