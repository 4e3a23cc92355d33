#!/usr/bin/env python3
"""A stand-in for Vault's unauthenticated `GET /v1/sys/leader`, for the leader-DC gate's tests and demos.
Python 3 standard library only.

    with vaultsim.VaultCluster({"v1": "dc1", "v2": "dc2"}) as vault:   # two nodes, each on its own port
        vault.set_leader("v2")           # every unsealed node now reports v2 as the leader
        vault.node("v1").url             # http://127.0.0.1:<port>: where to send GET /v1/sys/leader
        vault.node("v1").api_addr        # what the nodes report as leader_address when v1 leads
        vault.down("v1")                 # the port is closed: connection refused
        vault.up("v1")                   # listening again on the same port
        vault.seal("v2")                 # v2 answers 503 {"errors":["Vault is sealed"]}
        vault.set_leader(None)           # no active node: standbys report leader_address ""
        vault.set_view("v1", "v1")       # v1 alone believes it leads (a split brain)

The answer has the shape of Vault 1.x's (api-docs/system/leader):

    {"ha_enabled": true, "is_self": false, "active_time": "0001-01-01T00:00:00Z",
     "leader_address": "http://127.0.0.1:8200", "leader_cluster_address": "https://127.0.0.1:8201",
     "performance_standby": false, "performance_standby_last_remote_wal": 0, "last_wal": 0,
     "raft_committed_index": 0, "raft_applied_index": 0}

`is_self` is true on the leader only, and `active_time` is set on the leader only (Vault reports the zero
time elsewhere). A sealed node answers 503 with Vault's error body, as Vault maps ErrSealed to 503.
A node's api_addr is, by default, the URL it listens on; give `api_addrs={"v1": "https://vault-a.dc1:8200"}`
to report production-like addresses (the gate must then map them to DCs, through -gate-vault-dc or the
catalog) while the requests still go to `url`.

CLI (manual use): python3 vaultsim.py v1=dc1 v2=dc2 [--leader v1] [--port v1=8200]
then commands on stdin: `leader NAME|none`, `down NAME`, `up NAME`, `seal NAME`, `unseal NAME`,
`view NAME LEADER|none|reset`, `status`, `quit`.
"""
import argparse
import datetime
import http.server
import json
import socket
import sys
import threading

SEALED_BODY = {"errors": ["Vault is sealed"]}
ZERO_TIME = "0001-01-01T00:00:00Z"


def _free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args):
        self.open_conns = set()
        self.conns_lock = threading.Lock()
        super().__init__(*args)

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
        """Kept-alive connections end too: a node that is down answers nothing at all."""
        with self.conns_lock:
            conns, self.open_conns = list(self.open_conns), set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class VaultNode:
    """One Vault node: its name, the DC it runs in, its own port and api address."""

    def __init__(self, cluster, name, dc, host, port, api_addr, cluster_addr):
        self.cluster = cluster
        self.name = name
        self.dc = dc
        self.host = host
        self.port = port
        self.url = "http://%s:%d" % (host, port)
        self.api_addr = api_addr or self.url
        self.cluster_addr = cluster_addr or "https://%s:%d" % (host, port + 1 if port < 65535 else port)
        self.sealed = False
        self.view = None  # None: the cluster's leader; otherwise the name (or "") this node believes leads
        self.requests = 0
        self._server = None
        self._thread = None

    @property
    def running(self):
        return self._server is not None

    def start(self):
        if self._server is not None:
            return
        node = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802 (http.server's naming)
                path = self.path.split("?", 1)[0]
                if path != "/v1/sys/leader":
                    return self._reply(404, {"errors": []})
                status, body = node.cluster._answer(node)
                self._reply(status, body)

            def _reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(data)))
                try:
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    # The client went away (a replicator stopped, or its deadline passed): not a fixture error.
                    self.close_connection = True

            def _not_allowed(self):
                self._reply(405, {"errors": []})

            do_PUT = do_POST = do_DELETE = _not_allowed  # noqa: N815

        self._server = _Server((self.host, self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="vaultsim-%s" % self.name, daemon=True)
        self._thread.start()

    def stop(self):
        """Closes the listening socket: new connections are refused."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.drop_connections()
        self._thread.join(5)
        self._server = None
        self._thread = None


class VaultCluster:
    """N Vault nodes of one HA cluster (spread over DCs), each an HTTP server in a thread.

    nodes: {name: dc} (or a list of (name, dc)); ports: {name: port} (default: free ports);
    api_addrs / cluster_addrs: {name: address reported for that node}; leader: the initial leader's name.
    """

    def __init__(self, nodes, leader=None, host="127.0.0.1", ports=None, api_addrs=None, cluster_addrs=None,
                 start=True):
        items = list(nodes.items()) if isinstance(nodes, dict) else list(nodes)
        if not items:
            raise ValueError("vaultsim: at least one node")
        self._lock = threading.Lock()
        self._nodes = {}
        for name, dc in items:
            if name in self._nodes:
                raise ValueError("vaultsim: node %r given twice" % name)
            port = (ports or {}).get(name) or _free_port(host)
            self._nodes[name] = VaultNode(self, name, dc, host, port, (api_addrs or {}).get(name),
                                          (cluster_addrs or {}).get(name))
        self._leader = None
        self._active_time = ZERO_TIME
        self.set_leader(leader)
        if start:
            self.start()

    # ------------------------------------------------------------ lifecycle

    def start(self):
        for n in self._nodes.values():
            n.start()
        return self

    def close(self):
        for n in self._nodes.values():
            n.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ control

    def node(self, name):
        try:
            return self._nodes[name]
        except KeyError:
            raise KeyError("vaultsim: no node %r (have %s)" % (name, ", ".join(self._nodes))) from None

    @property
    def nodes(self):
        return list(self._nodes.values())

    @property
    def urls(self):
        return [n.url for n in self._nodes.values()]

    @property
    def leader(self):
        return self._leader

    def leader_dc(self):
        return self._nodes[self._leader].dc if self._leader else None

    def set_leader(self, name):
        """Makes `name` the active node (None: no active node). Per-node views are kept."""
        with self._lock:
            if name is not None:
                self.node(name)
            if name != self._leader:
                self._active_time = (datetime.datetime.now(datetime.timezone.utc)
                                     .strftime("%Y-%m-%dT%H:%M:%S.%fZ") if name else ZERO_TIME)
            self._leader = name

    def set_leader_in(self, dc):
        """Makes the first node of `dc` the leader (None: no leader)."""
        if dc is None:
            return self.set_leader(None)
        for n in self._nodes.values():
            if n.dc == dc:
                return self.set_leader(n.name)
        raise KeyError("vaultsim: no node in %r" % dc)

    def set_view(self, name, leader):
        """What node `name` reports as the leader: a node name, "" (no leader), or None (the cluster's)."""
        with self._lock:
            if leader:
                self.node(leader)
            self.node(name).view = leader

    def down(self, name):
        self.node(name).stop()

    def up(self, name):
        self.node(name).start()

    def seal(self, name):
        self.node(name).sealed = True

    def unseal(self, name):
        self.node(name).sealed = False

    # ------------------------------------------------------------ the answer

    def _answer(self, node):
        with self._lock:
            node.requests += 1
            if node.sealed:
                return 503, SEALED_BODY
            believed = self._leader if node.view is None else (node.view or None)
            lead = self._nodes.get(believed) if believed else None
            is_self = lead is node
            return 200, {
                "ha_enabled": True,
                "is_self": is_self,
                "active_time": self._active_time if is_self else ZERO_TIME,
                "leader_address": lead.api_addr if lead else "",
                "leader_cluster_address": lead.cluster_addr if lead else "",
                "performance_standby": False,
                "performance_standby_last_remote_wal": 0,
                "last_wal": 0,
                "raft_committed_index": 0,
                "raft_applied_index": 0,
            }

    def status_lines(self):
        out = []
        for n in self._nodes.values():
            state = "down" if not n.running else ("sealed" if n.sealed else
                                                  ("active" if n.name == self._leader else "standby"))
            view = "" if n.view is None else " view=%s" % (n.view or "none")
            out.append("%s dc=%s url=%s api_addr=%s %s%s requests=%d"
                       % (n.name, n.dc, n.url, n.api_addr, state, view, n.requests))
        return out


# ---------------------------------------------------------------- CLI

def _pairs(items, what):
    out = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise SystemExit("vaultsim: %s must be NAME=VALUE, got %r" % (what, item))
        out[name] = value
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="Vault /v1/sys/leader stand-in (one HTTP port per node).")
    ap.add_argument("nodes", nargs="+", metavar="NAME=DC")
    ap.add_argument("--leader", help="initial leader (default: the first node)")
    ap.add_argument("--port", action="append", metavar="NAME=PORT", help="fixed port for a node")
    ap.add_argument("--api-addr", action="append", metavar="NAME=URL", help="api address a node reports")
    ap.add_argument("--host", default="127.0.0.1")
    a = ap.parse_args(argv)
    nodes = list(_pairs(a.nodes, "a node").items())
    ports = {k: int(v) for k, v in _pairs(a.port, "--port").items()}
    cluster = VaultCluster(nodes, leader=a.leader or nodes[0][0], host=a.host, ports=ports,
                           api_addrs=_pairs(a.api_addr, "--api-addr"))
    print("\n".join(cluster.status_lines()), flush=True)
    print("commands: leader NAME|none, down NAME, up NAME, seal NAME, unseal NAME, "
          "view NAME LEADER|none|reset, status, quit", flush=True)
    try:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            try:
                cmd, args = words[0], words[1:]
                if cmd in ("quit", "exit"):
                    break
                elif cmd == "status":
                    pass
                elif cmd == "leader" and len(args) == 1:
                    cluster.set_leader(None if args[0] == "none" else args[0])
                elif cmd in ("down", "up", "seal", "unseal") and len(args) == 1:
                    getattr(cluster, cmd)(args[0])
                elif cmd == "view" and len(args) == 2:
                    cluster.set_view(args[0], {"none": "", "reset": None}.get(args[1], args[1]))
                else:
                    print("? %s" % line.strip(), flush=True)
                    continue
                print("\n".join(cluster.status_lines()), flush=True)
            except (KeyError, OSError) as e:
                print("error: %s" % e, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
