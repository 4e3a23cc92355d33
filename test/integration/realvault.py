"""Start, talk to and stop real Vault servers (storage "consul") for tests: the fixture of the georedundant-Vault
tests. Python 3 standard library only.

    import realconsul, realvault
    vbin = realconsul.find_vault() or realconsul.skip_or_fail("real Vault")
    with realconsul.federation(["dc1", "dc2"]) as dcs, realvault.VaultSet() as vs:
        a = vs.add(vbin, dcs["dc1"], name="a")          # storage in dc1's agent, path "vault/"
        a.init()                                         # 1 share, threshold 1; keys stay in a's workdir
        a.unseal(); a.wait_active()
        a.enable_kv("kvtest"); a.write("kvtest/x", {"v": "1"}); a.read("kvtest/x")
        b = vs.add(vbin, dcs["dc2"], name="b")           # sealed until b.unseal(a.unseal_key)
        b.unseal(a.unseal_key, token=a.root_token); b.wait_active()

`Vault(binary, consul, path="vault/", name=...)`: `consul` is a realconsul.Consul (its agent address and, with
ACLs, its master token are used) or a "host:port" string (then pass consul_token= if needed). Each Vault has its
own workdir (config.hcl, the log, keys.json), a listener on a free loopback port with tls_disable, api_addr
http://127.0.0.1:<api> and cluster_addr https://127.0.0.1:<cluster> (a second free port; the listener's
cluster_address binds it), disable_mlock, ui off. Several Vaults on one Consul path are an HA set (one active,
the others standbys).

API (a Vault v):
  process   start(wait_ready=True)  stop() (SIGTERM by pid, returns the exit status)  kill() (SIGKILL)  restart(kill=)
            running()  pid  log()  log_has(text)  cleanup()  addr (api_addr)  cluster_addr  workdir  config_text()
  sys       init() -> (unseal_key, root_token)  adopt(other) (use another Vault's key and token)  unseal(key=None)
            seal()  step_down()  seal_status()  health() -> (status, body)  sys_leader()  status_cli() -> (rc, json)
  secrets   enable_kv(mount="kvtest", version=1)  write(path, dict)  read(path) -> dict or None  list(path)
  raw       request(method, path, body, token=None) -> (status, headers, bytes)  json(method, path, ..., expect=)
  waiting   wait_api()  wait_unsealed()  wait_sealed()  wait_active() -> sys/leader  wait_standby(leader=addr)
            wait_for(what, predicate, timeout)    (all raise VaultError with the log tail; timeout default 60 s)
  VaultSet() context: vs.add(binary, consul, ..., start=True) -> Vault; all cleaned up together.

Secrets: init() keeps the unseal key and root token in memory and in <workdir>/keys.json (mode 0600); they are
never printed. The log (`log()`) is kept in memory and in <workdir>/vault.log; VaultSet prints every Vault's log
tail when the body raises.
"""
import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import realconsul


class VaultError(RuntimeError):
    pass


def _hcl_str(s):
    return json.dumps(str(s))  # a JSON string is a valid HCL string


class Vault:
    """One real `vault server` with storage "consul"."""

    def __init__(self, binary, consul, path="vault/", name="vault", consul_token=None, extra_hcl="",
                 start=True, workdir=None, ready_timeout=60, log_level="debug"):
        self.binary = binary
        self.name = name
        if isinstance(consul, str):
            self.consul = None
            self.consul_addr = consul
            self.consul_token = consul_token
        else:
            self.consul = consul
            self.consul_addr = consul.addr
            self.consul_token = consul_token or (consul.master_token if getattr(consul, "acl", False) else None)
        self.dc = getattr(consul, "dc", None)
        self.path = path
        self.extra_hcl = extra_hcl
        self.log_level = log_level
        self.ready_timeout = ready_timeout
        self._own_dir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="kvship-vault-%s-" % name)
        self.api_port = realconsul.free_port()
        self.cluster_port = realconsul.free_port()
        self.proc = None
        self.lines = []
        self._reader = None
        self._logf = None
        self.unseal_key = None
        self.root_token = None
        self._load_keys()
        if start:
            self.start()

    # ------------------------------------------------------------ config and process

    @property
    def addr(self):
        """The API address, as Vault advertises it (api_addr)."""
        return "http://127.0.0.1:%d" % self.api_port

    @property
    def cluster_addr(self):
        return "https://127.0.0.1:%d" % self.cluster_port

    def config_text(self):
        storage = ["  address = %s" % _hcl_str(self.consul_addr),
                   "  scheme  = \"http\"",
                   "  path    = %s" % _hcl_str(self.path)]
        if self.consul_token:
            storage.append("  token   = %s" % _hcl_str(self.consul_token))
        return "\n".join([
            'storage "consul" {', *storage, "}",
            'listener "tcp" {',
            "  address         = %s" % _hcl_str("127.0.0.1:%d" % self.api_port),
            "  cluster_address = %s" % _hcl_str("127.0.0.1:%d" % self.cluster_port),
            "  tls_disable     = true",
            "}",
            "api_addr      = %s" % _hcl_str(self.addr),
            "cluster_addr  = %s" % _hcl_str(self.cluster_addr),
            "disable_mlock = true",
            "ui            = false",
            "log_level     = %s" % _hcl_str(self.log_level),
            self.extra_hcl, ""])

    def command(self):
        cfg = os.path.join(self.workdir, "config.hcl")
        with open(cfg, "w") as f:
            f.write(self.config_text())
        os.chmod(cfg, 0o600)  # may hold a Consul token
        return [self.binary, "server", "-config", cfg]

    def _env(self):
        e = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
        e["VAULT_ADDR"] = self.addr
        e["HOME"] = self.workdir  # no ~/.vault-token from the user
        return e

    def start(self, wait_ready=True):
        """Starts `vault server` (again, with the same ports and config); waits until its API answers."""
        if self.running():
            raise VaultError("vault %s is already running" % self.name)
        if self.lines:
            self.lines.append("==== kvship realvault: %s restarted ====" % self.name)
        self._logf = open(os.path.join(self.workdir, "vault.log"), "a")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True, env=self._env(),
                                     cwd=self.workdir)
        self._reader = threading.Thread(target=self._read, args=(self.proc, self._logf), daemon=True)
        self._reader.start()
        if wait_ready:
            self.wait_api()
        return self

    def _read(self, proc, logf):
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            try:
                logf.write(line + "\n")
                logf.flush()
            except ValueError:
                pass

    def log(self):
        """Everything Vault printed, over all starts (restarts are marked)."""
        return "\n".join(self.lines)

    def log_has(self, text):
        return any(text in line for line in self.lines)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def _finish(self):
        if self._reader:
            self._reader.join(5)
        if self._logf:
            self._logf.close()
            self._logf = None

    def stop(self, timeout=60):
        """SIGTERM by pid (a clean shutdown: Vault seals, releases core/lock, deregisters); waits; exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise VaultError("vault %s did not stop within %ss after SIGTERM:\n%s"
                                 % (self.name, timeout, self.log()[-4000:]))
        self._finish()
        return self.proc.returncode

    def kill(self):
        """SIGKILL by pid: a crash (the Consul session and core/leader entry stay behind)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._finish()

    def restart(self, kill=False):
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
        if exc[0] is not None:
            print("---- vault %s log (last lines) ----\n%s" % (self.name, "\n".join(self.lines[-80:])),
                  file=sys.stderr)
        self.cleanup()

    # ------------------------------------------------------------ HTTP API

    def request(self, method, path, body=None, token=None, headers=None, timeout=30):
        """One request: (status, {lower-case header: value}, body bytes). token=None uses the root token if
        known; pass token="" for none. path is "/v1/...". Redirects (307 from a standby) are not followed."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        h = dict(headers or {})
        tok = self.root_token if token is None else token
        if tok:
            h["X-Vault-Token"] = tok
        conn = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def json(self, method, path, body=None, token=None, expect=(200,), timeout=30):
        """The decoded JSON body (None if empty); raises VaultError unless the status is in expect."""
        if isinstance(expect, int):
            expect = (expect,)
        status, _, data = self.request(method, path, body, token=token, timeout=timeout)
        if expect and status not in expect:
            raise VaultError("vault %s: %s %s: expected %s, got %s %s"
                             % (self.name, method, path, "/".join(map(str, expect)), status,
                                data[:400].decode("utf-8", "replace")))
        return json.loads(data) if data.strip() else None

    # ------------------------------------------------------------ sys/*

    def seal_status(self):
        return self.json("GET", "/v1/sys/seal-status", token="")

    def health(self):
        """GET /v1/sys/health: (status code, body). 200 active, 429 standby, 501 not initialised, 503 sealed."""
        status, _, data = self.request("GET", "/v1/sys/health", token="")
        return status, (json.loads(data) if data.strip() else None)

    def sys_leader(self):
        """GET /v1/sys/leader: {ha_enabled, is_self, leader_address, leader_cluster_address, ...}."""
        return self.json("GET", "/v1/sys/leader", token="")

    def status_cli(self):
        """`vault status -format=json`: (exit code: 0 unsealed, 2 sealed, 1 error; decoded JSON or None)."""
        p = subprocess.run([self.binary, "status", "-format=json"], env=self._env(), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        try:
            out = json.loads(p.stdout)
        except ValueError:
            out = None
        return p.returncode, out

    def _keys_path(self):
        return os.path.join(self.workdir, "keys.json")

    def _load_keys(self):
        try:
            with open(self._keys_path()) as f:
                k = json.load(f)
            self.unseal_key, self.root_token = k["unseal_key"], k["root_token"]
        except (OSError, ValueError, KeyError):
            pass

    def init(self):
        """PUT /v1/sys/init with one share, threshold 1. Keeps the key and root token (memory + keys.json, 0600);
        returns (unseal_key, root_token). Never prints them."""
        r = self.json("PUT", "/v1/sys/init", {"secret_shares": 1, "secret_threshold": 1}, token="")
        self.unseal_key, self.root_token = r["keys_base64"][0], r["root_token"]
        fd = os.open(self._keys_path(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"unseal_key": self.unseal_key, "root_token": self.root_token}, f)
        return self.unseal_key, self.root_token

    def adopt(self, other):
        """Uses another Vault's unseal key and root token (same storage, e.g. replicated): B.adopt(A)."""
        self.unseal_key, self.root_token = other.unseal_key, other.root_token
        return self

    def unseal(self, key=None):
        """PUT /v1/sys/unseal with key (default: this Vault's); returns the seal status. Does not wait for HA."""
        key = key or self.unseal_key
        if not key:
            raise VaultError("vault %s: no unseal key (init() or adopt() first)" % self.name)
        r = self.json("PUT", "/v1/sys/unseal", {"key": key}, token="")
        if r.get("sealed"):
            raise VaultError("vault %s still sealed after unseal: %s" % (self.name, r))
        return r

    def seal(self):
        """PUT /v1/sys/seal (root token): seals this node, which must be the active one (it releases core/lock
        first). Vault 1.4.3 answers 400 "error performing token check: Vault is in standby mode" on an unsealed
        standby (raises VaultError): stop() or restart it instead."""
        return self.json("PUT", "/v1/sys/seal", expect=(200, 204))

    def step_down(self):
        """PUT /v1/sys/step-down (root token): the active gives up core/lock (and waits 10 s before contending)."""
        return self.json("PUT", "/v1/sys/step-down", expect=(200, 204))

    # ------------------------------------------------------------ secrets (KV v1)

    def enable_kv(self, mount="kvtest", version=1):
        """POST /v1/sys/mounts/<mount> type kv (version 1 by default: plain put/get on <mount>/<key>)."""
        return self.json("POST", "/v1/sys/mounts/%s" % mount,
                         {"type": "kv", "options": {"version": str(version)}}, expect=(200, 204))

    def write(self, path, data):
        """PUT /v1/<path> with a dict (KV v1: "<mount>/<key>")."""
        return self.json("PUT", "/v1/%s" % path, data, expect=(200, 204))

    def read(self, path):
        """GET /v1/<path>: the secret's data dict, or None if Vault answers 404."""
        status, _, body = self.request("GET", "/v1/%s" % path)
        if status == 404:
            return None
        if status != 200:
            raise VaultError("vault %s: GET /v1/%s: %s %s" % (self.name, path, status, body[:400]))
        return json.loads(body)["data"]

    def list(self, path):
        status, _, body = self.request("LIST", "/v1/%s" % path)
        if status == 404:
            return []
        if status != 200:
            raise VaultError("vault %s: LIST /v1/%s: %s %s" % (self.name, path, status, body[:400]))
        return json.loads(body)["data"]["keys"]

    # ------------------------------------------------------------ waiting

    def _check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise VaultError("vault %s exited with %s:\n%s" % (self.name, self.proc.returncode, self.log()[-6000:]))

    def wait_for(self, what, predicate, timeout=None, interval=0.1):
        """Polls predicate() (OSError counts as False) until true; returns its value or raises with the log."""
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        last = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                v = predicate()
                if v:
                    return v
                last = v
            except (OSError, VaultError, ValueError) as e:
                last = e
            time.sleep(interval)
        raise VaultError("vault %s: not %s after %ss (last: %r):\n%s"
                         % (self.name, what, timeout or self.ready_timeout, last, self.log()[-6000:]))

    def wait_api(self, timeout=None):
        """Until GET /v1/sys/seal-status answers (any JSON)."""
        return self.wait_for("answering", lambda: self.seal_status() is not None, timeout)

    def wait_unsealed(self, timeout=None):
        return self.wait_for("unsealed", lambda: not self.seal_status()["sealed"], timeout)

    def wait_sealed(self, timeout=None):
        return self.wait_for("sealed", lambda: self.seal_status()["sealed"], timeout)

    def wait_active(self, timeout=None):
        """Until sys/health says 200 (active, unsealed) and sys/leader says is_self; returns sys/leader."""
        def ok():
            st, _ = self.health()
            if st != 200:
                return None
            lead = self.sys_leader()
            return lead if lead.get("is_self") else None
        return self.wait_for("active", ok, timeout)

    def wait_standby(self, timeout=None, leader=None):
        """Until sys/health says 429 (unsealed standby) and sys/leader names another node (leader: that
        Vault's addr, if given); returns sys/leader."""
        def ok():
            st, _ = self.health()
            if st != 429:
                return None
            lead = self.sys_leader()
            if lead.get("is_self") or not lead.get("leader_address"):
                return None
            if leader is not None and lead["leader_address"] != leader:
                return None
            return lead
        return self.wait_for("standby", ok, timeout)


@contextlib.contextmanager
def VaultSet():
    """A bag of Vaults cleaned up together; prints every Vault's log tail when the body raises."""
    class _Set(list):
        def add(self, *a, start=True, **kw):
            v = Vault(*a, start=False, **kw)
            self.append(v)  # cleaned up even if start() fails
            return v.start() if start else v
    vs = _Set()
    try:
        yield vs
    except BaseException:
        for v in vs:
            print("---- vault %s log (last lines) ----\n%s" % (v.name, "\n".join(v.lines[-80:])), file=sys.stderr)
        raise
    finally:
        for v in vs:
            v.cleanup()
