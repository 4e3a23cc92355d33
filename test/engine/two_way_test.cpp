#include <engine/two_way.hpp>

#include <catch2/catch.hpp>

using namespace kvship::engine;

namespace {

published_replicator rep(std::string id, std::string dc, bool gated, std::vector<published_pair> pairs)
{
    return published_replicator{id, "host-" + id, 100, std::move(dc), gated, std::move(pairs)};
}

}  // namespace

TEST_CASE("prefixes_overlap: one is a string prefix of the other", "[engine][two_way]")
{
    CHECK(prefixes_overlap("app/", "app/"));
    CHECK(prefixes_overlap("app/", "app/x/"));
    CHECK(prefixes_overlap("app/x/", "app/"));
    CHECK(prefixes_overlap("app", "application"));  // plain strings, as Consul's ?recurse
    CHECK(prefixes_overlap("", "anything"));
    CHECK_FALSE(prefixes_overlap("app/", "apq/"));
    CHECK_FALSE(prefixes_overlap("app/a", "app/b"));
}

TEST_CASE("find_two_way: ungated replicators copying towards each other are refused", "[engine][two_way]")
{
    // A in dc2: dc1:vault/ -> dc2:vault/; B in dc1: dc2:vault/ -> dc1:vault/ (the seed's setup)
    auto const a = rep("a", "dc2", false, {{"dc1", "vault/", "vault/"}});
    auto const b = rep("b", "dc1", false, {{"dc2", "vault/", "vault/"}});
    std::vector<published_replicator> const others{b};
    auto const c = find_two_way(a, others);
    REQUIRE(c);
    CHECK(c->other.id == "b");
    CHECK(c->message.find("two-way replication refused") != std::string::npos);
    CHECK(c->message.find("host host-a pid 100 in dc2 (ungated: dc1:vault/ -> dc2:vault/)") != std::string::npos);
    CHECK(c->message.find("host host-b pid 100 in dc1 (ungated: dc2:vault/ -> dc1:vault/)") != std::string::npos);
    // symmetric
    std::vector<published_replicator> const as{a};
    CHECK(find_two_way(b, as));
}

TEST_CASE("find_two_way: overlap is checked after mapping, in both directions", "[engine][two_way]")
{
    struct row
    {
        published_pair mine;    // of A, in dc2
        published_pair theirs;  // of B, in dc1
        bool refused;
    };
    auto const r = GENERATE(
        row{{"dc1", "app/", "copy/"}, {"dc2", "copy/", "app/"}, true},        // renamed both ways
        row{{"dc1", "app/", "copy/"}, {"dc2", "copy/sub/", "app/sub/"}, true},  // nested
        row{{"dc1", "app/", "copy/"}, {"dc2", "copy/", "other/"}, false},     // B writes what A does not read
        row{{"dc1", "app/", "copy/"}, {"dc2", "elsewhere/", "app/"}, false},  // B reads what A does not write
        row{{"dc1", "app/", "copy/"}, {"dc3", "copy/", "app/"}, false},       // B reads another DC
        row{{"dc1", "a", "a"}, {"dc2", "ab", "ab"}, true}                     // string prefixes
    );
    auto const a = rep("a", "dc2", false, {{"dc1", "zzz/", "zzz/"}, r.mine});
    std::vector<published_replicator> const others{rep("b", "dc1", false, {r.theirs})};
    CHECK(find_two_way(a, others).has_value() == r.refused);
}

TEST_CASE("find_two_way: gated setups, same-DC entries and itself are allowed", "[engine][two_way]")
{
    auto const a = rep("a", "dc2", true, {{"", "vault/", "vault/"}});
    auto const b = rep("b", "dc1", true, {{"", "vault/", "vault/"}});
    std::vector<published_replicator> const gated{b};
    CHECK_FALSE(find_two_way(a, gated));
    // a standby in the same DC, and its own entry read back
    auto const ungated = rep("u", "dc2", false, {{"dc1", "vault/", "vault/"}});
    std::vector<published_replicator> const same_dc{rep("s", "dc2", false, {{"dc1", "vault/", "vault/"}}), ungated};
    CHECK_FALSE(find_two_way(ungated, same_dc));
    // an ungated replicator pointed at a gated one: the gated one may read from it, so refused
    std::vector<published_replicator> const mixed{b};
    auto const c = find_two_way(ungated, mixed);
    REQUIRE(c);
    CHECK(c->message.find("(gated: <primary>:vault/ -> dc1:vault/)") != std::string::npos);
}
