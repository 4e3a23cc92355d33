"""Helpers for consul-replicate's integration tests: two federated consul-kvsim processes (dc1 = the
source, dc2 = the destination, whose agent the replicator talks to), the replicator as a process,
and assertions on the destination's exact content. Python 3 standard library only.

Each test script is run as:  python3 <script> <consul-replicate> <consul-kvsim> [case ...]
"""
import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import simctl  # noqa: E402  (test/integration/simctl.py: the sim's own process helper)

STATUS_DIR = "service/consul-replicate/statuses"


def wait_for(predicate, timeout=20, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


# ---------------------------------------------------------------- KV helpers

def put(sim, key, value=b"v", flags=0, token=None):
    headers = {"X-Consul-Token": token} if token else {}
    q = "?flags=%d" % flags if flags else ""
    status, _, data = sim.request("PUT", "/v1/kv/%s%s" % (key, q), value, headers=headers)
    assert status == 200 and data.strip() == b"true", "PUT %s: %s %r" % (key, status, data[:200])


def delete(sim, key, recurse=False):
    status, _, data = sim.request("DELETE", "/v1/kv/%s%s" % (key, "?recurse" if recurse else ""))
    assert status == 200, "DELETE %s: %s %r" % (key, status, data[:200])


def txn_put(sim, items):
    """Writes {key: value} with /v1/txn in chunks of 64 (fast loading)."""
    items = list(items.items())
    for i in range(0, len(items), 64):
        ops = [{"KV": {"Verb": "set", "Key": k, "Value": base64.b64encode(v).decode()}}
               for k, v in items[i:i + 64]]
        status, _, data = sim.request("PUT", "/v1/txn", json.dumps(ops).encode())
        assert status == 200, "txn: %s %r" % (status, data[:300])


def dump(sim, prefix="", token=None, with_status=False):
    """{key: (value bytes, flags)} of everything under prefix (the status dir left out by default)."""
    headers = {"X-Consul-Token": token} if token else {}
    status, _, data = sim.request("GET", "/v1/kv/%s?recurse" % prefix, headers=headers)
    if status == 404:
        return {}
    assert status == 200, "list %s: %s %r" % (prefix, status, data[:200])
    out = {}
    for e in json.loads(data):
        if not with_status and e["Key"].startswith(STATUS_DIR + "/"):
            continue
        value = base64.b64decode(e["Value"]) if e.get("Value") is not None else b""
        out[e["Key"]] = (value, e.get("Flags", 0))
    return out


def mapped(source_dump, src, dst, excludes=()):
    """What the destination must hold: source keys under src, minus excludes, renamed src -> dst."""
    out = {}
    for k, v in source_dump.items():
        if not k.startswith(src) or any(k.startswith(e) for e in excludes):
            continue
        out[dst + k[len(src):]] = v
    return out


def status_record(sim, key):
    status, _, data = sim.request("GET", "/v1/kv/%s?raw" % key)
    return data if status == 200 else None


def stats(sim):
    return sim.admin("GET", "stats")


def route_requests(st, route):
    return st["by_route"].get(route, {}).get("requests", 0)


def http_get(addr, path, timeout=10):
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def parse_metrics(text):
    """{'name{labels}': value} from Prometheus text format."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        out[name] = float(value)
    return out


# ---------------------------------------------------------------- the replicator process

class Replicator:
    """consul-replicate as a child process; stderr (and stdout) captured line by line."""

    def __init__(self, binary, args, env=None, start=True):
        self.binary = binary
        self.args = list(args)
        self.env = dict(os.environ)
        for k in ("CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_TOKEN", "CR_LOG", "CONSUL_REPLICATE_LOG"):
            self.env.pop(k, None)
        self.env.setdefault("KVSHIP_BLOCKING_WAIT", "5s")
        self.env.update(env or {})
        self.proc = None
        self.lines = []
        self.out = []
        self._threads = []
        if start:
            self.start()

    def start(self):
        self.lines = []
        self.out = []
        self.proc = subprocess.Popen([self.binary] + self.args, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._threads = [threading.Thread(target=self._read, args=(self.proc.stderr, self.lines), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True)]
        for t in self._threads:
            t.start()
        return self

    @staticmethod
    def _read(pipe, sink):
        for raw in pipe:
            sink.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def log(self):
        return "\n".join(self.lines)

    def wait(self, timeout=60):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("consul-replicate did not exit within %ss:\n%s" % (timeout, self.log()))
        for t in self._threads:
            t.join(5)
        return rc

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for t in self._threads:
            t.join(5)

    def wait_log(self, text, timeout=20):
        return wait_for(lambda: any(text in line for line in self.lines), timeout, what="log line %r" % text)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def run_once(binary, args, env=None, timeout=60):
    """Runs with -once and returns (exit code, stderr text, stdout text)."""
    r = Replicator(binary, list(args) + ["-once"], env)
    rc = r.wait(timeout)
    return rc, r.log(), "\n".join(r.out)


# ---------------------------------------------------------------- byte relay

class Relay:
    """Listens on a Unix socket path or on 127.0.0.1 (path=None) and pipes every connection, byte
    for byte, to the TCP address `target` ("host:port"). Counts the connections it accepted, so a test
    can see how a client uses its connections. Use as a context manager."""

    def __init__(self, target, path=None):
        import socket
        import threading
        self.target = target
        self.path = path
        self.accepted = 0
        self._lock = threading.Lock()
        if path:
            self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._srv.bind(path)
            self.addr = "unix://" + path
        else:
            self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._srv.bind(("127.0.0.1", 0))
            self.addr = "127.0.0.1:%d" % self._srv.getsockname()[1]
        self._srv.listen(64)
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        import threading
        host, port = self.target.rsplit(":", 1)
        while not self._closed:
            try:
                client, _ = self._srv.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            upstream = socket.create_connection((host, int(port)))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        import socket
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            try:
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def count(self):
        with self._lock:
            return self.accepted

    def close(self):
        self._closed = True
        self._srv.close()
        if self.path and os.path.exists(self.path):
            os.unlink(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- test runner

class Context:
    def __init__(self, replicate_bin, kvsim_bin):
        self.replicate_bin = replicate_bin
        self.kvsim_bin = kvsim_bin

    def federation(self, args=(), dst_args=(), src_args=()):
        """A started dc1 (source) + dc2 (destination) pair; the caller kills them (see Pair)."""
        return Pair(self.kvsim_bin, args, src_args, dst_args)

    def replicator(self, pair, args, env=None, start=True):
        return Replicator(self.replicate_bin, ["-consul-addr", pair.dst.addr] + list(args), env, start)

    def once(self, pair, args, env=None, timeout=60):
        return run_once(self.replicate_bin, ["-consul-addr", pair.dst.addr] + list(args), env, timeout)


class Pair:
    def __init__(self, binary, args, src_args, dst_args, attempts=5):
        for attempt in range(attempts):
            p1, p2 = simctl.free_port(), simctl.free_port()
            self.src = self.dst = None
            try:
                self.src = simctl.Sim(binary, dc="dc1", port=p1, wan={"dc2": "127.0.0.1:%d" % p2},
                                      args=list(args) + list(src_args))
                self.dst = simctl.Sim(binary, dc="dc2", port=p2, wan={"dc1": "127.0.0.1:%d" % p1},
                                      args=list(args) + list(dst_args))
                return
            except simctl.SimError:
                self.kill()
                if attempt + 1 == attempts:
                    raise

    def kill(self):
        for s in (self.src, self.dst):
            if s is not None:
                s.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def main(cases):
    """cases: {name: fn(ctx)}. argv: <consul-replicate> <consul-kvsim> [case names...]"""
    argv = sys.argv[1:]
    if len(argv) < 2:
        build = os.path.join(HERE, "..", "..", "build", "bin")
        argv = [os.path.join(build, "consul-replicate"), os.path.join(build, "consul-kvsim")] + argv
    ctx = Context(argv[0], argv[1])
    wanted = argv[2:] or list(cases)
    failed = []
    for name in wanted:
        start = time.monotonic()
        try:
            cases[name](ctx)
            print("ok   %-40s %.1fs" % (name, time.monotonic() - start), flush=True)
        except Exception:  # noqa: BLE001 - report every failure, keep going
            failed.append(name)
            print("FAIL %-40s %.1fs" % (name, time.monotonic() - start), flush=True)
            traceback.print_exc()
    if failed:
        print("failed: %s" % ", ".join(failed))
        sys.exit(1)
