#include <engine/drift.hpp>
#include <engine/plan.hpp>
#include <prefixes/key_map.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace kvship::engine {

namespace {

bool key_less(const kv_entry& a, const kv_entry& b)
{
    return a.key < b.key;
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one.
std::size_t utf8_length(std::string_view s, std::size_t i)
{
    auto const b = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    unsigned char min_second = 0x80;
    unsigned char max_second = 0xBF;
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF) {
        n = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        if (b == 0xE0)
            min_second = 0xA0;
        if (b == 0xED)
            max_second = 0x9F;  // no surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        if (b == 0xF0)
            min_second = 0x90;
        if (b == 0xF4)
            max_second = 0x8F;
    } else {
        return 0;
    }
    if (i + n > s.size())
        return 0;
    for (std::size_t k = 1; k < n; ++k) {
        auto const c = static_cast<unsigned char>(s[i + k]);
        unsigned char const lo = k == 1 ? min_second : 0x80;
        unsigned char const hi = k == 1 ? max_second : 0xBF;
        if (c < lo || c > hi)
            return 0;
    }
    return n;
}

std::string describe_difference(const drift_item& d)
{
    if (d.value_differs && d.flags_differ)
        return fmt::format(
            "value and flags differ: {} (source {} bytes, flags {}; destination {} bytes, flags {})",
            d.destination_key,
            d.source_bytes,
            d.source_flags,
            d.destination_bytes,
            d.destination_flags
        );
    if (d.flags_differ)
        return fmt::format(
            "flags differ: {} (source {}, destination {})", d.destination_key, d.source_flags, d.destination_flags
        );
    return fmt::format(
        "value differs: {} (source {} bytes, destination {} bytes)",
        d.destination_key,
        d.source_bytes,
        d.destination_bytes
    );
}

}  // namespace

std::string_view to_string(drift_kind kind)
{
    switch (kind) {
        case drift_kind::only_in_source:
            return "only_in_source";
        case drift_kind::only_in_destination:
            return "only_in_destination";
        case drift_kind::different:
            return "different";
    }
    return "unknown";
}

drift_scan::drift_scan(prefixes::rule rule, std::vector<kv_entry> destination)
    : rule_(std::move(rule)), dst_(std::move(destination))
{
    // Consul lists in key order: then only duplicates need dropping (stable_sort would copy the listing).
    if (std::is_sorted(dst_.begin(), dst_.end(), key_less))
        dst_.erase(
            std::unique(
                dst_.begin(), dst_.end(), [](const kv_entry& a, const kv_entry& b) { return a.key == b.key; }
            ),
            dst_.end()
        );
    else
        sort_entries(dst_);
}

result<std::vector<drift_item>, std::string> drift_scan::feed(std::span<const kv_entry> chunk)
{
    std::string_view const source = rule_.spec.source;
    const kv_entry* last = nullptr;
    for (auto const& e : chunk) {
        if (!e.key.starts_with(source))
            continue;  // make_plan ignores it (outside_source_prefix)
        std::string_view const before = last != nullptr ? std::string_view(last->key)
                                        : last_source_  ? std::string_view(*last_source_)
                                                        : std::string_view{};
        if ((last != nullptr || last_source_) && !(before < e.key))
            return fmt::format(
                "the source listing is not in key order: {:?} came after {:?}", e.key, std::string(before)
            );
        last = &e;
    }
    if (last == nullptr)
        return std::vector<drift_item>{};
    last_source_ = last->key;

    // The destination slice this chunk covers: every destination key up to the mapped last key.
    std::string_view const destination = rule_.spec.destination;
    std::string_view const last_suffix = std::string_view(last->key).substr(source.size());
    std::size_t end = next_dst_;
    while (end < dst_.size()) {
        std::string_view const k = dst_[end].key;
        if (k.starts_with(destination) && k.substr(destination.size()) > last_suffix)
            break;
        ++end;
    }
    return compare(chunk, end);
}

std::vector<drift_item> drift_scan::finish()
{
    return compare({}, dst_.size());
}

std::vector<drift_item> drift_scan::compare(std::span<const kv_entry> src, std::size_t dst_end)
{
    std::span<const kv_entry> const dst(dst_.data() + next_dst_, dst_end - next_dst_);
    next_dst_ = dst_end;
    plan const p = make_plan(src, 0, dst, rule_, checkpoint{}, true);
    totals_.source_keys += p.stats.selected_keys;
    totals_.destination_keys += p.stats.destination_keys;
    totals_.excluded += p.stats.filtered;

    auto const find_dst = [&](const std::string& key) -> const kv_entry* {
        kv_entry probe;
        probe.key = key;
        auto it = std::lower_bound(dst.begin(), dst.end(), probe, key_less);
        return it != dst.end() && it->key == key ? &*it : nullptr;
    };
    std::vector<drift_item> out;
    out.reserve(p.puts.size() + p.deletes.size());
    for (auto const& put : p.puts) {
        drift_item d;
        d.destination_key = put.key;
        d.source_key = prefixes::unmap_key(rule_.spec, put.key).value_or(std::string{});
        d.source_flags = put.flags;
        d.source_bytes = put.value.size();
        if (const kv_entry* have = find_dst(put.key)) {
            d.kind = drift_kind::different;
            d.value_differs = have->value != put.value;
            d.flags_differ = have->flags != put.flags;
            d.destination_flags = have->flags;
            d.destination_bytes = have->value.size();
            ++totals_.different;
        } else {
            d.kind = drift_kind::only_in_source;
            ++totals_.only_in_source;
        }
        out.push_back(std::move(d));
    }
    for (auto const& del : p.deletes) {
        drift_item d;
        d.kind = drift_kind::only_in_destination;
        d.destination_key = del.key;
        d.source_key = prefixes::unmap_key(rule_.spec, del.key).value_or(std::string{});
        if (const kv_entry* have = find_dst(del.key)) {
            d.destination_flags = have->flags;
            d.destination_bytes = have->value.size();
        }
        ++totals_.only_in_destination;
        out.push_back(std::move(d));
    }
    std::stable_sort(out.begin(), out.end(), [](const drift_item& a, const drift_item& b) {
        return a.destination_key < b.destination_key;
    });
    return out;
}

std::string format_drift_text(std::string_view pair, const drift_item& d)
{
    switch (d.kind) {
        case drift_kind::only_in_source:
            return fmt::format("{}: only in source: {} (missing at {})", pair, d.source_key, d.destination_key);
        case drift_kind::only_in_destination:
            return fmt::format("{}: only in destination: {}", pair, d.destination_key);
        case drift_kind::different:
            return fmt::format("{}: {}", pair, describe_difference(d));
    }
    return {};
}

std::string format_drift_json(std::string_view pair, const drift_item& d)
{
    std::string out = fmt::format(
        R"({{"pair":{},"kind":"{}","source_key":{},"destination_key":{})",
        json_quote(pair),
        to_string(d.kind),
        json_quote(d.source_key),
        json_quote(d.destination_key)
    );
    if (d.kind != drift_kind::only_in_destination)
        out += fmt::format(R"(,"source_bytes":{},"source_flags":{})", d.source_bytes, d.source_flags);
    if (d.kind != drift_kind::only_in_source)
        out += fmt::format(
            R"(,"destination_bytes":{},"destination_flags":{})", d.destination_bytes, d.destination_flags
        );
    if (d.kind == drift_kind::different)
        out += fmt::format(
            R"(,"value_differs":{},"flags_differ":{})", d.value_differs ? "true" : "false", d.flags_differ ? "true" : "false"
        );
    out += '}';
    return out;
}

std::string format_drift_summary_text(std::string_view pair, const drift_totals& t)
{
    if (t.differences() == 0)
        return fmt::format(
            "{}: no differences ({} source keys, {} destination keys compared)",
            pair,
            t.source_keys,
            t.destination_keys
        );
    return fmt::format(
        "{}: {} difference{} ({} only in source, {} only in destination, {} different; {} source keys, {} "
        "destination keys compared)",
        pair,
        t.differences(),
        t.differences() == 1 ? "" : "s",
        t.only_in_source,
        t.only_in_destination,
        t.different,
        t.source_keys,
        t.destination_keys
    );
}

std::string format_drift_summary_json(std::string_view pair, const drift_totals& t)
{
    return fmt::format(
        R"({{"pair":{},"kind":"summary","differences":{},"only_in_source":{},"only_in_destination":{},)"
        R"("different":{},"source_keys":{},"destination_keys":{},"excluded":{}}})",
        json_quote(pair),
        t.differences(),
        t.only_in_source,
        t.only_in_destination,
        t.different,
        t.source_keys,
        t.destination_keys,
        t.excluded
    );
}

std::string json_quote(std::string_view s)
{
    std::string out;
    out.reserve(s.size() + 2);
    out += '"';
    for (std::size_t i = 0; i < s.size();) {
        auto const c = static_cast<unsigned char>(s[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
            ++i;
        } else if (c < 0x20) {
            switch (c) {
                case '\n': out += "\\n"; break;
                case '\r': out += "\\r"; break;
                case '\t': out += "\\t"; break;
                default: out += fmt::format("\\u{:04x}", c); break;
            }
            ++i;
        } else if (std::size_t const n = utf8_length(s, i); n > 0) {
            out.append(s.substr(i, n));
            i += n;
        } else {
            out += fmt::format("\\u{:04x}", c);  // not UTF-8: the byte as a code point
            ++i;
        }
    }
    out += '"';
    return out;
}

}  // namespace kvship::engine
