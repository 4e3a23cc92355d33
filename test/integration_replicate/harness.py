"""Helpers for consul-replicate's integration tests: two federated consul-kvsim processes (dc1 = the
source, dc2 = the destination, whose agent the replicator talks to), the replicator as a process,
and assertions on the destination's exact content. Python 3 standard library only.

Each test script is run as:  python3 <script> <consul-replicate> <consul-kvsim> [--backend sim|real] [case ...]

With --backend real, ctx.federation() starts two real Consul servers (test/integration/realconsul.py) in
place of the sims, with the same interface. Sim flags passed to federation() are mapped where real Consul
has the same thing (-acl-default-policy / -acl-master-token: ACLs on in both DCs, the master token given;
-commit-latency, -log-level: real Consul has its own) and refused otherwise. A case that needs what only
the sim has (/_sim/ faults, WAN cuts, request statistics) is listed by the script as sim-only with its
reason, and reported as skipped on the real backend.
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
import realconsul  # noqa: E402  (test/integration/realconsul.py: real Consul, the sim's judge)
import simctl  # noqa: E402  (test/integration/simctl.py: the sim's own process helper)

BACKEND = "sim"  # set by main() from --backend

STATUS_DIR = "service/consul-replicate/statuses"
REGISTRY_DIR = "service/kvship/replicators"  # running replicators' entries (README "Two-way replication is refused")


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
    """{key: (value bytes, flags)} of everything under prefix (the status dir and the replicator registry left
    out by default: they are the replicators' own keys, not replicated data)."""
    headers = {"X-Consul-Token": token} if token else {}
    status, _, data = sim.request("GET", "/v1/kv/%s?recurse" % prefix, headers=headers)
    if status == 404:
        return {}
    assert status == 200, "list %s: %s %r" % (prefix, status, data[:200])
    out = {}
    for e in json.loads(data):
        if not with_status and (e["Key"].startswith(STATUS_DIR + "/") or e["Key"].startswith(REGISTRY_DIR + "/")):
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


# ---------------------------------------------------------------- counting HTTP proxy

class CountingProxy:
    """An HTTP/1.1 proxy on 127.0.0.1 in front of `target` ("host:port") that counts requests by "METHOD
    /path" (query left out) and answers by status, on any backend: the real-Consul stand-in for the sim's
    /_sim/stats. One request at a time per connection (no pipelining), bodies by Content-Length or
    chunked. Use as a context manager; point the replicator at .addr."""

    def __init__(self, target):
        import collections
        import socket
        self.target = target
        self.routes = collections.Counter()
        self.statuses = collections.Counter()
        self.bytes_in = collections.Counter()  # request body bytes by route
        self.forwarded_bytes = 0  # response body bytes of requests with ?dc= (reads of another DC)
        # optional fn(method, path, body, headers, status, response body, response headers), called for every
        # answered request before the answer goes back to the client (so it sees them in the agent's order)
        self.on_exchange = None
        self._lock = threading.Lock()
        self._srv = socket.socket()
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(64)
        self.addr = "127.0.0.1:%d" % self._srv.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def count(self, route):
        with self._lock:
            return self.routes.get(route, 0)

    def status_count(self, status):
        with self._lock:
            return self.statuses.get(status, 0)

    def reset(self):
        with self._lock:
            self.routes.clear()
            self.statuses.clear()
            self.bytes_in.clear()
            self.forwarded_bytes = 0

    def _accept(self):
        while not self._closed:
            try:
                client, _ = self._srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    @staticmethod
    def _head(f):
        lines = []
        while True:
            line = f.readline(65537)
            if not line:
                return None, None
            lines.append(line)
            if line in (b"\r\n", b"\n"):
                break
        headers = {}
        for raw in lines[1:-1]:
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return b"".join(lines), headers

    @staticmethod
    def _body(f, headers, until_eof):
        if headers.get("transfer-encoding", "").lower() == "chunked":
            out = []
            while True:
                size_line = f.readline()
                out.append(size_line)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers up to the blank line
                        t = f.readline()
                        out.append(t)
                        if t in (b"\r\n", b"\n", b""):
                            return b"".join(out)
                out.append(f.read(size + 2))
        if "content-length" in headers:
            return f.read(int(headers["content-length"]))
        return f.read() if until_eof else b""

    def _serve(self, client):
        import socket
        host, port = self.target.rsplit(":", 1)
        try:
            upstream = socket.create_connection((host, int(port)))
        except OSError:
            client.close()
            return
        cf, uf = client.makefile("rb"), upstream.makefile("rb")
        try:
            while True:
                head, hdrs = self._head(cf)
                if head is None:
                    break
                method, path = head.split(b" ", 2)[:2]
                body = self._body(cf, hdrs, False)
                upstream.sendall(head + body)
                route = "%s %s" % (method.decode(), path.decode().split("?", 1)[0])
                rhead, rhdrs = self._head(uf)
                if rhead is None:
                    break
                status = int(rhead.split(b" ", 2)[1])
                no_body = method == b"HEAD" or status in (204, 304) or 100 <= status < 200
                rbody = b"" if no_body else self._body(uf, rhdrs, True)
                with self._lock:
                    self.routes[route] += 1
                    self.statuses[status] += 1
                    self.bytes_in[route] += len(body)
                    if b"dc=" in path.partition(b"?")[2]:
                        self.forwarded_bytes += len(rbody)
                if self.on_exchange is not None:
                    self.on_exchange(method.decode(), path.decode(), body, hdrs, status, rbody, rhdrs)
                client.sendall(rhead + rbody)
                if "close" in (hdrs.get("connection", "") + rhdrs.get("connection", "")).lower():
                    break
        except (OSError, ValueError, IndexError):
            pass
        finally:
            for sock in (client, upstream):
                try:
                    sock.close()
                except OSError:
                    pass

    def close(self):
        self._closed = True
        self._srv.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- test runner

class Context:
    def __init__(self, replicate_bin, kvsim_bin, backend="sim"):
        self.replicate_bin = replicate_bin
        self.kvsim_bin = kvsim_bin
        self.backend = backend

    @property
    def real(self):
        return self.backend == "real"

    def federation(self, args=(), dst_args=(), src_args=()):
        """A started dc1 (source) + dc2 (destination) pair; the caller kills them (see Pair)."""
        if self.real:
            return RealPair(list(args) + list(src_args) + list(dst_args))
        return Pair(self.kvsim_bin, args, src_args, dst_args)

    def servers(self, dcs, args=()):
        """{dc: server} for several federated DCs (sims, or real Consul servers), killed on exit."""
        if self.real:
            return realconsul.federation(list(dcs), acl=_real_acl(list(args))[0])
        return simctl.federation(self.kvsim_bin, list(dcs), args=args)

    def replicator(self, pair, args, env=None, start=True, addr=None):
        return Replicator(self.replicate_bin, ["-consul-addr", addr or pair.dst.addr] + list(args), env, start)

    def once(self, pair, args, env=None, timeout=60, addr=None):
        """addr: the agent address given to the replicator (default: the destination's; e.g. a CountingProxy)."""
        return run_once(self.replicate_bin, ["-consul-addr", addr or pair.dst.addr] + list(args), env, timeout)


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


def _real_acl(flags):
    """(acl on?, master token) from sim flags, refusing flags real Consul has no equivalent for."""
    acl, master = False, None
    i = 0
    while i < len(flags):
        f = flags[i]
        if f == "-txn-max-ops" and flags[i + 1] == "64":  # Consul 1.10's own limit
            i += 2
            continue
        if f in ("-acl-default-policy", "-acl-master-token", "-commit-latency", "-log-level", "-wan-latency"):
            if f == "-acl-default-policy":
                if flags[i + 1] != "deny":
                    raise realconsul.NotSupported("the real fixture runs ACLs with default deny only")
                acl = True
            if f == "-acl-master-token":
                master = flags[i + 1]
            i += 2
            continue
        raise realconsul.NotSupported("sim flag %s has no real-Consul equivalent in the fixture" % f)
    return acl, master


class RealPair:
    """dc1 (source) + dc2 (destination) as two federated real Consul servers."""

    def __init__(self, sim_flags):
        acl, master = _real_acl(sim_flags)
        self._fed = realconsul.federation(["dc1", "dc2"], acl=acl, master_token=master)
        servers = self._fed.__enter__()
        self.src, self.dst = servers["dc1"], servers["dc2"]

    def kill(self):
        if self._fed is not None:
            fed, self._fed = self._fed, None
            fed.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            for s in (self.src, self.dst):
                print("---- consul %s log (last lines) ----\n%s" % (s.dc, "\n".join(s.lines[-40:])), file=sys.stderr)
        self.kill()


def main(cases, sim_only=None):
    """cases: {name: fn(ctx)}; sim_only: {name: why it cannot run on real Consul}.
    argv: <consul-replicate> <consul-kvsim> [--backend sim|real] [case names...]"""
    global BACKEND
    argv = sys.argv[1:]
    if "--backend" in argv:
        i = argv.index("--backend")
        BACKEND = argv[i + 1]
        del argv[i:i + 2]
    if BACKEND not in ("sim", "real"):
        sys.exit("--backend: sim or real, not %r" % BACKEND)
    if len(argv) < 2:
        build = os.path.join(HERE, "..", "..", "build", "bin")
        argv = [os.path.join(build, "consul-replicate"), os.path.join(build, "consul-kvsim")] + argv
    if BACKEND == "real" and not realconsul.find_consul():
        realconsul.skip_or_fail("real Consul")
    ctx = Context(argv[0], argv[1], BACKEND)
    wanted = argv[2:] or list(cases)
    sim_only = sim_only or {}
    failed = []
    ran = skipped = 0
    for name in wanted:
        if BACKEND == "real" and name in sim_only:
            skipped += 1
            print("skip %-40s (sim-only: %s)" % (name, sim_only[name]), flush=True)
            continue
        if BACKEND == "sim" and name.endswith("_real"):
            skipped += 1
            print("skip %-40s (real-only: run with --backend real)" % name, flush=True)
            continue
        ran += 1
        start = time.monotonic()
        try:
            cases[name](ctx)
            print("ok   %-40s %.1fs" % (name, time.monotonic() - start), flush=True)
        except Exception:  # noqa: BLE001 - report every failure, keep going
            failed.append(name)
            print("FAIL %-40s %.1fs" % (name, time.monotonic() - start), flush=True)
            traceback.print_exc()
    print("%d passed, %d failed, %d skipped" % (ran - len(failed), len(failed), skipped), flush=True)
    if failed:
        print("failed: %s" % ", ".join(failed))
        sys.exit(1)
