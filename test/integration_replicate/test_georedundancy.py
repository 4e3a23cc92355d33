"""The seed's race with the leader-DC gate (issue 4): two federated DCs, one consul-replicate per DC, both
with -prefix vault/ -gate vault, a writer ("Vault") writing to the current primary, and the Vault leader
moving between the DCs ten times, the writes pausing across each move (schedule, writer and checks:
georace.py, shared with examples/flapping/flapping_demo.py, which runs the same schedule ungated).

Afterwards: both DCs hold exactly the same keys and values, no written key was lost, no deleted key came
back, no key changed against the writer's order in either DC (flaps), nothing was written into the
primary by replication, and no key in either DC changed during a quiet window (while the leader moved
and the gate turned). The leader is found three ways: the catalog (Vault's `active` tag), Vault's
/v1/sys/leader with a static address -> DC map, and /v1/sys/leader mapped through the catalog.
"""
import json
import os
import subprocess

import harness as h
import georace
import simctl
import vaultha
import vaultsim

DCS = ["dc1", "dc2"]
EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")


def vault_cluster():
    """One Vault node per DC; their api addresses match the catalog registration (vault-<dc>:8200)."""
    return vaultsim.VaultCluster({"vault-%s" % dc: dc for dc in DCS},
                                 api_addrs={"vault-%s" % dc: "https://vault-%s:8200" % dc for dc in DCS})


def race(ctx, vault=None, vault_dc_map=True, args_for=None, vault_for=None):
    """args_for(dc, metrics_addr): the replicator's flags (default: georace.replicator_args, gated);
    vault_for(sims): the leader hook for georace.run (default: `vault`)."""
    schedule = georace.Schedule(settle_deadline=60.0)
    replicators = []
    log = []
    with ctx.servers(DCS, args=georace.SIM_ARGS) as sims:  # real Consul: its own WAN (loopback) latency
        metrics = {dc: "127.0.0.1:%d" % simctl.free_port() for dc in DCS}
        if vault_for is not None:
            vault = vault_for(sims)

        def start():
            for dc in DCS:
                if args_for is not None:
                    args = ["-consul-addr", sims[dc].addr] + args_for(dc, metrics[dc])
                else:
                    args = ["-consul-addr", sims[dc].addr] + georace.replicator_args(
                        dc, DCS, True, metrics[dc], "1s", "200ms", vault=vault, vault_dc_map=vault_dc_map)
                replicators.append(h.Replicator(ctx.replicate_bin, args))
            if hasattr(vault, "after_start"):
                vault.after_start()

        def check():
            for dc, r in zip(DCS, replicators):
                if not r.running():
                    raise AssertionError("the replicator in %s exited with %s:\n%s" % (dc, r.proc.poll(), r.log()))

        turn = georace.GateTurn(metrics, h.http_get, h.parse_metrics, deadline=60, check=check)
        try:
            res = georace.run(sims, schedule, turn, start, log=log.append, vault_cluster=vault)
            report = []
            res.report(report.append)
            detail = "\n".join(log + report) + "".join(
                "\n---- replicator in %s (last 40 lines)\n%s" % (dc, "\n".join(r.lines[-40:]))
                for dc, r in zip(DCS, replicators))
            c = res.counts()
            assert c["writer_ops"] == (schedule.moves + 1) * schedule.ops_per_phase, detail
            for name in ("keys_lost", "deleted_keys_back", "flaps", "quiet_window_changes", "final_differences",
                         "pauses_not_settled", "turns_not_seen", "excluded_keys_crossed"):
                assert c[name] == 0, "%s = %d\n%s" % (name, c[name], detail)
            assert not res.watch_errors, detail
            # Exactly the same keys and values in both DCs (the excluded prefix aside), and the writer's.
            final = {dc: georace.values(georace.listing(sims[dc])[1]) for dc in DCS}
            assert final["dc1"] == final["dc2"], detail
            want = {k: v for k, v in res.parts[0].model.items()}
            assert final["dc1"] == want, detail
            for dc, r in zip(DCS, replicators):
                assert r.running(), "replicator in %s exited:\n%s" % (dc, r.log())
                h.wait_for(lambda: h.http_get(metrics[dc], "/readyz")[0] == 200, 30,
                           what="%s's /readyz to answer 200" % dc)
                m = h.parse_metrics(h.http_get(metrics[dc], "/metrics")[1])
                changes = m.get("kvship_gate_direction_changes_total", 0)
                assert changes >= schedule.moves, "%s: %s direction changes, want >= %d" % (dc, changes,
                                                                                          schedule.moves)
        finally:
            for r in replicators:
                r.kill()


def test_race_gate_catalog(ctx):
    race(ctx)


def test_race_gate_sys_leader_static_map(ctx):
    with vault_cluster() as vault:
        race(ctx, vault=vault, vault_dc_map=True)


def test_race_gate_sys_leader_catalog_map(ctx):
    with vault_cluster() as vault:
        race(ctx, vault=vault, vault_dc_map=False)


class PromotedVaults:
    """georace's leader hook for vault { }: one modelled Vault (vaultha.py, Vault's own timers) per DC, all
    unsealed; a move of the leader is `-promote <dc>` (drained), done when that DC's Vault is active and the
    other DC's Vault is its standby."""

    def __init__(self, ctx, sims):
        self.ctx = ctx
        self.sims = sims
        self.nodes = {dc: vaultha.VaultNode(sims[dc], name="vault-%s" % dc) for dc in DCS}
        self.moves = 0

    def after_start(self):
        """kvship runs in both DCs: once dc2's proxy lock is held, unseal every Vault (dc1's becomes active)."""
        def proxy_held():
            status, _, body = self.sims["dc2"].request("GET", "/v1/kv/vault/core/lock")
            return status == 200 and json.loads(body)[0].get("Session")
        h.wait_for(proxy_held, 60, what="dc2's proxy lock")
        for dc in DCS:
            self.nodes[dc].unseal()
        self._wait(DCS[0])

    def _wait(self, dc):
        active = self.nodes[dc]
        active.wait_active(timeout=60)
        for other, n in self.nodes.items():
            if other != dc:
                n.wait_standby(leader=active.api_addr, timeout=60)

    def set_leader_in(self, dc):
        """The first call (before the replicators start) names the bootstrap primary: nothing to do."""
        if self.moves > 0:
            p = subprocess.run([self.ctx.replicate_bin, "-consul-addr", self.sims[dc].addr, "-vault-path", "vault/",
                                "-vault-datacenters", ",".join(DCS), "-promote", dc],
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stdout + p.stderr
            self._wait(dc)
        self.moves += 1

    def close(self):
        for n in self.nodes.values():
            n.close()


def test_race_vault_preset_modelled_vault(ctx):
    """The same race with `-vault-path vault/` in both DCs and Vault itself modelled (vaultha.py): both Vaults
    unsealed all along, every move a drained `-promote`, at most one active Vault at every 200 ms sample.
    The keys the Vault nodes and the proxy lock manage (core/lock, core/leader/, core/migration) are left
    out of the writer's checks; everything else must hold exactly as in the other variants."""
    def args_for(dc, metrics_addr):
        return ["-vault-path", "vault/", "-vault-datacenters", ",".join(DCS), "-gate-interval", "200ms",
                "-log-level", georace.LOG_LEVEL, "-metrics-addr", metrics_addr]

    box = {}

    def vault_for(sims):
        box["vaults"] = PromotedVaults(ctx, sims)
        box["sampler"] = vaultha.ActiveSampler(list(box["vaults"].nodes.values()), 0.2).start()
        return box["vaults"]

    try:
        with georace.ignoring(("vault/core/lock", "vault/core/leader/", "vault/core/migration")):
            race(ctx, args_for=args_for, vault_for=vault_for)
        s = box["sampler"]
        s.stop()
        assert len(s.samples) > 50, len(s.samples)
        s.assert_at_most_one()
        print("sampler: %d samples every 200 ms, never two active Vaults; %d drained promotions"
              % (len(s.samples), box["vaults"].moves - 1))
    finally:
        if "sampler" in box:
            box["sampler"].stop()
        if "vaults" in box:
            box["vaults"].close()


def test_example_configs(ctx):
    """examples/catalog-gate/dc1.hcl and dc2.hcl as they are (consul address, metrics address and the gate's timings
    overridden by flags): each takes its DC's lock, and vault/ flows from the DC where Vault is active."""
    replicators = []
    with ctx.servers(DCS) as sims:
        try:
            vault = georace.VaultControl(sims)
            vault.set_leader("dc1")
            metrics = {dc: "127.0.0.1:%d" % simctl.free_port() for dc in DCS}
            for dc in DCS:
                replicators.append(h.Replicator(ctx.replicate_bin, [
                    "-config", os.path.join(EXAMPLES, "catalog-gate", "%s.hcl" % dc), "-consul-addr", sims[dc].addr,
                    "-metrics-addr", metrics[dc], "-gate-settle", "1s", "-gate-interval", "200ms"]))
            turn = georace.GateTurn(metrics, h.http_get, h.parse_metrics, deadline=60)
            for primary, other in (("dc1", "dc2"), ("dc2", "dc1")):
                if primary != "dc1":
                    vault.set_leader(primary)
                assert turn.wait(primary, print), "\n".join(r.log() for r in replicators)
                h.put(sims[primary], "vault/core/from-%s" % primary, primary.encode())
                h.put(sims[primary], "vault/sys/expire/id/local-%s" % primary, b"stays")
                h.wait_for(lambda: h.dump(sims[other], "vault/core/from-%s" % primary) != {}, 30,
                           what="vault/ from %s in %s" % (primary, other))
            for dc in DCS:
                m = h.parse_metrics(h.http_get(metrics[dc], "/metrics")[1])
                assert m.get("kvship_lock_held") == 1, (dc, m.get("kvship_lock_held"))
                status, _, body = sims[dc].request("GET", "/v1/kv/locks/consul-replicate/.lock")
                assert status == 200, (dc, status, body)
                assert h.dump(sims[dc], "vault/sys/expire/") == {
                    "vault/sys/expire/id/local-%s" % dc: (b"stays", 0)}, dc
        finally:
            for r in replicators:
                r.kill()


def test_vault_example_configs(ctx):
    """examples/dc1.hcl and dc2.hcl (vault { }) as they are (consul and metrics address and the gate interval
    overridden by flags): dc1 is the primary by the priority order, vault/ flows into dc2, dc2's kvship holds
    vault/core/lock under its own session, lease expiry records stay in their DC."""
    replicators = []
    with ctx.servers(DCS) as sims:
        try:
            metrics = {dc: "127.0.0.1:%d" % simctl.free_port() for dc in DCS}
            for dc in DCS:
                replicators.append(h.Replicator(ctx.replicate_bin, [
                    "-config", os.path.join(EXAMPLES, "%s.hcl" % dc), "-consul-addr", sims[dc].addr,
                    "-metrics-addr", metrics[dc], "-gate-settle", "1s", "-gate-interval", "200ms"]))
            h.put(sims["dc1"], "vault/core/from-dc1", b"dc1")
            h.put(sims["dc1"], "vault/sys/expire/id/local-dc1", b"stays")
            h.wait_for(lambda: h.dump(sims["dc2"], "vault/core/from-dc1") != {}, 30, what="vault/ from dc1 in dc2",
                       interval=0.05)

            def proxy_held(dc):
                m = h.parse_metrics(h.http_get(metrics[dc], "/metrics")[1] or "")
                return m.get("kvship_vault_proxy_lock_held")
            h.wait_for(lambda: proxy_held("dc2") == 1, 30, what="dc2's kvship holds Vault's lock")
            assert proxy_held("dc1") == 0
            status, _, body = sims["dc2"].request("GET", "/v1/kv/vault/core/lock")
            assert status == 200 and json.loads(body)[0].get("Session"), (status, body)
            assert h.dump(sims["dc2"], "vault/sys/expire/") == {}
        finally:
            for r in replicators:
                r.kill()


def test_vaultsim(ctx):
    """The fixture itself: Vault's answer shape, a moving leader, a sealed node, a node that is down."""
    with vault_cluster() as vault:
        v1, v2 = vault.nodes
        vault.set_leader(v1.name)
        for n in (v1, v2):
            status, body = h.http_get(n.url[len("http://"):], "/v1/sys/leader")
            assert status == 200, body
            doc = __import__("json").loads(body)
            assert doc["ha_enabled"] is True and doc["is_self"] is (n is v1), doc
            assert doc["leader_address"] == "https://vault-dc1:8200", doc
            for field in ("leader_cluster_address", "performance_standby", "active_time"):
                assert field in doc, doc
        vault.set_leader_in("dc2")
        assert vault.leader_dc() == "dc2"
        status, body = h.http_get(v1.url[len("http://"):], "/v1/sys/leader")
        assert '"leader_address": "https://vault-dc2:8200"' in body, body
        vault.seal(v2.name)
        status, body = h.http_get(v2.url[len("http://"):], "/v1/sys/leader")
        assert status == 503 and "Vault is sealed" in body, (status, body)
        vault.down(v1.name)
        try:
            h.http_get(v1.url[len("http://"):], "/v1/sys/leader", timeout=5)
            raise AssertionError("a node that is down answered")
        except ConnectionRefusedError:
            pass
        vault.up(v1.name)
        vault.set_leader(None)
        status, body = h.http_get(v1.url[len("http://"):], "/v1/sys/leader")
        assert status == 200 and '"leader_address": ""' in body, body


if __name__ == "__main__":
    h.main({
        "test_vaultsim": test_vaultsim,
        "test_example_configs": test_example_configs,
        "test_vault_example_configs": test_vault_example_configs,
        "test_race_gate_catalog": test_race_gate_catalog,
        "test_race_gate_sys_leader_static_map": test_race_gate_sys_leader_static_map,
        "test_race_gate_sys_leader_catalog_map": test_race_gate_sys_leader_catalog_map,
        "test_race_vault_preset_modelled_vault": test_race_vault_preset_modelled_vault,
    })
