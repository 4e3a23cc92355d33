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

class packer
{
public:
    explicit packer(const batch_limits& limits) : limits_(limits) { reset(); }

    bool fits(std::size_t ops, std::size_t bytes) const
    {
        return cur_.ops.size() + ops <= limits_.max_ops && cur_.estimated_bytes + bytes <= limits_.max_bytes;
    }

    bool fits_alone(std::size_t ops, std::size_t bytes) const
    {
        return ops <= limits_.max_ops && txn_body_overhead_bytes + bytes <= limits_.max_bytes;
    }

    void add(txn_op op, std::size_t bytes)
    {
        cur_.estimated_bytes += bytes;
        cur_.ops.push_back(std::move(op));
    }

    void mark_checkpoint() { cur_.carries_checkpoint = true; }

    void flush()
    {
        if (cur_.ops.empty())
            return;
        out_.push_back(std::move(cur_));
        reset();
    }

    std::vector<batch> finish()
    {
        flush();
        return std::move(out_);
    }

private:
    void reset()
    {
        cur_ = batch{};
        cur_.estimated_bytes = txn_body_overhead_bytes;
    }

    const batch_limits& limits_;
    std::vector<batch> out_;
    batch cur_;
};

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
    plan p, const batch_limits& limits, std::optional<txn_op> checkpoint_op
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
        if (txn_body_overhead_bytes + bytes > limits.max_bytes)
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

    packer pack(limits);
    for (std::size_t begin = 0; begin < p.puts.size();) {
        std::size_t end = begin;
        std::size_t group_bytes = 0;
        while (end < p.puts.size() && p.puts[end].source_index == p.puts[begin].source_index)
            group_bytes += put_bytes[end++];
        std::size_t const group_ops = end - begin;
        // Keep one source transaction together: start a fresh batch when that makes it fit.
        if (!pack.fits(group_ops, group_bytes) && pack.fits_alone(group_ops, group_bytes))
            pack.flush();
        for (std::size_t i = begin; i < end; ++i) {
            if (!pack.fits(1, put_bytes[i]))
                pack.flush();
            auto& put = p.puts[i];
            pack.add(
                txn_op{txn_verb::set, std::move(put.key), std::move(put.value), put.flags}, put_bytes[i]
            );
        }
        begin = end;
    }
    for (std::size_t i = 0; i < p.deletes.size(); ++i) {
        if (!pack.fits(1, delete_bytes[i]))
            pack.flush();
        pack.add(txn_op{txn_verb::delete_key, std::move(p.deletes[i].key), {}, 0}, delete_bytes[i]);
    }
    if (checkpoint_op) {
        if (!pack.fits(1, checkpoint_bytes))
            pack.flush();
        pack.add(std::move(*checkpoint_op), checkpoint_bytes);
        pack.mark_checkpoint();
    }
    return pack.finish();
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
