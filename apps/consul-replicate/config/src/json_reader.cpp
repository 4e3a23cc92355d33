// The one TU that includes RapidJSON for config files.
#include "value.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

namespace kvship::replicate::detail {

namespace {

prefixes::result<node, std::string> convert(const rapidjson::Value& v, int depth)
{
    node n;
    if ((v.IsArray() || v.IsObject()) && depth >= max_nesting)
        return fmt::format("JSON nested more than {} levels deep", max_nesting);
    if (v.IsNull()) {
        n.type = node::kind::null;
    } else if (v.IsBool()) {
        n.type = node::kind::boolean;
        n.boolean = v.GetBool();
    } else if (v.IsInt64()) {
        n.type = node::kind::integer;
        n.integer = v.GetInt64();
    } else if (v.IsUint64()) {
        return std::string("number too large: ") + std::to_string(v.GetUint64());
    } else if (v.IsNumber()) {
        n.type = node::kind::floating;
        n.floating = v.GetDouble();
    } else if (v.IsString()) {
        n.type = node::kind::string;
        n.text.assign(v.GetString(), v.GetStringLength());
    } else if (v.IsArray()) {
        n.type = node::kind::list;
        for (auto const& item : v.GetArray()) {
            auto child = convert(item, depth + 1);
            if (!child)
                return std::move(child).error();
            n.items.push_back(std::move(child).value());
        }
    } else if (v.IsObject()) {
        n.type = node::kind::object;
        for (auto const& m : v.GetObject()) {
            auto child = convert(m.value, depth + 1);
            if (!child)
                return std::move(child).error();
            n.members.push_back(member{
                std::string(m.name.GetString(), m.name.GetStringLength()), std::move(child).value()});
        }
    }
    return n;
}

}  // namespace

prefixes::result<node, std::string> parse_json(std::string_view text)
{
    // Iterative: RapidJSON's recursive parser would overflow the stack on a deeply nested file
    // before convert() could refuse it.
    rapidjson::Document doc;
    // No kParseFullPrecisionFlag: RapidJSON 1.1's full-precision path reads `0e41` as -1.9e230 (Go: 0),
    // after __builtin_clzll(0) (found by test/fuzz). Integers and durations do not need it.
    doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
    if (doc.HasParseError()) {
        return fmt::format(
            "JSON parse error at offset {}: {}",
            doc.GetErrorOffset(),
            rapidjson::GetParseError_En(doc.GetParseError())
        );
    }
    return convert(doc, 0);
}

}  // namespace kvship::replicate::detail
