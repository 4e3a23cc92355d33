#!/usr/bin/env python3
"""A model of Vault 1.4.3's HA on Consul storage, for tests: each VaultNode takes `<path>core/lock` as Vault
does, advertises itself in `<path>core/leader/<uuid>`, registers `vault` with tag active/standby in its agent's
catalog, finds the leader as a standby does, forwards requests to it, and steps down when its lock goes.
Python 3 standard library only. Spec: ../shared/docs/vault-ha.md §2 (lock, leader lookup, forwarding) and §3
(service registration); the numbers in brackets below are the steps of §2 "Acquisition".

    import vaultha
    with vaultha.VaultCluster({"a": dc1.addr, "b": dc1.addr, "c": dc2.addr}, timing=vaultha.Timing.fast()) as vc:
        vc.unseal_all()
        a = vc.wait_one_active()               # the VaultNode that is active
        vc.node("b").sys_leader()              # {"is_self": False, "leader_address": a.api_addr, ...}
        vc.node("b").write("secret/x", {"v": 1})   # forwarded to the active node (204)
        vc.active_nodes()                      # names whose GET /v1/sys/leader says is_self right now
        with vc.sampler(0.2) as s: ...         # s.max_active, s.samples, s.violations()

One VaultNode = one Vault server process: threads, an HTTP API port and a cluster port (request forwarding),
talking HTTP to ONE Consul agent (consul-kvsim or real Consul, optionally with an ACL token).

VaultNode(consul, path="vault/", name=None, api_port=0, cluster_port=0, timing=None, token=None, host=...,
          log_dir=None, start=True)
  consul     "host:port", or an object with .addr (simctl.Sim, realconsul.Consul; its .master_token is used
             when it runs ACLs and no token is given)
  lifecycle  start() (the process starts sealed: registers standby + critical check)  unseal()  seal()
             (an active steps down first)  step_down() (release, then timing.step_down_sleep before contending
             again)  stop() (clean shutdown: seal, release, destroy the session, deregister)  kill() (crash:
             nothing more reaches Consul; the session expires on Consul's schedule, the check goes critical)
             restart() (stop + start, same ports, sealed)
  state      state ("sealed" | "standby" | "active" | "stopped" | "killed")  is_active()  history (list of
             (monotonic time, state))  lock_uuid  session_id  api_addr  cluster_addr  url  service_id
             counters (dict: lock_gets, acquires, acquire_refused (any false), lock_delay_waits (false
             while unheld: step 6's 5 s sleep), conflicts, lost, sessions, forwarded_out, forwarded_in,
             leader_lookups)
  HTTP       sys_leader()  health() -> (status, body)  write(path, dict) -> status  read(path) -> dict|None
             delete(path)  request(method, path, body) -> (status, headers, bytes)
  waiting    wait_active()  wait_standby(leader=api_addr)  wait_state(s)  wait_log(text)  wait_counter(n, v)
  log        log_lines()  log_tail(n)  log_has(text)  log_path (a file per node)

HTTP API (Vault's paths and status codes): GET /v1/sys/leader (1.4.3's fields: ha_enabled, is_self,
leader_address, leader_cluster_address, performance_standby, performance_standby_last_remote_wal), /v1/sys/health (200 active, 429 standby,
503 sealed; ?standbyok), /v1/sys/seal-status; PUT /v1/sys/seal, /v1/sys/unseal, /v1/sys/step-down; KV v1 at
/v1/secret/<name> (GET, PUT/POST with a JSON object, DELETE, LIST or GET ?list=true), stored as plain JSON at
`<path>logical/<MOUNT_UUID>/<name>` (real Vault encrypts it). Tokens are ignored. A standby answers sys/*
itself; anything else it forwards to the leader's cluster_addr (real Vault: gRPC over mutual TLS; here plain
HTTP on the cluster port) and returns the answer; with no leader known: 500 "local node not active but active
cluster node not found"; if the forward fails (connection refused, or the target is not active: only the active
node serves forwarded requests): 307 to the leader's redirect_addr, as Vault's respondStandby. Only the active
node executes requests.

Not modelled: the barrier (encryption, keyring, core/upgrade), init, the physical cache of the active node,
the 90 s request drain at step-down, cluster TLS, performance standbys, core/leader's cert and key.
"""
import contextlib
import http.client
import http.server
import json
import os
import random
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid as uuidlib

LOCK_FLAG = 3304740253564472344  # api.LockFlagValue, 0x2ddccbc058a50c18
MOUNT_UUID = "7d1f4c2e-5a9b-4e3d-8c6f-2b0a9e8d7c61"  # the "secret/" mount's uuid (fixed: one per model world)
SEALED_ERR = "Vault is sealed"
NO_LEADER_ERR = "local node not active but active cluster node not found"
ZERO_TIME = "0001-01-01T00:00:00Z"
FWD_HEADER = "X-Vaultha-Forwarded-From"


class Timing:
    """Vault 1.4.3's timers (defaults) and the test presets. Seconds, floats.

    session_ttl       session TTL sent on create (Vault: session_ttl "15s"; Consul refuses < 10 s)
    lock_delay        LockDelay sent on create; None = not sent (Vault), so the server's 15 s applies
    lock_wait         wait= of the blocking GETs while contending (lock_wait_time 15 s)
    lock_retry        after a failed Lock() (conflict, error): lockRetryInterval 10 s, new session
    lock_delay_retry  after an acquire refused while unheld (lock-delay): DefaultLockRetryTime 5 s
    attempt_sleep     after losing the lock, before contending again: 1 s
    step_down_sleep   after a manual step-down: manualStepDownSleepPeriod 10 s
    leader_refresh    a standby's periodicLeaderRefresh: 2.5 s
    monitor_retries   monitorLock's retries of retryable errors (5), monitor_retry_time apart (2 s)
    renew_retry       RenewPeriodic's wait after a failed renew: 1 s
    check_timeout     the sealed check's TTL (check_timeout 5 s); heartbeats every check_timeout-100ms-jitter
    reconcile         catalog reconcile period (about 60 s)
    clean_leader      cleanLeaderPrefix's delay per key (leaderPrefixCleanDelay 200 ms)
    """

    FIELDS = ("session_ttl", "lock_delay", "lock_wait", "lock_retry", "lock_delay_retry", "attempt_sleep",
              "step_down_sleep", "leader_refresh", "monitor_retries", "monitor_retry_time", "renew_retry",
              "check_timeout", "reconcile", "clean_leader")

    def __init__(self, session_ttl=15.0, lock_delay=None, lock_wait=15.0, lock_retry=10.0, lock_delay_retry=5.0,
                 attempt_sleep=1.0, step_down_sleep=10.0, leader_refresh=2.5, monitor_retries=5,
                 monitor_retry_time=2.0, renew_retry=1.0, check_timeout=5.0, reconcile=60.0, clean_leader=0.2):
        if session_ttl < 10:
            raise ValueError("vaultha: session_ttl %ss: Consul refuses TTLs below 10 s" % session_ttl)
        self.session_ttl = float(session_ttl)
        self.lock_delay = lock_delay
        self.lock_wait = float(lock_wait)
        self.lock_retry = float(lock_retry)
        self.lock_delay_retry = float(lock_delay_retry)
        self.attempt_sleep = float(attempt_sleep)
        self.step_down_sleep = float(step_down_sleep)
        self.leader_refresh = float(leader_refresh)
        self.monitor_retries = int(monitor_retries)
        self.monitor_retry_time = float(monitor_retry_time)
        self.renew_retry = float(renew_retry)
        self.check_timeout = float(check_timeout)
        self.reconcile = float(reconcile)
        self.clean_leader = float(clean_leader)

    @classmethod
    def fast(cls, factor=10.0, session_ttl=10.0, lock_delay=2.0, **over):
        """Vault's timers divided by `factor`, within Consul's limits: session TTL 10 s (Consul's minimum; a
        dead node's session ends 10-20 s after its last renewal), lock-delay 2 s (sent explicitly), the check
        TTL kept at 5 s (its heartbeat must outpace it on a loaded machine)."""
        d = cls()
        kw = {f: getattr(d, f) / factor for f in ("lock_wait", "lock_retry", "lock_delay_retry", "attempt_sleep",
                                                  "step_down_sleep", "leader_refresh", "monitor_retry_time",
                                                  "renew_retry", "reconcile", "clean_leader")}
        kw.update(session_ttl=session_ttl, lock_delay=lock_delay, check_timeout=d.check_timeout)
        kw.update(over)
        return cls(**kw)

    def as_dict(self):
        return {f: getattr(self, f) for f in self.FIELDS}

    def __repr__(self):
        return "Timing(%s)" % ", ".join("%s=%r" % kv for kv in self.as_dict().items())


def go_duration(seconds):
    ms = int(round(seconds * 1000))
    return "%ds" % (ms // 1000) if ms % 1000 == 0 else "%dms" % ms


def _parse_go_duration(text):
    """Consul returns the session TTL as a Go duration ("15s", "1m0s", "10.5s")."""
    total, num, i = 0.0, "", 0
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    while i < len(text):
        c = text[i]
        if c.isdigit() or c == ".":
            num += c
            i += 1
            continue
        u = text[i:i + 2] if text[i:i + 2] in units else c
        total += float(num or 0) * units[u]
        num = ""
        i += len(u)
    return total


# ---------------------------------------------------------------- Consul client

class Aborted(Exception):
    """The client was aborted (the node was killed or stopped): nothing more goes to Consul."""


class ConsulError(Exception):
    def __init__(self, status, body, what):
        super().__init__("%s: %s %s" % (what, status, body[:300].decode("utf-8", "replace")))
        self.status = status


class _Client:
    """Consul's HTTP API on one agent. Every connection is tracked so abort() cuts them all at once (a crash, or
    the end of a blocking query nobody waits for); children share the parent's abort."""

    def __init__(self, host, port, token=None, parent=None):
        self.host, self.port, self.token = host, port, token
        self._conns = set()
        self._lock = threading.Lock()
        self._aborted = False
        self._parent = parent
        self._children = []

    def child(self):
        c = _Client(self.host, self.port, self.token, parent=self)
        with self._lock:
            self._children = [k for k in self._children if not k._aborted]
            self._children.append(c)
            if self._aborted:
                c._aborted = True
        return c

    @property
    def aborted(self):
        return self._aborted or (self._parent is not None and self._parent.aborted)

    def abort(self):
        with self._lock:
            self._aborted = True
            conns, children = list(self._conns), list(self._children)
        for c in conns:
            try:
                if c.sock is not None:
                    c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for k in children:
            k.abort()

    def request(self, method, path, body=None, timeout=30):
        if self.aborted:
            raise Aborted()
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        headers = {"X-Consul-Token": self.token} if self.token else {}
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        with self._lock:
            self._conns.add(conn)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            if self.aborted:
                raise Aborted()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        except OSError:
            if self.aborted:
                raise Aborted() from None
            raise
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def ok(self, method, path, body=None, timeout=30, what=None):
        status, hdrs, data = self.request(method, path, body, timeout)
        if status != 200:
            raise ConsulError(status, data, what or "%s %s" % (method, path.split("?")[0]))
        return hdrs, data

    def kv_get(self, key, index=None, wait=None, consistent=False, timeout=None):
        """(entry dict or None, X-Consul-Index). Raises ConsulError / OSError / Aborted."""
        q = []
        if consistent:
            q.append("consistent")
        if index:
            q.append("index=%d" % index)
        if wait is not None:
            q.append("wait=%dms" % int(wait * 1000))
        path = "/v1/kv/%s%s" % (urllib.parse.quote(key), "?" + "&".join(q) if q else "")
        if timeout is None:
            timeout = (wait if wait is not None else 330) + 30
        status, hdrs, data = self.request("GET", path, timeout=timeout)
        idx = int(hdrs.get("x-consul-index", "0") or 0)
        if status == 404:
            return None, idx
        if status != 200:
            raise ConsulError(status, data, "GET %s" % key)
        return json.loads(data)[0], idx

    def kv_keys(self, prefix):
        status, _, data = self.request("GET", "/v1/kv/%s?keys&separator=/" % urllib.parse.quote(prefix))
        if status == 404:
            return []
        if status != 200:
            raise ConsulError(status, data, "GET %s?keys" % prefix)
        return json.loads(data)

    def kv_put(self, key, value, query=""):
        _, data = self.ok("PUT", "/v1/kv/%s%s" % (urllib.parse.quote(key), query), value)
        return data.strip() == b"true"

    def kv_delete(self, key):
        self.ok("DELETE", "/v1/kv/%s" % urllib.parse.quote(key))


def value_of(entry):
    import base64
    v = entry.get("Value")
    return base64.b64decode(v) if v else b""


# ---------------------------------------------------------------- HTTP servers

class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, handler):
        self.open_conns = set()
        self.conns_lock = threading.Lock()
        super().__init__(addr, handler)

    def get_request(self):
        conn, addr = super().get_request()
        with self.conns_lock:
            self.open_conns.add(conn)
        return conn, addr

    def shutdown_request(self, request):
        with self.conns_lock:
            self.open_conns.discard(request)
        super().shutdown_request(request)

    def drop_connections(self):
        with self.conns_lock:
            conns, self.open_conns = list(self.open_conns), set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _handler_class(node, cluster_port):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            hdrs = {k.lower(): v for k, v in self.headers.items()}
            try:
                if cluster_port:
                    status, out_headers, data = node._serve_forwarded(self.command, self.path, body, hdrs)
                else:
                    status, out_headers, data = node._serve_api(self.command, self.path, body, hdrs)
            except Exception as e:  # noqa: BLE001 - a model bug must show, not hang the client
                node._log("ERROR serving %s %s: %r" % (self.command, self.path, e))
                status, out_headers, data = 500, {}, json.dumps({"errors": ["vaultha: %r" % e]}).encode()
            self.send_response(status)
            for k, v in out_headers.items():
                self.send_header(k, v)
            if "Content-Type" not in out_headers and data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(data)))
            try:
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        do_GET = do_PUT = do_POST = do_DELETE = do_LIST = do_HEAD = _serve  # noqa: N815
    return Handler


def _json(status, obj):
    return status, {"Content-Type": "application/json"}, json.dumps(obj).encode()


def _errors(status, *msgs):
    return _json(status, {"errors": list(msgs)})


def _free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Stopped(Exception):
    pass


class LockConflict(Exception):
    pass


# ---------------------------------------------------------------- the lock (api/lock.go as Vault uses it)

class _Lock:
    """One api.Lock: key <path>core/lock, value = the attempt's UUID, session "Vault Lock"."""

    def __init__(self, node, value, client):
        self.node = node
        self.client = client  # contention requests (aborted by seal/stop to end a blocking GET)
        self.key = node.path + "core/lock"
        self.value = value
        self.session = None
        self.held = False
        self.lost = threading.Event()
        self._renew_done = None
        self._monitor_client = None

    # -- session
    def _create_session(self):
        t = self.node.timing
        body = {"Name": "Vault Lock", "TTL": go_duration(t.session_ttl)}
        if t.lock_delay is not None:
            body["LockDelay"] = go_duration(t.lock_delay)
        _, data = self.client.ok("PUT", "/v1/session/create", body, what="create session")
        sid = json.loads(data)["ID"]
        done = threading.Event()
        self._renew_done = done
        threading.Thread(target=self.node._renew_loop, args=(sid, done), daemon=True,
                         name="vaultha-%s-renew" % self.node.name).start()
        return sid

    def _end_session(self):
        if self._renew_done is not None:
            self._renew_done.set()  # the renewer destroys the session (RenewPeriodic's doneCh)
            self._renew_done = None

    # -- Lock() [1]-[7]
    def lock(self, stop):
        """True once held; False if `stop` was set. Raises LockConflict or a Consul/network error."""
        n, t, c = self.node, self.node.timing, self.client
        self.session = self._create_session()  # [1]
        n._log("lock: session %s created (TTL %s%s), uuid %s" % (
            self.session, go_duration(t.session_ttl),
            ", LockDelay %s" % go_duration(t.lock_delay) if t.lock_delay is not None else "", self.value))
        index = None
        attempts = 0
        try:
            while True:
                if stop.is_set():
                    return False
                attempts += 1
                entry, idx = c.kv_get(self.key, index=index, wait=t.lock_wait)  # [2]
                n._count("lock_gets")
                if stop.is_set():
                    return False
                if entry is not None and entry.get("Flags", 0) != LOCK_FLAG:  # [3]
                    raise LockConflict("existing key does not match lock use (flags %s, session %r)"
                                       % (entry.get("Flags", 0), entry.get("Session", "")))
                if entry is not None and entry.get("Session", "") == self.session:
                    break
                if entry is not None and entry.get("Session"):  # [4]
                    if index != idx or attempts == 1:
                        n._log("lock: held by another session %s (value %r), waiting"
                               % (entry["Session"], value_of(entry)[:64].decode("utf-8", "replace")))
                    index = idx
                    continue
                # [5] missing, or no session: acquire with our UUID
                q = "?acquire=%s&flags=%d" % (self.session, LOCK_FLAG)
                n._count("acquires")
                if c.kv_put(self.key, self.value.encode(), q):
                    n._log("lock: acquired %s (key was %s) on attempt %d"
                           % (self.key, "missing" if entry is None else "unheld", attempts))
                    break
                n._count("acquire_refused")
                entry, idx = c.kv_get(self.key, wait=t.lock_wait)  # [6] why? (no index: at once)
                if entry is not None and entry.get("Session"):
                    n._log("lock: acquire refused, now held by %s; waiting" % entry["Session"])
                    index = idx
                    continue
                n._count("lock_delay_waits")
                n._log("lock: acquire refused while unheld (lock-delay); retrying in %ss" % t.lock_delay_retry)
                index = None
                if stop.wait(t.lock_delay_retry):
                    return False
            self.held = True
            self._monitor_client = n.consul.child()
            threading.Thread(target=self._monitor, daemon=True, name="vaultha-%s-monitor" % n.name).start()
            return True
        finally:
            if not self.held:
                self._end_session()

    # -- monitorLock [7]
    def _monitor(self):
        n, t, c = self.node, self.node.timing, self._monitor_client
        index = None
        retries = t.monitor_retries
        why = "?"
        while True:
            try:
                entry, idx = c.kv_get(self.key, index=index, consistent=True)
            except Aborted:
                return  # unlocked or killed: nobody listens
            except (OSError, ConsulError, ValueError) as e:
                retryable = isinstance(e, OSError) or getattr(e, "status", 0) == 500
                if retryable and retries > 0:
                    n._log("lock monitor: %s; retry in %ss (%d left)" % (e, t.monitor_retry_time, retries))
                    retries -= 1
                    index = None
                    time.sleep(t.monitor_retry_time)
                    continue
                why = "error %s" % e
                break
            if entry is not None and entry.get("Session", "") == self.session:
                index = idx
                retries = t.monitor_retries
                continue
            why = "key missing" if entry is None else "session is now %r" % entry.get("Session", "")
            break
        if self.held:
            n._count("lost")
            n._log("lock monitor: lock lost (%s)" % why)
            self.lost.set()
            n._wake()

    # -- Unlock()
    def unlock(self):
        if not self.held:
            return
        self.held = False
        sid, self.session = self.session, None
        try:
            released = self.node.consul.kv_put(self.key, self.value.encode(),
                                               "?release=%s&flags=%d" % (sid, LOCK_FLAG))
            self.node._log("lock: released (%s)" % ("true" if released else "false: not ours any more"))
        except (OSError, ConsulError) as e:
            self.node._log("lock: release failed: %s" % e)
        finally:
            if self._monitor_client is not None:
                self._monitor_client.abort()
            self._end_session()


# ---------------------------------------------------------------- the node

class VaultNode:
    """One modelled Vault server (see the module docstring)."""

    def __init__(self, consul, path="vault/", name=None, api_port=0, cluster_port=0, timing=None, token=None,
                 host="127.0.0.1", log_dir=None, dc=None, start=True):
        if isinstance(consul, str):
            addr = consul
        else:
            addr = consul.addr
            if token is None and getattr(consul, "acl", False):
                token = getattr(consul, "master_token", None)
            dc = dc or getattr(consul, "dc", None)
        addr = addr.split("://", 1)[-1]
        chost, cport = addr.rsplit(":", 1)
        self.consul_addr = addr
        self.dc = dc
        self.token = token
        self._chost, self._cport = chost, int(cport)
        self.consul = None  # the agent client of the current start(); aborted by stop() and kill()
        self.path = path if path.endswith("/") else path + "/"
        self.host = host
        self.api_port = api_port or _free_port(host)
        self.cluster_port = cluster_port or _free_port(host)
        self.name = name or "vault-%d" % self.api_port
        self.timing = timing or Timing()
        self.api_addr = "http://%s:%d" % (host, self.api_port)
        self.url = self.api_addr
        self.cluster_addr = "https://%s:%d" % (host, self.cluster_port)
        self.service_id = "vault:%s:%d" % (host, self.api_port)
        self.check_id = self.service_id + ":vault-sealed-check"
        self._own_log_dir = log_dir is None
        self.log_dir = log_dir or tempfile.mkdtemp(prefix="vaultha-%s-" % self.name)
        self.log_path = os.path.join(self.log_dir, "vaultha-%s.log" % self.name)
        self._logf = open(self.log_path, "a")
        self._lines = []
        self._loglock = threading.Lock()
        self._state_lock = threading.RLock()
        self.state = "stopped"
        self.history = []
        self.counters = {k: 0 for k in ("lock_gets", "acquires", "acquire_refused", "conflicts", "lost",
                                        "lock_delay_waits", "forwarded_out", "forwarded_in", "leader_lookups",
                                        "sessions")}
        self.lock_uuid = None
        self.session_id = None
        self.active_time = ZERO_TIME
        self._standby = True
        self._sealed = True
        self._lock = None
        self._run = None  # per unseal: {"stop": Event, "thread": Thread, "stepdown": Event}
        self._wake_ev = threading.Event()
        self._leader_cache = (None, "", "")  # (uuid, redirect, cluster)
        self._tags_registered = None
        self._servers = []
        self._bg_stop = None
        self._dead = False
        if start:
            self.start()

    # ------------------------------------------------------------ logging and state

    def _log(self, msg):
        line = "%s [%s] %s" % (time.strftime("%H:%M:%S", time.gmtime()) + ".%03d" % (time.time() * 1000 % 1000),
                               self.name, msg)
        with self._loglock:
            self._lines.append(line)
            try:
                self._logf.write(line + "\n")
                self._logf.flush()
            except ValueError:
                pass

    def log_lines(self):
        with self._loglock:
            return list(self._lines)

    def log_tail(self, n=60):
        return "\n".join(self.log_lines()[-n:])

    def log_has(self, text):
        return any(text in line for line in self.log_lines())

    def _count(self, k, by=1):
        with self._loglock:
            self.counters[k] = self.counters.get(k, 0) + by

    def _set_state(self, s):
        with self._state_lock:
            if self._dead and s != "killed":
                return  # a thread of the killed process finishing late changes nothing
            if s != self.state:
                self.state = s
                self.history.append((time.monotonic(), s))
                self._log("state: %s" % s)

    def _wake(self):
        self._wake_ev.set()

    def is_active(self):
        return self.state == "active"

    def __repr__(self):
        return "<VaultNode %s dc=%s %s %s>" % (self.name, self.dc, self.api_addr, self.state)

    # ------------------------------------------------------------ lifecycle

    def start(self):
        """Starts the 'process': HTTP ports open, sealed, registered in the catalog as standby, check critical."""
        if self.state not in ("stopped", "killed"):
            raise RuntimeError("vaultha %s: already running (%s)" % (self.name, self.state))
        self._dead = False
        self.consul = _Client(self._chost, self._cport, self.token)
        self._sealed = True
        self._standby = True
        self._leader_cache = (None, "", "")
        self._tags_registered = None
        for port, cluster in ((self.api_port, False), (self.cluster_port, True)):
            srv = _Server((self.host, port), _handler_class(self, cluster))
            threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                             name="vaultha-%s-%s" % (self.name, "cluster" if cluster else "api")).start()
            self._servers.append(srv)
        self._log("start: api %s cluster %s consul %s path %s %r" % (self.api_addr, self.cluster_addr,
                                                                   self.consul_addr, self.path, self.timing))
        self._set_state("sealed")
        self._bg_stop = threading.Event()
        try:
            self._reconcile(force=True)
        except (OSError, ConsulError, Aborted) as e:
            self._log("service registration failed: %s" % e)
        threading.Thread(target=self._check_loop, args=(self._bg_stop,), daemon=True,
                         name="vaultha-%s-check" % self.name).start()
        threading.Thread(target=self._refresh_loop, args=(self._bg_stop,), daemon=True,
                         name="vaultha-%s-refresh" % self.name).start()
        return self

    def unseal(self):
        """Unsealed: the check passes and the node contends for the lock (standby until it holds it)."""
        with self._state_lock:
            if self.state in ("stopped", "killed"):
                raise RuntimeError("vaultha %s: not running" % self.name)
            if not self._sealed:
                return self
            self._sealed = False
            self._standby = True
            self._set_state("standby")
            run = {"stop": threading.Event(), "stepdown": threading.Event()}
            run["thread"] = threading.Thread(target=self._ha_loop, args=(run,), daemon=True,
                                             name="vaultha-%s-ha" % self.name)
            self._run = run
        self._log("unsealed")
        self._run_check()
        run["thread"].start()
        return self

    def seal(self):
        """Sealed: an active node steps down first (core/leader entry deleted, standby tag, release); the
        session is destroyed; the check goes critical."""
        with self._state_lock:
            if self._sealed:
                return self
            self._sealed = True
            run, self._run = self._run, None
        self._log("sealing")
        if run:
            run["stop"].set()
            self._wake()
            self.consul_abort_contention()
            run["thread"].join(30)
        self._set_state("sealed")
        self._run_check()
        return self

    def step_down(self):
        """sys/step-down on the active: gives up the lock, waits timing.step_down_sleep, contends again."""
        run = self._run
        if run is None or self.state != "active":
            raise RuntimeError("vaultha %s: step_down on a %s node" % (self.name, self.state))
        self._log("step-down requested")
        run["stepdown"].set()
        self._wake()
        return self

    def stop(self):
        """Clean shutdown (SIGTERM): seal (an active steps down and releases), deregister, close the ports."""
        if self.state in ("stopped", "killed"):
            return
        self._log("shutting down")
        self.seal()
        try:
            self.consul.ok("PUT", "/v1/agent/service/deregister/%s" % self.service_id, what="deregister")
            self._log("catalog: deregistered %s" % self.service_id)
        except (OSError, ConsulError, Aborted) as e:
            self._log("catalog: deregister failed: %s" % e)
        self._bg_stop.set()
        self._close_servers()
        self.consul.abort()
        self._set_state("stopped")

    def kill(self):
        """A crash (SIGKILL): the ports close, every Consul connection is cut, no renewal, no cleanup."""
        if self.state in ("stopped", "killed"):
            return
        self._dead = True
        self._log("KILLED (session %s left to expire on Consul's schedule)" % self.session_id)
        self.consul.abort()
        with self._state_lock:
            run, self._run = self._run, None
            self._sealed = True
        if run:
            run["stop"].set()
        self._wake()
        if self._bg_stop:
            self._bg_stop.set()
        self._close_servers()
        self._set_state("killed")

    def restart(self):
        self.stop()
        return self.start()

    def close(self):
        """For cleanup: stop() if still running (ignoring errors), then close the log file."""
        try:
            if self.state not in ("stopped", "killed"):
                self.stop()
        finally:
            with self._loglock:
                self._logf.close()

    def _close_servers(self):
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
            srv.drop_connections()
        self._servers = []

    def consul_abort_contention(self):
        """Ends a blocking GET of the contention loop (Vault's Lock() would see stopCh at its next wake-up)."""
        lk = self._lock
        c = getattr(self, "_contend_client", None)
        if c is not None:
            c.abort()
        return lk

    # ------------------------------------------------------------ waitForLeadership

    def _sleep(self, run, seconds):
        """Interruptible sleep; True if the run was stopped."""
        return run["stop"].wait(seconds)

    def _ha_loop(self, run):
        stop = run["stop"]
        while not stop.is_set():
            value = str(uuidlib.uuid4())
            # acquireLock: Lock() until it succeeds, lockRetryInterval after each failure
            while True:
                if stop.is_set():
                    return
                self._contend_client = self.consul.child()
                lock = _Lock(self, value, self._contend_client)
                try:
                    self._count("sessions")
                    got = lock.lock(stop)
                    self.session_id = lock.session if got else None
                except (OSError, ConsulError, LockConflict, ValueError) as e:
                    if isinstance(e, LockConflict):
                        self._count("conflicts")
                    self._log("failed to acquire lock: %s; retrying in %ss" % (e, self.timing.lock_retry))
                    got = None
                except Aborted:
                    return
                if got is False:
                    return
                if got:
                    break
                if self._sleep(run, self.timing.lock_retry):
                    return
            if stop.is_set() or self._dead:
                return
            self._log("acquired lock, enabling active operation (uuid %s, session %s)" % (value, lock.session))
            self._lock = lock
            self.lock_uuid = value
            manual = False
            try:
                self._advertise(value)
            except (OSError, ConsulError) as e:
                self._log("leader advertisement setup failed: %s" % e)
                self._lock = None
                lock.unlock()
                if self._sleep(run, self.timing.attempt_sleep):
                    return
                continue
            except Aborted:
                return
            with self._state_lock:
                self._standby = False
                self.active_time = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".%06dZ" % (
                    time.time() * 1e6 % 1e6)
                self._set_state("active")
            self._notify_role()
            threading.Thread(target=self._clean_leader_prefix, args=(value, lock), daemon=True,
                             name="vaultha-%s-clean" % self.name).start()
            # monitor: leadership lost, shutdown/seal, or a manual step-down
            while True:
                self._wake_ev.wait(1.0)
                self._wake_ev.clear()
                if lock.lost.is_set():
                    self._log("leadership lost, stopping active operation")
                    break
                if stop.is_set():
                    break
                if run["stepdown"].is_set():
                    run["stepdown"].clear()
                    manual = True
                    self._log("stepping down from active operation to standby")
                    break
            if self._dead:
                return
            with self._state_lock:
                self._standby = True
                self.active_time = ZERO_TIME
                if not self._sealed:
                    self._set_state("standby")
            # clearLeader, then Unlock
            try:
                self.consul.kv_delete(self.path + "core/leader/" + value)
                self._log("core/leader/%s deleted" % value)
            except (OSError, ConsulError) as e:
                self._log("clearing leader advertisement failed: %s" % e)
            except Aborted:
                return
            self._notify_role()
            self._lock = None
            lock.unlock()
            self.session_id = None
            self._leader_cache = (None, "", "")
            if stop.is_set():
                return
            if self._sleep(run, self.timing.step_down_sleep if manual else self.timing.attempt_sleep):
                return

    def _advertise(self, value):
        body = {"redirect_addr": self.api_addr, "cluster_addr": self.cluster_addr}
        self.consul.kv_put(self.path + "core/leader/" + value, json.dumps(body).encode())
        self._log("advertised core/leader/%s %s" % (value, body))

    def _clean_leader_prefix(self, value, lock):
        try:
            keys = [k.rsplit("/", 1)[1] for k in self.consul.kv_keys(self.path + "core/leader/")
                    if not k.endswith("/")]
        except (OSError, ConsulError, Aborted) as e:
            self._log("cleanLeaderPrefix: list failed: %s" % e)
            return
        for k in keys:
            if lock.lost.wait(self.timing.clean_leader) or not lock.held:
                return
            if k != value:
                try:
                    self.consul.kv_delete(self.path + "core/leader/" + k)
                    self._log("cleanLeaderPrefix: deleted core/leader/%s" % k)
                except (OSError, ConsulError, Aborted) as e:
                    self._log("cleanLeaderPrefix: delete %s failed: %s" % (k, e))
                    return

    def _renew_loop(self, sid, done):
        """RenewPeriodic: every TTL/2; 1 s after an error; gives up after a TTL without success; 404 ends it;
        `done` set: destroy the session. A killed node does nothing more."""
        t = self.timing
        client = self.consul
        ttl = t.session_ttl
        wait = ttl / 2
        last = time.monotonic()
        while True:
            if time.monotonic() - last > ttl:
                self._log("session %s: renewal gave up after %ss without success" % (sid, ttl))
                return
            if done.wait(wait):
                if self._dead:
                    return
                try:
                    client.ok("PUT", "/v1/session/destroy/%s" % sid, what="destroy session")
                    self._log("session %s destroyed" % sid)
                except (OSError, ConsulError, Aborted) as e:
                    self._log("session %s: destroy failed: %s" % (sid, e))
                return
            if self._dead:
                return
            try:
                status, _, data = client.request("PUT", "/v1/session/renew/%s" % sid)
            except Aborted:
                return
            except OSError as e:
                self._log("session %s: renew failed: %s" % (sid, e))
                wait = t.renew_retry
                continue
            if status == 404:
                self._log("session %s: renew: not found (expired or destroyed)" % sid)
                return
            if status != 200:
                self._log("session %s: renew: %s %r" % (sid, status, data[:200]))
                wait = t.renew_retry
                continue
            try:
                ttl = _parse_go_duration(json.loads(data)[0]["TTL"]) or ttl
            except (ValueError, KeyError, IndexError, TypeError):
                pass
            wait = ttl / 2
            last = time.monotonic()

    # ------------------------------------------------------------ the standby's leader lookup (ha.go Leader)

    def leader(self):
        """(is_self, redirect_addr, cluster_addr); raises SealedError when sealed; Consul errors propagate."""
        with self._state_lock:
            if self._sealed:
                raise SealedError()
            if not self._standby:
                return True, self.api_addr, self.cluster_addr
        self._count("leader_lookups")
        entry, _ = self.consul.kv_get(self.path + "core/lock")
        if entry is None or not entry.get("Session"):
            return False, "", ""
        lead_uuid = value_of(entry).decode("utf-8", "replace")
        cached = self._leader_cache
        if lead_uuid == cached[0] and cached[1]:
            return False, cached[1], cached[2]
        adv, _ = self.consul.kv_get(self.path + "core/leader/" + lead_uuid)
        if adv is None:
            return False, "", ""
        raw = value_of(adv)
        try:
            d = json.loads(raw)
            redirect, cluster = d.get("redirect_addr", ""), d.get("cluster_addr", "")
        except ValueError:
            redirect, cluster = raw.decode("utf-8", "replace"), ""  # a bare redirect address
        if (redirect, cluster) != cached[1:]:
            self._log("leader is %s (cluster %s, uuid %s, session %s)" % (redirect, cluster, lead_uuid,
                                                                          entry.get("Session")))
        self._leader_cache = (lead_uuid, redirect, cluster)
        return False, redirect, cluster

    def _refresh_loop(self, bg_stop):
        while not bg_stop.wait(self.timing.leader_refresh):
            if self._sealed or not self._standby or self._dead:
                continue
            try:
                self.leader()
            except (OSError, ConsulError, Aborted, SealedError, ValueError):
                pass

    # ------------------------------------------------------------ service registration (§3)

    def _tags(self):
        return ["standby"] if self._standby else ["active"]

    def _reconcile(self, force=False):
        tags = self._tags()
        if not force:
            status, _, data = self.consul.request("GET", "/v1/agent/services")
            if status == 200:
                svc = json.loads(data).get(self.service_id)
                if svc is not None and sorted(svc.get("Tags") or []) == tags:
                    return
        self.consul.ok("PUT", "/v1/agent/service/register", {
            "ID": self.service_id, "Name": "vault", "Tags": tags, "Port": self.api_port, "Address": self.host,
            "EnableTagOverride": False}, what="service register")
        self.consul.ok("PUT", "/v1/agent/check/register", {
            "ID": self.check_id, "Name": "Vault Sealed Status",
            "Notes": "Vault service is healthy when Vault is in an unsealed status and can become an active "
                     "Vault server",
            "ServiceID": self.service_id, "TTL": go_duration(self.timing.check_timeout),
            "Status": "critical" if self._sealed else "passing"}, what="check register")
        if tags != self._tags_registered:
            self._log("catalog: %s registered with tags %s" % (self.service_id, tags))
        self._tags_registered = tags

    def _notify_role(self):
        try:
            self._reconcile()
        except (OSError, ConsulError) as e:
            self._log("catalog: reconcile failed: %s" % e)
        except Aborted:
            pass

    def _run_check(self):
        try:
            if self._sealed:
                self.consul.ok("PUT", "/v1/agent/check/fail/%s?note=Vault%%20Sealed" % self.check_id)
            else:
                self.consul.ok("PUT", "/v1/agent/check/pass/%s?note=Vault%%20Unsealed" % self.check_id)
        except (OSError, ConsulError) as e:
            self._log("catalog: check update failed: %s" % e)
        except Aborted:
            pass

    def _check_loop(self, bg_stop):
        t = self.timing
        last_reconcile = time.monotonic()
        while True:
            wait = max(0.2, t.check_timeout - 0.1 - random.uniform(0, t.check_timeout / 4))
            if bg_stop.wait(wait):
                return
            self._run_check()
            if time.monotonic() - last_reconcile >= t.reconcile:
                last_reconcile = time.monotonic()
                self._notify_role()

    # ------------------------------------------------------------ HTTP: the API port

    def _serve_api(self, method, target, body, headers):
        path, _, query = target.partition("?")
        q = urllib.parse.parse_qs(query, keep_blank_values=True)
        if path == "/v1/sys/leader" and method == "GET":
            return self._sys_leader()
        if path == "/v1/sys/health" and method in ("GET", "HEAD"):
            return self._sys_health(q)
        if path == "/v1/sys/seal-status" and method == "GET":
            return _json(200, self._seal_status())
        if path == "/v1/sys/unseal" and method in ("PUT", "POST"):
            self.unseal()
            return _json(200, self._seal_status())
        if path == "/v1/sys/seal" and method in ("PUT", "POST"):
            if self._sealed:
                return _errors(503, SEALED_ERR)
            if self._standby:  # Vault 1.4.3's answer on an unsealed standby
                return _errors(400, "error performing token check: Vault is in standby mode")
            threading.Thread(target=self.seal, daemon=True).start()
            return 204, {}, b""
        # handleRequestForwarding: everything else runs on the active node
        try:
            is_self, redirect, cluster = self.leader()
        except SealedError:
            return _errors(503, SEALED_ERR)
        except (OSError, ConsulError, Aborted) as e:
            return _errors(500, "error checking leader: %s" % e)
        if is_self:
            return self._serve_local(method, path, q, body)
        if not redirect:
            return _errors(500, NO_LEADER_ERR)
        return self._forward(method, target, body, headers, redirect, cluster)

    def _forward(self, method, target, body, headers, redirect, cluster):
        self._count("forwarded_out")
        try:
            u = urllib.parse.urlsplit(cluster)
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            try:
                h = {k: v for k, v in headers.items() if k in ("content-type", "x-vault-token")}
                h[FWD_HEADER] = self.name
                conn.request(method, target, body=body or None, headers=h)
                r = conn.getresponse()
                data = r.read()
                if r.getheader("X-Vaultha-Cannot-Forward"):
                    raise OSError("target not active: %s" % data[:200].decode("utf-8", "replace"))
                self._log("forwarded %s %s to %s: %s" % (method, target, cluster, r.status))
                out = {k: v for k, v in r.getheaders() if k.lower() in ("content-type", "location")}
                return r.status, out, data
            finally:
                conn.close()
        except (OSError, http.client.HTTPException, ValueError) as e:
            # respondStandby: a 307 to the leader's redirect address
            self._log("forward request error: %s; redirecting to %s" % (e, redirect))
            loc = redirect.rstrip("/") + target
            return 307, {"Location": loc}, b""

    # ------------------------------------------------------------ HTTP: the cluster port (forwarded requests)

    def _serve_forwarded(self, method, target, body, headers):
        with self._state_lock:
            ok = not self._sealed and not self._standby
        if not ok:
            return 503, {"X-Vaultha-Cannot-Forward": "1"}, b"request forwarding is only served by the active node"
        self._count("forwarded_in")
        self._log("serving forwarded %s %s from %s" % (method, target, headers.get(FWD_HEADER.lower(), "?")))
        path, _, query = target.partition("?")
        return self._serve_local(method, path, urllib.parse.parse_qs(query, keep_blank_values=True), body)

    # ------------------------------------------------------------ the active node's request handling

    def _serve_local(self, method, path, q, body):
        if path == "/v1/sys/step-down" and method in ("PUT", "POST"):
            run = self._run
            if run is not None:
                self._log("step-down requested (API)")
                run["stepdown"].set()
                self._wake()
            return 204, {}, b""
        if not path.startswith("/v1/secret/"):
            return _errors(404, "no handler for route '%s'" % path[len("/v1/"):])
        name = path[len("/v1/secret/"):]
        listing = method == "LIST" or (method == "GET" and q.get("list", [""])[0] in ("true", "1"))
        key = self.path + "logical/%s/%s" % (MOUNT_UUID, name)
        try:
            if listing:
                keys = self.consul.kv_keys(key)
                keys = [k[len(key):] for k in keys if k != key]
                if not keys:
                    return _errors(404)
                return _json(200, self._response({"keys": keys}))
            if not name or name.endswith("/"):
                return _errors(405 if method != "GET" else 404)
            if method == "GET":
                entry, _ = self.consul.kv_get(key)
                if entry is None:
                    return _errors(404)
                return _json(200, self._response(json.loads(value_of(entry) or b"{}")))
            if method in ("PUT", "POST"):
                try:
                    data = json.loads(body or b"{}")
                except ValueError:
                    return _errors(400, "failed to parse JSON input")
                if not isinstance(data, dict):
                    return _errors(400, "failed to parse JSON input")
                self.consul.kv_put(key, json.dumps(data, sort_keys=True).encode())
                return 204, {}, b""
            if method == "DELETE":
                self.consul.kv_delete(key)
                return 204, {}, b""
        except (OSError, ConsulError) as e:
            return _errors(500, "%s" % e)
        except Aborted:
            return _errors(503, SEALED_ERR)
        return _errors(405, "unsupported operation")

    @staticmethod
    def _response(data):
        return {"request_id": str(uuidlib.uuid4()), "lease_id": "", "renewable": False, "lease_duration": 2764800,
                "data": data, "wrap_info": None, "warnings": None, "auth": None}

    def _sys_leader(self):
        try:
            is_self, redirect, cluster = self.leader()
        except SealedError:
            return _errors(503, SEALED_ERR)
        except (OSError, ConsulError, Aborted) as e:
            return _errors(500, "%s" % e)
        # Vault 1.4.3's fields exactly (test/real/test_vaultha_vs_vault.py); active_time, last_wal and the raft_*
        # indexes (which vaultsim.py reports) came in later versions
        return _json(200, {
            "ha_enabled": True, "is_self": is_self, "leader_address": redirect, "leader_cluster_address": cluster,
            "performance_standby": False, "performance_standby_last_remote_wal": 0})

    def _seal_status(self):
        return {"type": "shamir", "initialized": True, "sealed": self._sealed, "t": 1, "n": 1, "progress": 0,
                "nonce": "", "version": "1.4.3+vaultha", "migration": False, "recovery_seal": False,
                "storage_type": "consul", "cluster_name": "vaultha", "cluster_id": MOUNT_UUID}

    def _sys_health(self, q):
        def flag(name):
            return q.get(name, ["false"])[0] in ("", "true", "1")
        body = {"initialized": True, "sealed": self._sealed, "standby": self._standby,
                "performance_standby": False, "replication_performance_mode": "disabled",
                "replication_dr_mode": "disabled", "server_time_utc": int(time.time()),
                "version": "1.4.3+vaultha", "cluster_name": "vaultha", "cluster_id": MOUNT_UUID}
        if self._sealed:
            return _json(503, body)
        if self._standby and not flag("standbyok"):
            return _json(429, body)
        return _json(200, body)

    # ------------------------------------------------------------ client side (what a test calls)

    def request(self, method, path, body=None, timeout=30):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        conn = http.client.HTTPConnection(self.host, self.api_port, timeout=timeout)
        try:
            conn.request(method, path, body=body)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def sys_leader(self):
        status, _, data = self.request("GET", "/v1/sys/leader")
        if status != 200:
            raise VaultError("%s: sys/leader %s %r" % (self.name, status, data[:200]))
        return json.loads(data)

    def health(self):
        status, _, data = self.request("GET", "/v1/sys/health")
        return status, json.loads(data) if data else None

    def write(self, path, data):
        status, _, body = self.request("PUT", "/v1/%s" % path, data)
        if status != 204:
            raise VaultError("%s: PUT %s: %s %r" % (self.name, path, status, body[:300]))
        return status

    def read(self, path):
        status, _, body = self.request("GET", "/v1/%s" % path)
        if status == 404:
            return None
        if status != 200:
            raise VaultError("%s: GET %s: %s %r" % (self.name, path, status, body[:300]))
        return json.loads(body)["data"]

    def delete(self, path):
        status, _, body = self.request("DELETE", "/v1/%s" % path)
        if status != 204:
            raise VaultError("%s: DELETE %s: %s %r" % (self.name, path, status, body[:300]))

    def wait_for(self, what, predicate, timeout=60, interval=0.05):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                v = predicate()
                if v:
                    return v
                last = v
            except (OSError, VaultError, ValueError) as e:
                last = e
            time.sleep(interval)
        raise VaultError("vaultha %s: not %s after %ss (last: %r); state %s; log tail:\n%s"
                         % (self.name, what, timeout, last, self.state, self.log_tail()))

    def wait_state(self, state, timeout=60):
        return self.wait_for(state, lambda: self.state == state, timeout)

    def wait_active(self, timeout=60):
        """Until sys/health is 200 and sys/leader says is_self; returns sys/leader."""
        def ok():
            if self.health()[0] != 200:
                return None
            lead = self.sys_leader()
            return lead if lead["is_self"] else None
        return self.wait_for("active", ok, timeout)

    def wait_standby(self, leader=None, timeout=60):
        """Until sys/health is 429 and sys/leader names a leader (`leader`: that api address) other than us."""
        def ok():
            if self.health()[0] != 429:
                return None
            lead = self.sys_leader()
            if lead["is_self"] or not lead["leader_address"]:
                return None
            if leader is not None and lead["leader_address"] != leader:
                return None
            return lead
        return self.wait_for("standby of %s" % (leader or "a leader"), ok, timeout)

    def wait_log(self, text, timeout=60):
        return self.wait_for("logging %r" % text, lambda: self.log_has(text), timeout)

    def wait_counter(self, name, at_least, timeout=60):
        return self.wait_for("%s >= %d (is %s)" % (name, at_least, self.counters.get(name)),
                             lambda: self.counters.get(name, 0) >= at_least, timeout)


class SealedError(Exception):
    pass


class VaultError(RuntimeError):
    pass


# ---------------------------------------------------------------- several nodes

def sys_leader_is_self(url, timeout=2.0):
    """True / False from GET <url>/v1/sys/leader (any Vault, modelled or real); None if it does not answer 200."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("GET", "/v1/sys/leader")
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            return None
        return bool(json.loads(data).get("is_self"))
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()


class ActiveSampler:
    """Samples, every `interval` s in a thread, which of `targets` ({name: url}, or VaultNodes, or urls) answer
    is_self on GET /v1/sys/leader, all queried in parallel. samples: [(monotonic, [names])]; max_active;
    violations(limit=1): the samples with more than `limit` active; assert_at_most_one()."""

    def __init__(self, targets, interval=0.2):
        if isinstance(targets, dict):
            self.targets = dict(targets)
        else:
            self.targets = {}
            for t in targets:
                if isinstance(t, str):
                    self.targets[t] = t
                else:
                    self.targets[t.name] = t.url
        self.interval = interval
        self.samples = []
        self._stop = threading.Event()
        self._thread = None

    def sample(self):
        out = {}

        def one(name, url):
            out[name] = sys_leader_is_self(url, timeout=max(1.0, self.interval * 5))
        threads = [threading.Thread(target=one, args=kv, daemon=True) for kv in self.targets.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sorted(n for n, v in out.items() if v)

    def _run(self):
        while not self._stop.is_set():
            t = time.monotonic()
            self.samples.append((t, self.sample()))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t)))

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True, name="vaultha-sampler")
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    @property
    def max_active(self):
        return max((len(s) for _, s in self.samples), default=0)

    def violations(self, limit=1):
        return [(t, s) for t, s in self.samples if len(s) > limit]

    def assert_at_most_one(self):
        v = self.violations()
        if v:
            t0 = self.samples[0][0]
            raise AssertionError("%d of %d samples had more than one active Vault, first: %s"
                                 % (len(v), len(self.samples), ["%.2fs %s" % (t - t0, s) for t, s in v[:5]]))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class VaultCluster:
    """Several VaultNodes of one HA cluster on one or more Consul agents (one per DC).

    nodes: {name: consul} or [(name, consul)], consul as for VaultNode ("host:port", or a Sim/Consul object);
    the other keyword arguments go to every VaultNode. Nodes start sealed; on an exception from the `with` body
    every node's log tail is printed; close() stops every node."""

    def __init__(self, nodes, **kw):
        items = list(nodes.items()) if isinstance(nodes, dict) else list(nodes)
        self._nodes = {}
        try:
            for name, consul in items:
                self._nodes[name] = VaultNode(consul, name=name, **kw)
        except BaseException:
            self.close()
            raise

    def node(self, name):
        return self._nodes[name]

    __getitem__ = node

    @property
    def nodes(self):
        return list(self._nodes.values())

    def add(self, name, consul, **kw):
        self._nodes[name] = VaultNode(consul, name=name, **kw)
        return self._nodes[name]

    def unseal_all(self):
        for n in self._nodes.values():
            n.unseal()

    def active_nodes(self):
        """Names of the nodes whose GET /v1/sys/leader answers is_self right now."""
        return ActiveSampler(self.nodes).sample()

    def state_active(self):
        """Names of the nodes whose internal state is active (no HTTP)."""
        return sorted(n.name for n in self._nodes.values() if n.state == "active")

    def wait_one_active(self, among=None, timeout=60):
        """Until exactly one node (of `among`: names) is active and every other unsealed one is its standby;
        returns the active VaultNode."""
        names = among or list(self._nodes)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            act = [n for n in self.active_nodes() if n in names]
            if len(act) == 1:
                a = self._nodes[act[0]]
                others = [self._nodes[n] for n in names if n != act[0] and self._nodes[n].state == "standby"]
                try:
                    if all(o.sys_leader()["leader_address"] == a.api_addr for o in others):
                        return a
                except (OSError, VaultError):
                    pass
            time.sleep(0.05)
        raise VaultError("not exactly one active among %s after %ss: %s\n%s"
                         % (names, timeout, self.active_nodes(), self.log_tails()))

    def sampler(self, interval=0.2, extra=None):
        """An ActiveSampler over every node (plus `extra`: {name: url}), to use as a context manager."""
        targets = {n.name: n.url for n in self.nodes}
        targets.update(extra or {})
        return ActiveSampler(targets, interval)

    def log_tails(self, n=40):
        return "\n".join("---- vaultha %s (%s, %s) log tail ----\n%s" % (v.name, v.dc, v.state, v.log_tail(n))
                         for v in self.nodes)

    def close(self):
        for n in self._nodes.values():
            try:
                n.close()
            except Exception as e:  # noqa: BLE001
                print("vaultha: closing %s: %r" % (n.name, e), file=sys.stderr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            print(self.log_tails(), file=sys.stderr)
        self.close()
