#include "lost_found_codec.hpp"

#include <gotext/go_string.hpp>

#include <fmt/format.h>
#include <rapidjson/document.h>

namespace kvship::replicate {

std::string encode_turn_record(const engine::turn_record& r)
{
    std::string out = "{\n  \"Turn\": ";
    gotext::append_go_json_string(out, r.turn);
    out += ",\n  \"OldPrimary\": ";
    gotext::append_go_json_string(out, r.old_primary);
    out += ",\n  \"NewPrimary\": ";
    gotext::append_go_json_string(out, r.new_primary);
    out += ",\n  \"Time\": ";
    gotext::append_go_json_string(out, r.time);
    out += ",\n  \"Rule\": ";
    gotext::append_go_json_string(out, r.rule);
    if (r.source_replicated)
        out += fmt::format(",\n  \"SourceReplicated\": {}", *r.source_replicated);
    else
        out += ",\n  \"SourceReplicated\": null";
    out += fmt::format(",\n  \"LocalCheckpoint\": {},\n  \"Count\": {}\n}}", r.local_checkpoint, r.count);
    return out;
}

engine::result<engine::turn_record, std::string> decode_turn_record(std::string_view text)
{
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
    if (doc.HasParseError() || !doc.IsObject())
        return std::string("invalid turn record: not a JSON object");
    engine::turn_record r;
    auto str = [&](const char* name, std::string& into) -> bool {
        auto it = doc.FindMember(name);
        if (it == doc.MemberEnd() || it->value.IsNull())
            return true;
        if (!it->value.IsString())
            return false;
        into.assign(it->value.GetString(), it->value.GetStringLength());
        return true;
    };
    auto num = [&](const char* name, std::uint64_t& into, bool& present) -> bool {
        present = false;
        auto it = doc.FindMember(name);
        if (it == doc.MemberEnd() || it->value.IsNull())
            return true;
        if (!it->value.IsUint64())
            return false;
        into = it->value.GetUint64();
        present = true;
        return true;
    };
    std::uint64_t l = 0;
    std::uint64_t count = 0;
    bool has_l = false;
    bool ignored = false;
    if (!str("Turn", r.turn) || !str("OldPrimary", r.old_primary) || !str("NewPrimary", r.new_primary) ||
        !str("Time", r.time) || !str("Rule", r.rule) || !num("SourceReplicated", l, has_l) ||
        !num("LocalCheckpoint", r.local_checkpoint, ignored) || !num("Count", count, ignored))
        return std::string("invalid turn record: a field has the wrong type");
    if (has_l)
        r.source_replicated = l;
    r.count = static_cast<std::size_t>(count);
    return r;
}

}  // namespace kvship::replicate
