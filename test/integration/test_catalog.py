#!/usr/bin/env python3
"""The service catalog: agent registration, TTL checks, health/catalog reads across DCs, blocking, errors.

Usage: test_catalog.py <path to consul-kvsim> [unittest args]
"""
import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simctl  # noqa: E402

BIN = simctl.binary_from_argv(sys.argv)


def vault_def(sid, tags, ttl="30s", status="passing", **extra):
    d = {"ID": sid, "Name": "vault", "Tags": tags, "Address": "10.0.0.1", "Port": 8200,
         "Meta": {"version": "1.15.0"},
         "Check": {"TTL": ttl, "Status": status, "Notes": "sealed status"}}
    d.update(extra)
    return d


class BlockingCall:
    """One request in a thread; .result once it answered."""

    def __init__(self, sim, path):
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(sim, path), daemon=True)
        self.thread.start()

    def _run(self, sim, path):
        self.result = sim.request("GET", path, timeout=120)

    def wait(self, timeout=60):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError("the blocking query did not answer")
        return self.result


class Catalog(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fed = simctl.federation(BIN, ["dc1", "dc2"])
        dcs = cls.fed.__enter__()
        cls.dc1, cls.dc2 = dcs["dc1"], dcs["dc2"]

    @classmethod
    def tearDownClass(cls):
        try:
            for sim in (cls.dc1, cls.dc2):
                rc = sim.stop()
                assert rc == 0, "%s exited with %s:\n%s" % (sim.dc, rc, sim.log())
        finally:
            cls.fed.__exit__(None, None, None)

    def tearDown(self):
        for sim in (self.dc1, self.dc2):
            for sid in sim.json("GET", "/v1/agent/services"):
                sim.json("PUT", "/v1/agent/service/deregister/" + sid)

    def register(self, sim, body, expect=200):
        st, _, data = sim.request("PUT", "/v1/agent/service/register", body)
        self.assertEqual(st, expect, data)
        return data

    def health(self, sim, query):
        st, hdrs, data = sim.request("GET", "/v1/health/service/vault" + query)
        self.assertEqual(st, 200, data)
        return json.loads(data), int(hdrs["x-consul-index"])

    def ids(self, sim, query):
        return sorted(row["Service"]["ID"] for row in self.health(sim, query)[0])

    def test_register_in_dc1_query_from_dc2(self):
        self.register(self.dc1, vault_def("vault-1", ["active"]))
        self.register(self.dc1, vault_def("vault-2", ["standby"]))
        rows, idx = self.health(self.dc2, "?dc=dc1&tag=active&passing")
        self.assertEqual(len(rows), 1)
        row = rows[0]
        self.assertEqual(row["Node"]["Datacenter"], "dc1")
        svc = row["Service"]
        self.assertEqual((svc["ID"], svc["Service"], svc["Tags"], svc["Address"], svc["Port"], svc["Meta"]),
                         ("vault-1", "vault", ["active"], "10.0.0.1", 8200, {"version": "1.15.0"}))
        checks = {c["CheckID"]: c for c in row["Checks"]}
        self.assertEqual(sorted(checks), ["serfHealth", "service:vault-1"])
        chk = checks["service:vault-1"]
        self.assertEqual((chk["Status"], chk["Type"], chk["Notes"], chk["ServiceName"], chk["ServiceTags"]),
                         ("passing", "ttl", "sealed status", "vault", ["active"]))
        self.assertEqual(idx, self.health(self.dc1, "")[1], "dc1's index, forwarded")
        self.assertEqual(self.health(self.dc2, "")[0], [], "nothing registered in dc2 itself")
        self.assertEqual(self.dc2.json("GET", "/v1/catalog/services?dc=dc1")["vault"], ["active", "standby"])
        nodes = self.dc2.json("GET", "/v1/catalog/service/vault?dc=dc1&tag=standby")
        self.assertEqual([(n["ServiceID"], n["ServiceAddress"], n["ServicePort"], n["Datacenter"]) for n in nodes],
                         [("vault-2", "10.0.0.1", 8200, "dc1")])
        self.assertEqual(set(self.dc1.json("GET", "/v1/agent/services")), {"vault-1", "vault-2"})
        self.assertEqual(self.dc2.json("GET", "/v1/agent/services?dc=dc1"), {}, "agent endpoints stay local")
        st, _, body = self.dc2.request("GET", "/v1/health/service/vault?dc=dc9")
        self.assertEqual(st, 500)
        self.assertIn(b"No path to datacenter", body)

    def test_tag_filter_needs_every_tag(self):
        self.register(self.dc1, vault_def("v-a", ["active", "blue"]))
        self.register(self.dc1, vault_def("v-b", ["active"]))
        self.register(self.dc1, vault_def("v-c", ["standby", "blue"]))
        self.assertEqual(self.ids(self.dc1, "?tag=active"), ["v-a", "v-b"])
        self.assertEqual(self.ids(self.dc1, "?tag=active&tag=blue"), ["v-a"])
        self.assertEqual(self.ids(self.dc1, "?tag=BLUE"), ["v-a", "v-c"], "tags compare case-insensitively")
        self.assertEqual(self.ids(self.dc1, "?tag=green"), [])

    def test_passing_filter_and_pass_fail_switching(self):
        self.register(self.dc1, vault_def("v1", ["active"], status="critical"))
        self.register(self.dc1, vault_def("v2", ["active"]))
        self.register(self.dc1, {"ID": "v3", "Name": "vault", "Tags": ["active"]})  # no check: serfHealth only
        self.assertEqual(self.ids(self.dc1, ""), ["v1", "v2", "v3"])
        self.assertEqual(self.ids(self.dc1, "?passing"), ["v2", "v3"])
        self.assertEqual(self.ids(self.dc1, "?passing=false"), ["v1", "v2", "v3"])
        st, _, body = self.dc1.request("GET", "/v1/health/service/vault?passing=maybe")
        self.assertEqual((st, body), (400, b"Invalid value for ?passing"))

        idx = self.health(self.dc1, "")[1]
        self.dc1.json("PUT", "/v1/agent/check/pass/service:v1?note=unsealed")
        self.assertEqual(self.ids(self.dc1, "?passing"), ["v1", "v2", "v3"])
        chk = self.dc1.json("GET", "/v1/agent/checks")["service:v1"]
        self.assertEqual((chk["Status"], chk["Output"]), ("passing", "unsealed"))
        self.assertGreater(self.health(self.dc1, "")[1], idx)
        self.dc1.json("PUT", "/v1/agent/check/warn/service:v2")
        self.dc1.json("PUT", "/v1/agent/check/fail/service:v1")
        self.assertEqual(self.ids(self.dc1, "?passing"), ["v3"], "warning is not passing")
        self.dc1.json("PUT", "/v1/agent/check/update/service:v2", {"Status": "passing", "Output": "ok"})
        self.assertEqual(self.ids(self.dc1, "?passing"), ["v2", "v3"])

        # A heartbeat that changes nothing is no Raft write: the index stays.
        idx = self.health(self.dc1, "")[1]
        for _ in range(3):
            self.dc1.json("PUT", "/v1/agent/check/update/service:v2", {"Status": "passing", "Output": "ok"})
        self.assertEqual(self.health(self.dc1, "")[1], idx)

    def test_ttl_check_goes_critical_on_its_own(self):
        self.register(self.dc1, vault_def("v-ttl", ["active"], ttl="1s"))
        self.assertEqual(self.ids(self.dc1, "?passing"), ["v-ttl"])
        simctl.wait_for(lambda: self.ids(self.dc1, "?passing") == [], timeout=30, what="the TTL to expire")
        chk = self.dc1.json("GET", "/v1/agent/checks")["service:v-ttl"]
        self.assertEqual((chk["Status"], chk["Output"]), ("critical", "TTL expired"))
        self.dc1.json("PUT", "/v1/agent/check/pass/service:v-ttl?note=back")
        self.assertEqual(self.ids(self.dc1, "?passing"), ["v-ttl"])

    def test_blocking_health_query_wakes_on_status_and_tag_changes(self):
        self.register(self.dc1, vault_def("v1", ["standby"], ttl="10m"))
        _, idx = self.health(self.dc1, "")
        call = BlockingCall(self.dc2, "/v1/health/service/vault?dc=dc1&tag=active&passing&index=%d&wait=60s" % idx)
        time.sleep(0.3)
        self.dc1.json("PUT", "/v1/agent/check/fail/service:v1")
        st, hdrs, body = call.wait()
        self.assertEqual(st, 200)
        self.assertGreater(int(hdrs["x-consul-index"]), idx)
        self.assertEqual(json.loads(body), [], "still no passing active instance")

        self.dc1.json("PUT", "/v1/agent/check/pass/service:v1")
        _, idx = self.health(self.dc1, "")
        call = BlockingCall(self.dc1, "/v1/health/service/vault?tag=active&passing&index=%d&wait=60s" % idx)
        time.sleep(0.3)
        self.register(self.dc1, vault_def("v1", ["active"], ttl="10m"))  # re-register: new tags
        st, hdrs, body = call.wait()
        self.assertEqual(st, 200)
        self.assertGreater(int(hdrs["x-consul-index"]), idx)
        self.assertEqual([r["Service"]["ID"] for r in json.loads(body)], ["v1"],
                         "the check kept its passing status across the re-registration")

        # The same definition again: no index change, a blocking query keeps waiting until its wait ends.
        _, idx = self.health(self.dc1, "")
        self.register(self.dc1, vault_def("v1", ["active"], ttl="10m"))
        st, hdrs, _ = self.dc1.request("GET", "/v1/health/service/vault?index=%d&wait=1s" % idx)
        self.assertEqual((st, int(hdrs["x-consul-index"])), (200, idx))

    def test_blocking_catalog_queries(self):
        _, idx = self.health(self.dc1, "")
        call = BlockingCall(self.dc1, "/v1/catalog/service/vault?index=%d&wait=60s" % idx)
        time.sleep(0.3)
        self.register(self.dc1, vault_def("v-cat", ["active"]))
        st, hdrs, body = call.wait()
        self.assertEqual(st, 200)
        self.assertEqual([n["ServiceID"] for n in json.loads(body)], ["v-cat"])
        idx = self.dc1.index("/v1/catalog/services")
        call = BlockingCall(self.dc1, "/v1/catalog/services?index=%d&wait=60s" % idx)
        time.sleep(0.3)
        self.dc1.json("PUT", "/v1/agent/service/deregister/v-cat")
        st, hdrs, body = call.wait()
        self.assertGreater(int(hdrs["x-consul-index"]), idx)
        self.assertNotIn("vault", json.loads(body))

    def test_deregister(self):
        self.register(self.dc1, vault_def("v-del", ["active"]))
        _, idx = self.health(self.dc1, "")
        self.dc1.json("PUT", "/v1/agent/service/deregister/v-del")
        rows, idx2 = self.health(self.dc1, "")
        self.assertEqual(rows, [])
        self.assertGreater(idx2, idx)
        self.assertNotIn("service:v-del", self.dc1.json("GET", "/v1/agent/checks"))
        st, _, body = self.dc1.request("PUT", "/v1/agent/service/deregister/v-del")
        self.assertEqual((st, body), (404, b'Unknown service ID "v-del". Ensure that the service ID is passed, '
                                           b'not the service name.'))

    def test_kv_blocking_query_not_woken_by_catalog_writes(self):
        self.dc1.put("catalog-test/k", b"v")
        idx = self.dc1.index("/v1/kv/?recurse")
        call = BlockingCall(self.dc1, "/v1/kv/?recurse&index=%d&wait=3s" % idx)
        time.sleep(0.3)
        self.register(self.dc1, vault_def("v-kv", ["active"], ttl="1s"))
        self.dc1.json("PUT", "/v1/agent/check/fail/service:v-kv")
        self.dc1.json("PUT", "/v1/agent/service/deregister/v-kv")
        st, hdrs, _ = call.wait()
        self.assertEqual((st, int(hdrs["x-consul-index"])), (200, idx), "the KV index did not move")
        self.assertEqual(self.dc1.index("/v1/kv/?recurse"), idx)

    def test_vault_style_check_registration(self):
        self.register(self.dc1, {"ID": "vault:10.0.0.1:8200", "Name": "vault", "Tags": ["active"], "Port": 8200})
        check = {"ID": "vault:10.0.0.1:8200:vault-sealed-check", "Name": "Vault Sealed Status",
                 "ServiceID": "vault:10.0.0.1:8200", "TTL": "5s", "Status": "passing"}
        st, _, body = self.dc1.request("PUT", "/v1/agent/check/register", check)
        self.assertEqual(st, 200, body)
        self.assertEqual(self.ids(self.dc1, "?tag=active&passing"), ["vault:10.0.0.1:8200"])
        self.dc1.json("PUT", "/v1/agent/check/update/vault:10.0.0.1:8200:vault-sealed-check",
                      {"Status": "critical", "Output": "Vault Sealed"})
        self.assertEqual(self.ids(self.dc1, "?tag=active&passing"), [])
        st, _, body = self.dc1.request("PUT", "/v1/agent/check/register", dict(check, ServiceID="nope"))
        self.assertEqual((st, body), (404, b'ServiceID "nope" does not exist'))

    def test_bad_input(self):
        def put(path, body):
            st, _, data = self.dc1.request("PUT", path, body)
            return st, data.decode()

        self.assertEqual(put("/v1/agent/service/register", ""), (400, "Request decode failed: EOF"))
        st, text = put("/v1/agent/service/register", "{nope")
        self.assertEqual(st, 400)
        self.assertTrue(text.startswith("Request decode failed: invalid character"), text)
        self.assertEqual(put("/v1/agent/service/register", {"Port": 1}), (400, "Missing service name"))
        self.assertEqual(put("/v1/agent/service/register", {"Name": "x", "Port": "80"}),
                         (400, "Request decode failed: json: cannot unmarshal string into Go struct field "
                               "ServiceDefinition.Port of type int"))
        self.assertEqual(put("/v1/agent/service/register", {"Name": "x", "Address": "0.0.0.0"}),
                         (400, "Invalid service address"))
        self.assertEqual(put("/v1/agent/service/register", {"Name": "x", "Check": {"Status": "passing"}}),
                         (400, "Invalid check: TTL must be > 0 for TTL checks"))
        self.assertEqual(put("/v1/agent/service/register", {"Name": "x", "Check": {"TTL": "soon"}}),
                         (400, 'Request decode failed: time: invalid duration "soon"'))
        self.assertEqual(put("/v1/agent/service/register", {"Name": "x", "Check": {"TTL": "5s", "Status": "up"}}),
                         (400, "Status for checks must 'passing', 'warning', 'critical'"))
        self.assertEqual(put("/v1/agent/check/pass/nope", None),
                         (404, 'Unknown check ID "nope". Ensure that the check ID is passed, not the check name.'))
        self.assertEqual(put("/v1/agent/check/pass/serfHealth", None),
                         (500, 'CheckID "serfHealth" does not have associated TTL'))
        self.assertEqual(put("/v1/agent/check/update/serfHealth", {"Status": "fine"}),
                         (400, "Invalid check status: 'fine'"))
        self.assertEqual(put("/v1/agent/check/register", {"TTL": "5s"}), (400, "Missing check name"))
        st, _, body = self.dc1.request("GET", "/v1/health/service/")
        self.assertEqual((st, body), (400, b"Missing service name"))
        st, _, body = self.dc1.request("GET", "/v1/health/service/vault?index=x")
        self.assertEqual((st, body), (400, b"Invalid index"))
        st, _, _ = self.dc1.request("GET", "/v1/agent/service/register")
        self.assertEqual(st, 405)
        self.assertEqual(self.dc1.json("GET", "/v1/agent/services"), {}, "nothing was registered")


class CatalogPersistence(unittest.TestCase):
    def test_services_survive_a_restart(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d, simctl.Sim(BIN, data_dir=d) as sim:
            sim.json("PUT", "/v1/agent/service/register", vault_def("v1", ["active"], ttl="10m"))
            sim.json("PUT", "/v1/agent/check/fail/service:v1?note=sealed")
            sim.json("PUT", "/v1/agent/service/register", vault_def("gone", ["standby"]))
            sim.json("PUT", "/v1/agent/service/deregister/gone")
            before = sim.request("GET", "/v1/health/service/vault")
            sim.restart()
            after = sim.request("GET", "/v1/health/service/vault")
            self.assertEqual(after[0], 200)
            self.assertEqual(json.loads(after[2]), json.loads(before[2]))
            self.assertEqual(after[1]["x-consul-index"], before[1]["x-consul-index"])
            sim.restart(kill=True)
            self.assertEqual(set(sim.json("GET", "/v1/agent/services")), {"v1"})
            self.assertEqual(sim.json("GET", "/v1/agent/checks")["service:v1"]["Output"], "sealed")


class CatalogAcl(unittest.TestCase):
    def test_service_rules(self):
        with simctl.Sim(BIN, args=["-acl-default-policy", "deny", "-acl-master-token", "root"]) as sim:
            root = {"X-Consul-Token": "root"}
            sim.json("PUT", "/v1/acl/policy", {"Name": "vault-rw", "Rules": 'service "vault" { policy = "write" }'},
                     headers=root)
            sim.json("PUT", "/v1/acl/policy", {"Name": "vault-ro", "Rules": 'service_prefix "vau" { policy = "read" }'},
                     headers=root)
            rw = sim.json("PUT", "/v1/acl/token", {"Policies": [{"Name": "vault-rw"}]}, headers=root)["SecretID"]
            ro = sim.json("PUT", "/v1/acl/token", {"Policies": [{"Name": "vault-ro"}]}, headers=root)["SecretID"]
            st, _, body = sim.request("PUT", "/v1/agent/service/register", vault_def("v1", ["active"]),
                                      {"X-Consul-Token": ro})
            self.assertEqual(st, 403)
            self.assertIn(b"lacks permission 'service:write' on \"vault\"", body)
            st, _, body = sim.request("PUT", "/v1/agent/service/register", vault_def("v1", ["active"]),
                                      {"X-Consul-Token": rw})
            self.assertEqual(st, 200, body)
            st, _, _ = sim.request("PUT", "/v1/agent/check/fail/service:v1", None, {"X-Consul-Token": ro})
            self.assertEqual(st, 403)
            rows = sim.json("GET", "/v1/health/service/vault", headers={"X-Consul-Token": ro})
            self.assertEqual(len(rows), 1)
            st, hdrs, body = sim.request("GET", "/v1/health/service/vault", headers={"X-Consul-Token": "bogus"})
            self.assertEqual((st, body), (403, b"ACL not found"))
            st, hdrs, body = sim.request("GET", "/v1/health/service/vault")  # anonymous: default deny
            self.assertEqual((st, json.loads(body)), (200, []))
            st, _, body = sim.request("GET", "/v1/catalog/services", headers={"X-Consul-Token": ro})
            self.assertEqual(json.loads(body), {"vault": ["active"]})


if __name__ == "__main__":
    unittest.main(verbosity=2)
