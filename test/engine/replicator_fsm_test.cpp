#include "builders.hpp"

#include <engine/replicator_fsm.hpp>

#include <stdexcept>

using namespace kvship::engine;
using namespace kvship::engine::test;
using namespace std::chrono_literals;

namespace {

replicator_config config(bool once = false)
{
    replicator_config c;
    c.rule = pair_rule("s/", "d/");
    c.backoff = backoff_params{.attempts = 2, .jitter_percent = 0};
    c.once = once;
    c.encode_checkpoint = [](const checkpoint& cp) { return fmt::format("cp:{}", cp.last_replicated); };
    return c;
}

template <class A>
A expect(const replicator_action& a)
{
    REQUIRE(std::holds_alternative<A>(a));
    return std::get<A>(a);
}

std::vector<std::string> op_keys(const batch& b)
{
    std::vector<std::string> out;
    for (auto const& op : b.ops) out.push_back(op.key);
    return out;
}

}  // namespace

TEST_CASE("replicator_fsm: one round from a first read to the checkpoint", "[engine]")
{
    replicator_fsm fsm(config());
    CHECK(expect<action::read_source>(fsm.resume(event::start{})).index == 0);

    auto const& rd = expect<action::read_destination>(fsm.resume(event::source_read{
        snap(10, {kv("s/a", "1", 4), kv("s/b", "2", 9)})}));
    CHECK(rd.status_key == pair_rule("s/", "d/").status_key);

    auto const a =
        fsm.resume(event::destination_read{snap(3, {kv("d/b", "2"), kv("d/old", "x")}), std::nullopt});
    auto const& apply = expect<action::apply_batch>(a);
    CHECK(apply.number == 0);
    CHECK(apply.count == 1);
    REQUIRE(apply.ops != nullptr);
    CHECK(op_keys(*apply.ops) == std::vector<std::string>{"d/a", "d/old", pair_rule("s/", "d/").status_key});
    CHECK(apply.ops->ops.back().value == "cp:10");
    CHECK(apply.ops->carries_checkpoint);
    CHECK_FALSE(fsm.take_report().has_value());  // not finished yet

    CHECK(expect<action::read_source>(fsm.resume(event::batch_applied{})).index == 10);
    auto const report = fsm.take_report();
    REQUIRE(report.has_value());
    CHECK(report->source_index == 10);
    CHECK(report->puts == 1);
    CHECK(report->deletes == 1);
    CHECK(report->batches == 1);
    CHECK(report->checkpoint_written);
    CHECK(report->stats.unchanged == 1);
    CHECK_FALSE(fsm.take_report().has_value());  // taken once
}

TEST_CASE("replicator_fsm: index rules decide whether a read is a round", "[engine]")
{
    replicator_fsm fsm(config());
    (void)fsm.resume(event::start{});
    (void)expect<action::read_destination>(fsm.resume(event::source_read{snap(10, {kv("s/a", "1")})}));
    (void)expect<action::apply_batch>(fsm.resume(event::destination_read{snap(1, {}), std::nullopt}));
    (void)expect<action::read_source>(fsm.resume(event::batch_applied{}));
    (void)fsm.take_report();

    // same index: block again
    CHECK(
        expect<action::read_source>(fsm.resume(event::source_read{snap(10, {kv("s/a", "1")})})).index == 10
    );
    // new index, deep-equal data: no round, but block on the new index
    CHECK(
        expect<action::read_source>(fsm.resume(event::source_read{snap(12, {kv("s/a", "1")})})).index == 12
    );
    // backwards: full non-blocking re-read
    CHECK(expect<action::read_source>(fsm.resume(event::source_read{snap(7, {kv("s/a", "1")})})).index == 0);
    CHECK(fsm.wait_index() == 0);
    // the re-read with new data is a round
    (void)expect<action::read_destination>(fsm.resume(event::source_read{snap(8, {kv("s/a", "2")})}));
    CHECK(fsm.wait_index() == 8);
}

TEST_CASE("replicator_fsm: no ops and an unchanged checkpoint means no txn", "[engine]")
{
    replicator_fsm fsm(config());
    (void)fsm.resume(event::start{});
    (void)fsm.resume(event::source_read{snap(10, {kv("s/a", "1")})});
    auto const a = fsm.resume(event::destination_read{snap(3, {kv("d/a", "1")}), checkpoint{10, "s/", "d/"}});
    CHECK(expect<action::read_source>(a).index == 10);
    auto const report = fsm.take_report();
    REQUIRE(report.has_value());
    CHECK(report->batches == 0);
    CHECK_FALSE(report->checkpoint_written);
}

TEST_CASE("replicator_fsm: several batches, the checkpoint rides in the last", "[engine]")
{
    auto c = config();
    c.limits.max_ops = 64;
    replicator_fsm fsm(c);
    (void)fsm.resume(event::start{});
    std::vector<kv_entry> src;
    for (int i = 0; i < 100; ++i)
        src.push_back(kv(fmt::format("s/{:03}", i), "v", static_cast<std::uint64_t>(i + 1)));
    (void)fsm.resume(event::source_read{snap(200, src)});
    auto a = fsm.resume(event::destination_read{snap(3, {}), std::nullopt});
    CHECK(expect<action::apply_batch>(a).ops->ops.size() == 64);
    CHECK_FALSE(expect<action::apply_batch>(a).ops->carries_checkpoint);
    a = fsm.resume(event::batch_applied{});
    CHECK(expect<action::apply_batch>(a).number == 1);
    CHECK(expect<action::apply_batch>(a).ops->ops.size() == 37);
    CHECK(expect<action::apply_batch>(a).ops->carries_checkpoint);
    CHECK(expect<action::read_source>(fsm.resume(event::batch_applied{})).index == 200);
}

TEST_CASE("replicator_fsm: stage_batches hands out the round's batches at once, the checkpoint's last", "[engine]")
{
    auto c = config();
    c.limits.max_ops = 64;
    c.stage_batches = true;
    replicator_fsm fsm(c);
    (void)fsm.resume(event::start{});
    std::vector<kv_entry> src;
    for (int i = 0; i < 100; ++i)
        src.push_back(kv(fmt::format("s/{:03}", i), "v", static_cast<std::uint64_t>(i + 1)));
    (void)fsm.resume(event::source_read{snap(200, src)});
    auto const a = expect<action::apply_batch>(fsm.resume(event::destination_read{snap(3, {}), std::nullopt}));
    CHECK(a.number == 0);
    CHECK(a.count == 2);
    REQUIRE(a.batches.size() == 2);
    CHECK(a.ops == &a.batches.front());
    CHECK(a.batches[0].ops.size() == 64);
    CHECK(a.batches[1].ops.size() == 37);
    CHECK(a.batches[1].carries_checkpoint);
    CHECK(expect<action::read_source>(fsm.resume(event::batch_applied{})).index == 200);
    CHECK(fsm.take_report()->batches == 2);

    // Limits set later cut the next round's batches.
    fsm.set_limits(batch_limits{.max_ops = 10});
    src.push_back(kv("s/new", "v", 201));
    for (int i = 0; i < 20; ++i) src[static_cast<std::size_t>(i)].value = "changed";
    (void)fsm.resume(event::source_read{snap(210, src)});
    std::vector<kv_entry> dst;
    for (int i = 0; i < 100; ++i) dst.push_back(kv(fmt::format("d/{:03}", i), "v"));
    auto const b = expect<action::apply_batch>(fsm.resume(event::destination_read{snap(4, dst), std::nullopt}));
    CHECK(b.batches.size() == 3);  // 21 puts and the checkpoint, 10 a txn
    for (auto const& x : b.batches) CHECK(x.ops.size() <= 10);
}

TEST_CASE("replicator_fsm: without stage_batches one batch at a time", "[engine]")
{
    auto c = config();
    c.limits.max_ops = 64;
    replicator_fsm fsm(c);
    (void)fsm.resume(event::start{});
    std::vector<kv_entry> src;
    for (int i = 0; i < 100; ++i) src.push_back(kv(fmt::format("s/{:03}", i), "v", 1));
    (void)fsm.resume(event::source_read{snap(200, src)});
    auto const a = expect<action::apply_batch>(fsm.resume(event::destination_read{snap(3, {}), std::nullopt}));
    REQUIRE(a.batches.size() == 1);
    CHECK(a.ops == &a.batches.front());
}

TEST_CASE("replicator_fsm: failures back off, retry the right step, then give up", "[engine]")
{
    replicator_fsm fsm(config());
    (void)fsm.resume(event::start{});

    // source read fails: sleep 250ms, then the same read again
    CHECK(expect<action::sleep>(fsm.resume(event::failed{"connection refused"})).delay == 250ms);
    CHECK(expect<action::read_source>(fsm.resume(event::timer_fired{})).index == 0);
    (void)expect<action::read_destination>(fsm.resume(event::source_read{snap(10, {kv("s/a", "1")})}));

    // a failed txn restarts the round at the destination read; attempts were reset by the success
    (void)expect<action::apply_batch>(fsm.resume(event::destination_read{snap(3, {}), std::nullopt}));
    CHECK(expect<action::sleep>(fsm.resume(event::failed{"409"})).delay == 250ms);
    (void)expect<action::read_destination>(fsm.resume(event::timer_fired{}));
    CHECK(expect<action::sleep>(fsm.resume(event::failed{"timeout"})).delay == 500ms);
    (void)expect<action::read_destination>(fsm.resume(event::timer_fired{}));

    // attempts = 2: the third failure in a row is final
    auto const d = expect<action::done>(fsm.resume(event::failed{"timeout"}));
    CHECK(d.error == "timeout (exceeded maximum retries)");
    CHECK(expect<action::done>(fsm.resume(event::timer_fired{})).error == std::nullopt);
}

TEST_CASE("replicator_fsm: stop ends the loop at any step", "[engine]")
{
    replicator_fsm fsm(config());
    (void)fsm.resume(event::start{});
    (void)fsm.resume(event::source_read{snap(10, {kv("s/a", "1")})});
    CHECK_FALSE(expect<action::done>(fsm.resume(event::stop{})).error.has_value());
    (void)expect<action::done>(fsm.resume(event::source_read{snap(11, {})}));
}

TEST_CASE("replicator_fsm: -once stops after one round and fails on a refusal", "[engine]")
{
    {
        replicator_fsm fsm(config(true));
        (void)fsm.resume(event::start{});
        (void)fsm.resume(event::source_read{snap(10, {kv("s/a", "1")})});
        (void)expect<action::apply_batch>(fsm.resume(event::destination_read{snap(3, {}), std::nullopt}));
        CHECK_FALSE(expect<action::done>(fsm.resume(event::batch_applied{})).error.has_value());
        CHECK(fsm.take_report().has_value());
    }
    {
        std::vector<kv_entry> dst;
        for (int i = 0; i < 20; ++i) dst.push_back(kv(fmt::format("d/{}", i), "v"));
        replicator_fsm fsm(config(true));
        (void)fsm.resume(event::start{});
        (void)fsm.resume(event::source_read{snap(10, {})});
        auto const d = expect<action::done>(fsm.resume(event::destination_read{snap(3, dst), std::nullopt}));
        REQUIRE(d.error.has_value());
        CHECK(d.error->starts_with("source has no keys"));
        auto const report = fsm.take_report();
        REQUIRE(report.has_value());
        REQUIRE(report->refused.has_value());
        CHECK(report->refused->reason == refusal_reason::empty_source);
        CHECK(report->deletes == 0);
        CHECK_FALSE(report->checkpoint_written);
    }
}

TEST_CASE(
    "replicator_fsm: a refused round applies its puts without a checkpoint and keeps watching", "[engine]"
)
{
    std::vector<kv_entry> dst;
    for (int i = 0; i < 20; ++i) dst.push_back(kv(fmt::format("d/{:02}", i), "v"));
    replicator_fsm fsm(config());
    (void)fsm.resume(event::start{});
    (void)fsm.resume(event::source_read{snap(10, {kv("s/00", "changed")})});
    auto const a = fsm.resume(event::destination_read{snap(3, dst), std::nullopt});
    CHECK(op_keys(*expect<action::apply_batch>(a).ops) == std::vector<std::string>{"d/00"});
    CHECK_FALSE(expect<action::apply_batch>(a).ops->carries_checkpoint);
    CHECK(expect<action::read_source>(fsm.resume(event::batch_applied{})).index == 10);
    auto const report = fsm.take_report();
    REQUIRE(report.has_value());
    REQUIRE(report->refused.has_value());
    CHECK(report->refused->reason == refusal_reason::mass_delete);
}

TEST_CASE("replicator_fsm: an unbatchable plan is reported, not applied", "[engine]")
{
    replicator_fsm fsm(config());
    (void)fsm.resume(event::start{});
    (void
    )fsm.resume(event::source_read{snap(10, {kv("s/a", "1"), kv("s/huge", std::string(600 * 1024, 'x'))})});
    CHECK(
        expect<action::read_source>(fsm.resume(event::destination_read{snap(3, {}), std::nullopt})).index ==
        10
    );
    auto const report = fsm.take_report();
    REQUIRE(report.has_value());
    REQUIRE(report->batch_err.has_value());
    CHECK(report->batch_err->code == batch_errc::value_too_large);
    CHECK(report->batches == 0);
}

TEST_CASE("replicator_fsm: without an encoder no checkpoint is written", "[engine]")
{
    auto c = config();
    c.encode_checkpoint = nullptr;
    replicator_fsm fsm(c);
    (void)fsm.resume(event::start{});
    (void)fsm.resume(event::source_read{snap(10, {kv("s/a", "1")})});
    auto const a = fsm.resume(event::destination_read{snap(3, {}), std::nullopt});
    CHECK(op_keys(*expect<action::apply_batch>(a).ops) == std::vector<std::string>{"d/a"});
}

TEST_CASE("replicator_fsm: an event that does not answer the action is a bug", "[engine]")
{
    replicator_fsm fsm(config());
    CHECK_THROWS_AS(fsm.resume(event::batch_applied{}), std::logic_error);
    (void)fsm.resume(event::start{});
    CHECK_THROWS_AS(fsm.resume(event::destination_read{}), std::logic_error);
    CHECK_THROWS_AS(fsm.resume(event::timer_fired{}), std::logic_error);
}

TEST_CASE("replicator_fsm: applied_index: a clean round, a new index with the same entries, a reset", "[engine]")
{
    replicator_fsm fsm(config());
    CHECK(fsm.applied_index() == 0);
    (void)fsm.resume(event::start{});
    (void)fsm.resume(event::source_read{snap(10, {kv("s/a", "1", 4)})});
    CHECK(fsm.applied_index() == 0);  // not applied yet
    (void)expect<action::apply_batch>(fsm.resume(event::destination_read{snap(3, {}), std::nullopt}));
    CHECK(fsm.applied_index() == 0);
    CHECK(expect<action::read_source>(fsm.resume(event::batch_applied{})).index == 10);
    CHECK(fsm.applied_index() == 10);
    // A new index, the same entries (another prefix changed): mirrored without a round.
    CHECK(expect<action::read_source>(fsm.resume(event::source_read{snap(15, {kv("s/a", "1", 4)})})).index == 15);
    CHECK(fsm.applied_index() == 15);
    // The index went backwards (a snapshot restore): nothing counts as applied until a clean round.
    CHECK(expect<action::read_source>(fsm.resume(event::source_read{snap(7, {kv("s/a", "1", 4)})})).index == 0);
    CHECK(fsm.applied_index() == 0);
    (void)expect<action::read_source>(fsm.resume(event::source_read{snap(7, {kv("s/a", "1", 4)})}));
    CHECK(fsm.applied_index() == 7);
}

TEST_CASE("replicator_fsm: applied_index stays behind a refused round", "[engine]")
{
    replicator_fsm fsm(config());
    (void)fsm.resume(event::start{});
    std::vector<kv_entry> dst;
    for (int i = 0; i < 20; ++i) dst.push_back(kv(fmt::format("d/{:02}", i), "v"));
    (void)fsm.resume(event::source_read{snap(10, {})});
    // An empty source against 20 destination keys: the guard refuses the deletes.
    auto a = fsm.resume(event::destination_read{snap(3, dst), std::nullopt});
    while (std::holds_alternative<action::apply_batch>(a)) a = fsm.resume(event::batch_applied{});
    REQUIRE(fsm.take_report()->refused.has_value());
    CHECK(fsm.applied_index() == 0);
    (void)fsm.resume(event::source_read{snap(12, {})});  // same entries, but the last round was refused
    CHECK(fsm.applied_index() == 0);
}
