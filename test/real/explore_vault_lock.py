#!/usr/bin/env python3
"""NOT A TEST (no assertions, not registered in ctest): an observation script for issue 8's next step, showing
what Vault 1.4.3 does with the core/lock that kvship's consul-replicate copies today as data (value + flags,
no session). It prints what happens; read the output.

    eval "$(../shared/realbin/unpack --env)"; python3 test/real/explore_vault_lock.py <consul-replicate binary>

Scenarios, each on fresh federated dc1 + dc2 with the replicator against dc2 (-prefix vault/@dc1):
  live   A active in dc1; B in dc2 unsealed while A is still active (the split brain the next issue must prevent).
  crash  A SIGKILLed (its dc1 session lives on); B unsealed; A restarted in dc1; then the replicator restarted.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
import realconsul  # noqa: E402
import realvault  # noqa: E402
import test_vault_smoke as T  # noqa: E402

T0 = time.monotonic()


def p(*a):
    print("[%6.2f]" % (time.monotonic() - T0), *a, flush=True)


def state(dc1, dc2):
    p("   dc1 core/lock", T.lock_entry(dc1), "core/leader/", [k.rsplit("/", 1)[1][:8] for k in T.leader_entries(dc1)])
    p("   dc2 core/lock", T.lock_entry(dc2), "core/leader/", [k.rsplit("/", 1)[1][:8] for k in T.leader_entries(dc2)])


def setup(rbin, vbin, dcs, vs):
    dc1, dc2 = dcs["dc1"], dcs["dc2"]
    args = ["-consul-addr", dc2.addr, "-prefix", "vault/@dc1", "-exclude", "vault/sys/expire/", "-log-level", "info"]
    r = T.Replicator(rbin, args)
    a = vs.add(vbin, dc1, name="A")
    b = vs.add(vbin, dc2, name="B")
    a.init()
    a.unseal()
    a.wait_active()
    a.enable_kv("kvtest")
    a.write("kvtest/x", {"v": "1"})
    T.wait_replicated(dc1, dc2, "init")
    b.adopt(a)
    return r, args, a, b


def live(rbin, vbin):
    p("==== live: B unsealed while A is active")
    with realconsul.federation(["dc1", "dc2"]) as dcs, realvault.VaultSet() as vs:
        r, _, a, b = setup(rbin, vbin, dcs, vs)
        state(dcs["dc1"], dcs["dc2"])
        b.unseal()
        t = time.monotonic()
        try:
            b.wait_active(timeout=20)
            p("B ACTIVE %.2fs after unseal, A still active: %s" % (time.monotonic() - t, a.sys_leader()["is_self"]))
        except realvault.VaultError as e:
            p("B not active within 20 s:", str(e).splitlines()[0])
        state(dcs["dc1"], dcs["dc2"])
        a.write("kvtest/y", {"v": "2"})
        time.sleep(2)
        p("after A wrote y: B reads y =", b.read("kvtest/y"), "; A sys/leader is_self", a.sys_leader()["is_self"],
          "; B is_self", b.sys_leader()["is_self"])
        state(dcs["dc1"], dcs["dc2"])
        r.kill()


def crash(rbin, vbin):
    p("==== crash: A SIGKILLed, B unsealed, A restarted, replicator restarted")
    with realconsul.federation(["dc1", "dc2"]) as dcs, realvault.VaultSet() as vs:
        dc1, dc2 = dcs["dc1"], dcs["dc2"]
        r, args, a, b = setup(rbin, vbin, dcs, vs)
        a.kill()
        p("A SIGKILLed")
        state(dc1, dc2)
        b.unseal()
        t = time.monotonic()
        b.wait_active(timeout=60)
        p("B active %.2fs after unseal (A's dc1 session still alive)" % (time.monotonic() - t))
        state(dc1, dc2)
        a.start()
        a.unseal()
        t = time.monotonic()
        a.wait_active(timeout=90)
        p("A active again in dc1 %.2fs after its restart+unseal (session expiry + lock-delay)" % (time.monotonic() - t))
        time.sleep(1)
        state(dc1, dc2)
        p("B sys/leader", b.sys_leader())
        r.stop()
        r = T.Replicator(rbin, args)
        time.sleep(4)
        p("replicator restarted (full read); its log:", [l.split("] ", 1)[-1] for l in r.lines[-4:]])
        state(dc1, dc2)
        p("B sys/leader", b.sys_leader(), "health", b.health()[0])
        r.kill()


def main():
    rbin = sys.argv[1]
    vbin = realconsul.find_vault()
    if not vbin or not realconsul.find_consul():
        realconsul.skip_or_fail("real Vault and Consul")
    live(rbin, vbin)
    crash(rbin, vbin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
