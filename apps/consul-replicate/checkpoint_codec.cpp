#include "checkpoint_codec.hpp"

#include <gotext/go_string.hpp>

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <cstdint>

namespace kvship::replicate {

std::string encode_checkpoint(const engine::checkpoint& c)
{
    std::string out = fmt::format("{{\n  \"LastReplicated\": {},\n  \"Source\": ", c.last_replicated);
    gotext::append_go_json_string(out, c.source);
    out += ",\n  \"Destination\": ";
    gotext::append_go_json_string(out, c.destination);
    if (!c.source_datacenter.empty()) {
        // kvship's gated runs only: consul-replicate ignores unknown fields.
        out += ",\n  \"SourceDatacenter\": ";
        gotext::append_go_json_string(out, c.source_datacenter);
        out += fmt::format(",\n  \"MirroredIndex\": {}", c.mirrored_index);
    }
    out += "\n}";
    return out;
}

engine::result<engine::checkpoint, std::string> decode_checkpoint(std::string_view text)
{
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());  // no recursion on hostile nesting
    if (doc.HasParseError()) {
        return fmt::format(
            "invalid status record: {} at offset {}",
            rapidjson::GetParseError_En(doc.GetParseError()),
            doc.GetErrorOffset()
        );
    }
    if (!doc.IsObject())
        return std::string("invalid status record: not a JSON object");
    engine::checkpoint c;
    for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
        std::string_view const name(it->name.GetString(), it->name.GetStringLength());
        auto const& v = it->value;
        bool const last = gotext::json_field_name_equal(name, "LastReplicated");
        if (last || gotext::json_field_name_equal(name, "MirroredIndex")) {
            if (v.IsNull())
                continue;
            if (!v.IsUint64())
                return fmt::format("invalid status record: {} is not an unsigned integer", name);
            (last ? c.last_replicated : c.mirrored_index) = v.GetUint64();
        } else if (gotext::json_field_name_equal(name, "SourceDatacenter")) {
            if (v.IsNull())
                continue;
            if (!v.IsString())
                return fmt::format("invalid status record: {} is not a string", name);
            c.source_datacenter.assign(v.GetString(), v.GetStringLength());
        } else if (gotext::json_field_name_equal(name, "Source") || gotext::json_field_name_equal(name, "Destination")) {
            if (v.IsNull())
                continue;
            if (!v.IsString())
                return fmt::format("invalid status record: {} is not a string", name);
            std::string s(v.GetString(), v.GetStringLength());
            if (gotext::json_field_name_equal(name, "Source"))
                c.source = std::move(s);
            else
                c.destination = std::move(s);
        }
    }
    return c;
}

}  // namespace kvship::replicate
