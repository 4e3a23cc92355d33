#!/usr/bin/env python3
"""ACLs: policies and tokens through the API, token sources, 403 texts, list filtering, txn failures.

Usage: test_acl.py <path to consul-kvsim> [unittest args]
"""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simctl  # noqa: E402

BIN = simctl.binary_from_argv(sys.argv)
ROOT = "0f0f0f0f-1111-4222-8333-444444444444"  # a UUID, as Consul requires of SecretIDs
MASTER = {"X-Consul-Token": ROOT}


class DefaultDeny(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = simctl.Sim(BIN, args=["-acl-default-policy", "deny", "-acl-master-token", ROOT])
        for key in ("app/a", "app/b", "secret/x", "top"):
            st, _, body = cls.sim.request("PUT", "/v1/kv/" + key, b"v", headers=MASTER)
            assert st == 200, (st, body)
        policy = cls.sim.json("PUT", "/v1/acl/policy", {"Name": "app-read", "Rules": 'key_prefix "app/" { policy = "read" }'},
                              headers=MASTER)
        assert policy["ID"] and policy["Name"] == "app-read", policy
        token = cls.sim.json("PUT", "/v1/acl/token", {"Description": "reader", "Policies": [{"Name": "app-read"}]},
                             headers=MASTER)
        cls.reader = token["SecretID"]
        cls.reader_accessor = token["AccessorID"]
        writer_policy = cls.sim.json("PUT", "/v1/acl/policy",
                                     {"Name": "app-write", "Rules": 'key_prefix "app/" { policy = "write" }'},
                                     headers=MASTER)
        cls.writer = cls.sim.json("PUT", "/v1/acl/token", {"Policies": [{"ID": writer_policy["ID"]}],
                                                           "SecretID": "5ec2e7a1-0000-4000-8000-00000000a11e"}, headers=MASTER)["SecretID"]

    @classmethod
    def tearDownClass(cls):
        cls.sim.kill()

    def req(self, method, path, body=None, token=None, how="header"):
        headers = {}
        if token is not None:
            if how == "header":
                headers["X-Consul-Token"] = token
            elif how == "bearer":
                headers["Authorization"] = "Bearer " + token
            else:
                path += ("&" if "?" in path else "?") + "token=" + token
        return self.sim.request(method, path, body, headers=headers)

    def test_policy_header_on_every_response(self):
        for path in ("/v1/kv/app/a", "/v1/status/leader", "/v1/nope"):
            self.assertEqual(self.sim.request("GET", path)[1]["x-consul-default-acl-policy"], "deny")

    def test_anonymous_is_denied(self):
        st, _, body = self.req("GET", "/v1/kv/app/a")
        self.assertEqual(st, 403)
        self.assertTrue(body.startswith(b"Permission denied"), body)
        self.assertIn(b"key:read", body)

    def test_token_sources(self):
        for how in ("header", "bearer", "query"):
            st, _, _ = self.req("GET", "/v1/kv/app/a", token=self.reader, how=how)
            self.assertEqual(st, 200, how)

    def test_unknown_token(self):
        for how in ("header", "bearer", "query"):
            st, _, body = self.req("GET", "/v1/kv/app/a", token="nope", how=how)
            self.assertEqual((st, body), (403, b"ACL not found"), how)

    def test_read_only_token_cannot_write(self):
        st, _, body = self.req("PUT", "/v1/kv/app/a", b"x", token=self.reader)
        self.assertEqual(st, 403)
        self.assertIn(("token with AccessorID '%s'" % self.reader_accessor).encode(), body)
        self.assertIn(b"key:write", body)
        st, _, _ = self.req("DELETE", "/v1/kv/app/?recurse", token=self.reader)
        self.assertEqual(st, 403)

    def test_writer_token(self):
        self.assertEqual(self.req("PUT", "/v1/kv/app/w", b"x", token=self.writer)[0], 200)
        self.assertEqual(self.req("PUT", "/v1/kv/secret/w", b"x", token=self.writer)[0], 403)

    def test_lists_are_filtered(self):
        st, hdrs, body = self.req("GET", "/v1/kv/?recurse", token=self.reader)
        self.assertEqual(st, 200)
        keys = [e["Key"] for e in json.loads(body)]
        self.assertTrue(keys and all(k.startswith("app/") for k in keys), keys)
        self.assertEqual(hdrs.get("x-consul-results-filtered-by-acls"), "true")
        st, hdrs, body = self.req("GET", "/v1/kv/?keys", token=self.reader)
        self.assertTrue(all(k.startswith("app/") for k in json.loads(body)))
        self.assertEqual(hdrs.get("x-consul-results-filtered-by-acls"), "true")
        # nothing visible: 404 for a prefix, 200 [] for the root key list
        self.assertEqual(self.req("GET", "/v1/kv/secret/?recurse", token=self.reader)[0], 404)
        st, hdrs, body = self.req("GET", "/v1/kv/?keys")
        self.assertEqual((st, body), (200, b"[]"))
        self.assertNotIn("x-consul-results-filtered-by-acls", hdrs, "only sent when the request had a token")
        st, hdrs, _ = self.req("GET", "/v1/kv/app/?recurse", token=self.reader)
        self.assertEqual(st, 200)
        self.assertNotIn("x-consul-results-filtered-by-acls", hdrs)

    def test_txn_permission_failure_is_409(self):
        ops = [{"KV": {"Verb": "set", "Key": "app/t", "Value": "dg=="}}]
        st, _, body = self.req("PUT", "/v1/txn", ops, token=self.reader)
        self.assertEqual(st, 409)
        errors = json.loads(body)["Errors"]
        self.assertIn("Permission denied", errors[0]["What"])
        self.assertEqual(self.req("PUT", "/v1/txn", ops, token=self.writer)[0], 200)

    def test_acl_writes_need_management(self):
        body = {"Name": "x", "Rules": ""}
        self.assertEqual(self.req("PUT", "/v1/acl/policy", body, token=self.writer)[0], 403)
        self.assertEqual(self.req("PUT", "/v1/acl/policy", body)[0], 403)
        self.assertEqual(self.req("PUT", "/v1/acl/token", {"Policies": []}, token="nope")[0], 403)

    def test_bad_rules_and_unknown_policy(self):
        st, _, _ = self.sim.request("PUT", "/v1/acl/policy", {"Name": "bad", "Rules": 'key_prefix "a" { policy = "all" }'},
                                    headers=MASTER)
        self.assertEqual(st, 400)
        st, _, _ = self.sim.request("PUT", "/v1/acl/token", {"Policies": [{"Name": "no-such"}]}, headers=MASTER)
        self.assertEqual(st, 400)

    def test_token_self(self):
        st, _, body = self.req("GET", "/v1/acl/token/self", token=self.reader)
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body)["AccessorID"], self.reader_accessor)


class AclsOff(unittest.TestCase):
    def test_acl_endpoints_say_disabled_and_tokens_are_ignored(self):
        with simctl.Sim(BIN) as sim:
            st, hdrs, body = sim.request("PUT", "/v1/acl/policy", {"Name": "x", "Rules": ""})
            self.assertEqual((st, body), (401, b"ACL support disabled"))
            self.assertEqual(hdrs["x-consul-default-acl-policy"], "allow")
            sim.put("a")
            self.assertEqual(sim.request("GET", "/v1/kv/a", headers={"X-Consul-Token": "anything"})[0], 200)


class DefaultAllow(unittest.TestCase):
    def test_anonymous_allowed_unknown_token_refused(self):
        with simctl.Sim(BIN, args=["-acl-default-policy", "allow"]) as sim:
            self.assertEqual(sim.put("a"), b"true")
            self.assertEqual(sim.request("GET", "/v1/kv/a", headers={"X-Consul-Token": "nope"})[0], 403)
            self.assertEqual(sim.request("GET", "/v1/kv/a")[1]["x-consul-default-acl-policy"], "allow")


if __name__ == "__main__":
    unittest.main()
