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
