#include <engine/vault_ha.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

using namespace kvship::engine;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> dcs{"dc1", "dc2", "dc3"};

ha_record primary(std::uint64_t epoch, std::string dc)
{
    ha_record r;
    r.epoch = epoch;
    r.primary = std::move(dc);
    r.reason = "promote";
    return r;
}

ha_record promoting(std::uint64_t epoch, std::string dc, std::string from, std::uint64_t fence = 0, bool force = false)
{
    ha_record r = primary(epoch, std::move(dc));
    r.stage = ha_record::phase::promoting;
    r.from = std::move(from);
    r.fence_index = fence;
    r.force = force;
    return r;
}

ha_dc_view seen(std::optional<ha_record> r) { return ha_dc_view{true, std::move(r)}; }
ha_dc_view gone() { return ha_dc_view{false, std::nullopt}; }

}  // namespace

TEST_CASE("vault_ha: no record anywhere: the first DC of the priority order is the primary")
{
    std::map<std::string, ha_dc_view> v{{"dc1", seen({})}, {"dc2", seen({})}, {"dc3", gone()}};
    auto e = effective_record(dcs, v);
    CHECK(e.epoch == 0);
    CHECK(e.primary == "dc1");
    CHECK(e.stage == ha_record::phase::primary);

    auto d1 = decide_ha(dcs, v, {"dc1", false, 0, {}});
    CHECK(d1.role == ha_role::primary);
    CHECK_FALSE(d1.hold_proxy);
    CHECK_FALSE(d1.write_local);  // a bootstrap decides nothing worth writing

    auto d2 = decide_ha(dcs, v, {"dc2", false, 0, {}});
    CHECK(d2.role == ha_role::follower);
    CHECK(d2.hold_proxy);
    CHECK(d2.claimant == "dc1");
}

TEST_CASE("vault_ha: the highest epoch wins; ties go to the priority order; unreachable DCs do not count")
{
    std::map<std::string, ha_dc_view> v{
        {"dc1", seen(primary(3, "dc1"))}, {"dc2", seen(primary(4, "dc2"))}, {"dc3", gone()}};
    CHECK(effective_record(dcs, v).primary == "dc2");

    // A split brain of two forced failovers from the same epoch: dc2 is earlier than dc3.
    v = {{"dc1", gone()}, {"dc2", seen(primary(5, "dc3"))}, {"dc3", seen(primary(5, "dc2"))}};
    CHECK(effective_record(dcs, v).primary == "dc2");

    // `primary` over `promoting` at one epoch; a fenced promotion over an unfenced one.
    v = {{"dc1", seen(promoting(2, "dc2", "dc1"))}, {"dc2", seen(primary(2, "dc2"))}};
    CHECK(effective_record(dcs, v).stage == ha_record::phase::primary);
    v = {{"dc1", seen(promoting(2, "dc2", "dc1", 77))}, {"dc2", seen(promoting(2, "dc2", "dc1"))}};
    CHECK(effective_record(dcs, v).fence_index == 77);

    // The newest record sits in a DC that cannot be read: the others go on with what they see.
    v = {{"dc1", seen(primary(3, "dc1"))}, {"dc2", gone()}};
    CHECK(effective_record(dcs, v).primary == "dc1");
}

TEST_CASE("vault_ha: self_claimed_primaries shows a split brain, not a promotion in progress")
{
    using list = std::vector<std::string>;
    // A forced promotion of dc2 while dc1 was cut off; dc1 back: both name themselves.
    std::map<std::string, ha_dc_view> v{{"dc1", seen(primary(3, "dc1"))}, {"dc2", seen(primary(4, "dc2"))}};
    CHECK(self_claimed_primaries(dcs, v) == list{"dc1", "dc2"});
    CHECK(effective_record(dcs, v).primary == "dc2");
    // dc1 still cut off: nothing to see yet.
    v["dc1"] = gone();
    CHECK(self_claimed_primaries(dcs, v) == list{"dc2"});
    // A drained promotion: the old primary's record is `promoting` (fenced) before the new one's is `primary`.
    v = {{"dc1", seen(promoting(4, "dc2", "dc1", 77))}, {"dc2", seen(primary(4, "dc2"))}};
    CHECK(self_claimed_primaries(dcs, v) == list{"dc2"});
    // A follower's copy of the primary's record names another DC: not a claim.
    v = {{"dc1", seen(primary(4, "dc2"))}, {"dc2", seen(primary(4, "dc2"))}, {"dc3", seen(primary(2, "dc3"))}};
    CHECK(self_claimed_primaries(dcs, v) == list{"dc2", "dc3"});
    v["dc3"] = seen(primary(4, "dc2"));
    CHECK(self_claimed_primaries(dcs, v) == list{"dc2"});
    // No record anywhere (the bootstrap): the first DC alone.
    v = {{"dc1", seen({})}, {"dc2", seen({})}};
    CHECK(self_claimed_primaries(dcs, v) == list{"dc1"});
    // A forced promotion of dc2 while dc1 (the bootstrap primary, no record yet) was cut off.
    v = {{"dc1", seen({})}, {"dc2", seen(primary(1, "dc2"))}};
    CHECK(self_claimed_primaries(dcs, v) == list{"dc1", "dc2"});
    v = {{"dc1", seen({})}, {"dc2", seen({})}, {"dc3", gone()}};
    v.erase("dc1");
    CHECK(self_claimed_primaries(dcs, v).empty());
}

TEST_CASE("vault_ha: a drained promotion, step by step")
{
    auto const req = promoting(2, "dc2", "dc1");
    std::map<std::string, ha_dc_view> v{{"dc1", seen(primary(1, "dc1"))}, {"dc2", seen(req)}};

    // dc2 (the target) waits for dc1's fence, replicating from dc1 all along.
    auto t = decide_ha(dcs, v, {"dc2", true, 10, 500});
    CHECK(t.role == ha_role::taking_over);
    CHECK(t.claimant == "dc1");
    CHECK(t.hold_proxy);
    CHECK_FALSE(t.release_proxy);
    CHECK(t.waiting == "promotion: waiting for dc1 to fence its Vault");
    CHECK_FALSE(t.write_local);

    // dc1 (the old primary) learns of it: fence first (take the lock from its Vault) ...
    auto h = decide_ha(dcs, v, {"dc1", false, 0, {}});
    CHECK(h.role == ha_role::handing_over);
    CHECK(h.claimant == "dc1");  // replicates nothing in
    CHECK(h.hold_proxy);
    CHECK(h.write_local == req);  // spreads the request, no fence claimed yet
    // ... then acknowledge with the fence index.
    h = decide_ha(dcs, v, {"dc1", true, 812, {}});
    REQUIRE(h.write_local);
    CHECK(h.write_local->fence_index == 812);
    CHECK(h.write_local->stage == ha_record::phase::promoting);

    // dc2 sees the fence and drains up to it.
    v["dc1"] = seen(*h.write_local);
    t = decide_ha(dcs, v, {"dc2", true, 10, 700});
    CHECK(t.role == ha_role::taking_over);
    CHECK(t.waiting == "promotion: draining dc1: applied index 700 of 812");
    REQUIRE(t.write_local);  // the fenced request spreads into dc2 too
    CHECK(t.write_local->stage == ha_record::phase::promoting);
    v["dc2"] = seen(*t.write_local);
    t = decide_ha(dcs, v, {"dc2", true, 10, std::nullopt});  // pairs not reading dc1 yet: not drained
    CHECK(t.waiting.rfind("promotion: draining dc1", 0) == 0);
    t = decide_ha(dcs, v, {"dc2", true, 10, 812});
    REQUIRE(t.write_local);
    CHECK(t.write_local->stage == ha_record::phase::primary);
    CHECK(t.write_local->primary == "dc2");
    CHECK(t.write_local->epoch == 2);
    CHECK_FALSE(t.release_proxy);  // the lock goes only once the record says primary

    // The record is written: dc2 is the primary and releases its proxy lock.
    v["dc2"] = seen(*t.write_local);
    auto p = decide_ha(dcs, v, {"dc2", true, 10, 812});
    CHECK(p.role == ha_role::primary);
    CHECK(p.release_proxy);
    CHECK_FALSE(p.hold_proxy);
    CHECK_FALSE(p.write_local);
    // dc1 follows dc2 and keeps its lock; dc3 too.
    auto f = decide_ha(dcs, v, {"dc1", true, 812, {}});
    CHECK(f.role == ha_role::follower);
    CHECK(f.claimant == "dc2");
    CHECK(f.hold_proxy);
    CHECK(f.write_local == *t.write_local);
}

TEST_CASE("vault_ha: an unreachable old primary blocks an unforced promotion, a forced one finishes")
{
    std::map<std::string, ha_dc_view> v{{"dc1", gone()}, {"dc2", seen(promoting(2, "dc2", "dc1"))}};
    auto t = decide_ha(dcs, v, {"dc2", true, 10, 100});
    CHECK(t.waiting.find("cannot be reached") != std::string::npos);
    CHECK(t.waiting.find("-promote-force") != std::string::npos);
    CHECK_FALSE(t.write_local);

    v["dc2"] = seen(promoting(2, "dc2", "dc1", 0, true));
    t = decide_ha(dcs, v, {"dc2", true, 10, std::nullopt});
    REQUIRE(t.write_local);
    CHECK(t.write_local->stage == ha_record::phase::primary);

    // dc1 comes back with its old record: it is no longer the primary, fences and follows.
    v["dc2"] = seen(*t.write_local);
    v["dc1"] = seen(primary(1, "dc1"));
    auto back = decide_ha(dcs, v, {"dc1", false, 0, {}});
    CHECK(back.role == ha_role::follower);
    CHECK(back.claimant == "dc2");
    CHECK(back.hold_proxy);
    REQUIRE(back.write_local);
    CHECK(back.write_local->epoch == 2);
}

TEST_CASE("vault_ha: plan_promotion")
{
    auto const cur = primary(4, "dc1");
    auto p = plan_promotion(dcs, cur, "dc2", false, "promote");
    REQUIRE(p.record);
    CHECK(*p.record == promoting(5, "dc2", "dc1"));

    CHECK(plan_promotion(dcs, cur, "dc1", false, "promote").already);
    auto bad = plan_promotion(dcs, cur, "dc9", false, "promote");
    CHECK_FALSE(bad.record);
    CHECK(bad.error == "\"dc9\" is not one of the configured datacenters (dc1, dc2, dc3)");

    // The same promotion again adds only force.
    auto const req = promoting(5, "dc2", "dc1");
    CHECK(plan_promotion(dcs, req, "dc2", false, "promote").already);
    auto forced = plan_promotion(dcs, req, "dc2", true, "promote");
    REQUIRE(forced.record);
    CHECK(forced.record->epoch == 5);
    CHECK(forced.record->force);

    // Another target while one is under way: the truth is still the old primary.
    auto other = plan_promotion(dcs, req, "dc3", false, "promote");
    REQUIRE(other.record);
    CHECK(*other.record == promoting(6, "dc3", "dc1"));
    // Back to the old primary: it becomes the primary again at once.
    auto back = plan_promotion(dcs, req, "dc1", true, "promote");
    REQUIRE(back.record);
    CHECK(back.record->stage == ha_record::phase::primary);
    CHECK(back.record->primary == "dc1");
    CHECK(back.record->epoch == 6);
    CHECK_FALSE(back.record->force);
}

TEST_CASE("vault_ha: failover_timer")
{
    std::map<std::string, ha_dc_view> v{{"dc1", gone()}, {"dc2", seen(primary(1, "dc1"))}, {"dc3", seen({})}};
    auto const e = primary(1, "dc1");
    using ns = std::chrono::nanoseconds;

    failover_timer off(ns{0});
    CHECK_FALSE(off.observe(ns{0}, dcs, e, "dc2", v, false));

    failover_timer dc2(std::chrono::seconds(30));
    CHECK_FALSE(dc2.observe(0s, dcs, e, "dc2", v, false));
    CHECK_FALSE(dc2.observe(29s, dcs, e, "dc2", v, false));
    CHECK_FALSE(dc2.observe(29s + 500ms, dcs, e, "dc2", v, true));  // it came back: the clock restarts
    CHECK_FALSE(dc2.observe(40s, dcs, e, "dc2", v, false));
    CHECK_FALSE(dc2.observe(69s, dcs, e, "dc2", v, false));
    CHECK(dc2.observe(70s, dcs, e, "dc2", v, false));

    // dc3 waits for dc2, which it can reach and which comes first.
    failover_timer dc3(std::chrono::seconds(30));
    CHECK_FALSE(dc3.observe(0s, dcs, e, "dc3", v, false));
    CHECK_FALSE(dc3.observe(100s, dcs, e, "dc3", v, false));
    v["dc2"] = gone();
    CHECK(dc3.observe(101s, dcs, e, "dc3", v, false));

    // The primary itself never fails over to itself; a new record restarts the clock.
    failover_timer dc1(std::chrono::seconds(1));
    CHECK_FALSE(dc1.observe(0s, dcs, e, "dc1", v, false));
    CHECK_FALSE(dc1.observe(10s, dcs, e, "dc1", v, false));
    failover_timer again(std::chrono::seconds(10));
    CHECK_FALSE(again.observe(0s, dcs, e, "dc2", v, false));
    CHECK_FALSE(again.observe(9s, dcs, primary(2, "dc3"), "dc2", v, false));
    CHECK_FALSE(again.observe(15s, dcs, primary(2, "dc3"), "dc2", v, false));
    CHECK(again.observe(19s, dcs, primary(2, "dc3"), "dc2", v, false));
}
