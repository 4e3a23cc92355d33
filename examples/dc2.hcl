# kvship consul-replicate for dc2 of a georedundant Vault (see ../README.md, "Georedundant Vault").
# Run one or more copies in dc2 (the lock keeps exactly one active), against dc2's local Consul agent:
#   consul-replicate -config /etc/kvship/dc2.hcl
# Every DC runs the same file but for lock.name: no config names the source DC, the designation does.

log_level = "info"

consul {
  address = "127.0.0.1:8500"      # dc2's local agent; other DCs are reached through it (?dc=)
  # token = "..."                  # or CONSUL_HTTP_TOKEN; needs key read on vault/ and service/kvship/
                                   # in every DC, key write on vault/, service/kvship/ and the lock
                                   # prefix in this DC, session write
}

# The georedundant-Vault preset. It sets:
#  * the pair vault/ -> vault/ (the source DC is the designated primary);
#  * the DC-local excludes: vault/core/lock (Vault's HA lock: held here by kvship for the primary in a
#    follower DC), vault/core/migration (a per-cluster storage-migration lock), vault/sys/expire/
#    (lease expiry, run by the active node of the primary only);
#  * the designated gate (settle 2s) and the replicator lock below.
# In the primary DC kvship writes nothing and holds no lock of Vault's. In every other DC it copies
# vault/ from the primary and holds vault/core/lock under its own session with the primary's lock value,
# so the Vaults there are unsealed standbys that forward to the primary's active node (they need to
# reach its cluster port, 8201, across DCs). The primary moves only by `consul-replicate -promote DC`
# or by failover_after.
vault {
  path        = "vault/"
  datacenters = ["dc1", "dc2"]    # the priority order: dc1 is the primary until a promotion
  # failover_after = "5m"          # automatic failover (off by default): read "Automatic failover"
  # record_key     = "service/kvship/vault/primary"  # the designation record, in every DC
  # proxy_ttl      = "1h"          # TTL of the session holding Vault's lock for the primary
}

# One active replicator per DC: a `consul lock`-compatible session lock on locks/consul-replicate/.lock
# in dc2. Every write carries a check-session on the lock key (fencing): a replicator that lost the
# lock cannot write one more batch.
lock {
  prefix = "locks/consul-replicate"
  ttl    = "15s"
  name   = "kvship consul-replicate dc2"
}

# /metrics (Prometheus), /healthz, /readyz (503 with a reason while not ready).
metrics_addr = "127.0.0.1:9110"
