# kvship's gate
prefix "global:backup"
gate {
  mode = "vault"
  vault_addrs = ["https://10.0.0.1:8200", "https://10.0.0.2:8200"]
  vault_dc_map = { "https://10.0.0.1:8200" = "dc1" }
  settle = "5s"
}
wait { min = "1s" max = "4s" }
pid_file = <<EOF2
/run/cr.pid
EOF2
