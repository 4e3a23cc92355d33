"""The seed's race (../shared/seeds/georedundant-vault-consul-blog.txt), as a schedule, a writer, a watcher
and a checker, shared by the flapping demonstration (examples/flapping/flapping_demo.py: two ungated
replicators pointing at each other) and the race test (test_georedundancy.py: two replicators behind the
leader-DC gate). Python 3 standard library only.

The schedule: Vault data under vault/ is loaded into both DCs (replication is set up before Vault is
initialised, as the seed says), one replicator per DC is started, then 11 write phases alternate between
dc1 and dc2, so the Vault leader moves ten times. In each phase a writer ("Vault") creates, updates and
deletes keys in the current primary only. Across each move the writes pause:

    writes stop -> catch-up (both DCs equal and still for a moment) -> quiet window starts
    -> the leader moves (Vault's catalog registration: tag `active` leaves the old DC's instance, then
       appears on the new DC's; the vaultsim leader moves too) -> the turn (gated: both replicators report
       the new primary in their metrics; ungated: the same nominal time) -> a short hold
    -> quiet window ends -> writes resume in the new primary

What is counted (Checker.report):
  lost         keys the writer last set whose final value is missing or older in a DC
  came_back    keys the writer last deleted that exist in a DC at the end
  flaps        observed changes in a DC that go against the writer's order (a written key vanishing, a
               deleted key reappearing, an older value coming back, a value changed and put back), and
               writes by a replicator into the DC that was the primary during a write phase
  quiet        keys that changed in a DC during a quiet window (neither DC had a writer; nothing may move)
  differ       keys whose final state differs between the DCs
  not_settled  pauses after which the DCs did not become equal and still before the deadline
  crossed      keys of the excluded prefix (vault/sys/expire/) that showed up in the other DC
"""
import base64
import contextlib
import json
import random
import threading
import time

PREFIX = "vault/"
EXCLUDE = "vault/sys/expire/"
SERVICE = "vault"
ACTIVE_TAG = "active"
STANDBY_TAG = "standby"


# ---------------------------------------------------------------- the schedule

class Schedule:
    """Deterministic (seeded) operations; the same for the demo and the test."""

    def __init__(self, moves=10, ops_per_phase=40, op_interval=0.02, initial_keys=30, dcs=("dc1", "dc2"),
                 seed=4, quiet_hold=0.5, settle_deadline=60.0, still_for=0.3):
        self.moves = moves
        self.ops_per_phase = ops_per_phase
        self.op_interval = op_interval
        self.initial_keys = initial_keys
        self.dcs = tuple(dcs)
        self.seed = seed
        self.quiet_hold = quiet_hold            # the quiet window lasts at least this long after the turn
        self.settle_deadline = settle_deadline  # how long a pause waits for the DCs to agree
        self.still_for = still_for              # "caught up": equal, and no change for this long

    def primaries(self):
        return [self.dcs[i % len(self.dcs)] for i in range(self.moves + 1)]

    def initial_data(self):
        rnd = random.Random(self.seed)
        data = {"vault/core/keyring": b"keyring-0", "vault/core/master": b"master-0",
                "vault/core/mounts": b"mounts-0", "vault/core/auth": b"auth-0"}
        for i in range(self.initial_keys - len(data)):
            data["vault/logical/%08x/init-%02d" % (rnd.getrandbits(32), i)] = b"init-%d" % i
        return data


# Keys that running Vault nodes (and kvship's proxy of their lock) manage themselves, not the writer: left
# out of every listing while `ignoring(...)` is in force (the vault { } race with modelled Vault nodes).
IGNORED = ()


@contextlib.contextmanager
def ignoring(prefixes):
    global IGNORED
    before, IGNORED = IGNORED, tuple(prefixes)
    try:
        yield
    finally:
        IGNORED = before


# ---------------------------------------------------------------- HTTP bits

def _txn(sim, ops):
    status, _, data = sim.request("PUT", "/v1/txn", json.dumps(ops).encode())
    if status != 200:
        raise RuntimeError("txn on %s: %s %r" % (sim.dc, status, data[:300]))
    return json.loads(data)


def listing(sim, prefix=PREFIX, index=None, wait=None):
    """(X-Consul-Index, {key: (value bytes, ModifyIndex)}) of everything under prefix."""
    q = "?recurse"
    if index is not None:
        q += "&index=%d&wait=%s" % (index, wait or "1s")
    status, hdrs, data = sim.request("GET", "/v1/kv/%s%s" % (prefix, q), timeout=30)
    idx = int(hdrs.get("x-consul-index", "0"))
    if status == 404:
        return idx, {}
    if status != 200:
        raise RuntimeError("list %s on %s: %s %r" % (prefix, sim.dc, status, data[:200]))
    out = {}
    for e in json.loads(data):
        if IGNORED and e["Key"].startswith(IGNORED):
            continue
        value = base64.b64decode(e["Value"]) if e.get("Value") is not None else b""
        out[e["Key"]] = (value, e["ModifyIndex"])
    return idx, out


def values(entries, include_excluded=False):
    return {k: v for k, (v, _) in entries.items() if include_excluded or not k.startswith(EXCLUDE)}


def load_initial(sims, schedule):
    data = schedule.initial_data()
    for sim in sims.values():
        ops = [{"KV": {"Verb": "set", "Key": k, "Value": base64.b64encode(v).decode()}} for k, v in data.items()]
        for i in range(0, len(ops), 64):
            _txn(sim, ops[i:i + 64])
    return data


# ---------------------------------------------------------------- Vault's registration

class VaultControl:
    """Moves "the Vault leader": the catalog registration (service vault, tag active on the leader's
    instance, standby elsewhere, each with a passing TTL check, as Vault's service registration does) and,
    when given, a vaultsim.VaultCluster's leader."""

    def __init__(self, sims, vault_cluster=None, port=8200, catalog_required=True, log=print):
        self.sims = sims
        self.vault = vault_cluster
        self.port = port
        self.leader_dc = None
        self.catalog = True
        self.catalog_required = catalog_required
        self.log = log

    def service_id(self, dc):
        return "vault:vault-%s:%d" % (dc, self.port)

    def _register(self, dc, tag):
        sim = self.sims[dc]
        sid = self.service_id(dc)
        check_id = sid + ":vault-sealed-check"
        body = {"ID": sid, "Name": SERVICE, "Tags": [tag], "Address": "vault-%s" % dc, "Port": self.port,
                "Check": {"CheckID": check_id, "Name": "Vault Sealed Status", "TTL": "1h"}}
        if not self.catalog:
            return
        status, _, data = sim.request("PUT", "/v1/agent/service/register", json.dumps(body).encode())
        if status == 404 and not self.catalog_required:
            self.catalog = False
            self.log("note: this consul-kvsim has no /v1/agent/service/register; Vault's catalog registration "
                     "is not moved (the ungated replicators do not look at it anyway)")
            return
        if status != 200:
            raise RuntimeError("register %s in %s: %s %r" % (sid, dc, status, data[:300]))
        status, _, data = sim.request("PUT", "/v1/agent/check/pass/%s" % check_id)
        if status != 200:
            raise RuntimeError("check pass %s in %s: %s %r" % (check_id, dc, status, data[:300]))

    def set_leader(self, dc):
        """Demotes the old leader's instance first, then promotes the new one (Vault steps down first)."""
        for other in self.sims:
            if other != dc:
                self._register(other, STANDBY_TAG)
        if self.vault is not None:
            self.vault.set_leader_in(dc)
        self._register(dc, ACTIVE_TAG)
        self.leader_dc = dc


# ---------------------------------------------------------------- how a move is waited for

class FixedTurn:
    """Ungated: nothing turns; wait the same nominal time the gate would need."""

    def __init__(self, seconds):
        self.seconds = seconds

    def wait(self, new_primary, log):
        time.sleep(self.seconds)
        return True


class GateTurn:
    """Gated: wait until every replicator's /metrics says kvship_gate_primary{dc=<new>} 1, with the state
    `primary` in the new primary DC and `following` elsewhere."""

    def __init__(self, metrics_addrs, http_get, parse_metrics, deadline=60.0, check=None):
        self.metrics_addrs = metrics_addrs  # {dc: "127.0.0.1:port"}
        self.http_get = http_get
        self.parse_metrics = parse_metrics
        self.deadline = deadline
        self.check = check  # called while waiting; raises when waiting is pointless (a replicator exited)

    def state(self, dc):
        try:
            status, text = self.http_get(self.metrics_addrs[dc], "/metrics")
        except OSError:
            return None, None
        if status != 200:
            return None, None
        m = self.parse_metrics(text)
        primary = [k.split('dc="', 1)[1].split('"', 1)[0] for k, v in m.items()
                   if k.startswith("kvship_gate_primary{") and 'dc="' in k and v == 1]
        state = [k.split('state="', 1)[1].split('"', 1)[0] for k, v in m.items()
                 if k.startswith("kvship_gate_state{") and 'state="' in k and v == 1]
        return (primary[0] if len(primary) == 1 else None), (state[0] if len(state) == 1 else None)

    def wait(self, new_primary, log):
        end = time.monotonic() + self.deadline
        while time.monotonic() < end:
            views = {dc: self.state(dc) for dc in self.metrics_addrs}
            if all(p == new_primary and s == ("primary" if dc == new_primary else "following")
                   for dc, (p, s) in views.items()):
                return True
            if self.check is not None:
                self.check()
            time.sleep(0.05)
        log("  the gate did not turn to %s within %.0fs: %r" % (new_primary, self.deadline, views))
        return False


# ---------------------------------------------------------------- the watcher

class Watcher:
    """One thread per DC, following vault/ with blocking queries; keeps each key's sequence of observed
    states, (value, ModifyIndex) or None when absent, consecutive duplicates removed."""

    def __init__(self, sims):
        self.sims = sims
        self.history = {dc: {} for dc in sims}  # dc -> key -> [state, ...]
        self.errors = []
        self._stop = threading.Event()
        self._threads = []
        self._ready = {dc: threading.Event() for dc in sims}

    def start(self):
        for dc in self.sims:
            t = threading.Thread(target=self._run, args=(dc,), daemon=True, name="watch-%s" % dc)
            t.start()
            self._threads.append(t)
        for ev in self._ready.values():
            ev.wait(30)
        return self

    def _observe(self, dc, entries, seen, first):
        hist = self.history[dc]
        for k in set(seen) | set(entries):
            state = entries[k] if k in entries else None  # (value, ModifyIndex) or None
            h = hist.setdefault(k, [state] if first else [None])
            if h[-1] != state:
                h.append(state)
        return dict(entries)

    def _run(self, dc):
        sim = self.sims[dc]
        index, seen = None, {}
        while not self._stop.is_set():
            try:
                new_index, entries = listing(sim, index=index, wait="1s")
            except Exception as e:  # noqa: BLE001 - recorded, the checker reports it
                self.errors.append("%s: %s" % (dc, e))
                time.sleep(0.1)
                continue
            seen = self._observe(dc, entries, seen, first=index is None)
            self._ready[dc].set()
            index = new_index if index is None or new_index >= index else 0

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(10)


# ---------------------------------------------------------------- the writer ("Vault")

class Writer:
    def __init__(self, sims, schedule, initial):
        self.sims = sims
        self.schedule = schedule
        self.rnd = random.Random(schedule.seed * 7919 + 1)
        self.model = dict(initial)                          # key -> value the writer last set
        self.sequence = {k: [v] for k, v in initial.items()}  # key -> [state...] in the writer's order
        self.expire = {dc: set() for dc in sims}            # excluded keys written, by DC
        self.indexes = {dc: set() for dc in sims}           # ModifyIndexes of the writer's own sets
        self.ops = 0
        self.counter = 0

    def _set(self, sim, key, value):
        out = _txn(sim, [{"KV": {"Verb": "set", "Key": key, "Value": base64.b64encode(value).decode()}}])
        self.indexes[sim.dc].add(out["Results"][0]["KV"]["ModifyIndex"])

    def _delete(self, sim, key):
        _txn(sim, [{"KV": {"Verb": "delete", "Key": key}}])

    def _record(self, key, state):
        seq = self.sequence.setdefault(key, [None])
        if seq[-1] != state:
            seq.append(state)
        if state is None:
            self.model.pop(key, None)
        else:
            self.model[key] = state

    def phase(self, dc, phase_no):
        """ops_per_phase operations on the primary, op_interval apart, Vault-like: a lease or token is
        created, often renewed (updated) or revoked (deleted) soon after, so recent keys are hot."""
        sim = self.sims[dc]
        recent = []
        for _ in range(self.schedule.ops_per_phase):
            self.counter += 1
            r = self.rnd.random()
            live = sorted(self.model)
            hot = [k for k in recent if k in self.model]
            if r < 0.05:
                key = "%ssys/expire/id/auth/token/%04d" % (PREFIX, self.counter)
                self._set(sim, key, b"expire-%d" % self.counter)
                self.expire[dc].add(key)
            elif r < 0.45 or len(live) < 5:
                key = "%slogical/%08x/p%02d-%04d" % (PREFIX, self.rnd.getrandbits(32), phase_no, self.counter)
                value = b"%s#%d" % (key.encode(), self.counter)
                self._set(sim, key, value)
                self._record(key, value)
                recent = (recent + [key])[-4:]
            elif r < 0.78:
                key = self.rnd.choice(hot if hot and self.rnd.random() < 0.7 else live)
                value = b"%s#%d" % (key.encode(), self.counter)
                self._set(sim, key, value)
                self._record(key, value)
            else:
                key = self.rnd.choice(hot if hot and self.rnd.random() < 0.7 else live)
                self._delete(sim, key)
                self._record(key, None)
            self.ops += 1
            time.sleep(self.schedule.op_interval)


# ---------------------------------------------------------------- the run

def caught_up(sims, schedule):
    """Waits until every DC holds the same vault/ (the excluded prefix aside) and nothing changed for
    schedule.still_for; returns (True, indexes) or (False, indexes) at the deadline."""
    end = time.monotonic() + schedule.settle_deadline
    while True:
        first = {dc: listing(s) for dc, s in sims.items()}
        same = len({json.dumps(sorted((k, v.hex()) for k, v in values(e).items())) for _, e in first.values()}) == 1
        if same:
            time.sleep(schedule.still_for)
            second = {dc: listing(s) for dc, s in sims.items()}
            if all(second[dc][0] == first[dc][0] for dc in sims):
                return True, {dc: second[dc][0] for dc in sims}
        if time.monotonic() > end:
            return False, {dc: first[dc][0] for dc in sims}
        time.sleep(0.05)


class Result:
    def __init__(self):
        self.lost = {}          # dc -> [keys]
        self.came_back = {}     # dc -> [keys]
        self.regressions = {}   # dc -> [(key, kind)]
        self.quiet = []         # (move no, dc, [keys], index moved)
        self.differ = []        # keys
        self.not_settled = []   # move numbers (len(moves) = the final pause)
        self.not_turned = []    # move numbers
        self.crossed = []       # (key, dc where it showed up)
        self.watch_errors = []
        self.writes = 0
        self.final_keys = {}

    def counts(self):
        keys_lost = set(k for ks in self.lost.values() for k in ks)
        back = set(k for ks in self.came_back.values() for k in ks)
        return {
            "writer_ops": self.writes,
            "keys_lost": len(keys_lost),
            "deleted_keys_back": len(back),
            "flaps": sum(len(v) for v in self.regressions.values()),
            "quiet_window_changes": sum(len(q[2]) or 1 for q in self.quiet),
            "final_differences": len(self.differ),
            "pauses_not_settled": len(self.not_settled),
            "turns_not_seen": len(self.not_turned),
            "excluded_keys_crossed": len(self.crossed),
        }

    def ok(self):
        c = self.counts()
        return all(v == 0 for k, v in c.items() if k != "writer_ops") and not self.watch_errors

    def report(self, log, details=8):
        c = self.counts()
        for k, v in c.items():
            log("%-22s %d" % (k, v))
        for dc, ks in sorted(self.lost.items()):
            if ks:
                log("  lost in %s (%d): %s" % (dc, len(ks), ", ".join(sorted(ks)[:details])))
        for dc, ks in sorted(self.came_back.items()):
            if ks:
                log("  came back in %s (%d): %s" % (dc, len(ks), ", ".join(sorted(ks)[:details])))
        for dc, rs in sorted(self.regressions.items()):
            if rs:
                kinds = {}
                for _, kind in rs:
                    kinds[kind] = kinds.get(kind, 0) + 1
                log("  flaps in %s: %d (%s)" % (dc, len(rs), ", ".join("%s %d" % kv for kv in sorted(kinds.items()))))
        for move, dc, ks, moved in self.quiet[:details]:
            log("  quiet window before move %d: %s changed %s%s" % (move, dc, ", ".join(ks[:4]) or "(index only)",
                                                                  "" if moved else ""))
        if self.differ:
            log("  differ: %s" % ", ".join(self.differ[:details]))
        for key, dc in self.crossed[:details]:
            log("  excluded key %s showed up in %s" % (key, dc))
        for e in self.watch_errors[:details]:
            log("  watcher error: %s" % e)


def regressions(sequence, observed):
    """Changes in `observed` (a DC's sequence of (value, ModifyIndex) or None for one key) that go against
    the writer's `sequence` of values. The writer never writes a value twice and the replicators never
    rewrite an unchanged value, so the same value under a new ModifyIndex means the key was changed and
    put back between two looks: a flap too."""
    out = []
    p = 0
    for prev, state in zip(observed, observed[1:]):
        pv = prev[0] if prev else None
        v = state[0] if state else None
        if v is not None and v == pv:
            out.append("changed and put back")
            continue
        j = next((i for i in range(p + 1, len(sequence)) if sequence[i] == v), None)
        if j is not None:
            p = j
            continue
        if v is None:
            out.append("written key deleted")
        elif pv is None:
            out.append("deleted key back")
        else:
            out.append("older value back")
        back = [i for i in range(0, p + 1) if sequence[i] == v]
        p = back[-1] if back else p
    return out


def run(sims, schedule, turn, start_replicators, log=print, vault_cluster=None, catalog_required=True):
    """Runs the schedule. start_replicators() is called once the data is loaded and Vault is registered in
    dc1; the caller stops the replicators afterwards."""
    res = Result()
    initial = load_initial(sims, schedule)
    vault = VaultControl(sims, vault_cluster, catalog_required=catalog_required, log=log)
    primaries = schedule.primaries()
    vault.set_leader(primaries[0])
    start_replicators()
    ok, _ = caught_up(sims, schedule)
    if not ok:
        res.not_settled.append(-1)
    if not turn.wait(primaries[0], log):
        res.not_turned.append(0)
    watcher = Watcher(sims).start()
    writer = Writer(sims, schedule, initial)
    windows = {dc: [] for dc in sims}  # per DC: (first, last] index of each phase in which it was the primary
    t0 = time.monotonic()
    try:
        for n, primary in enumerate(primaries):
            start_index = listing(sims[primary])[0]
            writer.phase(primary, n)
            ok, before = caught_up(sims, schedule)
            windows[primary].append((start_index, before[primary]))
            if not ok:
                res.not_settled.append(n + 1)
            snap0 = {dc: listing(s) for dc, s in sims.items()}
            nxt = primaries[n + 1] if n + 1 < len(primaries) else None
            if nxt is not None:
                vault.set_leader(nxt)
                if not turn.wait(nxt, log):
                    res.not_turned.append(n + 1)
            time.sleep(schedule.quiet_hold)
            snap1 = {dc: listing(s) for dc, s in sims.items()}
            for dc in sims:
                (i0, e0), (i1, e1) = snap0[dc], snap1[dc]
                changed = sorted(k for k in set(e0) | set(e1) if e0.get(k) != e1.get(k))
                # With IGNORED keys (Vault's own lock and leader entries move with every promotion),
                # the index moves too: only the keys count then.
                if changed or (i1 != i0 and not IGNORED):
                    res.quiet.append((n + 1, dc, changed, i1 != i0))
            log("phase %2d: %s wrote %d ops%s%s" % (n, primary, schedule.ops_per_phase,
                                                   "" if ok else ", DCs not equal and still after %.0fs"
                                                   % schedule.settle_deadline,
                                                   "; leader -> %s" % nxt if nxt else "; done"))
    finally:
        time.sleep(0.3)
        watcher.stop()
    res.writes = writer.ops
    res.parts = (writer, watcher, windows)  # for digging into a run
    res.watch_errors = list(watcher.errors)
    final = {dc: values(listing(s)[1], include_excluded=True) for dc, s in sims.items()}
    res.final_keys = {dc: len(v) for dc, v in final.items()}
    for dc, content in final.items():
        lost, back = [], []
        for key, seq in writer.sequence.items():
            want, have = seq[-1], content.get(key)
            if want is not None and have != want:
                lost.append(key)
            elif want is None and have is not None:
                back.append(key)
        res.lost[dc], res.came_back[dc] = lost, back
        regs = []
        for key, observed in watcher.history[dc].items():
            if key.startswith(EXCLUDE):
                continue
            seq = writer.sequence.get(key, [None])
            regs += [(key, kind) for kind in regressions(seq, observed)]
            for state in observed:
                if state is not None and state[1] not in writer.indexes[dc] and any(
                        a < state[1] <= b for a, b in windows[dc]):
                    regs.append((key, "primary written by replication"))
        res.regressions[dc] = regs
        for key in content:
            if key.startswith(EXCLUDE) and key not in writer.expire[dc]:
                res.crossed.append((key, dc))
    dcs = list(final)
    keys = set().union(*(set(values_of) for values_of in final.values()))
    res.differ = sorted(k for k in keys if not k.startswith(EXCLUDE)
                        and len({final[dc].get(k) for dc in dcs}) > 1)
    log("ran %d phases, %d writer ops, in %.1fs" % (len(primaries), writer.ops, time.monotonic() - t0))
    return res


# ---------------------------------------------------------------- the replicators

LOG_LEVEL = "info"
SIM_ARGS = ["-wan-latency", "100ms"]  # cross-DC reads are slower than local writes, as over a WAN


def replicator_args(dc, dcs, gated, metrics_addr, settle="1s", interval="200ms", vault=None, vault_dc_map=True,
                    lock=None):
    """One DC's replicator. Ungated: consul-replicate's setup from the seed, each DC replicating vault/
    from the other. Gated: the same, except that the source DC is the one where Vault is active, found
    through the catalog, or with `vault` (a vaultsim.VaultCluster) through GET /v1/sys/leader on each
    node, the leader_address mapped to its DC with -gate-vault-dc (vault_dc_map) or through the catalog.
    lock: a -lock prefix (local to each DC)."""
    common = ["-exclude", EXCLUDE, "-log-level", LOG_LEVEL, "-metrics-addr", metrics_addr]
    if lock:
        common += ["-lock", lock]
    if gated:
        args = ["-prefix", PREFIX, "-gate", "vault", "-gate-settle", settle, "-gate-interval", interval]
        if vault is None:
            args += ["-gate-vault-service", SERVICE, "-gate-vault-tag", ACTIVE_TAG]
        else:
            args += ["-gate-vault-service", SERVICE]
            for node in vault.nodes:
                args += ["-gate-vault-addr", node.url]
                if vault_dc_map:
                    args += ["-gate-vault-dc", "%s=%s" % (node.api_addr, node.dc)]
        return args + common
    other = [d for d in dcs if d != dc]
    assert len(other) == 1, "ungated: two DCs replicating from each other"
    return ["-prefix", "%s@%s" % (PREFIX, other[0])] + common
