// The replicator's stored records: consul-replicate's status record (with kvship's gated fields)
// and the lost+found .turn record.
#include "checkpoint_codec.hpp"
#include "lost_found_codec.hpp"

#include <catch2/catch.hpp>

using namespace kvship;
using namespace kvship::replicate;

TEST_CASE("status record: consul-replicate's bytes, kvship's fields only in gated runs", "[replicate][codec]")
{
    engine::checkpoint c{42, "vault/", "vault/"};
    CHECK(encode_checkpoint(c) == "{\n  \"LastReplicated\": 42,\n  \"Source\": \"vault/\",\n  \"Destination\": \"vault/\"\n}");
    c.source_datacenter = "dc2";
    c.mirrored_index = 40;
    CHECK(
        encode_checkpoint(c) ==
        "{\n  \"LastReplicated\": 42,\n  \"Source\": \"vault/\",\n  \"Destination\": \"vault/\",\n"
        "  \"SourceDatacenter\": \"dc2\",\n  \"MirroredIndex\": 40\n}"
    );
    auto back = decode_checkpoint(encode_checkpoint(c));
    REQUIRE(back.has_value());
    CHECK(*back == c);

    // consul-replicate's record (no kvship fields) and unknown fields
    auto old = decode_checkpoint(R"({"LastReplicated": 7, "Source": "a", "Destination": "b", "Other": [1]})");
    REQUIRE(old.has_value());
    CHECK(*old == engine::checkpoint{7, "a", "b"});
    auto ci = decode_checkpoint(R"({"sourcedatacenter": "dc1", "mirroredindex": 3})");
    REQUIRE(ci.has_value());
    CHECK(ci->source_datacenter == "dc1");
    CHECK(ci->mirrored_index == 3);

    CHECK(decode_checkpoint(R"({"SourceDatacenter": 5})").error() ==
          "invalid status record: SourceDatacenter is not a string");
    CHECK(decode_checkpoint(R"({"MirroredIndex": -1})").error() ==
          "invalid status record: MirroredIndex is not an unsigned integer");
}

TEST_CASE("turn record: round trip and errors", "[replicate][codec]")
{
    engine::turn_record r{"40-dc1-to-dc2", "dc1", "dc2", "2026-12-03T17:00:00Z", "source_checkpoint", 55, 40, 3};
    auto const text = encode_turn_record(r);
    CHECK(
        text ==
        "{\n  \"Turn\": \"40-dc1-to-dc2\",\n  \"OldPrimary\": \"dc1\",\n  \"NewPrimary\": \"dc2\",\n"
        "  \"Time\": \"2026-12-03T17:00:00Z\",\n  \"Rule\": \"source_checkpoint\",\n  \"SourceReplicated\": 55,\n"
        "  \"LocalCheckpoint\": 40,\n  \"Count\": 3\n}"
    );
    auto back = decode_turn_record(text);
    REQUIRE(back.has_value());
    CHECK(*back == r);

    r.source_replicated.reset();
    r.rule = "all_unreplicated";
    auto const t2 = encode_turn_record(r);
    CHECK(t2.find("\"SourceReplicated\": null") != std::string::npos);
    auto back2 = decode_turn_record(t2);
    REQUIRE(back2.has_value());
    CHECK(*back2 == r);

    CHECK_FALSE(decode_turn_record("[]").has_value());
    CHECK_FALSE(decode_turn_record("{\"Count\": \"x\"}").has_value());
    CHECK_FALSE(decode_turn_record("not json").has_value());
}
