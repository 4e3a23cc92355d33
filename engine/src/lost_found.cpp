#include <engine/lost_found.hpp>
#include <prefixes/rule.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace kvship::engine {

lost_found_threshold decide_threshold(
    const lost_found_config& cfg,
    const std::optional<checkpoint>& dst_prev,
    std::uint64_t status_modify_index,
    std::uint64_t dst_index
)
{
    lost_found_threshold t;
    std::string local_note;
    if (dst_prev && !cfg.source_dc.empty() && dst_prev->source_datacenter == cfg.source_dc) {
        t.local_checkpoint = status_modify_index;
        local_note = fmt::format("own record from {} at index {}", cfg.source_dc, status_modify_index);
    } else if (!dst_prev) {
        local_note = "no own record";
    } else if (dst_prev->source_datacenter.empty()) {
        local_note = "own record names no source datacenter";
    } else {
        local_note = fmt::format("own record is from {}", dst_prev->source_datacenter);
    }

    auto const& src = cfg.source_record;
    std::string source_note;
    if (!src) {
        source_note = cfg.source_record_note.empty() ? std::string("no record in the source")
                                                     : cfg.source_record_note;
    } else if (src->source_datacenter != cfg.local_dc) {
        source_note = src->source_datacenter.empty()
                          ? std::string("the source's record names no source datacenter")
                          : fmt::format("the source's record is from {}", src->source_datacenter);
    } else if (src->mirrored_index == 0) {
        source_note = "the source's record has no MirroredIndex";
    } else if (src->mirrored_index > dst_index) {
        source_note = fmt::format(
            "the source's record ({}) is ahead of this DC's index {} (index reset?)", src->mirrored_index, dst_index
        );
    } else {
        t.precise = true;
        t.source_replicated = src->mirrored_index;
    }
    if (t.precise) {
        t.rule = "source_checkpoint";
        t.note = fmt::format(
            "{} mirrored {} up to index {}; {}", cfg.source_dc, cfg.local_dc, t.source_replicated, local_note
        );
    } else {
        t.rule = "all_unreplicated";
        t.note = fmt::format("{}; {}", source_note, local_note);
    }
    t.index = std::max(t.local_checkpoint, t.source_replicated);
    return t;
}

std::string lost_found_turn_id(const lost_found_config& cfg, std::uint64_t status_modify_index)
{
    return fmt::format("{}-{}-to-{}", status_modify_index, cfg.local_dc, cfg.source_dc);
}

std::string lost_found_key(std::string_view prefix, std::string_view turn, std::string_view original)
{
    std::string k;
    k.reserve(prefix.size() + turn.size() + 1 + original.size());
    k.append(prefix);
    k.append(turn);
    k.push_back('/');
    k.append(original);
    return k;
}

std::optional<std::string> original_of(std::string_view prefix, std::string_view turn, std::string_view key)
{
    if (!key.starts_with(prefix))
        return std::nullopt;
    key.remove_prefix(prefix.size());
    if (!key.starts_with(turn) || key.size() <= turn.size() || key[turn.size()] != '/')
        return std::nullopt;
    key.remove_prefix(turn.size() + 1);
    if (key.empty() || key == turn_record_name)
        return std::nullopt;
    return std::string(key);
}

bool has_unreplicated(std::span<const kv_entry> dst, const prefixes::rule& rule, std::uint64_t threshold)
{
    std::string_view const destination = rule.spec.destination;
    return std::any_of(dst.begin(), dst.end(), [&](const kv_entry& e) {
        std::string_view const key = e.key;
        return e.modify_index > threshold && key.starts_with(destination) && key != rule.status_key &&
               !prefixes::is_protected(rule, destination, key.substr(destination.size()));
    });
}

std::vector<lost_found_save> lost_found_saves(
    const plan& p,
    std::span<const kv_entry> dst,
    std::uint64_t threshold,
    std::string_view prefix,
    std::string_view turn,
    const std::set<std::string>& already_saved
)
{
    std::vector<lost_found_save> out;
    auto const consider = [&](const std::string& key) {
        auto const it = std::lower_bound(dst.begin(), dst.end(), key, [](const kv_entry& e, const std::string& k) {
            return e.key < k;
        });
        if (it == dst.end() || it->key != key || it->modify_index <= threshold || already_saved.contains(key))
            return;
        out.push_back(lost_found_save{
            key,
            it->modify_index,
            txn_op{txn_verb::set, lost_found_key(prefix, turn, key), it->value, it->flags}});
    };
    for (auto const& d : p.deletes) consider(d.key);
    for (auto const& u : p.puts) consider(u.key);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.original_key < b.original_key; });
    out.erase(
        std::unique(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.original_key == b.original_key; }),
        out.end()
    );
    return out;
}

result<std::vector<batch>, batch_error> prepend_saves(
    std::vector<batch> round,
    const std::vector<lost_found_save>& saves,
    std::optional<txn_op> record_op,
    const batch_limits& limits
)
{
    if (saves.empty())
        return round;
    plan copies;
    copies.puts.reserve(saves.size() + 1);
    // One "source transaction" (index 0) in key order; the record's key sorts first (".turn" <
    // any original key starting with a letter is not guaranteed, so it gets its own group).
    if (record_op)
        copies.puts.push_back(put_op{record_op->key, record_op->value, record_op->flags, 0});
    for (auto const& s : saves) copies.puts.push_back(put_op{s.op.key, s.op.value, s.op.flags, 1});
    auto pre = make_batches(std::move(copies), limits);
    if (!pre)
        return pre.error();
    std::vector<batch> out = std::move(pre).value();
    for (auto& b : round) out.push_back(std::move(b));
    return out;
}

}  // namespace kvship::engine
