// A pair's view of its destination for each round (destination_reader.hpp).
#include "destination_reader.hpp"

#include "checkpoint_codec.hpp"
#include "guarded.hpp"
#include "kv_convert.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

namespace kvship::replicate {

using clock = std::chrono::steady_clock;

namespace {

destination_reader::result viewed(engine::event::destination_read v)
{
    destination_reader::result r;
    r.read.emplace(std::move(v));
    return r;
}

destination_reader::result failed(const transport::consul_error& e, std::string_view phase)
{
    destination_reader::result r;
    r.kind = std::string(error_kind(e, phase));
    r.what = e.what();
    r.error = e;
    return r;
}

}  // namespace

destination_reader::destination_reader(
    transport::consul_client& destination,
    settings s,
    asio::cancellation_signal& cancel,
    const logger& log,
    metrics_registry& metrics
)
    : destination_(destination), settings_(std::move(s)), cancel_(cancel), log_(log), metrics_(metrics)
{
}

std::optional<clock::time_point> destination_reader::stale_at() const
{
    if (!known_)
        return std::nullopt;
    return known_->read_at + settings_.refresh;
}

void destination_reader::committed(std::span<const engine::txn_op> ops)
{
    if (!known_)
        return;
    std::optional<std::string> status;
    if (known_->entries) {
        status = known_->entries->apply(ops);
        if (known_->entries->bytes() > settings_.keep_bytes) {
            log_.debug(
                "runner",
                "{}: the known destination passed {} bytes ({} keys): grouped rounds read their ranges from now on",
                settings_.label,
                settings_.keep_bytes,
                known_->entries->size()
            );
            known_->entries.reset();
        }
    } else {
        for (auto const& op : ops)
            if (op.verb == engine::txn_verb::set && op.key == settings_.status_key)
                status = op.value;
    }
    if (status) {
        if (auto c = decode_checkpoint(*status))
            known_->prev = std::move(*c);
    }
}

awaitable<destination_reader::result> destination_reader::read(std::vector<std::string> ranges)
{
    bool const fresh = known_ && clock::now() < *stale_at();
    auto const plan = engine::plan_destination_read(known_.has_value(), fresh, known_ && known_->entries, ranges.empty());
    using way = engine::destination_read_plan::way;
    if (plan.how == way::known)
        co_return viewed({known_->entries->view(ranges), known_->prev, known_->status_index});
    if (plan.how == way::ranges) {
        auto step = read_ranges(ranges);
        co_return co_await std::move(step);
    }
    if (plan.refresh)
        metrics_.add(metric::full_syncs, {{"pair", settings_.label}, {"reason", "refresh"}});
    known_.reset();
    auto step = read_whole(std::move(ranges));
    co_return co_await std::move(step);
}

awaitable<destination_reader::result> destination_reader::read_ranges(const std::vector<std::string>& ranges)
{
    // The checkpoint is known; the entries under each range are read (the driver's own writes have
    // committed before a round starts, so each listing shows them).
    engine::snapshot dst;
    transport::query_options const q;
    for (auto const& r : ranges) {
        auto list_op = destination_.list(r, q);
        auto listing = co_await guarded(&cancel_, std::move(list_op));
        if (!listing)
            co_return failed(listing.error(), "destination_read");
        dst.index = std::max(dst.index, listing->index);
        auto part = to_snapshot(std::move(*listing));
        std::move(part.entries.begin(), part.entries.end(), std::back_inserter(dst.entries));
    }
    co_return viewed({std::move(dst), known_->prev, known_->status_index});
}

awaitable<destination_reader::result> destination_reader::read_whole(std::vector<std::string> ranges)
{
    auto const& status_key = settings_.status_key;
    transport::query_options const q;
    auto list_op = destination_.list(settings_.prefix, q);
    auto listing = co_await guarded(&cancel_, std::move(list_op));
    if (!listing)
        co_return failed(listing.error(), "destination_read");
    auto get_op = destination_.get(status_key, q);
    auto status = co_await guarded(&cancel_, std::move(get_op));
    if (!status)
        co_return failed(status.error(), "checkpoint");
    std::optional<engine::checkpoint> prev;
    std::uint64_t const status_index = status->entry ? status->entry->modify_index : 0;
    if (status->entry) {
        auto c = decode_checkpoint(status->entry->value.value_or(std::string{}));
        if (!c) {
            result r;
            r.kind = "checkpoint";
            r.what = fmt::format("status key {:?}: {}", status_key, c.error());
            co_return r;
        }
        prev = std::move(*c);
    }
    auto dst = to_snapshot(std::move(*listing));
    metrics_.set(metric::destination_keys, labels(), static_cast<double>(dst.entries.size()));
    result out;
    out.whole = true;
    if (!settings_.keep) {
        // Nothing is written in a dry run, so the listing must be read again every round; -once
        // ends after this round.
        out.read.emplace(std::move(dst), std::move(prev), status_index);
        co_return out;
    }
    known_state k;
    k.prev = prev;
    k.read_at = clock::now();
    k.status_index = status_index;
    if (engine::known_destination::cost(dst.entries) > settings_.keep_bytes) {
        // Too big to keep: grouped rounds will read their ranges.
        known_ = std::move(k);
        out.read.emplace(std::move(dst), std::move(prev), status_index);
        co_return out;
    }
    k.entries.emplace(std::move(dst), settings_.prefix, settings_.status_key);
    out.read.emplace(k.entries->view(ranges), std::move(prev), status_index);
    known_ = std::move(k);
    co_return out;
}

}  // namespace kvship::replicate
