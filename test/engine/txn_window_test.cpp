#include <engine/txn_window.hpp>

#include <catch2/catch.hpp>

#include <random>
#include <stdexcept>
#include <vector>

using namespace kvship::engine;

namespace {

std::vector<txn_piece> cut(std::size_t from, std::size_t to, std::size_t size)
{
    std::vector<txn_piece> out;
    for (std::size_t pos = from; pos < to; pos += size) out.push_back({pos, std::min(to, pos + size), false});
    return out;
}

std::vector<txn_piece> drain(txn_window& w)
{
    std::vector<txn_piece> out;
    while (auto p = w.next()) out.push_back(*p);
    return out;
}

}  // namespace

TEST_CASE("txn window: at most width in flight; the checkpoint's piece goes last and alone", "[engine][txn_window]")
{
    txn_window w(cut(0, 501, 128), 501, true, 4);
    auto const first = drain(w);
    REQUIRE(first == std::vector<txn_piece>{{0, 128}, {128, 256}, {256, 384}});  // {384, 501} waits
    REQUIRE(w.queued() == 1);
    w.committed(first[0]);
    w.committed(first[1]);
    REQUIRE_FALSE(w.next());  // one data piece still in flight
    w.committed(first[2]);
    auto const last = w.next();
    REQUIRE(last == txn_piece{384, 501});
    REQUIRE_FALSE(w.complete());
    w.committed(*last);
    REQUIRE(w.idle());
    REQUIRE(w.complete());
    REQUIRE(w.committed_ops() == 501);
}

TEST_CASE("txn window: three refusals at once, the checkpoint refused too: nothing is left behind", "[engine][txn_window]")
{
    // The interleaving real Consul 1.10 produced (64-op limit, 128-op pieces, every refusal back in the
    // same wake-up): the old loop sent the checkpoint's piece before taking the refusals, then put that
    // piece's retry in front of the others and ended the round with 180 ops unsent.
    txn_window w(cut(0, 501, 128), 501, true, 4);
    auto const first = drain(w);
    REQUIRE(first.size() == 3);
    // The driver takes every outcome before it asks for the next piece.
    for (auto const& p : first) w.split(p, cut(p.from, p.to, 64));
    std::vector<txn_piece> sent = drain(w);
    REQUIRE(sent == std::vector<txn_piece>{{256, 320}, {320, 384}, {128, 192}, {192, 256}});
    while (!w.idle()) {
        auto const p = sent.front();
        sent.erase(sent.begin());
        if (p == txn_piece{384, 501}) {
            REQUIRE(w.queued() == 0);
            REQUIRE(w.in_flight() == 1);  // alone
            w.split(p, cut(384, 501, 64));
        } else {
            w.committed(p);
        }
        for (auto const& q : drain(w)) sent.push_back(q);
    }
    REQUIRE(w.complete());
    REQUIRE(w.committed_ops() == 501);
}

TEST_CASE("txn window: a split checkpoint piece keeps its checkpoint part behind the others", "[engine][txn_window]")
{
    txn_window w({{0, 10}}, 10, true, 4);
    auto const p = w.next();
    REQUIRE(p == txn_piece{0, 10});
    w.split(*p, {{0, 4}, {4, 7}, {7, 10}});
    auto const sent = drain(w);
    REQUIRE(sent == std::vector<txn_piece>{{0, 4}, {4, 7}});
    w.committed(sent[0]);
    REQUIRE_FALSE(w.next());
    w.committed(sent[1]);
    REQUIRE(w.next() == txn_piece{7, 10});
}

TEST_CASE("txn window: without a checkpoint every piece may be in flight together", "[engine][txn_window]")
{
    txn_window w(cut(0, 300, 100), 300, false, 8);
    REQUIRE(drain(w).size() == 3);
}

TEST_CASE("txn window: a failure or a stop sends nothing more and is never complete", "[engine][txn_window]")
{
    SECTION("failure")
    {
        txn_window w(cut(0, 401, 100), 401, true, 2);
        auto const sent = drain(w);
        REQUIRE(sent.size() == 2);
        w.failed(sent[0]);
        REQUIRE_FALSE(w.next());
        REQUIRE_FALSE(w.idle());  // one still in flight
        w.committed(sent[1]);
        REQUIRE(w.idle());
        REQUIRE_FALSE(w.complete());
    }
    SECTION("stop")
    {
        txn_window w(cut(0, 401, 100), 401, true, 2);
        auto const sent = drain(w);
        w.stop();
        w.committed(sent[0]);
        w.committed(sent[1]);
        REQUIRE_FALSE(w.next());
        REQUIRE(w.idle());
        REQUIRE_FALSE(w.complete());
    }
}

TEST_CASE("txn window: bad pieces and outcomes are refused", "[engine][txn_window]")
{
    REQUIRE_THROWS_AS(txn_window({{0, 5}, {6, 10}}, 10, true, 2), std::invalid_argument);
    REQUIRE_THROWS_AS(txn_window({{0, 5}}, 10, true, 2), std::invalid_argument);
    REQUIRE_THROWS_AS(txn_window({{0, 5}, {5, 5}, {5, 10}}, 10, true, 2), std::invalid_argument);
    txn_window w({{0, 5}, {5, 10}}, 10, false, 2);
    auto const p = w.next();
    REQUIRE_THROWS_AS(w.committed(txn_piece{5, 10}), std::logic_error);  // not sent yet
    REQUIRE_THROWS_AS(w.split(*p, {{0, 2}, {3, 5}}), std::logic_error);
    w.committed(*p);
    REQUIRE_THROWS_AS(w.committed(*p), std::logic_error);  // twice
    txn_window empty({}, 0, true, 2);
    REQUIRE(empty.idle());
    REQUIRE(empty.complete());
}

TEST_CASE("txn window: any order of outcomes and refusals commits every op exactly once", "[engine][txn_window]")
{
    std::mt19937 rng(20261204);
    for (int round = 0; round < 2000; ++round) {
        std::size_t const n = 1 + rng() % 700;
        std::size_t const width = 1 + rng() % 6;
        bool const ckpt = rng() % 2 == 0;
        txn_window w(cut(0, n, 1 + rng() % 200), n, ckpt, width);
        std::vector<int> commits(n, 0);
        std::vector<txn_piece> flying;
        for (auto const& p : drain(w)) flying.push_back(p);
        while (!w.idle()) {
            REQUIRE_FALSE(flying.empty());
            REQUIRE(flying.size() <= width);
            // Several outcomes may be taken before the next send.
            std::size_t const batch = 1 + rng() % flying.size();
            for (std::size_t k = 0; k < batch; ++k) {
                std::size_t const i = rng() % flying.size();
                auto const p = flying[i];
                flying.erase(flying.begin() + static_cast<std::ptrdiff_t>(i));
                if (ckpt && p.to == n)
                    REQUIRE(flying.empty());  // the checkpoint's piece is always alone
                if (p.to - p.from > 1 && rng() % 3 == 0) {
                    w.split(p, cut(p.from, p.to, (p.to - p.from + 1) / 2));
                } else {
                    for (std::size_t op = p.from; op < p.to; ++op) ++commits[op];
                    if (ckpt && p.to == n)
                        for (std::size_t op = 0; op < n; ++op) REQUIRE(commits[op] == 1);  // data first
                    w.committed(p);
                }
            }
            for (auto const& p : drain(w)) flying.push_back(p);
        }
        REQUIRE(w.complete());
        for (std::size_t op = 0; op < n; ++op) REQUIRE(commits[op] == 1);
    }
}

namespace {

batch batch_of(std::size_t singles, std::size_t txns, std::size_t txn_size)
{
    batch b;
    for (std::size_t i = 0; i < singles; ++i) {
        b.ops.push_back(txn_op{txn_verb::set, "d/s" + std::to_string(i), "v", 0});
        b.sources.push_back(1 + i);
    }
    for (std::size_t t = 0; t < txns; ++t)
        for (std::size_t k = 0; k < txn_size; ++k) {
            b.ops.push_back(txn_op{txn_verb::set, "d/t" + std::to_string(t) + "/" + std::to_string(k), "v", 0});
            b.sources.push_back(100 + t);
        }
    b.estimated_bytes = estimate_body_bytes(b.ops);
    return b;
}

}  // namespace

TEST_CASE("limits for txns: the fence op's room comes off the server's limits", "[engine][txn_window][too_large]")
{
    auto const plain = limits_for_txns(64, 512 * 1024, 512 * 1024, {});
    CHECK(plain.max_ops == 64);
    CHECK(plain.max_bytes == 512 * 1024);
    CHECK(plain.plain_put_oversized);
    auto const room = fence_reserve("service/kvship/.lock", 36);
    CHECK(room.ops == 1);
    // The encoded op is within the room (the encoder's own field order and spacing).
    std::string const encoded =
        R"({"KV":{"Verb":"check-session","Key":"service/kvship/.lock","Session":"0123456789abcdef0123456789abcdef0123"}},)";
    CHECK(encoded.size() <= room.bytes);
    auto const fenced = limits_for_txns(64, 512 * 1024, 512 * 1024, room);
    CHECK(fenced.max_ops == 63);
    CHECK(fenced.max_bytes == 512 * 1024 - room.bytes);
    CHECK(limits_for_txns(1, 1000, 10, room).max_ops == 1);  // never 0
}

TEST_CASE("too large: too many ops teaches the named limit and re-cuts keeping source txns whole", "[engine][txn_window][too_large]")
{
    // A 24-op batch (8 singles, four 4-op source txns) refused: "too many operations (24 > 10)".
    batch const b = batch_of(8, 4, 4);
    auto const a = answer_too_large(b, {0, 24}, {true, 10, 24}, 128, 512 * 1024, {});
    REQUIRE(a.learned_ops == 10u);
    CHECK_FALSE(a.learned_bytes);
    CHECK(a.parts == std::vector<txn_piece>{{0, 8}, {8, 16}, {16, 24}});
    // With the fence op sent too (25 seen), the parts keep room for it: 9 ops each.
    auto const fenced = answer_too_large(b, {0, 24}, {true, 10, 25}, 128, 512 * 1024, {1, 120});
    REQUIRE(fenced.learned_ops == 10u);
    for (auto const& p : fenced.parts) CHECK(p.to - p.from <= 9);
    CHECK(fenced.parts == std::vector<txn_piece>{{0, 8}, {8, 16}, {16, 24}});
    // A limit already learned lower (another pair) is kept, and cuts.
    auto const lower = answer_too_large(b, {8, 24}, {true, 64, 16}, 4, 512 * 1024, {});
    CHECK_FALSE(lower.learned_ops);
    CHECK(lower.parts == std::vector<txn_piece>{{8, 12}, {12, 16}, {16, 20}, {20, 24}});
}

TEST_CASE("too large: no limit named: half of what was sent", "[engine][txn_window][too_large]")
{
    batch const b = batch_of(20, 0, 0);
    auto const a = answer_too_large(b, {4, 20}, {true, 0, 16}, 128, 512 * 1024, {});
    REQUIRE(a.learned_ops == 8u);
    CHECK(a.parts == std::vector<txn_piece>{{4, 12}, {12, 20}});
    // A limit the server names at or above what was sent cannot be right: half, too.
    auto const odd = answer_too_large(b, {0, 20}, {true, 64, 20}, 128, 512 * 1024, {});
    CHECK(odd.learned_ops == 10u);
}

TEST_CASE("too large: the body limit, named or not", "[engine][txn_window][too_large]")
{
    batch const b = batch_of(6, 0, 0);
    std::size_t const op = estimate_op_bytes(b.ops[0]);
    // Named: learned, and the piece cut by it (two ops per txn).
    auto const named = answer_too_large(b, {0, 6}, {false, 2 + 2 * op, 6}, 128, 512 * 1024, {});
    REQUIRE(named.learned_bytes == 2 + 2 * op);
    CHECK_FALSE(named.learned_ops);
    CHECK(named.parts == std::vector<txn_piece>{{0, 2}, {2, 4}, {4, 6}});
    // Not named (or not lower than known): halves.
    auto const halves = answer_too_large(b, {0, 6}, {false, 0, 6}, 128, 512 * 1024, {});
    CHECK_FALSE(halves.learned_bytes);
    CHECK(halves.parts == std::vector<txn_piece>{{0, 3}, {3, 6}});
}

TEST_CASE("too large: one op cannot be made smaller; a cut giving the piece back whole halves it", "[engine][txn_window][too_large]")
{
    batch const b = batch_of(4, 0, 0);
    CHECK(answer_too_large(b, {2, 3}, {true, 1, 1}, 128, 512 * 1024, {}).parts.empty());
    CHECK(answer_too_large(b, {2, 3}, {false, 0, 1}, 128, 512 * 1024, {}).parts.empty());
    // The server says 64 and the piece has 4 ops: the learned limit (half: 2) cuts it.
    CHECK(answer_too_large(b, {0, 4}, {true, 64, 4}, 128, 512 * 1024, {}).parts == std::vector<txn_piece>{{0, 2}, {2, 4}});
    // A named byte limit that still fits the whole piece: halves, so the retry is smaller.
    auto const whole = answer_too_large(b, {0, 4}, {false, 100000, 4}, 128, 512 * 1024, {});
    CHECK(whole.learned_bytes == 100000u);
    CHECK(whole.parts == std::vector<txn_piece>{{0, 2}, {2, 4}});
    // The parts always go to the window as a split of the piece.
    txn_window w({{0, 4}}, 4, false, 2);
    auto const p = w.next();
    REQUIRE(p);
    w.split(*p, whole.parts);
    CHECK(drain(w) == whole.parts);
}

TEST_CASE("txn window: an open-ended window takes pieces as they come (the stream's puts)", "[engine][txn_window]")
{
    txn_window w({}, 0, false, 2);
    CHECK(w.idle());
    CHECK(w.complete());
    w.append({0, 10});
    w.append({10, 12, true});
    w.append({12, 20});
    auto const first = drain(w);
    REQUIRE(first == std::vector<txn_piece>{{0, 10}, {10, 12, true}});
    w.split(first[0], {{0, 5}, {5, 10}});
    CHECK(w.next() == txn_piece{0, 5});  // refused parts go first
    w.committed(first[1]);
    w.committed({0, 5});
    CHECK(drain(w) == std::vector<txn_piece>{{5, 10}, {12, 20}});
    w.committed({5, 10});
    w.committed({12, 20});
    CHECK(w.complete());
    CHECK(w.committed_ops() == 20);
    CHECK_THROWS_AS(w.append({21, 30}), std::invalid_argument);  // a gap
    txn_window with_checkpoint({{0, 3}}, 3, true, 2);
    CHECK_THROWS_AS(with_checkpoint.append({3, 4}), std::invalid_argument);
}

TEST_CASE("judge_txn: what a finished txn means for the round", "[engine][txn_window]")
{
    using k = txn_verdict::kind;
    CHECK(judge_txn(txn_answer::committed, false, false) == txn_verdict{k::committed, "ok", false});
    CHECK(judge_txn(txn_answer::too_many_ops, true, false) == txn_verdict{k::recut, "too_large", false});
    CHECK(judge_txn(txn_answer::too_large, true, false) == txn_verdict{k::recut, "too_large", false});
    CHECK(judge_txn(txn_answer::too_many_ops, false, false) == txn_verdict{k::failure, "error", false});  // one op
    CHECK(judge_txn(txn_answer::fenced, false, false) == txn_verdict{k::lock_gone, "rolled_back", true});
    CHECK(judge_txn(txn_answer::fenced, false, true) == txn_verdict{k::lock_gone, "rolled_back", true});
    CHECK(judge_txn(txn_answer::not_held, false, false) == txn_verdict{k::lock_gone, {}, false});
    CHECK(judge_txn(txn_answer::cancelled, false, true) == txn_verdict{k::nothing, "error", false});
    CHECK(judge_txn(txn_answer::cancelled, false, false) == txn_verdict{k::failure, "error", false});
    CHECK(judge_txn(txn_answer::failed, false, true) == txn_verdict{k::failure, "error", false});
    CHECK(judge_txn(txn_answer::rolled_back, false, false) == txn_verdict{k::failure, "rolled_back", false});
}
