#!/usr/bin/env python3
"""?dc= forwarding between federated sims, WAN cuts and WAN latency.

Usage: test_forwarding.py <path to consul-kvsim> [unittest args]
"""
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simctl  # noqa: E402

BIN = simctl.binary_from_argv(sys.argv)


class Forwarding(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fed = simctl.federation(BIN, ["dc1", "dc2"])
        dcs = cls.fed.__enter__()
        cls.dc1, cls.dc2 = dcs["dc1"], dcs["dc2"]

    @classmethod
    def tearDownClass(cls):
        try:
            for sim in (cls.dc1, cls.dc2):
                rc = sim.stop()
                assert rc == 0, "%s exited with %s:\n%s" % (sim.dc, rc, sim.log())
        finally:
            cls.fed.__exit__(None, None, None)

    def tearDown(self):
        self.dc1.admin("PUT", "wan/dc2/restore")

    def test_kv_txn_session_status_go_to_the_remote_dc(self):
        self.assertEqual(self.dc1.put("fw/a?dc=dc2", b"remote"), b"true")
        self.assertEqual(self.dc1.get("fw/a")[0], 404, "not written locally")
        self.assertEqual(self.dc2.get("fw/a")[0], 200)
        st, hdrs, body = self.dc1.get("fw/a?dc=dc2&raw")
        self.assertEqual((st, body), (200, b"remote"))
        self.assertEqual(hdrs["x-consul-index"], self.dc2.get("fw/a")[1]["x-consul-index"],
                         "the remote DC's index, not ours")
        st, _, _ = self.dc1.request("PUT", "/v1/txn?dc=dc2", [{"KV": {"Verb": "set", "Key": "fw/t", "Value": "dA=="}}])
        self.assertEqual(st, 200)
        self.assertEqual(self.dc2.get("fw/t")[0], 200)
        sid = self.dc1.json("PUT", "/v1/session/create?dc=dc2", {"TTL": "15s"})["ID"]
        self.assertEqual(len(self.dc2.json("GET", "/v1/session/info/" + sid)), 1)
        self.assertEqual(self.dc1.json("GET", "/v1/session/info/" + sid), [])
        self.assertEqual(self.dc1.json("GET", "/v1/status/leader?dc=dc2"), self.dc2.json("GET", "/v1/status/leader"))
        self.assertEqual(self.dc1.json("GET", "/v1/catalog/datacenters"), ["dc1", "dc2"])

    def test_local_parse_errors_come_first(self):
        st, _, body = self.dc1.request("GET", "/v1/kv/a?dc=nowhere&index=abc")
        self.assertEqual((st, body), (400, b"Invalid index"))
        st, _, body = self.dc1.request("GET", "/v1/kv/a?dc=nowhere")
        self.assertEqual(st, 500)
        self.assertIn(b"No path to datacenter", body)

    def test_blocking_query_is_forwarded(self):
        self.dc2.put("fb/a")
        idx = int(self.dc1.get("fb/?recurse&dc=dc2")[1]["x-consul-index"])
        threading.Timer(0.3, lambda: self.dc2.put("fb/b")).start()
        t0 = time.monotonic()
        st, hdrs, _ = self.dc1.get("fb/?recurse&dc=dc2&index=%d&wait=20s" % idx)
        self.assertEqual(st, 200)
        self.assertGreater(int(hdrs["x-consul-index"]), idx)
        self.assertLess(time.monotonic() - t0, 5)

    def test_wan_cut_and_restore(self):
        self.dc1.admin("PUT", "wan/dc2/cut")
        st, _, body = self.dc1.get("x?dc=dc2")
        self.assertEqual(st, 500)
        self.assertIn(b"Remote DC has no server currently reachable", body)
        st, _, body = self.dc1.request("PUT", "/v1/kv/x?dc=dc2", b"v")
        self.assertEqual(st, 500)
        self.assertEqual(self.dc1.json("GET", "/v1/catalog/datacenters"), ["dc1", "dc2"], "still known")
        self.dc1.admin("PUT", "wan/dc2/restore")
        self.assertEqual(self.dc1.put("x?dc=dc2"), b"true")

    def test_cut_interrupts_a_forwarded_blocking_query(self):
        self.dc2.put("fc/a")
        idx = int(self.dc1.get("fc/a?dc=dc2")[1]["x-consul-index"])
        threading.Timer(0.5, lambda: self.dc1.admin("PUT", "wan/dc2/cut")).start()
        t0 = time.monotonic()
        st, _, body = self.dc1.get("fc/a?dc=dc2&index=%d&wait=30s" % idx)
        self.assertEqual(st, 500)
        self.assertIn(b"Remote DC has no server currently reachable", body)
        self.assertLess(time.monotonic() - t0, 5)

    def test_unknown_admin_peer(self):
        st, _, _ = self.dc1.request("PUT", "/_sim/wan/dc7/cut")
        self.assertEqual(st, 404)


class Unreachable(unittest.TestCase):
    def test_peer_down_is_500_unreachable(self):
        port = simctl.free_port()
        with simctl.Sim(BIN, dc="dc1", wan={"dc2": "127.0.0.1:%d" % port}) as sim:
            st, _, body = sim.get("a?dc=dc2")
            self.assertEqual(st, 500)
            self.assertIn(b"Remote DC has no server currently reachable", body)


class WanLatency(unittest.TestCase):
    def test_each_forwarded_request_is_delayed(self):
        with simctl.federation(BIN, ["dc1", "dc2"], args=["-wan-latency", "300ms"]) as dcs:
            t0 = time.monotonic()
            self.assertEqual(dcs["dc1"].get("a?dc=dc2")[0], 404)
            self.assertGreaterEqual(time.monotonic() - t0, 0.28)
            t0 = time.monotonic()
            self.assertEqual(dcs["dc1"].get("a")[0], 404)
            self.assertLess(time.monotonic() - t0, 0.25, "local requests are not delayed")


if __name__ == "__main__":
    unittest.main()
