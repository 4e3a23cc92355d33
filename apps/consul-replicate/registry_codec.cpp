#include "registry_codec.hpp"

#include <gotext/go_string.hpp>

#include <fmt/format.h>
#include <rapidjson/document.h>

namespace kvship::replicate {

namespace {

std::string string_member(const rapidjson::Value& v, const char* name)
{
    auto it = v.FindMember(name);
    return it != v.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString(), it->value.GetStringLength())
                                                       : std::string{};
}

}  // namespace

std::string encode_registry_entry(const engine::published_replicator& r)
{
    std::string out = "{\"ID\":";
    gotext::append_go_json_string(out, r.id);
    out += ",\"Host\":";
    gotext::append_go_json_string(out, r.host);
    out += fmt::format(",\"PID\":{},\"Datacenter\":", r.pid);
    gotext::append_go_json_string(out, r.datacenter);
    out += fmt::format(",\"Gated\":{},\"Pairs\":[", r.gated ? "true" : "false");
    for (std::size_t i = 0; i < r.pairs.size(); ++i) {
        auto const& p = r.pairs[i];
        out += i == 0 ? "{\"SourceDatacenter\":" : ",{\"SourceDatacenter\":";
        gotext::append_go_json_string(out, p.source_dc);
        out += ",\"Source\":";
        gotext::append_go_json_string(out, p.source);
        out += ",\"Destination\":";
        gotext::append_go_json_string(out, p.destination);
        out += '}';
    }
    out += "]}";
    return out;
}

std::optional<engine::published_replicator> decode_registry_entry(std::string_view text)
{
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
    if (doc.HasParseError() || !doc.IsObject())
        return std::nullopt;
    engine::published_replicator r;
    r.id = string_member(doc, "ID");
    r.host = string_member(doc, "Host");
    r.datacenter = string_member(doc, "Datacenter");
    if (auto it = doc.FindMember("PID"); it != doc.MemberEnd() && it->value.IsInt64())
        r.pid = it->value.GetInt64();
    if (auto it = doc.FindMember("Gated"); it != doc.MemberEnd() && it->value.IsBool())
        r.gated = it->value.GetBool();
    auto pairs = doc.FindMember("Pairs");
    if (r.id.empty() || r.datacenter.empty() || pairs == doc.MemberEnd() || !pairs->value.IsArray())
        return std::nullopt;
    for (auto const& p : pairs->value.GetArray()) {
        if (!p.IsObject())
            return std::nullopt;
        r.pairs.push_back({string_member(p, "SourceDatacenter"), string_member(p, "Source"), string_member(p, "Destination")});
    }
    return r;
}

}  // namespace kvship::replicate
