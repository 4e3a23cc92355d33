// The Consul JSON codec: exact uint64s, null vs empty values, binary values, strict shapes.
#include "fake_consul.hpp"

#include <gotext/base64.hpp>
#include <transport/consul_codec.hpp>

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <limits>

using namespace kvship;
using namespace kvship::transport;

namespace {

std::string entry_json(std::string key, std::string value_json, std::string flags = "0", std::string modify = "10",
                       std::string extra = "")
{
    return fmt::format(R"({{"LockIndex":0,"Key":"{}","Flags":{},"Value":{},{}"CreateIndex":7,"ModifyIndex":{}}})",
                       key, flags, value_json, extra, modify);
}

}  // namespace

TEST_CASE("a listing decodes into entries with exact uint64s", "[transport][codec]")
{
    auto const body = "[" + entry_json("a", R"("aGVsbG8=")", "3304740253564472344", "18446744073709551615") + "," +
                      entry_json("a/b", "null", "0", "12", R"("Session":"s-1",)") + "," +
                      entry_json("ab", R"("")", "18446744073709551615", "13") + "]";
    auto r = decode_kv_entries(body);
    REQUIRE(r);
    REQUIRE(r->size() == 3);
    auto const& a = (*r)[0];
    CHECK(a.key == "a");
    CHECK(a.value == std::optional<std::string>("hello"));
    CHECK(a.flags == 3304740253564472344ULL);
    CHECK(a.modify_index == 18446744073709551615ULL);
    CHECK(a.create_index == 7);
    CHECK(a.lock_index == 0);
    CHECK(a.session.empty());
    auto const& b = (*r)[1];
    CHECK_FALSE(b.value.has_value());  // "Value": null
    CHECK(b.session == "s-1");
    auto const& c = (*r)[2];
    REQUIRE(c.value.has_value());  // "" is present and empty, not null
    CHECK(c.value->empty());
    CHECK(c.flags == std::numeric_limits<std::uint64_t>::max());
}

TEST_CASE("binary values and escaped keys survive", "[transport][codec]")
{
    std::string bytes;
    for (int i = 0; i < 256; ++i) {
        bytes.push_back(static_cast<char>(i));
    }
    auto const body = "[" + entry_json(R"(k\u0000\"\\\n\u00e9)", "\"" + gotext::base64_encode(bytes) + "\"") + "]";
    auto r = decode_kv_entries(body);
    REQUIRE(r);
    REQUIRE(r->size() == 1);
    CHECK((*r)[0].key == std::string("k\0\"\\\n\xC3\xA9", 7));
    CHECK((*r)[0].value == bytes);
}

TEST_CASE("an empty array is an empty listing; extra fields are ignored", "[transport][codec]")
{
    auto empty = decode_kv_entries("[]");
    REQUIRE(empty);
    CHECK(empty->empty());
    auto ent = decode_kv_entries(" [" + entry_json("x", "null", "0", "5", R"("Namespace":"default","Partition":"",)") + "]\n");
    REQUIRE(ent);
    CHECK(ent->size() == 1);
    // Unknown fields of any shape are skipped, however deep.
    auto nested = decode_kv_entries(
        "[" + entry_json("y", "null", "9", "5", R"("Meta":{"a":[1,{"Key":"no","Flags":-1}],"b":null},"X":[[]],"Y":-2.5,"Z":true,)") +
        "]");
    REQUIRE(nested);
    REQUIRE(nested->size() == 1);
    CHECK((*nested)[0].key == "y");
    CHECK((*nested)[0].flags == 9);
}

TEST_CASE("malformed listings are errors, never partial results", "[transport][codec]")
{
    auto const good = entry_json("a", "null");
    std::vector<std::pair<std::string, std::string>> const cases = {
        {"", "empty body"},
        {"[" + good, "truncated"},
        {"[" + good + "]x", "trailing garbage"},
        {"{}", "not an array"},
        {"null", "null"},
        {"[" + good + ",1]", "element not an object"},
        {"[" + entry_json("a", "null", "-1") + "]", "negative flags"},
        {"[" + entry_json("a", "null", "18446744073709551616") + "]", "flags over uint64"},
        {"[" + entry_json("a", "null", "1.5") + "]", "fractional flags"},
        {"[" + entry_json("a", "null", "\"3\"") + "]", "flags as a string"},
        {"[" + entry_json("a", "null", "0", "1e3") + "]", "index as a double"},
        {"[" + entry_json("a", "\"not base64!\"") + "]", "bad base64"},
        {"[" + entry_json("a", "\"aGVsbG8\"") + "]", "unpadded base64"},
        {"[" + entry_json("a", "5") + "]", "value is a number"},
        {R"([{"Key":"a","Flags":0,"Value":null,"CreateIndex":1,"LockIndex":0}])", "no ModifyIndex"},
        {R"([{"Flags":0,"Value":null,"CreateIndex":1,"ModifyIndex":1,"LockIndex":0}])", "no Key"},
        {R"([{"Key":"a","Flags":0,"CreateIndex":1,"ModifyIndex":1,"LockIndex":0}])", "no Value"},
        {R"([{"Key":1,"Flags":0,"Value":null,"CreateIndex":1,"ModifyIndex":1,"LockIndex":0}])", "Key not a string"},
        {"[" + entry_json("a", "null", "0", "5", R"("Session":7,)") + "]", "Session not a string"},
        {"[" + entry_json("a", "true") + "]", "Value is a bool"},
        {"[" + entry_json("a", "null", "true") + "]", "Flags is a bool"},
        {"[" + entry_json("a", "null", "null") + "]", "Flags is null"},
        {"[" + entry_json("a", "{}") + "]", "Value is an object"},
        {"[" + entry_json("a", "null", "[1]") + "]", "Flags is an array"},
        {"[[]]", "array in array"},
        {"[null]", "null entry"},
        {"[1]", "number entry"},
        {"[\"a\"]", "string entry"},
        {"\"a\"", "a string"},
        {"[" + good + "][]", "two documents"},
    };
    for (auto const& [body, why] : cases) {
        INFO(why);
        auto r = decode_kv_entries(body);
        REQUIRE_FALSE(r);
        CHECK(r.error() == errc::malformed_response);
        CHECK_FALSE(r.error().message.empty());
    }
}

TEST_CASE("the error names the entry and field", "[transport][codec]")
{
    auto const body = "[" + entry_json("a", "null") + "," + entry_json("b", "null", "\"x\"") + "]";
    auto r = decode_kv_entries(body);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("entry 1") && Catch::Contains("Flags"));
}

TEST_CASE("string arrays: keys and datacenters", "[transport][codec]")
{
    auto r = decode_string_array(R"(["a/","a/b","a/c/"])");
    REQUIRE(r);
    CHECK(*r == std::vector<std::string>{"a/", "a/b", "a/c/"});
    CHECK(decode_string_array("[]")->empty());
    CHECK_FALSE(decode_string_array(R"(["a",1])"));
    CHECK_FALSE(decode_string_array(R"({"a":1})"));
    CHECK_FALSE(decode_string_array(R"(["a")"));
}

TEST_CASE("txn bodies encode every verb with base64 values and exact uint64s", "[transport][codec]")
{
    std::vector<txn_op> ops = {
        {txn_verb::set, "a", std::string("hello"), 3304740253564472344ULL, 0, ""},
        {txn_verb::cas, "b", std::string(""), 0, 18446744073709551615ULL, ""},
        {txn_verb::delete_key, "c", std::nullopt, 0, 0, ""},
        {txn_verb::delete_cas, "d", std::nullopt, 0, 42, ""},
        {txn_verb::delete_tree, "e/", std::nullopt, 0, 0, ""},
        {txn_verb::check_index, "f", std::nullopt, 0, 9, ""},
        {txn_verb::check_session, "g", std::nullopt, 0, 0, "sid"},
        {txn_verb::get, "h\"\\", std::nullopt, 0, 0, ""},
        {txn_verb::lock, "i", std::nullopt, 1, 0, "sid"},
    };
    CHECK(encode_txn(ops) ==
          R"([{"KV":{"Verb":"set","Key":"a","Value":"aGVsbG8=","Flags":3304740253564472344}},)"
          R"({"KV":{"Verb":"cas","Key":"b","Value":"","Flags":0,"Index":18446744073709551615}},)"
          R"({"KV":{"Verb":"delete","Key":"c"}},)"
          R"({"KV":{"Verb":"delete-cas","Key":"d","Index":42}},)"
          R"({"KV":{"Verb":"delete-tree","Key":"e/"}},)"
          R"({"KV":{"Verb":"check-index","Key":"f","Index":9}},)"
          R"({"KV":{"Verb":"check-session","Key":"g","Session":"sid"}},)"
          R"({"KV":{"Verb":"get","Key":"h\"\\"}},)"
          R"({"KV":{"Verb":"lock","Key":"i","Flags":1,"Session":"sid"}}])");
    CHECK(encode_txn({}) == "[]");
    CHECK(txn_verb_name(txn_verb::get_or_empty) == "get-or-empty");
    CHECK(txn_verb_name(txn_verb::check_not_exists) == "check-not-exists");
    CHECK(txn_verb_name(txn_verb::get_tree) == "get-tree");
    CHECK(txn_verb_name(txn_verb::unlock) == "unlock");
}

TEST_CASE("txn answers: 200 results and 409 errors", "[transport][codec]")
{
    auto ok = decode_txn_response(R"({"Results":[{"KV":)" + entry_json("t1", "null", "0", "3304740253564472344") +
                                      R"(},{"KV":)" + entry_json("t2", R"("YQ==")") + R"(}],"Errors":null})",
                                  true);
    REQUIRE(ok);
    CHECK(ok->committed);
    REQUIRE(ok->results.size() == 2);
    CHECK(ok->results[0].modify_index == 3304740253564472344ULL);
    CHECK(ok->results[1].value == std::optional<std::string>("a"));
    CHECK(ok->errors.empty());

    auto rolled = decode_txn_response(
        R"({"Results":null,"Errors":[{"OpIndex":1,"What":"failed to set key \"t1\", index is stale"},{"OpIndex":3,"What":"x"}]})",
        false);
    REQUIRE(rolled);
    CHECK_FALSE(rolled->committed);
    CHECK(rolled->results.empty());
    CHECK(rolled->errors == std::vector<txn_error_item>{{1, "failed to set key \"t1\", index is stale"}, {3, "x"}});

    // Read-only txn answers carry extra meta fields.
    auto ro = decode_txn_response(R"({"Results":[],"Errors":null,"Index":5,"KnownLeader":true,"LastContact":0})", true);
    REQUIRE(ro);
    CHECK(ro->results.empty());

    CHECK_FALSE(decode_txn_response(R"({"Results":null,"Errors":[]})", false));                 // 409 without errors
    CHECK_FALSE(decode_txn_response(R"({"Results":null,"Errors":[{"OpIndex":0,"What":"x"}]})", true));  // 200 with errors
    CHECK_FALSE(decode_txn_response(R"({"Results":null,"Errors":[{"OpIndex":-1,"What":"x"}]})", false));
    CHECK_FALSE(decode_txn_response(R"({"Results":null,"Errors":[{"OpIndex":0}]})", false));
    CHECK_FALSE(decode_txn_response(R"({"Results":[{"Node":{}}],"Errors":null})", true));
    CHECK_FALSE(decode_txn_response(R"({"Results":{},"Errors":null})", true));
    CHECK_FALSE(decode_txn_response(R"([])", true));
    CHECK_FALSE(decode_txn_response(R"({"Results":[)", true));
}

TEST_CASE("agent/self, bools and sessions", "[transport][codec]")
{
    auto self = decode_agent_self(
        R"({"Config":{"Datacenter":"dc1","PrimaryDatacenter":"dc1","NodeName":"node-a","Server":true},"Member":{}})");
    REQUIRE(self);
    CHECK(self->datacenter == "dc1");
    CHECK(self->node_name == "node-a");
    CHECK_FALSE(decode_agent_self(R"({"Config":{"Datacenter":"dc1","NodeName":7}})"));
    CHECK_FALSE(decode_agent_self(R"({"Config":{"NodeName":"n"}})"));
    CHECK_FALSE(decode_agent_self(R"({"Member":{}})"));

    CHECK(decode_bool("true").value() == true);
    CHECK(decode_bool("false\n").value() == false);
    CHECK_FALSE(decode_bool("\"true\""));
    CHECK_FALSE(decode_bool(""));
    CHECK_FALSE(decode_bool("truex"));

    CHECK(decode_session_id(R"({"ID":"adf4238a-882b-9ddc-4a9d-5b6758e4159e"})").value() ==
          "adf4238a-882b-9ddc-4a9d-5b6758e4159e");
    CHECK_FALSE(decode_session_id(R"({"ID":""})"));
    CHECK_FALSE(decode_session_id(R"({})"));
    CHECK(decode_session_renew(R"([{"ID":"x","TTL":"15s","Behavior":"release"}])").value() == "15s");
    CHECK(decode_session_renew(R"([{"ID":"x"}])").value().empty());
    CHECK_FALSE(decode_session_renew(R"([])"));

    CHECK(encode_session_create({.name = "lock \"x\"", .ttl = "15s"}) == R"({"Name":"lock \"x\"","TTL":"15s"})");
    CHECK(encode_session_create({}) == "{}");
    CHECK(encode_session_create({.behavior = "delete", .lock_delay = "1s", .node = "n"}) ==
          R"({"Behavior":"delete","LockDelay":"1s","Node":"n"})");
}

TEST_CASE("a 100,000-entry listing decodes completely", "[transport][codec]")
{
    std::string body = "[";
    std::string const value = gotext::base64_encode(std::string(120, 'v'));
    for (int i = 0; i < 100000; ++i) {
        if (i > 0) {
            body += ',';
        }
        body += fmt::format(
            R"({{"LockIndex":0,"Key":"vault/logical/{:08d}/entry","Flags":{},"Value":"{}","CreateIndex":{},"ModifyIndex":{}}})",
            i, i, value, 1000 + i, 3304740253564472344ULL + static_cast<unsigned>(i));
    }
    body += "]";
    auto r = decode_kv_entries(std::move(body));
    REQUIRE(r);
    REQUIRE(r->size() == 100000);
    CHECK(r->back().key == "vault/logical/00099999/entry");
    CHECK(r->back().modify_index == 3304740253564472344ULL + 99999);
    CHECK(r->back().value->size() == 120);
}

TEST_CASE("health and catalog service listings: instances checked, addresses defaulted", "[transport][codec][gate]")
{
    auto r = decode_health_service(R"([
      {"Node": {"Node": "n1", "Address": "10.0.0.1", "Datacenter": "dc1"},
       "Service": {"ID": "vault", "Service": "vault", "Tags": ["active"], "Address": "", "Port": 8200},
       "Checks": []},
      {"Node": {"Node": "n2", "Address": "10.0.0.2"},
       "Service": {"Service": "vault", "Tags": null, "Address": "vault.dc1", "Port": 8201}}])");
    REQUIRE(r);
    REQUIRE(r->size() == 2);
    CHECK((*r)[0] == service_instance{"n1", "dc1", "10.0.0.1", 8200, {"active"}});
    CHECK((*r)[1] == service_instance{"n2", "", "vault.dc1", 8201, {}});
    CHECK(decode_health_service("[]").value().empty());

    auto c = decode_catalog_service(R"([{"Node": "n1", "Address": "10.0.0.1", "Datacenter": "dc2",
        "ServiceName": "vault", "ServiceAddress": "", "ServicePort": 8200, "ServiceTags": ["standby"]}])");
    REQUIRE(c);
    CHECK(c->at(0) == service_instance{"n1", "dc2", "10.0.0.1", 8200, {"standby"}});

    for (auto const* bad : {
             R"({})",
             R"([1])",
             R"([{"Service": {"Service": "v", "Port": 1}}])",
             R"([{"Node": {"Node": "n", "Address": "a"}, "Service": {"Service": "v", "Port": 70000}}])",
             R"([{"Node": {"Node": "n", "Address": "a"}, "Service": {"Service": "v", "Port": -1}}])",
             R"([{"Node": {"Node": "n", "Address": "a"}, "Service": {"Service": "v", "Port": 1, "Tags": [1]}}])",
             R"([{"Node": {"Node": "n", "Address": ""}, "Service": {"Service": "v", "Port": 1}}])",
             R"([{"Node": {"Node": 5, "Address": "a"}, "Service": {"Service": "v", "Port": 1}}])",
         }) {
        CAPTURE(bad);
        auto e = decode_health_service(bad);
        REQUIRE_FALSE(e);
        CHECK(e.error() == errc::malformed_response);
    }
    CHECK_FALSE(decode_catalog_service(R"([{"Node": "n", "Address": "a", "ServiceName": "v"}])"));
    CHECK(decode_catalog_service(R"([{"Node": "n", "Address": "a", "ServiceName": "v", "ServicePort": "1"}])")
              .error()
              .message == R"(instance 0 "ServicePort" is not a port number)");
}

TEST_CASE("Vault's sys/leader: the leader address is checked", "[transport][codec][gate]")
{
    auto r = decode_vault_leader(
        R"({"ha_enabled": true, "is_self": false, "leader_address": "https://10.0.0.1:8200/", "x": 1})");
    REQUIRE(r);
    CHECK(r->ha_enabled);
    CHECK_FALSE(r->is_self);
    CHECK(r->leader_address == "https://10.0.0.1:8200");
    r = decode_vault_leader(R"({"ha_enabled": true, "is_self": true, "leader_address": ""})");
    REQUIRE(r);
    CHECK(r->leader_address.empty());
    CHECK(decode_vault_leader(R"({"leader_address": "http://[::1]:8200"})").value().leader_address ==
          "http://[::1]:8200");
    for (auto const* bad : {
             R"([])",
             R"({})",
             R"({"leader_address": null})",
             R"({"leader_address": "10.0.0.1:8200"})",
             R"({"leader_address": "https://10.0.0.1"})",
             R"({"leader_address": "https://10.0.0.1:99999"})",
             R"({"leader_address": "https://a b:8200"})",
             R"({"leader_address": "https://u@h:8200"})",
             R"({"leader_address": "https://h:8200/path"})",
             R"({"ha_enabled": "yes", "leader_address": ""})",
         }) {
        CAPTURE(bad);
        auto e = decode_vault_leader(bad);
        REQUIRE_FALSE(e);
        CHECK(e.error() == errc::malformed_response);
    }
}
