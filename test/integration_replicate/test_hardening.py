"""Hostile input against consul-replicate as a process: config files nested 100,000 deep (exit 15 naming
the file, not a stack overflow), idle and slow connections to -metrics-addr (/healthz still answers), and a
Vault that refuses the gate's /v1/sys/leader (the error names Vault, not Consul), and keys that need escaping
or are not valid UTF-8."""
import http.server
import os
import socket
import tempfile
import threading
import time
import urllib.parse

import harness as h
import simctl


def _config_file(text, suffix):
    f = tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False)
    f.write(text)
    f.close()
    return f.name


def _get(addr, path):
    try:
        return h.http_get(addr, path)
    except OSError:
        return None, ""


def _deep_configs():
    n = 100000
    yield "json-arrays", ".json", '{"prefix": ' + "[" * n + "]" * n + "}"
    yield "json-objects", ".json", '{"consul": ' + '{"a": ' * n + "1" + "}" * n + "}"
    yield "hcl-blocks", ".hcl", "consul " + "{ a " * n + "}" * n
    yield "hcl-lists", ".hcl", "prefix = " + "[" * n + "]" * n
    yield "hcl-objects", ".hcl", "consul = " + "{ a = " * n + "1" + " }" * n
    yield "hcl-labels", ".hcl", "prefix" + ' "l"' * n + " { }"


def test_deep_config_files(ctx):
    with ctx.federation() as p:
        for name, suffix, text in _deep_configs():
            path = _config_file(text, suffix)
            try:
                rc, err, _ = ctx.once(p, ["-config", path], timeout=60)
            finally:
                os.unlink(path)
            assert rc == 15, "%s: exit %s (want 15):\n%s" % (name, rc, err[-2000:])
            assert path in err and "nested more than 64 levels deep" in err, "%s:\n%s" % (name, err[-2000:])
        assert h.dump(p.dst) == {}


def test_metrics_survive_idle_and_slow_connections(ctx):
    with ctx.federation() as p:
        h.put(p.src, "app/a", b"v")
        addr = "127.0.0.1:%d" % simctl.free_port()
        host, port = addr.rsplit(":", 1)
        with ctx.replicator(p, ["-prefix", "app/@dc1:m/", "-metrics-addr", addr]) as r:
            h.wait_for(lambda: _get(addr, "/healthz")[0] == 200, what="/healthz")
            idle = []
            try:
                for i in range(300):  # over the cap of 256: nothing sent on most, a header trickled on some
                    s = socket.create_connection((host, int(port)), timeout=10)
                    if i % 10 == 0:
                        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
                    idle.append(s)
                time.sleep(0.5)
                for path in ("/healthz", "/readyz", "/metrics"):
                    status, body = h.http_get(addr, path)
                    assert status in (200, 503) and status != 429, (path, status, body[:200])
                    if path == "/healthz":
                        assert (status, body) == (200, "ok\n"), (status, body)
            finally:
                for s in idle:
                    s.close()
            assert r.running()
            h.wait_for(lambda: h.dump(p.dst) == {"m/a": (b"v", 0)}, what="copied")


class _RefusingVault(http.server.ThreadingHTTPServer):
    daemon_threads = True


def test_vault_refusal_names_vault(ctx):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            body = b'{"errors":["permission denied"]}\n'
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = _RefusingVault(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d" % srv.server_address[1]
    try:
        with ctx.federation() as p:
            metrics = "127.0.0.1:%d" % simctl.free_port()
            with ctx.replicator(p, ["-gate=vault", "-gate-vault-addr", url, "-gate-vault-dc", "http://127.0.0.1:1=dc1",
                                    "-gate-interval", "200ms", "-prefix", "vault/", "-metrics-addr", metrics,
                                    "-log-level", "info"]) as r:
                try:
                    r.wait_log("permission denied by Vault", timeout=20)
                except AssertionError:
                    raise AssertionError(r.log())
                assert not any("Consul ACLs" in line for line in r.lines), r.log()
    finally:
        srv.shutdown()
        srv.server_close()


def _raw_put(server, key, value):
    status, _, data = server.request("PUT", "/v1/kv/" + urllib.parse.quote(key, safe="/"), value)
    assert status == 200 and data.strip() == b"true", "PUT %r: %s %r" % (key, status, data[:200])


def test_awkward_and_non_utf8_keys(ctx):
    # Keys that need escaping in a URL travel intact (control characters cannot be stored at all: Consul
    # 1.10, and the sim, answer such a PUT 400). Keys that are not valid UTF-8 are listed by Consul
    # (Go JSON) with U+FFFD in place of each bad byte, so k/\xff and k/\xfe both list as k/<U+FFFD>: the
    # replicator must not write that made-up key, nor delete a destination key holding U+FFFD, and must
    # say why, naming the key.
    fffd = "\ufffd".encode()
    awkward = [b"k/a b", b"k/100%", b"k/what?x=1", b"k/#frag", b"k/\xd0\xba\xe2\x86\x92"]
    with ctx.federation() as p:
        for i, k in enumerate(awkward):
            _raw_put(p.src, k, b"v%d" % i)
        _raw_put(p.src, b"k/bad\xff", b"one")
        _raw_put(p.src, b"k/bad\xfe", b"two")
        _raw_put(p.dst, b"c/old\xff", b"left alone")  # lists as c/old<U+FFFD>
        rc, err, _ = ctx.once(p, ["-prefix", "k/@dc1:c/"])
        assert rc == 0, err
        got = h.dump(p.dst, "c/")
        want = {b"c/" + k[2:]: (b"v%d" % i, 0) for i, k in enumerate(awkward)}
        want[b"c/old" + fffd] = (b"left alone", 0)
        got = {k.encode() if isinstance(k, str) else k: v for k, v in got.items()}
        assert got == want, "destination %r\nwant %r\n%s" % (got, want, err)
        assert 'key "k/bad\ufffd" holds U+FFFD' in err, err
        assert 'key "c/old\ufffd" holds U+FFFD' in err, err
        assert "not valid UTF-8" in err, err
        # and a second run still leaves it all as it is
        rc, err, _ = ctx.once(p, ["-prefix", "k/@dc1:c/"])
        assert rc == 0, err
        again = {k.encode(): v for k, v in h.dump(p.dst, "c/").items()}
        assert again == want, again


if __name__ == "__main__":
    h.main({
        "deep_config_files": test_deep_config_files,
        "metrics_survive_idle_and_slow_connections": test_metrics_survive_idle_and_slow_connections,
        "vault_refusal_names_vault": test_vault_refusal_names_vault,
        "awkward_and_non_utf8_keys": test_awkward_and_non_utf8_keys,
    })
