#!/usr/bin/env python3
"""Bad input never crashes the sim: malformed JSON, odd paths and query values, huge bodies, broken
connections. Ends with a graceful stop that must exit 0 (under ASan that also checks for leaks).

Usage: test_robustness.py <path to consul-kvsim> [unittest args]
"""
import json
import os
import random
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simctl  # noqa: E402

BIN = simctl.binary_from_argv(sys.argv)


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = simctl.Sim(BIN, args=["-acl-default-policy", "allow", "-acl-master-token", "root"])

    @classmethod
    def tearDownClass(cls):
        rc = cls.sim.stop()
        assert rc == 0, "exit status %s\n%s" % (rc, cls.sim.log())

    def alive(self):
        st, _, _ = self.sim.request("GET", "/v1/status/leader")
        self.assertEqual(st, 200)

    def test_malformed_json_bodies(self):
        rng = random.Random(7)
        bodies = [b"", b"null", b"[", b"]", b"{}", b"[null]", b"[1]", b"[[[[[[[[[[", b"[" * 100000,
                  b'[{"KV":null}]', b'[{"KV":{"Verb":7}}]', b'[{"KV":{"Flags":-1}}]', b'[{"KV":{"Index":1.5}}]',
                  b'[{"KV":{"Value":5}}]', b'[{"kv":{"verb":"get","key":"a"}}]', b'[{"Node":{}}]',
                  b'{"KV":{}}', b'"str"', b'\xff\xfe', b'[{"KV":{"Verb":"set","Key":"\\u0000"}}]']
        bodies += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))) for _ in range(50)]
        for body in bodies:
            for method, path in (("PUT", "/v1/txn"), ("PUT", "/v1/session/create"), ("PUT", "/v1/acl/policy"),
                                 ("PUT", "/v1/acl/token"), ("PUT", "/_sim/fault"), ("PUT", "/_sim/restore")):
                st, _, _ = self.sim.request(method, path, body, headers={"X-Consul-Token": "root"})
                self.assertLess(st, 600, (path, body[:40]))
                if path == "/v1/txn":
                    self.assertIn(st, (200, 400, 409, 413), body[:40])
        self.alive()

    def test_odd_paths_and_queries(self):
        paths = ["/v1/kv/%zz", "/v1/kv/a%", "/v1/kv/%00", "/v1/kv/" + "a" * 5000, "/v1/kv/../../etc",
                 "/v1/kv/a?index=-1", "/v1/kv/a?index=99999999999999999999", "/v1/kv/a?wait=-5s&index=1",
                 "/v1/kv/a?wait=1h&index=0", "/v1/kv/?recurse&separator=", "/v1/kv/a?keys&separator=%ff",
                 "/v1/kv/a?flags=18446744073709551616", "/v1/kv/a?cas=-1", "/v1/kv/a?max_stale=x",
                 "/v1/kv/a?&&&=&=x", "/v1/kv/a?%zz=1", "/v1/kv/a;b", "/v1/session/info/", "/v1/session/node/",
                 "/v1/acl/token/", "/v1/acl/policy/", "/_sim/", "/_sim/wan//cut", "/_sim/session//expire",
                 "//", "/", "*", "/v1/kv/a#frag", "/v1/kv/\u00e9".encode().decode("latin-1")]
        for path in paths:
            for method in ("GET", "PUT", "DELETE", "POST", "HEAD", "OPTIONS"):
                try:
                    st, _, _ = self.sim.request(method, path, b"x")
                except Exception:  # noqa: BLE001 - the sim may close on a request it cannot parse
                    continue
                self.assertLess(st, 600, (method, path))
        self.alive()

    def test_raw_garbage_and_broken_connections(self):
        garbage = [b"\r\n\r\n", b"GET\r\n\r\n", b"GARBAGE / HTTP/1.1\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                   b"PUT /v1/kv/a HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
                   b"PUT /v1/kv/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                   b"GET /v1/kv/a HTTP/1.1\r\nX: " + b"y" * 100000 + b"\r\n\r\n",
                   b"PUT /v1/kv/a HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n"]
        for g in garbage:
            s = socket.create_connection(("127.0.0.1", self.sim.port))
            try:
                s.sendall(g)
            except OSError:
                pass
            s.close()
        # a blocking query whose client goes away
        self.sim.put("gone")
        idx = self.sim.index("/v1/kv/gone")
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", self.sim.port))
            s.sendall(b"GET /v1/kv/gone?index=%d&wait=2s HTTP/1.1\r\nHost: x\r\n\r\n" % idx)
            s.close()
        # a large response read halfway
        self.sim.put("big", b"x" * 400000)
        s = socket.create_connection(("127.0.0.1", self.sim.port))
        s.sendall(b"GET /v1/kv/big HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(1000)
        s.close()
        time.sleep(0.2)
        self.alive()

    def test_huge_bodies(self):
        big = b"z" * (3 * 1024 * 1024)
        st, _, body = self.sim.request("PUT", "/v1/kv/huge", big)
        self.assertEqual(st, 413)
        self.assertTrue(body.startswith(b"Request body(3145728 bytes) too large"), body[:80])
        st, _, body = self.sim.request("PUT", "/v1/txn", b"[" + b" " * (600 * 1024) + b"]")
        self.assertEqual(st, 413)
        ops = [{"KV": {"Verb": "set", "Key": "v", "Value": "eg==" * 200000}}]
        st, _, body = self.sim.request("PUT", "/v1/txn", json.dumps(ops))
        self.assertEqual(st, 413)
        self.alive()

    def test_chunked_body_over_the_limit(self):
        s = socket.create_connection(("127.0.0.1", self.sim.port))
        s.settimeout(10)
        s.sendall(b"PUT /v1/kv/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"y" * 65536
        try:
            for _ in range(10):
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            s.sendall(b"0\r\n\r\n")
        except OSError:
            pass
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                part = s.recv(4096)
                if not part:
                    break
                data += part
        except OSError:
            pass
        s.close()
        self.assertIn(b" 413 ", data.split(b"\r\n", 1)[0])
        self.assertEqual(self.sim.get("chunked")[0], 404)

    def raw(self, request, timeout=10):
        """Sends raw bytes on one connection and reads until the server closes it (or the timeout)."""
        s = socket.create_connection(("127.0.0.1", self.sim.port))
        s.settimeout(timeout)
        data = b""
        try:
            s.sendall(request)
            while True:
                part = s.recv(65536)
                if not part:
                    break
                data += part
        except OSError:
            pass
        s.close()
        return data

    def test_unknown_transfer_coding_is_501(self):
        # Real Consul (Go's net/http) answers 501 "Unsupported transfer encoding" and closes: the body is
        # never parsed as a second request. One field, "chunked" in any case, is the only accepted form.
        smuggled = b"GET /v1/kv/smuggled?raw HTTP/1.1\r\nHost: x\r\n\r\n"
        for te in (b"gzip", b"identity", b"chunked, gzip", b"gzip, chunked", b"xchunked"):
            body = b"PUT /v1/kv/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
            data = self.raw(b"PUT /v1/kv/te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + te +
                            b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body + smuggled)
            self.assertIn(b" 501 ", data.split(b"\r\n", 1)[0], (te, data[:200]))
            self.assertIn(b"Unsupported transfer encoding", data, te)
            self.assertEqual(data.count(b"HTTP/1.1 "), 1, (te, data))
        data = self.raw(b"PUT /v1/kv/te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        self.assertIn(b" 501 ", data.split(b"\r\n", 1)[0], data[:200])
        self.assertEqual(self.sim.get("te")[0], 404)
        self.assertEqual(self.sim.get("smuggled")[0], 404)
        # "Chunked" (any case) still works
        data = self.raw(b"PUT /v1/kv/te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  Chunked \r\n"
                        b"Connection: close\r\n\r\n2\r\nok\r\n0\r\n\r\n")
        self.assertIn(b" 200 ", data.split(b"\r\n", 1)[0], data[:200])
        self.assertEqual(self.sim.get("te", "?raw")[2], b"ok")
        # chunked with a Content-Length: the length is ignored, as Go does (Beast alone would refuse the pair)
        data = self.raw(b"PUT /v1/kv/te2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n"
                        b"Connection: close\r\n\r\n2\r\nok\r\n0\r\n\r\n")
        self.assertIn(b" 200 ", data.split(b"\r\n", 1)[0], data[:200])
        self.assertEqual(self.sim.get("te2", "?raw")[2], b"ok")
        self.alive()


if __name__ == "__main__":
    unittest.main()
