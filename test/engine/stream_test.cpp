// Streamed full rounds of replicator_fsm: puts go out chunk by chunk while the source arrives;
// deletes, the guard and the checkpoint wait for source_end. Property: streamed rounds leave the
// destination exactly as whole-snapshot rounds do, whatever the chunking, order and failures.
#include "builders.hpp"

#include <engine/replicator_fsm.hpp>
#include <prefixes/key_map.hpp>

#include <map>
#include <random>

using namespace kvship::engine;
using namespace kvship::engine::test;
using namespace std::chrono_literals;

namespace {

replicator_config config(bool once, bool stream)
{
    replicator_config c;
    c.rule = pair_rule("s/", "d/");
    c.backoff = backoff_params{.attempts = 3, .jitter_percent = 0};
    c.once = once;
    c.stream_full_reads = stream;
    c.limits.max_ops = 4;
    c.stream_batch = 4;
    c.encode_checkpoint = [](const checkpoint& cp) { return fmt::format("cp:{}", cp.last_replicated); };
    return c;
}

template <class A>
A expect(const replicator_action& a)
{
    REQUIRE(std::holds_alternative<A>(a));
    return std::get<A>(a);
}

std::vector<kv_entry> source_keys(int n, int from = 0)
{
    std::vector<kv_entry> out;
    for (int i = from; i < from + n; ++i)
        out.push_back(kv(fmt::format("s/{:03}", i), fmt::format("v{}", i), static_cast<std::uint64_t>(i + 1))
        );
    return out;
}

using kv_map = std::map<std::string, std::pair<std::string, std::uint64_t>>;

void apply_ops(kv_map& state, const batch& b)
{
    for (auto const& op : b.ops) {
        if (op.verb == txn_verb::set)
            state[op.key] = {op.value, op.flags};
        else
            state.erase(op.key);
    }
}

snapshot as_snapshot(const kv_map& m, std::uint64_t index)
{
    snapshot s{index, {}};
    for (auto const& [k, v] : m) s.entries.push_back(kv(k, v.first, 1, v.second));
    return s;
}

// One whole-snapshot -once round of `src` into `dst`: the destination after it and the report.
std::pair<kv_map, std::optional<round_report>> run_whole(
    const replicator_config& c, const std::vector<kv_entry>& src, kv_map dst
)
{
    replicator_fsm fsm(c);
    (void)expect<action::read_source>(fsm.resume(event::start{}));
    (void)expect<action::read_destination>(fsm.resume(event::source_read{snap(100, src)}));
    auto a = fsm.resume(event::destination_read{as_snapshot(dst, 5), std::nullopt});
    while (auto const* b = std::get_if<action::apply_batch>(&a)) {
        apply_ops(dst, *b->ops);
        a = fsm.resume(event::batch_applied{});
    }
    (void)expect<action::done>(a);
    return {std::move(dst), fsm.take_report()};
}

}  // namespace

TEST_CASE(
    "replicator_fsm streamed: puts go out per chunk, deletes and checkpoint at the end", "[engine][stream]"
)
{
    replicator_fsm fsm(config(false, true));
    auto const status_key = pair_rule("s/", "d/").status_key;
    CHECK(expect<action::begin_stream>(fsm.resume(event::start{})).status_key == status_key);
    // The destination holds one key to keep (same value), one to repair and one to delete.
    auto dst = snap(3, {kv("d/001", "v1"), kv("d/002", "old"), kv("d/zzz", "gone")});
    (void)expect<action::stream_source>(fsm.resume(event::destination_read{dst, std::nullopt}));

    // Chunk 1: 6 keys, 5 puts (s/001 is unchanged): one batch of 4 goes out, 1 waits.
    auto a = fsm.resume(event::source_chunk{source_keys(6)});
    auto const first = expect<action::apply_puts>(a);
    CHECK(first.ops.ops.size() == 4);
    CHECK_FALSE(first.ops.carries_checkpoint);
    for (auto const& op : first.ops.ops) CHECK(op.verb == txn_verb::set);
    (void)expect<action::read_chunk>(fsm.resume(event::puts_queued{}));
    // Chunk 2: 2 more puts: 3 held, below a batch.
    (void)expect<action::read_chunk>(fsm.resume(event::source_chunk{source_keys(2, 6)}));
    // Deletes and the checkpoint come at the end, the checkpoint last.
    auto next = fsm.resume(event::source_end{50});
    std::vector<std::string> keys;
    std::size_t batches = 0;
    std::size_t sets = 0;
    bool checkpoint_in_last = false;
    while (auto const* b = std::get_if<action::apply_batch>(&next)) {
        ++batches;
        CHECK(b->count == 2);
        for (auto const& op : b->ops->ops) {
            keys.push_back(fmt::format("{}:{}", to_string(op.verb), op.key));
            sets += op.verb == txn_verb::set && op.key != status_key;
        }
        checkpoint_in_last = b->ops->carries_checkpoint && b->number + 1 == b->count;
        next = fsm.resume(event::batch_applied{});
    }
    CHECK(checkpoint_in_last);
    REQUIRE_FALSE(keys.empty());
    CHECK(keys.back() == "set:" + status_key);
    CHECK(std::count(keys.begin(), keys.end(), "delete:d/zzz") == 1);
    CHECK(sets == 3);
    CHECK(expect<action::read_source>(next).index == 50);
    auto const report = fsm.take_report();
    REQUIRE(report);
    CHECK(report->puts == 7);
    CHECK(report->streamed_puts == 4);
    CHECK(report->deletes == 1);
    CHECK(report->batches == batches);
    CHECK(report->stats.unchanged == 1);
    CHECK(report->checkpoint_written);
    // The next read blocks on the index; a reset streams again.
    CHECK(
        expect<action::begin_stream>(fsm.resume(event::source_read{snap(40, source_keys(8))})).status_key ==
        status_key
    );
}

TEST_CASE("replicator_fsm streamed: the guard judges the whole source before any delete", "[engine][stream]")
{
    auto c = config(true, true);
    replicator_fsm fsm(c);
    (void)fsm.resume(event::start{});
    // 20 destination keys, the source keeps 5 of them and adds 3: 15 deletes would be 75%.
    std::vector<kv_entry> dst;
    for (int i = 0; i < 20; ++i) dst.push_back(kv(fmt::format("d/{:03}", i), fmt::format("v{}", i)));
    (void)fsm.resume(event::destination_read{snap(3, dst), std::nullopt});
    auto src = source_keys(5);
    for (auto& e : source_keys(3, 100)) src.push_back(e);
    auto a = fsm.resume(event::source_chunk{src});
    (void)expect<action::read_chunk>(a);  // 3 puts: below a batch
    auto const end = fsm.resume(event::source_end{9});
    auto const& b = expect<action::apply_batch>(end);
    CHECK(b.ops->ops.size() == 3);  // the puts only: no delete, no checkpoint
    CHECK_FALSE(b.ops->carries_checkpoint);
    for (auto const& op : b.ops->ops) CHECK(op.verb == txn_verb::set);
    auto const done = expect<action::done>(fsm.resume(event::batch_applied{}));
    REQUIRE(done.error);
    auto const report = fsm.take_report();
    REQUIRE(report);
    REQUIRE(report->refused);
    CHECK(report->refused->reason == refusal_reason::mass_delete);
    CHECK(report->refused->deletes == 15);
}

TEST_CASE("replicator_fsm streamed: an empty source is refused, nothing is written", "[engine][stream]")
{
    replicator_fsm fsm(config(true, true));
    (void)fsm.resume(event::start{});
    (void)fsm.resume(event::destination_read{snap(3, {kv("d/a", "1")}), std::nullopt});
    auto const done = expect<action::done>(fsm.resume(event::source_end{9}));
    REQUIRE(done.error);
    auto const report = fsm.take_report();
    REQUIRE(report);
    REQUIRE(report->refused);
    CHECK(report->refused->reason == refusal_reason::empty_source);
    CHECK(report->batches == 0);
}

TEST_CASE("replicator_fsm streamed: a failure midway retries the whole streamed round", "[engine][stream]")
{
    replicator_fsm fsm(config(false, true));
    (void)fsm.resume(event::start{});
    (void)fsm.resume(event::destination_read{snap(3, {}), std::nullopt});
    (void)expect<action::apply_puts>(fsm.resume(event::source_chunk{source_keys(4)}));
    (void)expect<action::read_chunk>(fsm.resume(event::puts_queued{}));
    CHECK(expect<action::sleep>(fsm.resume(event::failed{"connection lost"})).delay == 250ms);
    (void)expect<action::begin_stream>(fsm.resume(event::timer_fired{}));
    // A destination read that fails is retried as a streamed round too.
    CHECK(expect<action::sleep>(fsm.resume(event::failed{"timeout"})).delay == 500ms);
    (void)expect<action::begin_stream>(fsm.resume(event::timer_fired{}));
    CHECK_FALSE(fsm.take_report());
    // The destination reads in between do not reset the count: the third failure in a row is final.
    (void)expect<action::stream_source>(fsm.resume(event::destination_read{snap(3, {}), std::nullopt}));
    CHECK(expect<action::sleep>(fsm.resume(event::failed{"connection lost"})).delay == 1000ms);
    (void)expect<action::begin_stream>(fsm.resume(event::timer_fired{}));
    (void)expect<action::stream_source>(fsm.resume(event::destination_read{snap(3, {}), std::nullopt}));
    CHECK(
        expect<action::done>(fsm.resume(event::failed{"connection lost"})).error ==
        "connection lost (exceeded maximum retries)"
    );
}

TEST_CASE("replicator_fsm streamed: stop ends a stream at once", "[engine][stream]")
{
    replicator_fsm fsm(config(false, true));
    (void)fsm.resume(event::start{});
    // stop ends a stream at once
    (void)fsm.resume(event::destination_read{snap(3, {}), std::nullopt});
    CHECK_FALSE(expect<action::done>(fsm.resume(event::stop{})).error);
}

TEST_CASE(
    "replicator_fsm streamed: an out-of-order source stops early puts and is planned whole",
    "[engine][stream]"
)
{
    replicator_fsm fsm(config(true, true));
    (void)fsm.resume(event::start{});
    (void)fsm.resume(event::destination_read{snap(3, {}), std::nullopt});
    (void)expect<action::apply_puts>(fsm.resume(event::source_chunk{source_keys(4, 10)}));
    (void)expect<action::read_chunk>(fsm.resume(event::puts_queued{}));
    // Keys before the last ones seen: no more early puts.
    (void)expect<action::read_chunk>(fsm.resume(event::source_chunk{source_keys(8)}));
    auto a = fsm.resume(event::source_end{30});
    kv_map state;
    std::size_t ops = 0;
    while (auto const* b = std::get_if<action::apply_batch>(&a)) {
        apply_ops(state, *b->ops);
        ops += b->ops->ops.size();
        a = fsm.resume(event::batch_applied{});
    }
    (void)expect<action::done>(a);
    CHECK(state.size() == 13);  // 12 keys and the checkpoint: the 4 early ones again, the same values
    CHECK(ops == 13);
    auto const report = fsm.take_report();
    REQUIRE(report);
    CHECK(report->puts == 12);
    CHECK(report->streamed_puts == 4);
}

TEST_CASE("replicator_fsm streamed: a new index with the same entries is no round", "[engine][stream]")
{
    replicator_fsm fsm(config(false, true));
    (void)fsm.resume(event::start{});
    (void)fsm.resume(event::destination_read{snap(3, {}), std::nullopt});
    (void)fsm.resume(event::source_chunk{source_keys(2)});
    auto a = fsm.resume(event::source_end{30});
    while (std::holds_alternative<action::apply_batch>(a)) a = fsm.resume(event::batch_applied{});
    (void)expect<action::read_source>(a);
    (void)fsm.take_report();
    // The index goes backwards: a streamed full read; the same entries make no round.
    (void)expect<action::begin_stream>(fsm.resume(event::source_read{snap(20, source_keys(2))}));
    (void)fsm.resume(event::destination_read{snap(4, {kv("d/000", "v0"), kv("d/001", "v1")}), std::nullopt});
    (void)expect<action::read_chunk>(fsm.resume(event::source_chunk{source_keys(2)}));
    CHECK(expect<action::read_source>(fsm.resume(event::source_end{20})).index == 20);
    CHECK_FALSE(fsm.take_report());
}

TEST_CASE("property: streamed rounds give the same destination as whole-snapshot rounds", "[engine][stream]")
{
    struct layout
    {
        std::string source;
        std::string destination;
    };

    std::vector<layout> const layouts = {{"s/", "d/"}, {"s", "d"}, {"a/", "a/b"}, {"service/", "service/"}};
    std::mt19937 rng(0x57e4);
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    auto word = [&](std::size_t max_len) {
        std::string s;
        for (std::size_t n = pick(max_len + 1); n > 0; --n) s.push_back("ab/x"[pick(4)]);
        return s;
    };
    std::size_t streamed_total = 0;
    std::size_t refusals = 0;
    std::size_t failures = 0;
    for (int iteration = 0; iteration < 400; ++iteration) {
        auto const& l = layouts[pick(layouts.size())];
        std::vector<std::string> excludes;
        if (pick(3) == 0)
            excludes.push_back(l.source + word(2));
        replicator_config base;
        base.rule = pair_rule(l.source, l.destination, excludes);
        base.once = true;
        base.backoff = backoff_params{.attempts = 10, .jitter_percent = 0};
        base.limits.max_ops = 1 + pick(6);
        base.stream_batch = 1 + pick(8);
        base.guard.min_keys = pick(2) == 0 ? 10 : 1000;
        base.encode_checkpoint = [](const checkpoint& cp) {
            return fmt::format("cp:{}", cp.last_replicated);
        };

        std::map<std::string, kv_entry> src_map;
        for (std::size_t n = pick(60); n > 0; --n) {
            auto key = l.source + word(5);
            src_map.emplace(key, kv(key, std::string(1, "pq"[pick(2)]) + word(2), 1 + pick(40), pick(3)));
        }
        std::vector<kv_entry> src;
        for (auto& [k, e] : src_map) src.push_back(e);
        kv_map dst;
        for (std::size_t n = pick(40); n > 0; --n)
            dst[l.destination + word(5)] = {std::string(1, "pq"[pick(2)]), 0};
        for (auto const& e : src) {
            auto const d = kvship::prefixes::map_key(base.rule.spec, e.key);
            if (d && pick(3) == 0)
                dst[*d] = {e.value, e.flags};
        }
        CAPTURE(iteration, l.source, l.destination, base.limits.max_ops);

        // Streamed round: random chunks, sometimes shuffled, sometimes a failure midway.
        kv_map streamed = dst;
        kv_map retried_from = dst;  // the destination the last streamed attempt started from
        std::optional<round_report> streamed_report;
        {
            auto c = base;
            c.stream_full_reads = true;
            replicator_fsm fsm(c);
            auto order = src;
            bool const shuffled = pick(8) == 0;
            if (shuffled)
                std::shuffle(order.begin(), order.end(), rng);
            bool fail_once = pick(4) == 0;
            auto a = fsm.resume(event::start{});
            for (;;) {
                (void)expect<action::begin_stream>(a);
                retried_from = streamed;
                a = fsm.resume(event::destination_read{as_snapshot(streamed, 5), std::nullopt});
                (void)expect<action::stream_source>(a);
                std::size_t pos = 0;
                bool failed = false;
                for (;;) {
                    if (auto const* p = std::get_if<action::apply_puts>(&a)) {
                        CHECK_FALSE(p->ops.carries_checkpoint);
                        for (auto const& op : p->ops.ops) CHECK(op.verb == txn_verb::set);
                        apply_ops(streamed, p->ops);
                        a = fsm.resume(event::puts_queued{});
                        continue;
                    }
                    if (fail_once && pos > 0 && pick(2) == 0) {
                        fail_once = false;
                        failed = true;
                        ++failures;
                        (void)expect<action::sleep>(fsm.resume(event::failed{"connection lost"}));
                        a = fsm.resume(event::timer_fired{});
                        break;
                    }
                    if (pos == order.size()) {
                        a = fsm.resume(event::source_end{100});
                        break;
                    }
                    std::size_t const n = 1 + pick(10);
                    std::vector<kv_entry> chunk(
                        order.begin() + static_cast<std::ptrdiff_t>(pos),
                        order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), pos + n))
                    );
                    pos += chunk.size();
                    a = fsm.resume(event::source_chunk{std::move(chunk)});
                }
                if (!failed)
                    break;
            }
            while (auto const* b = std::get_if<action::apply_batch>(&a)) {
                apply_ops(streamed, *b->ops);
                a = fsm.resume(event::batch_applied{});
            }
            (void)expect<action::done>(a);
            streamed_report = fsm.take_report();
        }

        // A whole-snapshot round from the destination the successful streamed attempt started from
        // (after a failure, the puts that went out early are part of it, as committed batches of a
        // failed whole-snapshot round would be).
        auto const [whole, whole_report] = run_whole(base, src, retried_from);
        CHECK(streamed == whole);
        REQUIRE(whole_report);
        REQUIRE(streamed_report);
        CHECK(streamed_report->puts == whole_report->puts);
        CHECK(streamed_report->deletes == whole_report->deletes);
        CHECK(streamed_report->refused == whole_report->refused);
        CHECK(streamed_report->stats == whole_report->stats);
        CHECK(streamed_report->checkpoint_written == whole_report->checkpoint_written);
        CHECK(streamed_report->streamed_puts <= streamed_report->puts);
        streamed_total += streamed_report->streamed_puts;
        refusals += whole_report->refused ? 1 : 0;
    }
    CHECK(streamed_total > 1000);
    CHECK(refusals > 10);
    CHECK(failures > 20);
}

TEST_CASE("make_plan without puts: the same plan minus its puts", "[engine][stream]")
{
    auto const r = pair_rule("s/", "d/", {"s/x"});
    auto const src = snap(
        9,
        {kv("s/a", "1"),
         kv("s/b", "2", 1, lock_flag_value),
         with_session(kv("s/c", "3"), "sess"),
         kv("s/d", "same"),
         kv("s/x1", "excluded")}
    );
    auto const dst = snap(3, {kv("d/d", "same"), kv("d/e", "gone")});
    auto full = make_plan(src.entries, src.index, dst.entries, r, checkpoint{});
    auto const lean = make_plan(src.entries, src.index, dst.entries, r, checkpoint{}, false);
    CHECK(full.puts.size() == 3);
    CHECK(full.puts.size() == full.stats.selected_keys - full.stats.unchanged);
    CHECK(lean.puts.empty());
    CHECK(lean.warnings.size() == 2);  // the lock flag and the session, as with puts
    full.puts.clear();
    CHECK(lean == full);
}
