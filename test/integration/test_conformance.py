#!/usr/bin/env python3
"""Runs shared/conformance/consul_api_conformance.py against two federated sims, from each side.

Usage: test_conformance.py <path to consul-kvsim> <path to consul_api_conformance.py>
Exit status 77 (ctest: skipped) when the conformance script is not there.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simctl  # noqa: E402


def main():
    binary = simctl.binary_from_argv(sys.argv)
    script = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "conformance",
        "consul_api_conformance.py")
    if not os.path.exists(script):
        print("conformance script not found at %s: skipped" % script)
        return 77
    failed = False
    with simctl.federation(binary, ["dc1", "dc2"]) as dcs:
        for local, remote in (("dc1", "dc2"), ("dc2", "dc1")):
            p = subprocess.run([sys.executable, script, "--addr", dcs[local].addr, "--dc", local,
                                "--remote-dc", remote], capture_output=True, text=True, timeout=600)
            print("== conformance from %s (remote %s)" % (local, remote))
            print(p.stdout, end="")
            print(p.stderr, end="", file=sys.stderr)
            failed = failed or p.returncode != 0
        for dc, sim in dcs.items():
            if not sim.running():
                print("consul-kvsim %s died:\n%s" % (dc, sim.log()))
                failed = True
                continue
            rc = sim.stop()
            if rc != 0:
                print("consul-kvsim %s exited with %s after SIGTERM:\n%s" % (dc, rc, sim.log()))
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
