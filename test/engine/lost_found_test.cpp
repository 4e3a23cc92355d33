// Lost+found: which keys a gated round saves, and that no key is destroyed before its save has
// committed (whole-snapshot and streamed rounds, failures and retries, the delete guard).
#include "builders.hpp"

#include <engine/lost_found.hpp>
#include <engine/replicator_fsm.hpp>

#include <map>
#include <random>

using namespace kvship::engine;
using namespace kvship::engine::test;

namespace {

lost_found_config lf_config(std::optional<checkpoint> source_record = std::nullopt)
{
    lost_found_config c;
    c.prefix = "lf/";
    c.local_dc = "dc1";
    c.source_dc = "dc2";
    c.source_record = std::move(source_record);
    c.time = "2026-12-03T17:00:00Z";
    return c;
}

checkpoint gated_record(std::uint64_t last, std::string from_dc, std::uint64_t mirrored)
{
    checkpoint c{last, "s/", "d/"};
    c.source_datacenter = std::move(from_dc);
    c.mirrored_index = mirrored;
    return c;
}

replicator_config config(std::optional<checkpoint> source_record = std::nullopt, bool stream = false)
{
    replicator_config c;
    c.rule = pair_rule("s/", "d/");
    c.backoff = backoff_params{.attempts = 3, .jitter_percent = 0};
    c.once = false;
    c.stream_full_reads = stream;
    c.limits.max_ops = 4;
    c.stream_batch = 2;
    c.encode_checkpoint = [](const checkpoint& cp) {
        return fmt::format("cp:{}:{}:{}", cp.last_replicated, cp.source_datacenter, cp.mirrored_index);
    };
    c.lost_found = lf_config(std::move(source_record));
    c.encode_turn_record = [](const turn_record& r) {
        return fmt::format("{} {} {} {} {}", r.turn, r.old_primary, r.new_primary, r.rule, r.count);
    };
    return c;
}

template <class A>
A expect(const replicator_action& a)
{
    REQUIRE(std::holds_alternative<A>(a));
    return std::get<A>(a);
}

using kv_map = std::map<std::string, std::pair<std::string, std::uint64_t>>;

kv_map as_map(const std::vector<kv_entry>& entries)
{
    kv_map m;
    for (auto const& e : entries) m[e.key] = {e.value, e.flags};
    return m;
}

// Applies one batch; then checks that every original key that differs from `before` (deleted or
// changed) and must be saved has its save in `state` with the original value and flags.
void apply_and_check(
    kv_map& state, const batch& b, const kv_map& before, const std::set<std::string>& must_save, const std::string& turn
)
{
    for (auto const& op : b.ops) {
        if (op.verb == txn_verb::set)
            state[op.key] = {op.value, op.flags};
        else
            state.erase(op.key);
    }
    for (auto const& k : must_save) {
        auto const now = state.find(k);
        bool const destroyed = now == state.end() || now->second != before.at(k);
        if (!destroyed)
            continue;
        auto const save = state.find(lost_found_key("lf/", turn, k));
        INFO("key " << k << " destroyed without its save");
        REQUIRE(save != state.end());
        CHECK(save->second == before.at(k));
    }
}

std::vector<std::string> op_keys(const batch& b)
{
    std::vector<std::string> out;
    for (auto const& op : b.ops) out.push_back(op.key);
    return out;
}

}  // namespace

TEST_CASE("lost_found: the threshold rule", "[engine]")
{
    auto const own = gated_record(500, "dc2", 500);  // this DC last followed dc2, record at index 40

    SECTION("precise: the source mirrored this DC up to L, the own record bounds C")
    {
        auto const t = decide_threshold(lf_config(gated_record(90, "dc1", 80)), own, 40, 100);
        CHECK(t.precise);
        CHECK(t.rule == "source_checkpoint");
        CHECK(t.source_replicated == 80);
        CHECK(t.local_checkpoint == 40);
        CHECK(t.index == 80);
        // C above L wins
        CHECK(decide_threshold(lf_config(gated_record(90, "dc1", 30)), own, 40, 100).index == 40);
    }
    SECTION("fallback: no source record, another source DC, no MirroredIndex, an index reset")
    {
        for (auto const& src : {
                 std::optional<checkpoint>{},
                 std::optional<checkpoint>{gated_record(90, "dc3", 80)},
                 std::optional<checkpoint>{checkpoint{90, "s/", "d/"}},
                 std::optional<checkpoint>{gated_record(90, "dc1", 0)},
                 std::optional<checkpoint>{gated_record(900, "dc1", 800)},
             }) {
            auto const t = decide_threshold(lf_config(src), own, 40, 100);
            CHECK_FALSE(t.precise);
            CHECK(t.rule == "all_unreplicated");
            CHECK(t.index == 40);
            CHECK_FALSE(t.note.empty());
        }
    }
    SECTION("the own record counts only when it is from the DC followed now")
    {
        CHECK(decide_threshold(lf_config(), std::nullopt, 0, 100).index == 0);
        CHECK(decide_threshold(lf_config(), checkpoint{7, "s/", "d/"}, 40, 100).index == 0);
        CHECK(decide_threshold(lf_config(), gated_record(7, "dc3", 7), 40, 100).index == 0);
        CHECK(decide_threshold(lf_config(), own, 40, 100).index == 40);
    }
}

TEST_CASE("lost_found: turn ids, entry keys and their originals", "[engine]")
{
    auto const cfg = lf_config();
    CHECK(lost_found_turn_id(cfg, 42) == "42-dc1-to-dc2");
    CHECK(lost_found_key("lf/", "42-dc1-to-dc2", "vault/a/b") == "lf/42-dc1-to-dc2/vault/a/b");
    CHECK(original_of("lf/", "42-dc1-to-dc2", "lf/42-dc1-to-dc2/vault/a/b") == std::optional<std::string>("vault/a/b"));
    CHECK_FALSE(original_of("lf/", "42-dc1-to-dc2", "lf/42-dc1-to-dc2/.turn").has_value());
    CHECK_FALSE(original_of("lf/", "42-dc1-to-dc2", "lf/42-dc1-to-dc3/vault/a").has_value());
    CHECK_FALSE(original_of("lf/", "4", "lf/42-dc1-to-dc2/vault/a").has_value());
    CHECK_FALSE(original_of("lf/", "42-dc1-to-dc2", "other/42-dc1-to-dc2/vault/a").has_value());
}

TEST_CASE("lost_found: saves are the deleted and overwritten keys above the threshold", "[engine]")
{
    auto const rule = pair_rule("s/", "d/");
    std::vector<kv_entry> const dst{
        kv("d/del-new", "x", 60, 3),
        kv("d/del-old", "y", 20),
        kv("d/keep", "k", 70),
        kv("d/over-new", "o", 61, 9),
        kv("d/over-old", "p", 10),
    };
    std::vector<kv_entry> const src{kv("s/keep", "k", 5), kv("s/new", "n", 6), kv("s/over-new", "O", 7), kv("s/over-old", "P", 8)};
    auto const p = make_plan(snap(100, src), snap(80, dst), rule, checkpoint{});
    REQUIRE(p.deletes.size() == 2);
    REQUIRE(p.puts.size() == 3);

    auto const saves = lost_found_saves(p, dst, 50, "lf/", "T");
    REQUIRE(saves.size() == 2);
    CHECK(saves[0].original_key == "d/del-new");
    CHECK(saves[0].modify_index == 60);
    CHECK(saves[0].op == txn_op{txn_verb::set, "lf/T/d/del-new", "x", 3});
    CHECK(saves[1].op == txn_op{txn_verb::set, "lf/T/d/over-new", "o", 9});

    CHECK(lost_found_saves(p, dst, 0, "lf/", "T").size() == 4);  // a new key is never saved
    CHECK(lost_found_saves(p, dst, 100, "lf/", "T").empty());
    CHECK(lost_found_saves(p, dst, 50, "lf/", "T", {"d/del-new"}).size() == 1);

    CHECK(has_unreplicated(dst, rule, 69));
    CHECK_FALSE(has_unreplicated(dst, rule, 70));
    // the status key and keys outside the destination do not count
    std::vector<kv_entry> const other{kv(rule.status_key, "cp", 99), kv("e/x", "1", 99)};
    CHECK_FALSE(has_unreplicated(other, rule, 1));
}

TEST_CASE("lost_found: prepend_saves puts the record and saves in batches of their own first", "[engine]")
{
    std::vector<batch> round{batch{{txn_op{txn_verb::delete_key, "d/a", "", 0}}, 50, true, {no_source}, false}};
    std::vector<lost_found_save> saves;
    for (int i = 0; i < 5; ++i) {
        auto const k = fmt::format("d/{}", i);
        saves.push_back(lost_found_save{k, 9, txn_op{txn_verb::set, lost_found_key("lf/", "T", k), "v", 1}});
    }
    batch_limits limits;
    limits.max_ops = 4;
    auto out = prepend_saves(round, saves, txn_op{txn_verb::set, "lf/T/.turn", "rec", 0}, limits);
    REQUIRE(out.has_value());
    REQUIRE(out->size() == 3);
    CHECK((*out)[0].ops.front().key == "lf/T/.turn");
    CHECK((*out)[0].ops.size() + (*out)[1].ops.size() == 6);
    CHECK_FALSE((*out)[0].carries_checkpoint);
    CHECK((*out)[2] == round[0]);

    auto same = prepend_saves(round, {}, std::nullopt, limits);
    REQUIRE(same.has_value());
    CHECK(*same == round);

    limits.max_value_bytes = 2;
    saves[0].op.value = "too long";
    auto bad = prepend_saves(round, saves, std::nullopt, limits);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().code == batch_errc::value_too_large);
}

TEST_CASE("lost_found: a turn's first round saves before it destroys, then never again", "[engine]")
{
    // dc1 followed dc2 until its record at index 40; then dc1 was the primary and wrote keys at
    // 50..60; dc2 mirrored dc1 up to 55 before the turn.
    std::vector<kv_entry> const dst{
        kv("d/a", "a1", 30),      // replicated from dc2 before: dc2 deleted it since, legitimately
        kv("d/b", "b1", 52),      // written in dc1, reached dc2 (52 <= 55), dc2 changed it since
        kv("d/c", "c-lost", 57, 5),  // written in dc1 after 55: never reached dc2
        kv("d/d", "d-lost", 58),  // written in dc1 after 55, dc2 lacks it
        kv("d/e", "e", 59),       // written in dc1 after 55, dc2 has the same value
    };
    std::vector<kv_entry> const src{kv("s/b", "b2", 200), kv("s/c", "c2", 201), kv("s/e", "e", 202), kv("s/f", "f", 203)};
    auto own = gated_record(700, "dc2", 700);
    replicator_fsm fsm(config(gated_record(300, "dc1", 55)));
    (void)fsm.resume(event::start{});
    (void)expect<action::read_destination>(fsm.resume(event::source_read{snap(210, src)}));
    auto act = fsm.resume(event::destination_read{snap(60, dst), own, 40});

    kv_map state = as_map(dst);
    kv_map const before = state;
    std::set<std::string> const must_save{"d/c", "d/d"};
    std::string const turn = "40-dc1-to-dc2";
    std::vector<std::vector<std::string>> sent;
    while (auto* ab = std::get_if<action::apply_batch>(&act)) {
        sent.push_back(op_keys(*ab->ops));
        apply_and_check(state, *ab->ops, before, must_save, turn);
        act = fsm.resume(event::batch_applied{});
    }
    (void)expect<action::read_source>(act);
    REQUIRE(sent.size() == 3);  // the saves, then the round in two (4 ops per batch)
    CHECK(sent[0] == std::vector<std::string>{"lf/40-dc1-to-dc2/.turn", "lf/40-dc1-to-dc2/d/c", "lf/40-dc1-to-dc2/d/d"});
    CHECK(state.at("lf/40-dc1-to-dc2/d/c") == std::pair<std::string, std::uint64_t>{"c-lost", 5});
    CHECK(state.at("lf/40-dc1-to-dc2/.turn").first == "40-dc1-to-dc2 dc1 dc2 source_checkpoint 2");
    CHECK_FALSE(state.contains("lf/40-dc1-to-dc2/d/a"));  // at or below C
    CHECK_FALSE(state.contains("lf/40-dc1-to-dc2/d/b"));  // at or below L: reached dc2
    CHECK_FALSE(state.contains("lf/40-dc1-to-dc2/d/e"));  // not destroyed
    CHECK(state.at(pair_rule("s/", "d/").status_key).first == "cp:210:dc2:210");

    auto const rep = fsm.take_report();
    REQUIRE(rep.has_value());
    REQUIRE(rep->lost_found.has_value());
    CHECK(rep->lost_found->rule == "source_checkpoint");
    CHECK(rep->lost_found_saved == 2);
    CHECK(rep->lost_found_turn == turn);
    CHECK(rep->deletes == 2);  // the saves are not deletes
    CHECK(rep->puts == 3);

    // The next round (the machine's own writes are destroyed now) checks nothing.
    (void)expect<action::read_destination>(fsm.resume(event::source_read{snap(220, {kv("s/f", "f", 203)})}));
    std::vector<kv_entry> now;
    for (auto const& [k, v] : state) now.push_back(kv(k, v.first, 300, v.second));
    act = fsm.resume(event::destination_read{snap(300, now), own, 40});
    auto const& ab = expect<action::apply_batch>(act);
    for (auto const& k : op_keys(*ab.ops)) CHECK_FALSE(std::string_view(k).starts_with("lf/"));
    (void)fsm.resume(event::batch_applied{});
    auto const rep2 = fsm.take_report();
    REQUIRE(rep2.has_value());
    CHECK_FALSE(rep2->lost_found.has_value());
}

TEST_CASE("lost_found: with stage_batches the saves are a stage of their own, before the round", "[engine]")
{
    std::vector<kv_entry> const dst{kv("d/c", "c-lost", 57, 5), kv("d/d", "d-lost", 58)};
    std::vector<kv_entry> const src{kv("s/c", "c2", 201), kv("s/f", "f", 203)};
    auto cfg = config(gated_record(300, "dc1", 55));
    cfg.stage_batches = true;
    cfg.limits.max_ops = 2;
    replicator_fsm fsm(cfg);
    (void)fsm.resume(event::start{});
    (void)expect<action::read_destination>(fsm.resume(event::source_read{snap(210, src)}));
    auto act = fsm.resume(event::destination_read{snap(60, dst), gated_record(700, "dc2", 700), 40});
    auto const saves = expect<action::apply_batch>(act);
    // The record and two saves at 2 ops a txn: two batches, nothing else.
    REQUIRE(saves.batches.size() == 2);
    for (auto const& b : saves.batches)
        for (auto const& op : b.ops) CHECK(std::string_view(op.key).starts_with("lf/"));
    CHECK(saves.number == 0);
    auto const round = expect<action::apply_batch>(fsm.resume(event::batch_applied{}));
    CHECK(round.number == 2);
    REQUIRE_FALSE(round.batches.empty());
    CHECK(round.number + round.batches.size() == round.count);
    for (auto const& b : round.batches)
        for (auto const& op : b.ops) CHECK_FALSE(std::string_view(op.key).starts_with("lf/"));
    CHECK(round.batches.back().carries_checkpoint);
    (void)expect<action::read_source>(fsm.resume(event::batch_applied{}));
}

TEST_CASE("lost_found: without a usable source record every unreplicated destroyed key is saved", "[engine]")
{
    std::vector<kv_entry> const dst{kv("d/a", "a", 5), kv("d/b", "b", 6)};
    replicator_fsm fsm(config(gated_record(10, "dc3", 10)));
    (void)fsm.resume(event::start{});
    (void)fsm.resume(event::source_read{snap(9, {kv("s/b", "B", 1)})});
    // no own record: this DC was the primary all along
    auto act = fsm.resume(event::destination_read{snap(6, dst), std::nullopt, 0});
    auto const& first = expect<action::apply_batch>(act);
    CHECK(op_keys(*first.ops) == std::vector<std::string>{"lf/0-dc1-to-dc2/.turn", "lf/0-dc1-to-dc2/d/a", "lf/0-dc1-to-dc2/d/b"});
}

TEST_CASE("lost_found: a failed round is retried with its saves until they committed", "[engine]")
{
    std::vector<kv_entry> const dst{kv("d/a", "a", 5), kv("d/b", "b", 6)};
    replicator_fsm fsm(config());
    (void)fsm.resume(event::start{});
    (void)fsm.resume(event::source_read{snap(9, {kv("s/b", "B", 1)})});
    auto act = fsm.resume(event::destination_read{snap(6, dst), std::nullopt, 0});
    CHECK(op_keys(*expect<action::apply_batch>(act).ops).size() == 3);

    // The save txn fails: the retry plans the saves again.
    (void)expect<action::sleep>(fsm.resume(event::failed{"boom"}));
    (void)expect<action::read_destination>(fsm.resume(event::timer_fired{}));
    act = fsm.resume(event::destination_read{snap(6, dst), std::nullopt, 0});
    CHECK(op_keys(*expect<action::apply_batch>(act).ops).size() == 3);
    act = fsm.resume(event::batch_applied{});
    auto const& destroy = expect<action::apply_batch>(act);
    CHECK(op_keys(*destroy.ops) == std::vector<std::string>{"d/b", "d/a", pair_rule("s/", "d/").status_key});

    // The destroying txn fails after the saves committed: they are not written again (a later
    // value of the key must not replace the saved original).
    (void)expect<action::sleep>(fsm.resume(event::failed{"boom"}));
    (void)expect<action::read_destination>(fsm.resume(event::timer_fired{}));
    act = fsm.resume(event::destination_read{snap(7, {kv("d/a", "a", 5), kv("d/b", "b-later", 7)}), std::nullopt, 0});
    CHECK(op_keys(*expect<action::apply_batch>(act).ops) ==
          std::vector<std::string>{"d/b", "d/a", pair_rule("s/", "d/").status_key});
}

TEST_CASE("lost_found: the delete guard still holds deletes back; overwrites are saved", "[engine]")
{
    std::vector<kv_entry> dst;
    for (int i = 0; i < 20; ++i) dst.push_back(kv(fmt::format("d/{:02}", i), "v", 50));
    auto cfg = config();
    replicator_fsm fsm(cfg);
    (void)fsm.resume(event::start{});
    (void)fsm.resume(event::source_read{snap(9, {kv("s/00", "changed", 1)})});
    auto act = fsm.resume(event::destination_read{snap(60, dst), std::nullopt, 0});
    auto const& saves = expect<action::apply_batch>(act);
    CHECK(op_keys(*saves.ops) == std::vector<std::string>{"lf/0-dc1-to-dc2/.turn", "lf/0-dc1-to-dc2/d/00"});
    act = fsm.resume(event::batch_applied{});
    auto const& rest = expect<action::apply_batch>(act);
    CHECK(op_keys(*rest.ops) == std::vector<std::string>{"d/00"});  // no delete, no checkpoint
    (void)fsm.resume(event::batch_applied{});
    auto const rep = fsm.take_report();
    REQUIRE(rep.has_value());
    REQUIRE(rep->refused.has_value());
    CHECK(rep->refused->deletes == 19);
    CHECK(rep->lost_found_saved == 1);
}

TEST_CASE("lost_found: streamed full rounds send no early put while a key may need saving", "[engine]")
{
    std::vector<kv_entry> src;
    for (int i = 0; i < 8; ++i) src.push_back(kv(fmt::format("s/{}", i), fmt::format("new{}", i), 100));
    std::vector<kv_entry> dst;
    for (int i = 0; i < 8; ++i) dst.push_back(kv(fmt::format("d/{}", i), fmt::format("old{}", i), 10 + static_cast<std::uint64_t>(i)));
    dst.push_back(kv("d/x", "gone", 17));

    for (bool const unreplicated : {true, false}) {
        CAPTURE(unreplicated);
        replicator_fsm fsm(config(std::nullopt, true));
        (void)expect<action::begin_stream>(fsm.resume(event::start{}));
        // unreplicated: no own record, every key may be lost. Else the own record from dc2 at 20.
        std::optional<checkpoint> own;
        if (!unreplicated)
            own = gated_record(99, "dc2", 99);
        auto act = fsm.resume(event::destination_read{snap(20, dst), own, unreplicated ? std::uint64_t{0} : std::uint64_t{20}});
        (void)expect<action::stream_source>(act);
        kv_map state = as_map(dst);
        kv_map const before = state;
        std::set<std::string> must_save;
        if (unreplicated)
            for (auto const& e : dst) must_save.insert(e.key);
        std::size_t early = 0;
        act = fsm.resume(event::source_chunk{{src.begin(), src.begin() + 4}});
        while (auto* ap = std::get_if<action::apply_puts>(&act)) {
            ++early;
            apply_and_check(state, ap->ops, before, must_save, "0-dc1-to-dc2");
            act = fsm.resume(event::puts_queued{});
        }
        (void)expect<action::read_chunk>(act);
        act = fsm.resume(event::source_chunk{{src.begin() + 4, src.end()}});
        while (auto* ap = std::get_if<action::apply_puts>(&act)) {
            ++early;
            apply_and_check(state, ap->ops, before, must_save, "0-dc1-to-dc2");
            act = fsm.resume(event::puts_queued{});
        }
        act = fsm.resume(event::source_end{110});
        while (auto* ab = std::get_if<action::apply_batch>(&act)) {
            apply_and_check(state, *ab->ops, before, must_save, unreplicated ? "0-dc1-to-dc2" : "20-dc1-to-dc2");
            act = fsm.resume(event::batch_applied{});
        }
        (void)expect<action::read_source>(act);
        if (unreplicated) {
            CHECK(early == 0);
            CHECK(state.at("lf/0-dc1-to-dc2/d/x").first == "gone");
            CHECK(state.at("lf/0-dc1-to-dc2/d/3").first == "old3");
        } else {
            CHECK(early > 0);
            for (auto const& [k, v] : state) CHECK_FALSE(std::string_view(k).starts_with("lf/"));
        }
        CHECK(state.at("d/3").first == "new3");
        CHECK_FALSE(state.contains("d/x"));
    }
}

TEST_CASE("lost_found: property: random rounds never destroy an unsaved key", "[engine]")
{
    std::mt19937_64 rng(20261203);
    for (int iter = 0; iter < 200; ++iter) {
        CAPTURE(iter);
        std::vector<kv_entry> dst;
        std::vector<kv_entry> src;
        for (int i = 0; i < 30; ++i) {
            auto const r = rng() % 4;
            std::uint64_t const mi = 1 + rng() % 100;
            if (r != 0)
                dst.push_back(kv(fmt::format("d/{:02}", i), fmt::format("d{}", rng() % 3), mi, rng() % 2));
            if (r != 1)
                src.push_back(kv(fmt::format("s/{:02}", i), fmt::format("d{}", rng() % 3), 200, rng() % 2));
        }
        std::uint64_t const threshold_l = rng() % 100;
        bool const stream = rng() % 2 == 0;
        auto cfg = config(gated_record(1, "dc1", threshold_l), stream);
        cfg.guard.allow_mass_delete = true;
        cfg.guard.allow_empty_source = true;
        replicator_fsm fsm(cfg);
        kv_map state = as_map(dst);
        kv_map const before = state;
        std::set<std::string> must_save;
        for (auto const& e : dst)
            if (e.modify_index > threshold_l)
                must_save.insert(e.key);
        std::string const turn = "0-dc1-to-dc2";
        auto act = fsm.resume(event::start{});
        if (stream) {
            act = fsm.resume(event::destination_read{snap(100, dst), std::nullopt, 0});
            (void)expect<action::stream_source>(act);
            std::size_t pos = 0;
            act = action::read_chunk{};
            while (pos < src.size()) {
                std::size_t const n = std::min<std::size_t>(src.size() - pos, 1 + rng() % 7);
                act = fsm.resume(event::source_chunk{{src.begin() + static_cast<std::ptrdiff_t>(pos),
                                                      src.begin() + static_cast<std::ptrdiff_t>(pos + n)}});
                pos += n;
                while (auto* ap = std::get_if<action::apply_puts>(&act)) {
                    apply_and_check(state, ap->ops, before, must_save, turn);
                    act = fsm.resume(event::puts_queued{});
                }
            }
            act = fsm.resume(event::source_end{210});
        } else {
            (void)expect<action::read_destination>(fsm.resume(event::source_read{snap(210, src)}));
            act = fsm.resume(event::destination_read{snap(100, dst), std::nullopt, 0});
        }
        while (auto* ab = std::get_if<action::apply_batch>(&act)) {
            apply_and_check(state, *ab->ops, before, must_save, turn);
            act = fsm.resume(event::batch_applied{});
        }
        (void)expect<action::read_source>(act);
        // The destination mirrors the source outside lost+found.
        kv_map mirrored;
        for (auto const& [k, v] : state)
            if (std::string_view(k).starts_with("d/") && k != pair_rule("s/", "d/").status_key)
                mirrored[k] = v;
        kv_map want;
        for (auto const& e : src) want["d/" + e.key.substr(2)] = {e.value, e.flags};
        CHECK(mirrored == want);
    }
}
