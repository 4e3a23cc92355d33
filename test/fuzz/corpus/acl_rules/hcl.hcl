key_prefix "" { policy = "read" }
key "app/secret" {
  policy = "deny"
}
service_prefix "vault" { policy = "write" }
session_prefix "" { policy = "write" }
