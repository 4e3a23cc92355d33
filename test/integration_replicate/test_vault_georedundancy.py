#!/usr/bin/env python3
"""Georedundant Vault end to end, one kvship (`-vault-path vault/ -vault-datacenters dc1,dc2`) per DC and
**every Vault unsealed** the whole time, on either world:

    python3 test_vault_georedundancy.py <consul-replicate> <consul-kvsim> [--backend sim|real]

  --backend real  real Vault 1.4.3 on two federated real Consul 1.10.12 DCs (ctest real:vault_georedundancy);
  --backend sim   vaultha.py's modelled Vault (Vault's own timers, `vaultha.Timing()`) on two federated sims
                  (integration_replicate:test_vault_georedundancy). The model has no barrier, so init, the
                  shared unseal key and the mount are no-ops there and secrets live in its `secret/` mount
                  (stored as plain JSON at vault/logical/<mount uuid>/<name>, where real Vault's kvtest/ mount
                  stores them encrypted at the same shape of key).

Two Vault nodes per DC (KVSHIP_VAULTS_PER_DC, default 2), one HA cluster of four: on real Vault that is four
Go servers beside two Consul servers on CI's two cores, and it holds (18 s). A sampler asks every Vault's
sys/health every 200 ms all along and the test fails if two answer "active" at one sample. "A" below is dc1's
active node, "B" dc2's (whichever node of the DC wins Vault's lock). Steps, each asserted through Vault's own
answers:
  1. kvship runs in both DCs before Vault starts: dc2's kvship holds dc2's vault/core/lock (its own session,
     Vault's flags). dc1's first node init + unseal -> active (A); dc1's other node -> its standby. dc2's
     nodes unsealed with A's key once dc2 has A's keyring -> standbys whose sys/leader names A (they found A's
     replicated core/leader/<uuid> through the proxy lock).
  2. 100 secrets written through A; 10 more through dc2's standbys (forwarded to A); all read back in dc2.
  3. Planned failover: dc1's Vaults stopped, `-promote dc2` (drained: dc1's kvship takes dc1's lock, dc2's
     applies up to it, then releases dc2's lock) -> B active, dc2's other node its standby; writes through B.
  4. dc1's Vaults restarted and unsealed -> standbys of B (dc1's lock held by dc1's kvship, pointing at B).
  5. Failback with every Vault up: `-promote dc1` -> dc2's kvship fences B (takes dc2's lock from B's
     session), dc1 drains, a dc1 node active, every other node its standby.
  6. Uncontrolled failover: dc2's replicator is stopped (replication stalls), a secret is acknowledged by A,
     then dc1's Vaults are killed and dc1's Consul server is stopped (the DC is lost). dc2's kvship restarted,
     `-promote dc2 -promote-force` -> B active, writes through B. dc1's Consul comes back: dc1's kvship fences
     dc1's lock (a split brain for a moment, ended by the designation records), follows dc2; dc1's Vaults
     restarted become standbys of B.
  7. At the end: both DCs' vault/ equal outside the DC-local keys, every acknowledged secret readable through
     every Vault except the one acknowledged after the last replication, which is kept in dc1's lost+found
     (asserted: its key is saved there, nothing is saved in dc2).
"""
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness as h  # noqa: E402
import realconsul  # noqa: E402
import realvault  # noqa: E402
import simctl  # noqa: E402
import vaultha  # noqa: E402

LOCAL = ("vault/core/lock", "vault/core/migration", "vault/sys/expire/")
FLAGS = 3304740253564472344
T0 = time.monotonic()


def mark(what):
    print("[%7.2fs] %s" % (time.monotonic() - T0, what), flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def kv_dump(consul, prefix="vault/"):
    st, _, body = consul.request("GET", "/v1/kv/%s?recurse" % prefix)
    if st == 404:
        return {}
    check(st == 200, "GET %s?recurse on %s: %s" % (prefix, consul.dc, st))
    return {e["Key"]: (e["Flags"], base64.b64decode(e["Value"] or "")) for e in json.loads(body)
            if not any(e["Key"].startswith(x) for x in LOCAL)}


def lock_entry(consul):
    st, _, body = consul.request("GET", "/v1/kv/vault/core/lock")
    if st == 404:
        return None
    e = json.loads(body)[0]
    return {"value": base64.b64decode(e["Value"] or "").decode(), "flags": e["Flags"], "session": e.get("Session")}


def wait(what, pred, timeout=90, interval=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
            last = v
        except (OSError, realvault.VaultError, vaultha.VaultError, ValueError, KeyError) as e:
            last = e
        time.sleep(interval)
    raise AssertionError("not %s after %ss (last %r)" % (what, timeout, last))


def wait_equal(dc1, dc2, what, timeout=90):
    def same():
        a, b = kv_dump(dc1), kv_dump(dc2)
        return a == b and a
    try:
        wait(what, same, timeout)
    except AssertionError:
        a, b = kv_dump(dc1), kv_dump(dc2)
        raise AssertionError("%s: dc1/dc2 differ: only dc1 %s, only dc2 %s, different %s" % (
            what, sorted(set(a) - set(b))[:10], sorted(set(b) - set(a))[:10],
            sorted(k for k in set(a) & set(b) if a[k] != b[k])[:10]))
    mark("replicated: %s" % what)


class Sampler:
    """Every 200 ms: which Vaults answer sys/health 200 (active). Two at one sample is a failure."""

    def __init__(self, vaults):
        self.vaults = vaults
        self.samples = 0
        self.violations = []
        self.stop_ = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop_:
            t = time.monotonic()
            active = []
            for v in self.vaults:
                try:
                    st, _ = v.health()
                    if st == 200:
                        active.append(v.name)
                except (OSError, realvault.VaultError, vaultha.VaultError, ValueError):
                    pass
            self.samples += 1
            if len(active) > 1:
                self.violations.append((round(t - T0, 2), active))
            time.sleep(max(0.0, 0.2 - (time.monotonic() - t)))

    def stop(self):
        self.stop_ = True
        self.t.join(5)


def start_kvship(binary, consul):
    addr = "127.0.0.1:%d" % realconsul.free_port()
    r = h.Replicator(binary, ["-consul-addr", consul.addr, "-vault-path", "vault/", "-vault-datacenters", "dc1,dc2",
                              "-gate-interval", "250ms", "-lock", "locks/kvship", "-lock-ttl", "10s",
                              "-lock-delay", "0s", "-metrics-addr", addr, "-log-level", "info"])
    r.metrics_addr = addr
    return r


def metric(r, name):
    return h.parse_metrics(h.http_get(r.metrics_addr, "/metrics")[1]).get(name)


def role(r):
    try:
        st, text = h.http_get(r.metrics_addr, "/metrics")
    except OSError:
        return None
    m = h.parse_metrics(text)
    for x in ("primary", "taking_over", "handing_over", "follower"):
        if m.get('kvship_vault_role{role="%s"}' % x) == 1:
            return x
    return None


def promote(binary, consul, dc, *extra):
    p = subprocess.run([binary, "-consul-addr", consul.addr, "-vault-path", "vault/", "-vault-datacenters", "dc1,dc2",
                        "-promote", dc] + list(extra), capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "-promote %s: exit %s\n%s%s" % (dc, p.returncode, p.stdout, p.stderr))
    mark("-promote %s %s: %s" % (dc, " ".join(extra), p.stdout.strip().splitlines()[-1]))


class ModelVault:
    """A vaultha.VaultNode with realvault.Vault's calls: init, adopt and enable_kv belong to the barrier, which
    the model does not have (no-ops); addr is the API address sys/leader names."""

    def __init__(self, node):
        self.node = node
        self.name = node.name
        self.addr = node.api_addr

    def init(self):
        pass

    def adopt(self, other):
        return self

    def enable_kv(self, mount):
        pass

    def __getattr__(self, name):
        return getattr(self.node, name)


class RealWorld:
    """Two real Consul DCs (realconsul) and real Vaults (realvault)."""
    mount = "kvtest"

    def __init__(self):
        self.vault_bin = realconsul.find_vault()
        if not self.vault_bin:
            realconsul.skip_or_fail("real Vault")
        self._stack = contextlib.ExitStack()
        self.dcs = self._stack.enter_context(realconsul.federation(["dc1", "dc2"]))
        self._vs = self._stack.enter_context(realvault.VaultSet())

    def vault(self, dc, name):
        return self._vs.add(self.vault_bin, self.dcs[dc], name=name)

    def close(self, exc):
        self._stack.__exit__(*exc)


class SimWorld:
    """Two federated sims (dc1 with a data dir, so that stopping and starting it keeps its KV, sessions and
    catalog as a real Consul server's restart does) and vaultha.py's modelled Vault with Vault's own timers."""
    mount = "secret"

    def __init__(self, kvsim_bin):
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="kvship-vgeo-"))
        self.dcs = self._stack.enter_context(simctl.federation(
            kvsim_bin, ["dc1", "dc2"], data_dirs={"dc1": os.path.join(tmp, "dc1")}))
        self._nodes = []

    def vault(self, dc, name):
        node = vaultha.VaultNode(self.dcs[dc], name=name, timing=vaultha.Timing())
        self._nodes.append(node)
        return ModelVault(node)

    def close(self, exc):
        for n in self._nodes:
            if exc[0] is not None:
                print("---- vaultha %s (%s) log tail ----\n%s" % (n.name, n.state, n.log_tail(40)), flush=True)
            try:
                n.close()
            except Exception as e:  # noqa: BLE001
                print("closing %s: %r" % (n.name, e), flush=True)
        self._stack.__exit__(*exc)


class DCVaults:
    """The Vault nodes of one DC (one HA cluster's members there)."""

    def __init__(self, dc, nodes):
        self.dc = dc
        self.nodes = nodes

    def unseal(self, key_from):
        for n in self.nodes:
            n.adopt(key_from)
            n.unseal()

    def start(self):
        for n in self.nodes:
            n.start()

    def stop(self):
        for n in self.nodes:
            n.stop()

    def kill(self):
        for n in self.nodes:
            n.kill()

    def wait_active(self, timeout=120):
        """The one node of this DC that becomes active (any of them may win Vault's lock)."""
        def one():
            act = []
            for n in self.nodes:
                try:
                    if n.health()[0] == 200:
                        act.append(n)
                except (OSError, realvault.VaultError, vaultha.VaultError, ValueError):
                    pass
            return act[0] if len(act) == 1 else None
        return wait("one active Vault in %s" % self.dc, one, timeout)

    def wait_standbys(self, leader, timeout=120):
        """Every node of this DC but `leader` is a standby whose sys/leader names `leader`."""
        for n in self.nodes:
            if n is not leader:
                n.wait_standby(leader=leader.addr, timeout=timeout)


def test_georedundant_vault(ctx):
    binary = ctx.replicate_bin
    world = RealWorld() if ctx.real else SimWorld(ctx.kvsim_bin)
    mount = world.mount
    per_dc = int(os.environ.get("KVSHIP_VAULTS_PER_DC", "2"))
    k1 = k2 = sampler = None
    exc = (None, None, None)
    secrets = {}

    def write(v, name, value):
        secrets["%s/%s" % (mount, name)] = {"v": value}
        v.write("%s/%s" % (mount, name), {"v": value})

    try:
        dc1, dc2 = world.dcs["dc1"], world.dcs["dc2"]
        try:
            k1, k2 = start_kvship(binary, dc1), start_kvship(binary, dc2)
            wait("dc2's proxy lock", lambda: (lock_entry(dc2) or {}).get("session"))
            check(lock_entry(dc2)["flags"] == FLAGS, "proxy lock flags: %s" % lock_entry(dc2))
            check(lock_entry(dc1) is None, "dc1 (the primary) must hold no proxy lock: %s" % lock_entry(dc1))
            mark("1. kvship in both DCs; dc2's vault/core/lock held by dc2's kvship, dc1's free")

            v1 = DCVaults("dc1", [world.vault("dc1", "A%d-dc1" % i) for i in range(1, per_dc + 1)])
            v2 = DCVaults("dc2", [world.vault("dc2", "B%d-dc2" % i) for i in range(1, per_dc + 1)])
            sampler = Sampler(v1.nodes + v2.nodes)
            first = v1.nodes[0]
            first.init()
            first.unseal()
            a = first
            a.wait_active()
            v1.unseal(first)
            v1.wait_standbys(a)
            mark("%s active, %d standby in dc1" % (a.name, per_dc - 1))
            wait_equal(dc1, dc2, "A's init")
            v2.unseal(first)
            v2.wait_standbys(a)
            mark("dc2's %d Vaults unsealed: standbys whose sys/leader names %s (%s)" % (per_dc, a.name, a.addr))

            a.enable_kv(mount)
            for i in range(100):
                write(a, "s%03d" % i, "a-%03d" % i)
            for i in range(10):
                write(v2.nodes[i % per_dc], "b%02d" % i, "via-b-%02d" % i)
            for p, d in secrets.items():
                check(v2.nodes[-1].read(p) == d, "dc2's %s reads %s (forwarded to A)" % (v2.nodes[-1].name, p))
            mark("2. 100 secrets through %s, 10 through dc2's standbys (forwarded), all read back in dc2" % a.name)
            wait_equal(dc1, dc2, "110 secrets")

            # 3. Planned failover: dc1's Vault nodes stopped.
            v1.stop()
            mark("3. dc1's Vaults stopped")
            promote(binary, dc1, "dc2")
            b = v2.wait_active()
            v2.wait_standbys(b)
            wait("dc2's kvship primary", lambda: role(k2) == "primary")
            mark("%s active after the drained promotion (drain: %s s, %s keys)" % (
                b.name, metric(k2, "kvship_vault_drain_seconds"), metric(k2, "kvship_vault_drain_keys")))
            check(metric(k2, "kvship_vault_drain_keys") is not None, "kvship_vault_drain_keys after a promotion")
            for i in range(10):
                write(b, "c%02d" % i, "after-failover-%02d" % i)
            wait_equal(dc1, dc2, "writes through B")

            # 4. dc1's Vaults back: standbys of B.
            v1.start()
            v1.unseal(first)
            v1.wait_standbys(b)
            check(lock_entry(dc1)["session"], "dc1's lock held by dc1's kvship")
            mark("4. dc1's Vaults restarted and unsealed: standbys, sys/leader -> %s" % b.addr)
            check(v1.nodes[0].read(mount + "/c03") == secrets[mount + "/c03"], "dc1 reads through B")

            # 5. Failback with every Vault unsealed.
            promote(binary, dc2, "dc1")
            a = v1.wait_active()
            v1.wait_standbys(a)
            v2.wait_standbys(a)
            wait("dc1's kvship primary", lambda: role(k1) == "primary")
            mark("5. failback: %s active, every other Vault its standby" % a.name)
            for i in range(10):
                write(v2.nodes[0], "d%02d" % i, "after-failback-%02d" % i)
            wait_equal(dc1, dc2, "writes after the failback")

            # 6. Uncontrolled failover: the last write never reaches dc2.
            k2.signal(signal.SIGINT)
            k2.wait(60)
            lost = {"v": "acknowledged-by-A-never-replicated"}
            a.write(mount + "/lost", lost)
            mark("6. dc2's kvship stopped; %s/lost acknowledged by %s" % (mount, a.name))
            v1.kill()
            dc1.stop()
            mark("dc1 lost (its Vaults and its Consul stopped)")
            k2 = start_kvship(binary, dc2)
            wait("dc2's kvship follower", lambda: role(k2) in ("follower", "taking_over"), timeout=60)
            promote(binary, dc2, "dc2", "-promote-force")
            b = v2.wait_active()
            mark("%s active after the forced promotion" % b.name)
            for i in range(5):
                write(b, "e%02d" % i, "while-dc1-lost-%02d" % i)
            dc1.start()
            v1.start()
            v1.unseal(first)
            v1.wait_standbys(b)
            v2.wait_standbys(b)
            wait("dc1's kvship follower", lambda: role(k1) == "follower", timeout=120)
            mark("dc1 back: its Vaults standbys of %s, dc1's kvship follows dc2" % b.name)
            check(metric(k1, "kvship_vault_split_brains_total") >= 1,
                  "dc1's kvship saw both DCs name themselves the primary when dc1 came back")
            check(metric(k1, "kvship_vault_split_brain") == 0, "the split brain has ended")
            check(any("split brain: datacenters dc1 and dc2" in line for line in k1.lines), "split brain logged")
            mark("split brain seen and ended by dc1's kvship (kvship_vault_split_brains_total %s)"
                 % metric(k1, "kvship_vault_split_brains_total"))
            wait_equal(dc1, dc2, "after the uncontrolled failover")

            # 7. Every acknowledged secret readable through every Vault.
            for v in v1.nodes + v2.nodes:
                for p, d in secrets.items():
                    check(v.read(p) == d, "%s reads %s" % (v.name, p))
            check(b.read(mount + "/lost") is None, "the unreplicated write is not in the new primary")
            lf = kv_dump(dc1, "service/kvship/lost+found/")
            # The mount is KV v1: the secret is stored as vault/logical/<mount uuid>/lost.
            saved = [k for k in lf if "/vault/logical/" in k and k.endswith("/lost")]
            check(saved, mount + "/lost kept in dc1's lost+found: %s" % sorted(lf)[:20])
            check(not kv_dump(dc2, "service/kvship/lost+found/"), "nothing saved in dc2 (it lost nothing)")
            keys = [k for k in lf if not k.endswith("/.turn")]
            mark("lost+found in dc1: %d saved keys and the turn record, %s/lost among them (%s)"
                 % (len(keys), mount, saved[0]))
            mark("7. %d acknowledged secrets readable through all %d Vaults" % (len(secrets), 2 * per_dc))
            sampler.stop()
            check(not sampler.violations, "two active Vaults at once: %s" % sampler.violations[:10])
            mark("sampler: %d samples every 200 ms of %d Vaults, never more than one active"
                 % (sampler.samples, 2 * per_dc))
        except Exception:
            for name, r in (("kvship dc1", k1), ("kvship dc2", k2)):
                if r is not None:
                    print("---- %s log tail ----\n%s" % (name, r.log()[-6000:]), flush=True)
            raise
        finally:
            if sampler:
                sampler.stop()
            for r in (k1, k2):
                if r is not None:
                    r.kill()
    except BaseException:
        exc = sys.exc_info()
        raise
    finally:
        world.close(exc)
    mark("ok: georedundant Vault on %s" % ("real Vault and real Consul" if ctx.real else "modelled Vault and sims"))


if __name__ == "__main__":
    h.main({"test_georedundant_vault": test_georedundant_vault})
