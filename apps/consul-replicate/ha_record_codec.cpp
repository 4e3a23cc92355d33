#include "ha_record_codec.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <ctime>
#include <optional>

namespace kvship::replicate {

namespace {

using engine::ha_record;

std::string utc_now_text()
{
    std::time_t const t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace

std::string encode_ha_record(const ha_record& r)
{
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    auto str = [&](const char* k, const std::string& v) {
        w.Key(k);
        w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
    };
    w.StartObject();
    w.Key("Epoch");
    w.Uint64(r.epoch);
    str("Primary", r.primary);
    str("Phase", std::string(engine::to_string(r.stage)));
    if (!r.from.empty())
        str("From", r.from);
    w.Key("Force");
    w.Bool(r.force);
    str("Reason", r.reason);
    w.Key("FenceIndex");
    w.Uint64(r.fence_index);
    str("UpdatedAt", utc_now_text());
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

prefixes::result<ha_record, std::string> decode_ha_record(std::string_view text)
{
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseStopWhenDoneFlag>(text.data(), text.size());
    if (doc.HasParseError())
        return std::string(fmt::format(
            "not JSON: {} at offset {}", rapidjson::GetParseError_En(doc.GetParseError()), doc.GetErrorOffset()
        ));
    if (!doc.IsObject())
        return std::string("not a JSON object");
    ha_record r;
    auto str = [&](const char* k, std::string& out, bool required) -> std::optional<std::string> {
        auto it = doc.FindMember(k);
        if (it == doc.MemberEnd()) {
            if (required)
                return fmt::format("{} is missing", k);
            return std::nullopt;
        }
        if (!it->value.IsString())
            return fmt::format("{} is not a string", k);
        out.assign(it->value.GetString(), it->value.GetStringLength());
        return std::nullopt;
    };
    auto num = [&](const char* k, std::uint64_t& out, bool required) -> std::optional<std::string> {
        auto it = doc.FindMember(k);
        if (it == doc.MemberEnd()) {
            if (required)
                return fmt::format("{} is missing", k);
            return std::nullopt;
        }
        if (!it->value.IsUint64())
            return fmt::format("{} is not an unsigned integer", k);
        out = it->value.GetUint64();
        return std::nullopt;
    };
    std::string phase;
    if (auto e = num("Epoch", r.epoch, true))
        return *e;
    if (auto e = str("Primary", r.primary, true))
        return *e;
    if (r.primary.empty())
        return std::string("Primary is empty");
    if (auto e = str("Phase", phase, true))
        return *e;
    if (phase == "primary")
        r.stage = ha_record::phase::primary;
    else if (phase == "promoting")
        r.stage = ha_record::phase::promoting;
    else
        return fmt::format("Phase {:?} is neither \"primary\" nor \"promoting\"", phase.substr(0, 40));
    if (auto e = str("From", r.from, false))
        return *e;
    if (r.stage == ha_record::phase::promoting && r.from.empty())
        return std::string("a promoting record needs From");
    if (auto it = doc.FindMember("Force"); it != doc.MemberEnd()) {
        if (!it->value.IsBool())
            return std::string("Force is not a boolean");
        r.force = it->value.GetBool();
    }
    if (auto e = str("Reason", r.reason, false))
        return *e;
    if (auto e = num("FenceIndex", r.fence_index, false))
        return *e;
    return r;
}

}  // namespace kvship::replicate
