"""Start, talk to and stop consul-kvsim processes for integration tests, demos and benchmarks.

Python 3 standard library only.

    with simctl.Sim(binary, dc="dc1") as sim:             # port 0: the sim picks, we read its ready line
        status, headers, body = sim.request("PUT", "/v1/kv/a", "hello")
    with simctl.federation(binary, ["dc1", "dc2"]) as dcs:  # each DC knows the others over the WAN
        dcs["dc1"].request("GET", "/v1/kv/a?dc=dc2")

Headers come back as a dict with lower-case names; bodies as bytes.
"""
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

READY = re.compile(r"consul-kvsim: dc=(\S+) listening on (\S+):(\d+)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SimError(RuntimeError):
    pass


class ConsulHTTP:
    """Consul's HTTP API on 127.0.0.1:self.port, for a sim (Sim) or a real Consul (realconsul.Consul).
    Subclasses may add default headers in _headers() and name their error type in `error`."""

    error = SimError

    def _headers(self, headers):
        return dict(headers or {})

    def request(self, method, path, body=None, headers=None, timeout=60):
        """One request on a fresh connection: (status, {lower-case header: value}, body bytes)."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=self._headers(headers))
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def json(self, method, path, body=None, headers=None, timeout=60, expect=200):
        status, hdrs, data = self.request(method, path, body, headers, timeout)
        if expect is not None and status != expect:
            raise self.error("%s %s: expected %s, got %s %r" % (method, path, expect, status, data[:300]))
        return json.loads(data) if data else None

    def put(self, key, value=b"v", query=""):
        status, _, data = self.request("PUT", "/v1/kv/%s%s" % (key, query), value)
        if status != 200:
            raise self.error("PUT %s: %s %r" % (key, status, data[:300]))
        return data

    def get(self, key, query=""):
        return self.request("GET", "/v1/kv/%s%s" % (key, query))

    def index(self, path):
        status, hdrs, _ = self.request("GET", path)
        return int(hdrs["x-consul-index"])


class Sim(ConsulHTTP):
    """One consul-kvsim process (one datacenter)."""

    def __init__(self, binary, dc="dc1", port=0, wan=None, data_dir=None, args=(), start=True, ready_timeout=20):
        self.binary = binary
        self.dc = dc
        self.port = port
        self.wan = dict(wan or {})
        self.data_dir = data_dir
        self.args = list(args)
        self.ready_timeout = ready_timeout
        self.proc = None
        self.lines = []  # everything the sim wrote to stderr
        self._ready = threading.Event()
        self._reader = None
        if start:
            self.start()

    # ------------------------------------------------------------ process

    def command(self):
        cmd = [self.binary, "-dc", self.dc, "-http-addr", "127.0.0.1:%d" % self.port]
        for name, addr in self.wan.items():
            cmd += ["-wan", "%s=%s" % (name, addr)]
        if self.data_dir:
            cmd += ["-data-dir", self.data_dir]
        return cmd + self.args

    def start(self):
        self.lines = []
        self._ready.clear()
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.ready_timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                self._close_pipe()
                raise SimError("consul-kvsim exited with %s before it was ready:\n%s"
                               % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                self.kill()
                raise SimError("consul-kvsim was not ready after %ss:\n%s" % (self.ready_timeout, self.log()))
        return self

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            m = READY.search(line)
            if m and not self._ready.is_set():
                self.port = int(m.group(3))
                self._ready.set()

    def log(self):
        return "\n".join(self.lines)

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signals the sim and waits for it; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise SimError("consul-kvsim did not stop within %ss after signal %s" % (timeout, sig))
        self._close_pipe()
        return self.proc.returncode

    def kill(self):
        """SIGKILL: a crash, nothing flushed beyond what was acknowledged."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_pipe()

    def _close_pipe(self):
        if self._reader:
            self._reader.join(5)
        if self.proc is not None and self.proc.stderr and not self.proc.stderr.closed:
            self.proc.stderr.close()

    def restart(self, **kw):
        """Stops (gracefully unless kill=True) and starts again on the same port."""
        if kw.get("kill"):
            self.kill()
        else:
            self.stop()
        return self.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()

    # ------------------------------------------------------------ HTTP (request, json, put, get, index: ConsulHTTP)

    def admin(self, method, path, body=None, expect=200):
        return self.json(method, "/_sim/" + path, body, expect=expect)


@contextlib.contextmanager
def federation(binary, dcs, args=(), data_dirs=None, attempts=5):
    """Starts one sim per DC name, each with -wan entries for all the others. Yields {dc: Sim}."""
    for attempt in range(attempts):
        ports = {dc: free_port() for dc in dcs}
        sims = {}
        try:
            for dc in dcs:
                wan = {other: "127.0.0.1:%d" % ports[other] for other in dcs if other != dc}
                sims[dc] = Sim(binary, dc=dc, port=ports[dc], wan=wan, args=args,
                               data_dir=(data_dirs or {}).get(dc))
        except SimError:
            for s in sims.values():
                s.kill()
            if attempt + 1 == attempts:
                raise
            continue
        try:
            yield sims
        finally:
            for s in sims.values():
                s.kill()
        return


def wait_for(predicate, timeout=10, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s" % what)


def binary_from_argv(argv):
    """The sim binary: argv[1] (as ctest passes it) or $KVSIM_BIN or build/bin/consul-kvsim."""
    if len(argv) > 1 and not argv[1].startswith("-"):
        return argv.pop(1)
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get("KVSIM_BIN", os.path.join(here, "..", "..", "build", "bin", "consul-kvsim"))
