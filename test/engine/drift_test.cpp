#include "builders.hpp"

#include <engine/drift.hpp>

#include <random>

using namespace kvship::engine;
using namespace kvship::engine::test;

namespace {

// Feeds `src` in chunks of `chunk` entries and collects every item.
std::vector<drift_item> scan_all(drift_scan& scan, const std::vector<kv_entry>& src, std::size_t chunk)
{
    std::vector<drift_item> out;
    for (std::size_t i = 0; i < src.size(); i += chunk) {
        std::span<const kv_entry> const part(src.data() + i, std::min(chunk, src.size() - i));
        auto r = scan.feed(part);
        REQUIRE(r.has_value());
        for (auto& d : r.value()) out.push_back(std::move(d));
    }
    for (auto& d : scan.finish()) out.push_back(std::move(d));
    return out;
}

std::vector<std::string> summary_of(const std::vector<drift_item>& items)
{
    std::vector<std::string> out;
    for (auto const& d : items) out.push_back(fmt::format("{} {}", to_string(d.kind), d.destination_key));
    return out;
}

}  // namespace

TEST_CASE("drift_scan: equal sides report nothing", "[engine][drift]")
{
    drift_scan scan(pair_rule("s/", "d/"), {kv("d/a", "1"), kv("d/b", "2", 1, 7)});
    auto const items = scan_all(scan, {kv("s/a", "1", 9), kv("s/b", "2", 9, 7)}, 1);
    CHECK(items.empty());
    CHECK(scan.totals() == drift_totals{0, 0, 0, 2, 2, 0});
    CHECK(format_drift_summary_text("s/@dc1:d/", scan.totals()) ==
          "s/@dc1:d/: no differences (2 source keys, 2 destination keys compared)");
}

TEST_CASE("drift_scan: each kind of difference, in destination key order, for any chunking", "[engine][drift]")
{
    std::size_t const chunk = GENERATE(1, 2, 3, 100);
    std::vector<kv_entry> const src{
        kv("s/a", "same"),
        kv("s/b", "new"),          // only in source
        kv("s/c", "long value"),   // value differs
        kv("s/d", "v", 1, 5),      // flags differ
        kv("s/e", "x", 1, 1),      // both differ
        kv("s/sys/expire/1", "e"), // excluded: differs, not reported
    };
    std::vector<kv_entry> const dst{
        kv("d/a", "same"),
        kv("d/c", "short"),
        kv("d/d", "v", 1, 0),
        kv("d/e", "yy", 1, 2),
        kv("d/f", "gone"),              // only in destination
        kv("d/sys/expire/1", "other"),  // excluded
        kv("d/sys/expire/2", "extra"),  // excluded
        kv("d/z", "last"),              // only in destination, after every source key
    };
    drift_scan scan(pair_rule("s/", "d/", {"s/sys/expire/"}), dst);
    auto const items = scan_all(scan, src, chunk);
    CHECK(summary_of(items) == std::vector<std::string>{
                                   "only_in_source d/b",
                                   "different d/c",
                                   "different d/d",
                                   "different d/e",
                                   "only_in_destination d/f",
                                   "only_in_destination d/z"});
    REQUIRE(items.size() == 6);
    CHECK(items[0].source_key == "s/b");
    CHECK(items[1].value_differs);
    CHECK_FALSE(items[1].flags_differ);
    CHECK(items[1].source_bytes == 10);
    CHECK(items[1].destination_bytes == 5);
    CHECK_FALSE(items[2].value_differs);
    CHECK(items[2].flags_differ);
    CHECK(items[3].value_differs);
    CHECK(items[3].flags_differ);
    CHECK(items[4].source_key == "s/f");
    CHECK(scan.totals() == drift_totals{1, 2, 3, 5, 6, 1});
}

TEST_CASE("drift_scan: checkpoints and nested pairs' destinations are not drift", "[engine][drift]")
{
    // Destination "" covers the status dir: the checkpoints there are not the pair's keys.
    auto rule = pair_rule("app/", "");
    rule.protected_prefixes.push_back("app2/");
    std::string const status = rule.status_key;
    drift_scan scan(rule, {kv("a", "1"), kv(status, "{}"), kv("app2/x", "other pair")});
    auto const items = scan_all(scan, {kv("app/a", "1")}, 10);
    CHECK(items.empty());
    CHECK(scan.totals().differences() == 0);
}

TEST_CASE("drift_scan: a source out of key order is an error, not a wrong report", "[engine][drift]")
{
    drift_scan scan(pair_rule("s/", "d/"), {kv("d/a", "1")});
    std::vector<kv_entry> const first{kv("s/b", "1")};
    REQUIRE(scan.feed(first).has_value());
    std::vector<kv_entry> const second{kv("s/a", "1")};
    auto r = scan.feed(second);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().find("not in key order") != std::string::npos);
    std::vector<kv_entry> const dup{kv("s/c", "1"), kv("s/c", "2")};
    drift_scan again(pair_rule("s/", "d/"), {});
    CHECK_FALSE(again.feed(dup).has_value());
}

TEST_CASE("drift_scan agrees with make_plan on random listings", "[engine][drift]")
{
    std::mt19937 rng(GENERATE(1u, 2u, 3u, 4u, 5u));
    std::vector<kv_entry> src;
    std::vector<kv_entry> dst;
    for (int i = 0; i < 300; ++i) {
        auto const key = fmt::format("{:04}", i);
        auto const roll = rng() % 5;
        if (roll != 0)
            src.push_back(kv("s/" + key, std::to_string(rng() % 3), 1, rng() % 2));
        if (roll != 1)
            dst.push_back(kv("d/" + key, std::to_string(rng() % 3), 1, rng() % 2));
    }
    auto const rule = pair_rule("s/", "d/", {"s/00"});
    plan const p = make_plan(snap(1, src), snap(1, dst), rule, {});
    drift_scan scan(rule, dst);
    auto const items = scan_all(scan, src, 1 + rng() % 40);
    std::size_t puts = 0;
    std::size_t deletes = 0;
    for (auto const& d : items) {
        if (d.kind == drift_kind::only_in_destination)
            ++deletes;
        else
            ++puts;
    }
    CHECK(puts == p.puts.size());
    CHECK(deletes == p.deletes.size());
    CHECK(scan.totals().source_keys == p.stats.selected_keys);
    CHECK(scan.totals().destination_keys == p.stats.destination_keys);
}

TEST_CASE("drift report lines: text and JSON", "[engine][drift]")
{
    drift_item only_src{drift_kind::only_in_source, "s/b", "d/b", false, false, 0, 0, 3, 0};
    drift_item only_dst{drift_kind::only_in_destination, "s/f", "d/f", false, false, 0, 4, 0, 2};
    drift_item diff{drift_kind::different, "s/c", "d/c", true, true, 1, 2, 3, 4};
    CHECK(format_drift_text("p", only_src) == "p: only in source: s/b (missing at d/b)");
    CHECK(format_drift_text("p", only_dst) == "p: only in destination: d/f");
    CHECK(format_drift_text("p", diff) ==
          "p: value and flags differ: d/c (source 3 bytes, flags 1; destination 4 bytes, flags 2)");
    diff.flags_differ = false;
    CHECK(format_drift_text("p", diff) == "p: value differs: d/c (source 3 bytes, destination 4 bytes)");
    diff.flags_differ = true;
    diff.value_differs = false;
    CHECK(format_drift_text("p", diff) == "p: flags differ: d/c (source 1, destination 2)");
    CHECK(format_drift_json("p", only_src) ==
          R"({"pair":"p","kind":"only_in_source","source_key":"s/b","destination_key":"d/b","source_bytes":3,"source_flags":0})");
    CHECK(format_drift_json("p", diff) ==
          R"({"pair":"p","kind":"different","source_key":"s/c","destination_key":"d/c","source_bytes":3,"source_flags":1,)"
          R"("destination_bytes":4,"destination_flags":2,"value_differs":false,"flags_differ":true})");
    drift_totals const t{1, 2, 3, 10, 11, 4};
    CHECK(format_drift_summary_text("p", t) ==
          "p: 6 differences (1 only in source, 2 only in destination, 3 different; 10 source keys, 11 destination "
          "keys compared)");
    CHECK(format_drift_summary_json("p", t) ==
          R"({"pair":"p","kind":"summary","differences":6,"only_in_source":1,"only_in_destination":2,"different":3,)"
          R"("source_keys":10,"destination_keys":11,"excluded":4})");
}

TEST_CASE("json_quote escapes and keeps the output valid for any bytes", "[engine][drift]")
{
    CHECK(json_quote("a\"b\\c\n\x01") == R"("a\"b\\c\n\u0001")");
    CHECK(json_quote("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
    CHECK(json_quote("\xff\xc3") == R"("\u00ff\u00c3")");
}
