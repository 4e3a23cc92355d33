#!/usr/bin/env python3
"""The seed's master-master flapping, reproduced: two federated consul-kvsim DCs, one consul-replicate per
DC pointing at the other (dc1 replicates vault/ from dc2, dc2 from dc1), and a writer playing Vault that
writes to whichever DC holds the Vault leader while the leader moves between the DCs ten times.
See README.md in this folder for what is counted and a recorded run.

    python3 examples/flapping/flapping_demo.py [--bin build/bin]            # ungated, as in the seed
    python3 examples/flapping/flapping_demo.py [--bin build/bin] --gate     # the same with -gate vault

The only difference between the two runs is the replicators' flags (georace.replicator_args): ungated,
each names the other DC in -prefix; gated, both use -prefix vault/ -gate vault. The schedule, the writer,
the sims (-wan-latency 20ms) and the checks are the same module the race test uses
(test/integration_replicate/georace.py). Exit status: 0 when nothing was lost, came back or flapped.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "test", "integration_replicate"))
sys.path.insert(0, os.path.join(ROOT, "test", "integration"))
import georace  # noqa: E402
import harness  # noqa: E402
import simctl  # noqa: E402


def go_seconds(text):
    """'1s', '200ms' -> seconds (the two forms this script uses)."""
    return float(text[:-2]) / 1000 if text.endswith("ms") else float(text[:-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"), help="folder with the two programs")
    ap.add_argument("--gate", action="store_true", help="run both replicators with -gate vault")
    ap.add_argument("--moves", type=int, default=10)
    ap.add_argument("--ops", type=int, default=40, help="writer operations per phase")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--settle", default="1s", help="-gate-settle (gated) / nominal turn time (ungated)")
    ap.add_argument("--interval", default="200ms", help="-gate-interval")
    ap.add_argument("--settle-deadline", type=float, default=10.0,
                    help="how long each pause waits for the DCs to agree")
    ap.add_argument("--verbose", action="store_true", help="print the replicators' logs at the end")
    a = ap.parse_args()

    schedule = georace.Schedule(moves=a.moves, ops_per_phase=a.ops, seed=a.seed,
                                settle_deadline=a.settle_deadline)
    replicate_bin = os.path.join(a.bin, "consul-replicate")
    kvsim_bin = os.path.join(a.bin, "consul-kvsim")
    dcs = list(schedule.dcs)
    turn_seconds = go_seconds(a.settle) + 2 * go_seconds(a.interval)
    print("%s replicators; %d moves of the Vault leader, %d writer ops per phase, sims with %s"
          % ("gated" if a.gate else "UNGATED", a.moves, a.ops, " ".join(georace.SIM_ARGS)), flush=True)
    replicators = []
    with simctl.federation(kvsim_bin, dcs, args=georace.SIM_ARGS) as sims:
        metrics = {dc: "127.0.0.1:%d" % simctl.free_port() for dc in dcs}

        def start():
            for dc in dcs:
                args = ["-consul-addr", sims[dc].addr] + georace.replicator_args(
                    dc, dcs, a.gate, metrics[dc], a.settle, a.interval)
                replicators.append(harness.Replicator(replicate_bin, args))

        if a.gate:
            turn = georace.GateTurn(metrics, harness.http_get, harness.parse_metrics, deadline=60)
        else:
            turn = georace.FixedTurn(turn_seconds)
        try:
            res = georace.run(sims, schedule, turn, start, log=lambda m: print(m, flush=True),
                              catalog_required=a.gate)
        finally:
            for r in replicators:
                r.kill()
        print("final keys per DC: %s" % ", ".join("%s %d" % kv for kv in sorted(res.final_keys.items())))
        res.report(print)
        if a.verbose:
            for dc, r in zip(dcs, replicators):
                print("---- replicator in %s\n%s" % (dc, r.log()))
    return 0 if res.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
