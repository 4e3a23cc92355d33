#include <engine/batch.hpp>
#include <gotext/go_string.hpp>

#include <algorithm>

namespace kvship::engine {

namespace {

batch_error make_error(batch_errc code, std::string key, std::size_t bytes, std::size_t limit)
{
    std::string message;
    switch (code) {
        case batch_errc::invalid_limits:
            message = fmt::format("batch limits too small: max_ops={} max_bytes={}", bytes, limit);
            break;
        case batch_errc::value_too_large:
            message = fmt::format(
                "value for key {} is too large ({} > {} bytes)", gotext::go_quote(key), bytes, limit
            );
            break;
        case batch_errc::op_too_large:
            message = fmt::format(
                "operation on key {} needs about {} bytes, more than a {}-byte transaction allows",
                gotext::go_quote(key),
                bytes,
                limit
            );
            break;
        case batch_errc::checkpoint_on_refused_plan:
            message = "a refused plan cannot carry a checkpoint";
            break;
    }
    return batch_error{code, std::move(key), bytes, limit, std::move(message)};
}

// cut_ops on the ops' estimated sizes.
std::vector<txn_piece> cut(
    std::span<const std::size_t> bytes, std::span<const std::uint64_t> sources, const batch_limits& limits
)
{
    std::vector<txn_piece> out;
    std::size_t const n = bytes.size();
    std::size_t from = 0;  // the open piece is [from, i)
    std::size_t piece_bytes = txn_body_overhead_bytes;
    auto close = [&](std::size_t at) {
        if (at > from)
            out.push_back(txn_piece{from, at, false});
        from = at;
        piece_bytes = txn_body_overhead_bytes;
    };
    auto fits = [&](std::size_t at, std::size_t ops, std::size_t b) {
        return at - from + ops <= limits.max_ops && piece_bytes + b <= limits.max_bytes;
    };
    auto fits_alone = [&](std::size_t ops, std::size_t b) {
        return ops <= limits.max_ops && txn_body_overhead_bytes + b <= limits.max_bytes;
    };
    for (std::size_t begin = 0; begin < n;) {
        std::size_t end = begin + 1;
        std::size_t run_bytes = bytes[begin];
        if (!sources.empty() && sources[begin] != no_source)
            while (end < n && sources[end] == sources[begin]) run_bytes += bytes[end++];
        // Keep one source transaction together: start a fresh piece when that makes it fit.
        if (!fits(begin, end - begin, run_bytes) && fits_alone(end - begin, run_bytes))
            close(begin);
        for (std::size_t i = begin; i < end; ++i) {
            if (!fits_alone(1, bytes[i])) {
                close(i);
                out.push_back(txn_piece{i, i + 1, true});
                from = i + 1;
                continue;
            }
            if (!fits(i, 1, bytes[i]))
                close(i);
            piece_bytes += bytes[i];
        }
        begin = end;
    }
    close(n);
    return out;
}

}  // namespace

batch_limits limits_for_consul_version(unsigned major, unsigned minor)
{
    batch_limits limits;
    bool const new_limit = major > 1 || (major == 1 && minor >= 14);
    limits.max_ops = new_limit ? 128 : 64;
    return limits;
}

std::size_t json_string_bound(std::string_view text)
{
    std::size_t n = 0;
    for (char const ch : text) {
        auto const c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\')
            n += 2;
        else if (c < 0x20 || c == 0x7F || c == '<' || c == '>' || c == '&')
            n += 6;
        else if (c >= 0x80)
            n += 3;
        else
            n += 1;
    }
    return n;
}

std::size_t estimate_op_bytes(const txn_op& op)
{
    return txn_op_overhead_bytes + json_string_bound(op.key) + base64_length(op.value.size());
}

std::size_t estimate_body_bytes(std::span<const txn_op> ops)
{
    std::size_t n = txn_body_overhead_bytes;
    for (auto const& op : ops) n += estimate_op_bytes(op);
    return n;
}

result<std::vector<batch>, batch_error> make_batches(
    plan p, const batch_limits& limits, std::optional<txn_op> checkpoint_op, put_grouping grouping
)
{
    if (limits.max_ops == 0 || limits.max_bytes < txn_body_overhead_bytes + txn_op_overhead_bytes)
        return make_error(batch_errc::invalid_limits, {}, limits.max_ops, limits.max_bytes);
    if (checkpoint_op && p.refused)
        return make_error(batch_errc::checkpoint_on_refused_plan, checkpoint_op->key, 0, 0);

    std::stable_sort(p.puts.begin(), p.puts.end(), [](const put_op& a, const put_op& b) {
        if (a.source_index != b.source_index)
            return a.source_index < b.source_index;
        return a.key < b.key;
    });

    // Check every op before packing any, so the error names the first offender in batch order.
    std::vector<std::size_t> put_bytes;
    put_bytes.reserve(p.puts.size());
    for (auto const& put : p.puts) {
        if (put.value.size() > limits.max_value_bytes)
            return make_error(batch_errc::value_too_large, put.key, put.value.size(), limits.max_value_bytes);
        std::size_t const bytes =
            txn_op_overhead_bytes + json_string_bound(put.key) + base64_length(put.value.size());
        if (txn_body_overhead_bytes + bytes > limits.max_bytes && !limits.plain_put_oversized)
            return make_error(
                batch_errc::op_too_large, put.key, txn_body_overhead_bytes + bytes, limits.max_bytes
            );
        put_bytes.push_back(bytes);
    }
    std::vector<std::size_t> delete_bytes;
    delete_bytes.reserve(p.deletes.size());
    for (auto const& del : p.deletes) {
        std::size_t const bytes = txn_op_overhead_bytes + json_string_bound(del.key);
        if (txn_body_overhead_bytes + bytes > limits.max_bytes)
            return make_error(
                batch_errc::op_too_large, del.key, txn_body_overhead_bytes + bytes, limits.max_bytes
            );
        delete_bytes.push_back(bytes);
    }
    std::size_t checkpoint_bytes = 0;
    if (checkpoint_op) {
        if (checkpoint_op->value.size() > limits.max_value_bytes) {
            return make_error(
                batch_errc::value_too_large,
                checkpoint_op->key,
                checkpoint_op->value.size(),
                limits.max_value_bytes
            );
        }
        checkpoint_bytes = estimate_op_bytes(*checkpoint_op);
        if (txn_body_overhead_bytes + checkpoint_bytes > limits.max_bytes) {
            return make_error(
                batch_errc::op_too_large,
                checkpoint_op->key,
                txn_body_overhead_bytes + checkpoint_bytes,
                limits.max_bytes
            );
        }
    }

    // The round's ops in order, then cut.
    std::vector<txn_op> ops;
    std::vector<std::uint64_t> sources;
    std::vector<std::size_t> bytes;
    bool const has_checkpoint = checkpoint_op.has_value();
    std::size_t const n = p.puts.size() + p.deletes.size() + (has_checkpoint ? 1 : 0);
    ops.reserve(n);
    sources.reserve(n);
    bytes.reserve(n);
    for (std::size_t i = 0; i < p.puts.size(); ++i) {
        auto& put = p.puts[i];
        sources.push_back(put.source_index);
        ops.push_back(txn_op{txn_verb::set, std::move(put.key), std::move(put.value), put.flags});
        bytes.push_back(put_bytes[i]);
    }
    for (std::size_t i = 0; i < p.deletes.size(); ++i) {
        sources.push_back(no_source);
        ops.push_back(txn_op{txn_verb::delete_key, std::move(p.deletes[i].key), {}, 0});
        bytes.push_back(delete_bytes[i]);
    }
    if (checkpoint_op) {
        sources.push_back(no_source);
        ops.push_back(std::move(*checkpoint_op));
        bytes.push_back(checkpoint_bytes);
    }
    std::vector<batch> out;
    std::span<const std::uint64_t> groups;  // none: every op on its own
    if (grouping == put_grouping::source_txns)
        groups = sources;
    for (auto const& piece : cut(bytes, groups, limits)) {
        batch b;
        b.plain_put = piece.plain_put;
        b.estimated_bytes = txn_body_overhead_bytes;
        b.ops.reserve(piece.to - piece.from);
        for (std::size_t i = piece.from; i < piece.to; ++i) {
            b.estimated_bytes += bytes[i];
            b.ops.push_back(std::move(ops[i]));
        }
        b.sources.assign(
            sources.begin() + static_cast<std::ptrdiff_t>(piece.from),
            sources.begin() + static_cast<std::ptrdiff_t>(piece.to)
        );
        out.push_back(std::move(b));
    }
    if (has_checkpoint)
        out.back().carries_checkpoint = true;
    return out;
}

std::vector<txn_piece> cut_ops(
    std::span<const txn_op> ops, std::span<const std::uint64_t> sources, const batch_limits& limits
)
{
    std::vector<std::size_t> bytes;
    bytes.reserve(ops.size());
    for (auto const& op : ops) bytes.push_back(estimate_op_bytes(op));
    if (!sources.empty() && sources.size() != ops.size())
        sources = {};
    return cut(bytes, sources, limits);
}

std::string_view to_string(txn_verb verb)
{
    switch (verb) {
        case txn_verb::set:
            return "set";
        case txn_verb::delete_key:
            return "delete";
    }
    return "unknown";
}

}  // namespace kvship::engine
