"""Start, talk to and stop real Consul servers for tests and benchmarks: the judge of consul-kvsim.

Python 3 standard library only. Same interface as simctl (request, json, put, get, index, addr, dc, kill,
stop, restart, log, running), so one test body runs on both backends:

    with realconsul.federation(["dc1", "dc2"]) as dcs:       # one server per DC, WAN-joined
        dcs["dc1"].request("GET", "/v1/kv/a?dc=dc2")
    with realconsul.federation(["dc1"], acl=True) as dcs:    # ACLs on, default deny, dcs["dc1"].master_token
        ...

Finding the program (`find_consul()`): $KVSHIP_CONSUL_BIN, then `consul` on PATH. Without one, a test calls
`skip_or_fail()`: exit 77 (skipped) normally, a failure under KVSHIP_REQUIRE_REAL=1 (as in CI).

Each server runs with its own data dir, distinct loopback ports (HTTP, serf LAN/WAN, server RPC; DNS and gRPC
off), `-bootstrap-expect 1`, and `retry_join_wan` to the other DCs' serf WAN ports. It is ready when it has a
leader, its own node is in the catalog, and every DC of the federation is in /v1/catalog/datacenters. Its log
is kept (`log()`) and printed by `federation()` when the body raises.
"""
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simctl  # noqa: E402  (ConsulHTTP: the HTTP helpers both backends share)

SKIP = 77


def find_program(env_name, name):
    """$env_name if set (must exist), else `name` on PATH, else None."""
    path = os.environ.get(env_name)
    if path:
        if not os.access(path, os.X_OK):
            raise RuntimeError("%s=%s is not an executable file" % (env_name, path))
        return path
    return shutil.which(name)


def find_consul():
    return find_program("KVSHIP_CONSUL_BIN", "consul")


def find_vault():
    return find_program("KVSHIP_VAULT_BIN", "vault")


def find_consul_replicate():
    return find_program("KVSHIP_CONSUL_REPLICATE_BIN", "consul-replicate")


def require_real():
    return os.environ.get("KVSHIP_REQUIRE_REAL", "") not in ("", "0")


def skip_or_fail(what="real Consul"):
    """Called when a real program is missing: exit 77 (ctest: skipped), or 1 under KVSHIP_REQUIRE_REAL=1."""
    if require_real():
        print("FAIL: KVSHIP_REQUIRE_REAL=1 but %s is not available: set KVSHIP_CONSUL_BIN / KVSHIP_VAULT_BIN / "
              "KVSHIP_CONSUL_REPLICATE_BIN or put the programs on PATH (eval \"$(../shared/realbin/unpack --env)\")"
              % what, flush=True)
        sys.exit(1)
    print("skipped: %s not found (set KVSHIP_CONSUL_BIN etc. or eval \"$(../shared/realbin/unpack --env)\")" % what,
          flush=True)
    sys.exit(SKIP)


_PORT_LOCK = threading.Lock()
_TAKEN = set()


def free_port():
    """A free loopback TCP port that this process has not handed out before (Consul binds it for TCP and UDP)."""
    with _PORT_LOCK:
        for _ in range(200):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port in _TAKEN:
                continue
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind(("127.0.0.1", port))
            except OSError:
                continue
            _TAKEN.add(port)
            return port
    raise RuntimeError("no free port")


class ConsulError(RuntimeError):
    pass


class NotSupported(ConsulError):
    """A sim-only feature (/_sim/ faults and stats) asked of real Consul."""


class Consul(simctl.ConsulHTTP):
    """One real Consul server agent: one datacenter. HTTP helpers (request, json, put, get, index) are
    simctl.ConsulHTTP's, so a test body runs on both."""

    kind = "real"
    error = ConsulError

    def __init__(self, binary, dc="dc1", wan=(), acl=False, master_token=None, primary_dc=None, args=(),
                 extra_config=None, start=True, ready_timeout=60, workdir=None, tls=None):
        self.binary = binary
        self.dc = dc
        self.wan = list(wan)  # serf WAN addresses of the other DCs
        self.acl = acl
        self.master_token = master_token or (str(uuid.uuid4()) if acl else None)
        self.primary_dc = primary_dc or dc
        self.args = list(args)
        self.extra_config = dict(extra_config or {})
        self.ready_timeout = ready_timeout
        self._own_dir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="kvship-consul-%s-" % dc)
        self.data_dir = os.path.join(self.workdir, "data")
        self.ports = {k: free_port() for k in ("http", "serf_lan", "serf_wan", "server")}
        # tls: {"cert_file", "key_file", "ca_file", "verify_incoming_https"}: HTTPS on a port of its own
        # (https_addr) beside the plain HTTP port the fixture itself uses.
        self.tls = dict(tls or {})
        if self.tls:
            self.ports["https"] = free_port()
        self.port = self.ports["http"]
        self.proc = None
        self.lines = []
        self._reader = None
        self.expected_dcs = [dc]
        if start:
            self.start()

    # ------------------------------------------------------------ process

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    @property
    def https_addr(self):
        return "127.0.0.1:%d" % self.ports["https"]

    @property
    def wan_addr(self):
        return "127.0.0.1:%d" % self.ports["serf_wan"]

    def config(self):
        cfg = {
            "datacenter": self.dc,
            "node_name": "node-%s" % self.dc,
            "server": True,
            "bootstrap_expect": 1,
            "data_dir": self.data_dir,
            "bind_addr": "127.0.0.1",
            "client_addr": "127.0.0.1",
            "advertise_addr": "127.0.0.1",
            "advertise_addr_wan": "127.0.0.1",
            "ports": {"http": self.ports["http"], "serf_lan": self.ports["serf_lan"],
                      "serf_wan": self.ports["serf_wan"], "server": self.ports["server"],
                      "dns": -1, "grpc": -1},
            "retry_join_wan": self.wan,
            "retry_interval_wan": "1s",
            "primary_datacenter": self.primary_dc,
            "disable_update_check": True,
            "log_level": "info",
            "performance": {"raft_multiplier": 1},
            "leave_on_terminate": False,
        }
        if self.tls:
            cfg["ports"]["https"] = self.ports["https"]
            cfg.update(self.tls)
        if self.acl:
            tokens = {"master": self.master_token, "agent": self.master_token}
            if self.dc != self.primary_dc:
                tokens["replication"] = self.master_token
            cfg["acl"] = {"enabled": True, "default_policy": "deny", "down_policy": "extend-cache",
                          "enable_token_persistence": False, "enable_token_replication": self.dc != self.primary_dc,
                          "tokens": tokens}
        cfg.update(self.extra_config)
        return cfg

    def command(self):
        path = os.path.join(self.workdir, "config.json")
        with open(path, "w") as f:
            json.dump(self.config(), f, indent=1)
        return [self.binary, "agent", "-config-file", path] + self.args

    def start(self, wait_ready=True):
        self.lines = []
        os.makedirs(self.data_dir, exist_ok=True)
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if wait_ready:
            self.wait_ready()
        return self

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def log(self):
        return "\n".join(self.lines)

    def _ok(self, path):
        try:
            status, _, body = self.request("GET", path, timeout=2)
        except OSError:
            return None
        return json.loads(body) if status == 200 else None

    def wait_ready(self, timeout=None):
        """Leader elected, own node registered, every expected DC known over the WAN."""
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        what = "start"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ConsulError("consul %s exited with %s before it was ready:\n%s"
                                  % (self.dc, self.proc.returncode, self.log()[-6000:]))
            leader = self._ok("/v1/status/leader")
            if not leader:
                what = "a leader"
            elif not self._ok("/v1/catalog/node/node-%s" % self.dc):
                what = "its own node in the catalog"
            else:
                dcs = self._ok("/v1/catalog/datacenters") or []
                if all(d in dcs for d in self.expected_dcs):
                    # a KV write must go through (ACL bootstrap and the first Raft commits are done)
                    try:
                        st, _, _ = self.request("PUT", "/v1/kv/_kvship_ready", b"1", timeout=5)
                        if st == 200:
                            self.request("DELETE", "/v1/kv/_kvship_ready", timeout=5)
                            return self
                        what = "a KV write (status %s)" % st
                    except OSError as e:
                        what = "a KV write (%s)" % e
                else:
                    what = "datacenters %s (has %s)" % (self.expected_dcs, dcs)
            time.sleep(0.1)
        raise ConsulError("consul %s not ready after %ss (waiting for %s):\n%s"
                          % (self.dc, timeout or self.ready_timeout, what, self.log()[-6000:]))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals the agent and waits; returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise ConsulError("consul %s did not stop within %ss" % (self.dc, timeout))
        if self._reader:
            self._reader.join(5)
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._reader:
            self._reader.join(5)

    def restart(self, kill=False, **_):
        """Stops (gracefully unless kill=True) and starts again with the same ports and data."""
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start()

    def cleanup(self):
        self.kill()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # ------------------------------------------------------------ HTTP (as simctl.Sim)

    def _headers(self, headers):
        """With ACLs on, requests without a token carry the master token (pass X-Consul-Token to use another,
        or "" for none)."""
        h = dict(headers or {})
        if self.acl and not any(k.lower() in ("x-consul-token", "authorization") for k in h):
            h["X-Consul-Token"] = self.master_token
        return {k: v for k, v in h.items() if not (k.lower() == "x-consul-token" and v == "")}

    def admin(self, method, path, body=None, expect=200):
        raise NotSupported("/_sim/%s is a consul-kvsim feature; real Consul has no admin API" % path)

    def wipe_kv(self):
        """Deletes every KV key (between cases sharing one server)."""
        self.request("DELETE", "/v1/kv/?recurse")

    def make_token(self, rules, local=False):
        """An ACL token with the given HCL rules (a fresh policy); returns its SecretID."""
        name = "p-%s" % uuid.uuid4().hex[:12]
        pol = self.json("PUT", "/v1/acl/policy", {"Name": name, "Rules": rules})
        tok = self.json("PUT", "/v1/acl/token", {"Policies": [{"ID": pol["ID"]}], "Local": local})
        return tok["SecretID"]

    def consul_cli(self, *args, env=None, **kw):
        """Runs the consul CLI against this agent; returns the Popen (caller waits)."""
        e = dict(os.environ)
        e["CONSUL_HTTP_ADDR"] = self.addr
        if self.acl:
            e["CONSUL_HTTP_TOKEN"] = self.master_token
        e.update(env or {})
        return subprocess.Popen([self.binary] + list(args), env=e, **kw)


@contextlib.contextmanager
def federation(dcs, binary=None, acl=False, extra_config=None, attempts=3, ready_timeout=90, master_token=None):
    """Starts one real Consul server per DC name, WAN-joined to each other; the first DC is the primary (ACLs
    replicate from it). Yields {dc: Consul}. On an exception from the body, every server's log tail is printed."""
    binary = binary or find_consul()
    if not binary:
        raise ConsulError("no consul binary: set KVSHIP_CONSUL_BIN or put consul on PATH")
    master = (master_token or str(uuid.uuid4())) if acl else None
    for attempt in range(attempts):
        servers = {}
        try:
            for dc in dcs:
                servers[dc] = Consul(binary, dc=dc, acl=acl, master_token=master, primary_dc=dcs[0],
                                     extra_config=extra_config, start=False, ready_timeout=ready_timeout)
            for dc, s in servers.items():
                s.wan = [o.wan_addr for d, o in servers.items() if d != dc]
                s.expected_dcs = list(dcs)
            for s in servers.values():
                s.start(wait_ready=False)
            for s in servers.values():
                s.wait_ready()
        except ConsulError:
            for s in servers.values():
                s.cleanup()
            if attempt + 1 == attempts:
                raise
            continue
        try:
            yield servers
        except BaseException:
            for dc, s in servers.items():
                print("---- consul %s log (last lines) ----\n%s" % (dc, "\n".join(s.lines[-60:])), file=sys.stderr)
            raise
        finally:
            for s in servers.values():
                s.cleanup()
        return
