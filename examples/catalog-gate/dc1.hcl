# kvship for dc1 with the catalog gate (Vault sealed in the follower DCs, or data other than Vault; see ../../README.md, "The older gates").
# Run one or more copies in dc1 (the lock keeps exactly one active), against dc1's local Consul agent:
#   consul-replicate -config /etc/kvship/dc1.hcl
# dc2.hcl is the same file with dc2's names: with a gate, no config names the source DC.

log_level = "info"

consul {
  address = "127.0.0.1:8500"      # dc1's local agent; other DCs are reached through it (?dc=)
  # token = "..."                  # or CONSUL_HTTP_TOKEN; needs key read on vault/ in every DC,
                                   # key write on vault/ and the lock prefix, session write, and
                                   # service/node read for the gate
}

# Replicate vault/ into dc1 from whichever DC holds the active Vault. No datacenter here: the gate picks it.
prefix {
  source = "vault/"
}

# Lease expiry records are Vault-node local: never replicate them.
exclude {
  source = "vault/sys/expire/"
}

# The leader-DC gate: the primary DC is the one where Consul's catalog has a passing `vault` instance
# tagged `active` (Vault registers itself that way). In the primary DC this replicator writes nothing;
# everywhere else it replicates from the primary. No primary, or two: it pauses and says so.
gate {
  mode          = "vault"
  vault_service = "vault"
  vault_tag     = "active"
  settle        = "10s"           # a new primary must be seen this long before the direction turns
  interval      = "1s"            # how often the gate looks

  # Or ask Vault itself, as the seed's script does (GET /v1/sys/leader on each address), and map the
  # leader_address to its DC (without a map entry, through the catalog's `vault` instances):
  # vault_addrs  = ["https://vault-a.dc1.example:8200", "https://vault-a.dc2.example:8200"]
  # vault_dc_map = { "https://vault-a.dc1.example:8200" = "dc1", "https://vault-a.dc2.example:8200" = "dc2" }
}

# One active replicator per DC: a `consul lock`-compatible session lock on locks/consul-replicate/.lock
# in dc1, the key the seed's `consul lock locks/consul-replicate consul-replicate ...` wrapper uses, so
# old and new replicators exclude each other during a migration. Every write carries a check-session
# on the lock key (fencing): a replicator that lost the lock cannot write one more batch.
lock {
  prefix = "locks/consul-replicate"
  ttl    = "15s"
  name   = "kvship consul-replicate dc1"
}

# /metrics (Prometheus), /healthz, /readyz (503 with a reason while paused or not holding the lock).
metrics_addr = "127.0.0.1:9110"
