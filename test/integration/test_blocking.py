#!/usr/bin/env python3
"""Blocking queries: which writes wake which waiters (consul-api.md §6), and many waiters at once.

Usage: test_blocking.py <path to consul-kvsim> [unittest args]
"""
import os
import resource
import selectors
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simctl  # noqa: E402

BIN = simctl.binary_from_argv(sys.argv)


class Watchers:
    """Blocking GETs on raw sockets, so hundreds can wait without a thread each."""

    def __init__(self, sim):
        self.sim = sim
        self.sel = selectors.DefaultSelector()
        self.started = {}
        self.done = {}

    def add(self, name, path):
        s = socket.create_connection(("127.0.0.1", self.sim.port))
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ, name)
        self.started[name] = time.monotonic()

    def poll(self, seconds):
        """Names answered within `seconds` (answers are read whole)."""
        deadline = time.monotonic() + seconds
        answered = set()
        while time.monotonic() < deadline and self.sel.get_map():
            for key, _ in self.sel.select(max(0.0, deadline - time.monotonic())):
                data = b""
                sock = key.fileobj
                sock.setblocking(True)
                sock.settimeout(5)
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.sel.unregister(sock)
                sock.close()
                self.done[key.data] = data
                answered.add(key.data)
        return answered

    def close(self):
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()


def status_of(raw):
    return int(raw.split(b" ", 2)[1])


class Scope(unittest.TestCase):
    def setUp(self):
        self.sim = simctl.Sim(BIN)
        self.w = Watchers(self.sim)

    def tearDown(self):
        self.w.close()
        self.sim.kill()

    def idx(self, path):
        return self.sim.index(path)

    def test_write_wakes_the_key_and_its_prefixes_only(self):
        s = self.sim
        for k in ("app/x/k", "app/x/other", "db/y"):
            s.put(k)
        watches = {
            "key": "/v1/kv/app/x/k",
            "prefix": "/v1/kv/app/?recurse",
            "narrow": "/v1/kv/app/x/?keys",
            "sibling-key": "/v1/kv/app/x/other",
            "unrelated": "/v1/kv/db/?recurse",
            "missing": "/v1/kv/app/x/missing",
        }
        for name, path in watches.items():
            self.w.add(name, "%s%sindex=%d&wait=3s" % (path, "&" if "?" in path else "?", self.idx(path)))
        time.sleep(0.3)
        s.put("app/x/k", b"changed")
        woke = self.w.poll(1.0)
        self.assertEqual(woke, {"key", "prefix", "narrow"})
        rest = self.w.poll(4.0)
        self.assertEqual(rest, {"sibling-key", "unrelated", "missing"}, "the others time out")
        self.assertEqual(status_of(self.w.done["missing"]), 404)

    def test_identical_write_wakes_nobody(self):
        s = self.sim
        s.put("same", b"v")
        self.w.add("same", "/v1/kv/same?index=%d&wait=2s" % self.idx("/v1/kv/same"))
        time.sleep(0.2)
        s.put("same", b"v")
        self.assertEqual(self.w.poll(1.0), set())

    def test_delete_tree_wakes_keys_under_it_and_prefixes_around_it(self):
        s = self.sim
        for k in ("t/a/1", "t/a/2", "t/b"):
            s.put(k)
        watches = {"under": "/v1/kv/t/a/1", "outer": "/v1/kv/t/?recurse", "sibling": "/v1/kv/t/b"}
        for name, path in watches.items():
            self.w.add(name, "%s%sindex=%d&wait=3s" % (path, "&" if "?" in path else "?", self.idx(path)))
        time.sleep(0.3)
        s.request("DELETE", "/v1/kv/t/a/?recurse")
        self.assertEqual(self.w.poll(1.0), {"under", "outer"})
        self.assertEqual(status_of(self.w.done["under"]), 404)

    def test_empty_listing_wakes_on_any_write(self):
        s = self.sim
        s.put("x")
        i = self.idx("/v1/kv/none/?recurse")
        self.w.add("empty", "/v1/kv/none/?recurse&index=%d&wait=5s" % i)
        time.sleep(0.2)
        s.put("y")
        self.assertEqual(self.w.poll(1.0), {"empty"})
        self.assertEqual(status_of(self.w.done["empty"]), 404)

    def test_session_waiters(self):
        s = self.sim
        i = self.idx("/v1/session/list")
        self.w.add("list", "/v1/session/list?index=%d&wait=5s" % i)
        time.sleep(0.2)
        s.json("PUT", "/v1/session/create", {"TTL": "20s"})
        self.assertEqual(self.w.poll(1.0), {"list"})


class Many(unittest.TestCase):
    def test_a_thousand_waiters_and_one_write(self):
        n = 1000
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < n + 100:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 200), hard))
        with simctl.Sim(BIN) as sim:
            for i in range(n):
                sim.put("many/p%04d/k" % i)
            idx = sim.index("/v1/kv/many/p0500/?recurse")
            w = Watchers(sim)
            try:
                for i in range(n):
                    path = "/v1/kv/many/p%04d/?recurse" % i
                    w.add(i, "%s&index=%d&wait=60s" % (path, sim.index(path) if i != 500 else idx))
                simctl.wait_for(lambda: sim.admin("GET", "stats")["blocking_queries"] == n, timeout=20,
                                what="all waiters registered")
                sim.put("many/p0500/k", b"new")
                self.assertEqual(w.poll(2.0), {500}, "only the waiter of the written prefix answers")
                self.assertEqual(sim.admin("GET", "stats")["blocking_queries"], n - 1)
            finally:
                w.close()


class Concurrency(unittest.TestCase):
    def test_waiters_and_writers_interleave(self):
        with simctl.Sim(BIN) as sim:
            sim.put("c/k", b"0")
            results = []

            def watcher():
                idx = sim.index("/v1/kv/c/k")
                st, hdrs, _ = sim.get("c/k?index=%d&wait=10s" % idx)
                results.append((st, int(hdrs["x-consul-index"]) > idx))

            ts = [threading.Thread(target=watcher) for _ in range(20)]
            for t in ts:
                t.start()
            time.sleep(0.5)
            sim.put("c/k", b"1")
            for t in ts:
                t.join(10)
            self.assertEqual(results, [(200, True)] * 20)


if __name__ == "__main__":
    unittest.main()
