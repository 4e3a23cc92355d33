#!/usr/bin/env python3
"""Differential test: the same seeded random request sequences against consul-kvsim and real Consul.

Usage: test_differential.py <path to consul-kvsim> [--ops N] [--seed S] [--acl-ops N] [--verbose]

Two pairs of 2-DC federations (dc1+dc2): sim/sim and real/real without ACLs, then sim/sim and real/real with
ACLs (default deny, the same master token on both). Every request goes to dc1 of each pair; some carry
?dc=dc2 (forwarded). After normalisation the status, the relevant headers and the body must be equal; the first
difference fails the test, printing the seed, the operation number, the request and both answers.

Requests come from a generator seeded with --seed (default: a fixed seed, so CI runs are repeatable; pass
another for a longer exploration). The generator does not look at either side's answers; values that depend on
a side (a key's ModifyIndex for cas, a session ID) are placeholders resolved per side from that side's own
earlier answers (<idx:key> = the ModifyIndex that side last reported for key in the DC asked, <sess:n> = that side's n-th session).

Normalisations (each one is applied identically to both sides, and why it is safe):

* Raft indexes (CreateIndex, ModifyIndex in KV entries and sessions, X-Consul-Index, the txn results' indexes).
  Real Consul's Raft index advances on its own writes too (catalog sync, autopilot, ACL bootstrap, leader
  barriers), so absolute values and gaps differ. Each side labels every distinct index value it reports by order
  of first appearance (i0, i1, ...). Because both sides see the same request sequence, equal labels mean "the
  same logical index" and a value reported where the other side reports an earlier one fails. In addition, when a
  value is first seen its rank among that side's values seen so far must equal the other side's rank (ordering
  is checked, not only equality). Index values below the run's start (the setup write) get the label "i-pre".
  Each DC has its own Raft index, so answers to ?dc=dc2 requests are labelled in a dc2 space of their own (and
  <idx:key> placeholders resolve from the DC asked). The indexes inside txn error texts ("current modify index
  N != M") are labelled the same way. LockIndex is a counter, compared as is.
* Session IDs: each side's created IDs are mapped to s0, s1, ... in creation order (UUIDs are random on both).
  Unknown UUID-looking IDs in bodies become "uuid". Session lists are sorted by ID on both sides, i.e. in an
  order of random UUIDs: each side's list must be sorted by its own IDs ("sorted-by-id", compared), then it is
  put in creation order.
* Node names: the sim's node name (-node-name) and real Consul's node-<dc> map to "node-<dc>".
* Timestamps and durations that are not protocol-pinned (X-Consul-LastContact) are not compared.
* Headers compared: status, Content-Type, presence of X-Consul-Index (value normalised as above),
  X-Consul-KnownLeader, X-Consul-Effective-Consistency. Date/Content-Length/Vary/X-Consul-Default-Acl-Policy
  etc. are transport details not under test. X-Consul-Results-Filtered-By-ACLs is not compared: Consul 1.10
  never sends it (a version difference, apps/consul-kvsim/README.md).
* "Permission denied" texts (403 bodies, txn errors' What) are cut after "Permission denied": 1.10 says just
  that, newer versions and the sim add ": token with AccessorID ... lacks permission ..." (version difference;
  clients only test the prefix, consul-api.md §11).
* ACLs: real Consul replicates dc1's policies and tokens to dc2, the sim does not; the sim's dc2 gets the same
  policies and tokens (fixed SecretIDs, UUIDs) created directly. Everything else about ACLs is compared.
* JSON bodies are compared as parsed JSON (key order and whitespace don't matter; Go and the sim may format
  differently); Txn read bodies' embedded QueryMeta fields (Index, LastContact, KnownLeader, ConsistencyLevel,
  NotModified, Backend, ResultsFilteredByACLs) are dropped (consul-api.md §7: clients ignore them, the emulator
  may omit them). Text bodies are compared byte for byte after trimming a final newline.
* The sim runs with -txn-max-ops 64, Consul 1.10's limit (consul-api.md §7: 64 before 1.14.0).

Timing: session TTLs never run out during a run, and lock-delays are 0 or 60 s (or the 15 s default), so an
answer does not depend on how fast each side is; a lock-delay that ends exactly between the two sides' handling
of the same request (a window of a few milliseconds, with the 15 s default or 60 s in runs longer than a
minute) could still make a rare false difference: rerun with the printed seed to tell.

Blocking queries use short waits (wait=50ms..200ms) with an index equal to the current one, so both sides
return at the deadline with the same (normalised) answer; the elapsed time is not compared.
"""
import argparse
import base64
import bisect
import json
import os
import random
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import realconsul  # noqa: E402
import simctl  # noqa: E402

KEYS = ["d/a", "d/b", "d/a/x", "d/a/y", "d/c/z", "d/c/w/v", "d/e", "d/ee", "d/f/"]
PREFIXES = ["d/", "d/a", "d/a/", "d/c/", "d/e", "d/zz", "d/f/", ""]
VALUES = [b"v1", b"v2", b"", b"hello world", b"\x00\xffbin"]
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
INDEX_FIELDS = ("CreateIndex", "ModifyIndex")
QUERYMETA = ("Index", "LastContact", "KnownLeader", "ConsistencyLevel", "NotModified", "Backend",
             "ResultsFilteredByACLs")


class Side:
    """One backend's dc1 and its per-side state (index labels, session IDs, last ModifyIndex per key)."""

    def __init__(self, name, dc1, node_names, dc2=None):
        self.name = name
        self.dc1 = dc1
        self.dc2 = dc2
        self.spaces = {}              # dc -> (labels, values, floor): each DC has its own Raft index
        self.node_names = node_names  # {actual name: normalised name}
        self.labels = {}              # index value -> label
        self.values = []              # sorted index values seen
        self.floor = 0
        self.sessions = []            # actual IDs in creation order
        self.mod = {}                 # key -> last ModifyIndex seen
        self.pending_rank = []

    def use_dc(self, dc):
        """Switches the index label space and the last-ModifyIndex map to dc's (?dc=dc2 requests carry and
        answer dc2's indexes)."""
        cur = getattr(self, "_dc", "dc1")
        self.spaces[cur] = (self.labels, self.values, self.floor, self.mod)
        self.labels, self.values, self.floor, self.mod = self.spaces.get(dc, ({}, [], 0, {}))
        self._dc = dc

    def label(self, v):
        if v < self.floor:
            return "i-pre"
        if v not in self.labels:
            self.pending_rank.append(bisect.bisect_left(self.values, v))
            bisect.insort(self.values, v)
            self.labels[v] = "i%d" % len(self.labels)
        return self.labels[v]

    def resolve(self, s):
        def sub(m):
            kind, arg = m.group(1), m.group(2)
            if kind == "idx":
                return str(self.mod.get(arg, 0))
            if kind == "sess":
                n = int(arg)
                return self.sessions[n] if n < len(self.sessions) else "00000000-0000-0000-0000-00000000dead"
            if kind == "node":
                return next(a for a, n in self.node_names.items() if n == "node-dc1")
            raise ValueError(kind)
        return re.sub(r"<(idx|sess|node):([^>]*)>", sub, s)


def norm(side, obj, key=None):
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in INDEX_FIELDS and isinstance(v, int):
                out[k] = side.label(v)
            elif k in ("Session", "ID") and isinstance(v, str) and v in side.sessions:
                out[k] = "s%d" % side.sessions.index(v)
            elif k == "Node" and isinstance(v, str):
                out[k] = side.node_names.get(v, v)
            else:
                out[k] = norm(side, v, k)
        if "Key" in out and isinstance(obj.get("ModifyIndex"), int):
            side.mod[obj["Key"]] = obj["ModifyIndex"]
        return out
    if isinstance(obj, list):
        return [norm(side, v) for v in obj]
    if isinstance(obj, str):
        # txn error texts carry raw indexes: "current modify index N != M"
        obj = re.sub(r"(modify index )(\d+)( != )(\d+)",
                     lambda m: m.group(1) + side.label(int(m.group(2))) + m.group(3) + side.label(int(m.group(4))), obj)
        if obj.startswith("Permission denied"):
            return "Permission denied"  # txn error texts: as for 403 bodies (see answer())
        if obj in side.sessions:
            return "s%d" % side.sessions.index(obj)
        if UUID_RE.match(obj):
            return "uuid"
        for actual, n in side.node_names.items():
            obj = obj.replace(actual, n)
        for i, s in enumerate(side.sessions):
            obj = obj.replace(s, "s%d" % i)
    return obj


def normalise_text(side, text):
    for i, s in enumerate(side.sessions):
        text = text.replace(s, "s%d" % i)
    for actual, n in side.node_names.items():
        text = text.replace(actual, n)
    return text.rstrip("\n")


def answer(side, op, status, headers, body):
    ctype = headers.get("content-type", "")
    out = {"status": status, "content-type": ctype}
    if "x-consul-index" in headers:
        try:
            out["x-consul-index"] = side.label(int(headers["x-consul-index"]))
        except ValueError:
            out["x-consul-index"] = headers["x-consul-index"]
    # X-Consul-Results-Filtered-By-ACLs is not compared: Consul 1.10 never sends it (README: version differences)
    for h in ("x-consul-knownleader",):
        if h in headers:
            out[h] = headers[h]
    if "x-consul-effective-consistency" in headers:
        out["x-consul-effective-consistency"] = headers["x-consul-effective-consistency"]
    parsed = None
    if body:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    if parsed is not None or body in (b"null",):
        if op.get("create_session") and status == 200 and isinstance(parsed, dict) and "ID" in parsed:
            side.sessions.append(parsed["ID"])
        if op.get("session_list") and isinstance(parsed, list):
            # each side sorts by its own (random) IDs: check that, then order by the normalised name
            ids = [e.get("ID") for e in parsed]
            out["sorted-by-id"] = ids == sorted(ids)
            parsed = sorted(parsed, key=lambda e: side.sessions.index(e["ID"]) if e.get("ID") in side.sessions
                            else len(side.sessions))
        if op.get("txn_read") and isinstance(parsed, dict):
            parsed = {k: v for k, v in parsed.items() if k not in QUERYMETA}
        out["json"] = norm(side, parsed)
    else:
        try:
            out["text"] = normalise_text(side, body.decode("utf-8"))
            if status == 403 and re.match(r"(rpc error making call: )?Permission denied", out["text"]):
                # Consul 1.10 says "Permission denied"; newer ones (and the sim) add ": token with AccessorID
                # '<id>' lacks permission '<perm>' on <name>" (README: version differences)
                out["text"] = out["text"][:out["text"].index("Permission denied") + len("Permission denied")]
        except UnicodeDecodeError:
            out["bytes"] = base64.b64encode(body).decode()
    return out


# ------------------------------------------------------------ the generator

def b64(v):
    return base64.b64encode(v).decode()


class Gen:
    def __init__(self, rng, acl=False, tokens=()):
        self.r = rng
        self.nsess = 0
        self.acl = acl
        self.tokens = list(tokens)

    def key(self):
        return self.r.choice(KEYS)

    def sess(self):
        # mostly existing sessions, sometimes one past the end (unknown)
        n = self.r.randrange(self.nsess + 1) if self.nsess else 0
        return "<sess:%d>" % n

    def dcq(self, sep):
        return "%sdc=dc2" % sep if self.r.random() < 0.1 else ""

    def kv_put(self):
        k = self.key()
        q = []
        c = self.r.random()
        if c < 0.15:
            q.append("cas=<idx:%s>" % k)
        elif c < 0.2:
            q.append("cas=0")
        elif c < 0.27:
            q.append("acquire=%s" % self.sess())
        elif c < 0.32:
            q.append("release=%s" % self.sess())
        if self.r.random() < 0.2:
            q.append("flags=%d" % self.r.choice([0, 1, 42, 3304740253564472344]))
        if self.r.random() < 0.02:
            q.append("flags=bad")
        path = "/v1/kv/%s" % k + ("?" + "&".join(q) if q else "")
        return {"method": "PUT", "path": path, "body": self.r.choice(VALUES)}

    def kv_get(self):
        c = self.r.random()
        if c < 0.4:
            q = self.r.choice(["", "?raw", "?index=0", "?stale", "?consistent", "?keys", "?recurse"])
            return {"method": "GET", "path": "/v1/kv/%s%s" % (self.key(), q)}
        p = self.r.choice(PREFIXES)
        q = self.r.choice(["?recurse", "?keys", "?keys&separator=/", "?recurse&separator=/", "?keys&separator=a",
                           "?recurse&raw"])
        return {"method": "GET", "path": "/v1/kv/%s%s" % (p, q)}

    def kv_delete(self):
        c = self.r.random()
        if c < 0.2:
            k = self.key()
            return {"method": "DELETE", "path": "/v1/kv/%s?cas=<idx:%s>" % (k, k)}
        if c < 0.3:
            return {"method": "DELETE", "path": "/v1/kv/%s?recurse" % self.r.choice(PREFIXES[:-1])}
        return {"method": "DELETE", "path": "/v1/kv/%s" % self.key()}

    def txn_op(self):
        verb = self.r.choice(["set", "set", "cas", "get", "get-tree", "check-index", "check-not-exists", "delete",
                              "delete-tree", "delete-cas", "lock", "unlock", "check-session", "bogus"])
        k = self.key()
        op = {"Verb": verb, "Key": k}
        if verb in ("set", "cas", "lock", "unlock"):
            op["Value"] = b64(self.r.choice(VALUES))
            if self.r.random() < 0.3:
                op["Flags"] = self.r.choice([0, 7])
        if verb in ("cas", "check-index", "delete-cas"):
            op["Index"] = "<idx:%s>" % k if self.r.random() < 0.8 else self.r.choice([0, 1])
        if verb in ("lock", "unlock", "check-session"):
            op["Session"] = self.sess()
        if verb in ("get-tree", "delete-tree"):
            op["Key"] = self.r.choice(PREFIXES[:-1])
        return {"KV": op}

    def txn(self):
        c = self.r.random()
        if c < 0.03:
            ops = [{"KV": {"Verb": "get", "Key": "d/a"}}] * self.r.choice([64, 65])
        elif c < 0.05:
            # malformed or empty: no write verb, so a 200 is Txn.Read's answer (QueryMeta fields dropped)
            return {"method": "PUT", "path": "/v1/txn", "body": self.r.choice([b"", b"[", b"{}", b"[{}]", b"[]"]),
                    "txn_read": True}
        else:
            ops = [self.txn_op() for _ in range(self.r.randint(1, 5))]
        body = json.dumps(ops)
        body = re.sub(r'"(<idx:[^>]*>)"', r"\1", body)
        # Consul's write verbs; anything else (unknown verbs too) runs as Txn.Read
        readonly = not any(o["KV"]["Verb"] in ("set", "cas", "lock", "unlock", "delete", "delete-cas", "delete-tree")
                           for o in ops)
        return {"method": "PUT", "path": "/v1/txn" + self.dcq("?"), "body": body.encode(), "txn_read": readonly}

    def session(self):
        c = self.r.random()
        if c < 0.35 or self.nsess == 0:
            b = {}
            if self.r.random() < 0.5:
                # valid TTLs are long enough never to expire during a run: when an expiry lands in the op sequence
                # depends on each side's speed, so it is not comparable. 5s and 86401s are out of range (500s).
                b["TTL"] = self.r.choice(["15m", "1h", "86400s", "5s", "bad", "86401s"])
            if self.r.random() < 0.5:
                b["Behavior"] = self.r.choice(["release", "delete", "nope"])
            if self.r.random() < 0.5:
                # 0 or 60s (Consul's cap): a lock-delay ending mid-run makes an acquire's answer timing-dependent
                b["LockDelay"] = self.r.choice(["0s", "60s", "0"])
            if self.r.random() < 0.3:
                b["Name"] = "n%d" % self.r.randrange(3)
            op = {"method": "PUT", "path": "/v1/session/create", "body": json.dumps(b).encode(),
                  "create_session": True}
            # a session the generator can refer to only if it is valid on both sides (checked by comparison)
            if "TTL" not in b or b["TTL"] not in ("bad", "86401s", "5s"):
                if b.get("Behavior") != "nope":
                    self.nsess += 1
            return op
        s = self.sess()
        return self.r.choice([
            {"method": "GET", "path": "/v1/session/info/%s" % s},
            {"method": "GET", "path": "/v1/session/list", "session_list": True},
            {"method": "GET", "path": "/v1/session/node/<node:>", "session_list": True},
            {"method": "PUT", "path": "/v1/session/renew/%s" % s},
            {"method": "PUT", "path": "/v1/session/destroy/%s" % s},
        ])

    def blocking(self):
        k = self.key()
        w = self.r.choice(["50ms", "100ms", "200ms"])
        return {"method": "GET", "path": "/v1/kv/%s?index=<idx:%s>&wait=%s" % (k, k, w), "blocking": True}

    def misc(self):
        return self.r.choice([
            {"method": "GET", "path": "/v1/status/leader", "status_only": True},
            {"method": "POST", "path": "/v1/txn", "body": b"[]"},
            {"method": "GET", "path": "/v1/kv/d/a?index=abc"},
            {"method": "GET", "path": "/v1/kv/d/a?dc=dc9"},
            {"method": "GET", "path": "/v1/kv/d/a?dc=dc2"},
            {"method": "PUT", "path": "/v1/kv/d/a?dc=dc2", "body": b"x"},
            {"method": "GET", "path": "/v1/kv/?keys&dc=dc2"},
            {"method": "DELETE", "path": "/v1/kv/d/?recurse&dc=dc2"},
        ])

    def acl_op(self):
        tok = self.r.choice(self.tokens + ["", "not-a-uuid", "00000000-0000-0000-0000-000000000bad"])
        base = self.r.choice([self.kv_put, self.kv_get, self.kv_delete, self.txn])()
        how = self.r.choice(["header", "query"])
        if how == "header":
            base["headers"] = {"X-Consul-Token": tok}
        elif tok:
            base["path"] += ("&" if "?" in base["path"] else "?") + "token=" + tok
            base["headers"] = {"X-Consul-Token": ""}
        else:
            base["headers"] = {"X-Consul-Token": ""}
        return base

    def next(self):
        if self.acl:
            return self.acl_op()
        c = self.r.random()
        if c < 0.25:
            op = self.kv_put()
        elif c < 0.45:
            op = self.kv_get()
        elif c < 0.55:
            op = self.kv_delete()
        elif c < 0.75:
            op = self.txn()
        elif c < 0.87:
            op = self.session()
        elif c < 0.93:
            op = self.blocking()
        else:
            op = self.misc()
        if "dc=" not in op["path"] and not op.get("create_session") and self.r.random() < 0.05:
            op["path"] += self.dcq("&" if "?" in op["path"] else "?")
        return op


# ------------------------------------------------------------ running

class Difference(AssertionError):
    pass


def run_ops(sides, gen, nops, seed, label, verbose=False, keep_going=False):
    found = []
    for i in range(nops):
        op = gen.next()
        answers = []
        for side in sides:
            side.use_dc("dc2" if "dc=dc2" in op["path"] else "dc1")
            path = side.resolve(op["path"])
            body = op.get("body")
            if body is not None:
                body = side.resolve(body.decode("latin-1")).encode("latin-1")
            headers = dict(op.get("headers") or {})
            st, hd, bd = side.dc1.request(op["method"], path, body, headers, timeout=30)
            if op.get("status_only"):
                answers.append({"status": st})
                side.use_dc("dc1")
                continue
            answers.append(answer(side, op, st, hd, bd))
            side.use_dc("dc1")
        ranks = [s.pending_rank for s in sides]
        if answers[0] != answers[1] or ranks[0] != ranks[1]:
            msg = (
                "DIFFERENCE (%s) seed=%s op#%d\nrequest: %s %s body=%r headers=%r\n%s: %s\n%s: %s\n"
                "new-index ranks: %s=%s %s=%s"
                % (label, seed, i, op["method"], op["path"], op.get("body"), op.get("headers"),
                   sides[0].name, json.dumps(answers[0], sort_keys=True),
                   sides[1].name, json.dumps(answers[1], sort_keys=True),
                   sides[0].name, ranks[0], sides[1].name, ranks[1]))
            if not keep_going:
                raise Difference(msg)
            print(msg, flush=True)
            found.append(i)
        for s in sides:
            s.pending_rank = []
        if verbose:
            print(i, op["method"], op["path"], json.dumps(answers[0])[:200], flush=True)
    if found:
        print("%d differences (%s), seed %s" % (len(found), label, seed), flush=True)
    return len(found)


def setup_side(side, master=None):
    """Brings both sides to the same starting point in each DC: one KV write and delete (real Consul's readiness
    probe does that too), and the DC's index floor (indexes below it are "i-pre")."""
    h = {"X-Consul-Token": master} if master else {}
    for dc, q in (("dc2", "?dc=dc2"), ("dc1", "")):
        st, hd, _ = side.dc1.request("PUT", "/v1/kv/_diff_setup" + q, b"1", h)
        assert st == 200, st
        side.dc1.request("DELETE", "/v1/kv/_diff_setup" + q, None, h)
        st, hd, _ = side.dc1.request("GET", "/v1/kv/_diff_setup" + q, None, h)
        side.use_dc(dc)
        side.floor = int(hd["x-consul-index"])
        side.label(side.floor)
    side.pending_rank = []


def make_tokens(dc, master):
    h = {"X-Consul-Token": master}
    rules = [('key_prefix "d/a" { policy = "write" }', "11111111-1111-4111-8111-111111111111"),
             ('key_prefix "d/" { policy = "read" }\nkey "d/b" { policy = "write" }',
              "22222222-2222-4222-8222-222222222222"),
             ('key_prefix "" { policy = "deny" }', "33333333-3333-4333-8333-333333333333")]
    out = []
    for n, (r, secret) in enumerate(rules):
        st, _, body = dc.request("PUT", "/v1/acl/policy", {"Name": "diff%d" % n, "Rules": r}, h)
        assert st == 200, (st, body)
        pid = json.loads(body)["ID"]
        st, _, body = dc.request("PUT", "/v1/acl/token", {"Policies": [{"ID": pid}], "SecretID": secret}, h)
        assert st == 200, (st, body)
        out.append(secret)
    return out


def run_acl(sims, reals, master, nodes_sim, nodes_real, a):
    sides = [Side("sim", sims["dc1"], nodes_sim), Side("real", reals["dc1"], nodes_real)]
    tokens = None
    for s in sides:
        setup_side(s, master)
        tokens = make_tokens(s.dc1, master)
    # Real Consul replicates dc1's (global) policies and tokens to dc2; the sim has no ACL replication, so the
    # same policies and tokens are created in the sim's dc2 directly (README: not modelled). Real dc2 is waited
    # for until its replication has caught up with dc1's ACL writes, before any request in dc2 uses the tokens
    # (dc2 caches a token's resolution: one made before its policies arrived would deny for its cache TTL).
    make_tokens(sims["dc2"], master)
    mh = {"X-Consul-Token": master}
    _, hd, _ = reals["dc1"].request("GET", "/v1/acl/tokens", None, mh)
    want_tokens = int(hd["x-consul-index"])
    _, hd, _ = reals["dc1"].request("GET", "/v1/acl/policies", None, mh)
    want = int(hd["x-consul-index"])
    deadline = time.monotonic() + 60
    while True:
        st, _, body = reals["dc2"].request("GET", "/v1/acl/replication", None, mh)
        rep = json.loads(body) if st == 200 else {}
        if rep.get("ReplicatedIndex", 0) >= want and rep.get("ReplicatedTokenIndex", 0) >= want_tokens:
            break
        if time.monotonic() > deadline:
            raise AssertionError("real dc2 did not replicate dc1's ACLs (%d, %d): %s" % (want, want_tokens, rep))
        time.sleep(0.2)
    return run_ops(sides, Gen(random.Random(a.seed + 1), acl=True, tokens=tokens), a.acl_ops, a.seed + 1, "ACLs",
                   a.verbose,
            a.keep_going)


def main():
    binary = simctl.binary_from_argv(sys.argv)
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=3200)
    ap.add_argument("--acl-ops", type=int, default=800)
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--keep-going", action="store_true", help="report every difference, not only the first")
    a = ap.parse_args()
    consul = realconsul.find_consul()
    if not consul:
        realconsul.skip_or_fail()
    t0 = time.monotonic()
    simargs = ["-txn-max-ops", "64"]
    nodes_real = {"node-dc1": "node-dc1", "node-dc2": "node-dc2"}
    nodes_sim = {"kvsim-dc1": "node-dc1", "kvsim-dc2": "node-dc2"}
    try:
        with simctl.federation(binary, ["dc1", "dc2"], args=simargs) as sims, \
                realconsul.federation(["dc1", "dc2"], binary=consul) as reals:
            sides = [Side("sim", sims["dc1"], nodes_sim), Side("real", reals["dc1"], nodes_real)]
            for s in sides:
                setup_side(s)
            found = run_ops(sides, Gen(random.Random(a.seed)), a.ops, a.seed, "no ACLs", a.verbose, a.keep_going)
        print("no ACLs: %d ops done (%.1fs)" % (a.ops, time.monotonic() - t0), flush=True)
        with realconsul.federation(["dc1", "dc2"], binary=consul, acl=True) as reals:
            master = reals["dc1"].master_token
            aclargs = simargs + ["-acl-default-policy", "deny", "-acl-master-token", master]
            with simctl.federation(binary, ["dc1", "dc2"], args=aclargs) as sims:
                found += run_acl(sims, reals, master, nodes_sim, nodes_real, a)
        print("ACLs: %d ops done" % a.acl_ops, flush=True)
    except Difference as d:  # raised out of the federations: their logs were printed above
        print(d, flush=True)
        sys.exit(1)
    if found:
        print("FAIL: %d differences" % found, flush=True)
        sys.exit(1)
    print("OK: %d operations, seed %d, %.1fs" % (a.ops + a.acl_ops, a.seed, time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    main()
