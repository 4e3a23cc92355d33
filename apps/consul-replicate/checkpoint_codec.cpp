#include "checkpoint_codec.hpp"

#include <transport/go_json.hpp>

#include <boost/beast/core/string.hpp>
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <cstdint>

namespace kvship::replicate {

std::string encode_checkpoint(const engine::checkpoint& c)
{
    std::string out = fmt::format("{{\n  \"LastReplicated\": {},\n  \"Source\": ", c.last_replicated);
    transport::append_go_json_string(out, c.source);
    out += ",\n  \"Destination\": ";
    transport::append_go_json_string(out, c.destination);
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
        if (boost::beast::iequals(name, "LastReplicated")) {
            if (v.IsNull())
                continue;
            if (!v.IsUint64())
                return std::string("invalid status record: LastReplicated is not an unsigned integer");
            c.last_replicated = v.GetUint64();
        } else if (boost::beast::iequals(name, "Source") || boost::beast::iequals(name, "Destination")) {
            if (v.IsNull())
                continue;
            if (!v.IsString())
                return fmt::format("invalid status record: {} is not a string", name);
            std::string s(v.GetString(), v.GetStringLength());
            if (boost::beast::iequals(name, "Source"))
                c.source = std::move(s);
            else
                c.destination = std::move(s);
        }
    }
    return c;
}

}  // namespace kvship::replicate
