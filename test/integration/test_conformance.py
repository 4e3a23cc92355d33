#!/usr/bin/env python3
"""Runs shared/conformance/consul_api_conformance.py against two federated DCs, from each side.

Usage: test_conformance.py <path to consul-kvsim> <path to consul_api_conformance.py> [--backend sim|real]
The sim backend (default) runs two consul-kvsim processes; the real backend two real Consul servers
(realconsul.py: $KVSHIP_CONSUL_BIN or consul on PATH), where every check must pass as well: that is the
script's own promise. Exit status 77 (ctest: skipped) when the conformance script or, for the real backend,
the consul program is not there (a failure under KVSHIP_REQUIRE_REAL=1).
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import realconsul  # noqa: E402
import simctl  # noqa: E402


def main():
    backend = "sim"
    if "--backend" in sys.argv:
        i = sys.argv.index("--backend")
        backend = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    binary = simctl.binary_from_argv(sys.argv)
    script = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "conformance",
        "consul_api_conformance.py")
    if not os.path.exists(script):
        print("conformance script not found at %s: skipped" % script)
        return 77
    if backend == "real":
        if not realconsul.find_consul():
            realconsul.skip_or_fail("real Consul")
        fed = realconsul.federation(["dc1", "dc2"])
    else:
        fed = simctl.federation(binary, ["dc1", "dc2"])
    failed = False
    with fed as dcs:
        for local, remote in (("dc1", "dc2"), ("dc2", "dc1")):
            p = subprocess.run([sys.executable, script, "--addr", dcs[local].addr, "--dc", local,
                                "--remote-dc", remote], capture_output=True, text=True, timeout=600)
            print("== conformance (%s) from %s (remote %s)" % (backend, local, remote))
            print(p.stdout, end="")
            print(p.stderr, end="", file=sys.stderr)
            failed = failed or p.returncode != 0
        for dc, server in dcs.items():
            if not server.running():
                print("%s %s died:\n%s" % (backend, dc, server.log()))
                failed = True
                continue
            rc = server.stop()
            if backend == "real":
                # Consul exits 1 on SIGTERM without leave_on_terminate ("Graceful shutdown disabled"):
                # what counts is a clean shutdown.
                if "shutdown complete" not in server.log():
                    print("real %s did not shut down cleanly (exit %s):\n%s" % (dc, rc, server.log()[-4000:]))
                    failed = True
            elif rc != 0:
                print("%s %s exited with %s after SIGTERM:\n%s" % (backend, dc, rc, server.log()[-4000:]))
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
