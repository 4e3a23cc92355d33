#include <engine/groups.hpp>
#include <engine/replicator_fsm.hpp>
#include <prefixes/key_map.hpp>

#include <algorithm>
#include <iterator>
#include <tuple>
#include <span>
#include <stdexcept>
#include <utility>

namespace kvship::engine {

replicator_fsm::replicator_fsm(replicator_config config) : config_(std::move(config)) {}

replicator_action replicator_fsm::resume(replicator_event ev)
{
    if (state_ == state::finished)
        return action::done{};
    if (std::holds_alternative<event::stop>(ev))
        return finish(std::nullopt);

    switch (state_) {
        case state::idle:
            if (std::holds_alternative<event::start>(ev))
                return read_source();
            break;
        case state::reading_source:
            if (auto* e = std::get_if<event::source_read>(&ev))
                return on_source(std::move(e->src));
            if (auto* e = std::get_if<event::source_delta>(&ev))
                return on_delta(std::move(e->groups));
            if (std::holds_alternative<event::source_reset>(ev))
                return start_over();
            if (auto* e = std::get_if<event::failed>(&ev)) {
                retry_ = retry_target::source;
                return on_failure(std::move(e->what));
            }
            break;
        case state::reading_destination:
            if (auto* e = std::get_if<event::destination_read>(&ev))
                return on_destination(std::move(e->dst), e->prev, e->status_modify_index);
            if (auto* e = std::get_if<event::failed>(&ev)) {
                retry_ = retry_target::destination;
                return on_failure(std::move(e->what));
            }
            break;
        case state::applying:
            if (std::holds_alternative<event::batch_applied>(ev)) {
                next_batch_ = stage_end_;
                if (next_batch_ == save_batches_) {
                    // Every save of this round has committed: a retry need not write them again.
                    saved_.insert(round_saves_.begin(), round_saves_.end());
                    round_saves_.clear();
                }
                return next_batch_or_finish();
            }
            if (auto* e = std::get_if<event::failed>(&ev)) {
                retry_ = retry_target::destination;
                return on_failure(std::move(e->what));
            }
            break;
        case state::stream_destination:
            if (auto* e = std::get_if<event::destination_read>(&ev))
                return on_stream_destination(std::move(e->dst), std::move(e->prev), e->status_modify_index);
            if (auto* e = std::get_if<event::failed>(&ev)) {
                retry_ = retry_target::source;
                reset_stream();
                return on_failure(std::move(e->what));
            }
            break;
        case state::streaming:
            if (auto* e = std::get_if<event::source_chunk>(&ev))
                return on_chunk(std::move(e->entries));
            if (auto* e = std::get_if<event::source_end>(&ev))
                return on_stream_end(e->index);
            if (std::holds_alternative<event::puts_queued>(ev))
                return next_stream_action();
            if (auto* e = std::get_if<event::failed>(&ev)) {
                retry_ = retry_target::source;
                reset_stream();
                return on_failure(std::move(e->what));
            }
            break;
        case state::sleeping:
            if (std::holds_alternative<event::timer_fired>(ev))
                return retry_ == retry_target::source ? read_source() : read_destination();
            break;
        case state::finished:
            break;
    }
    // The driver answered an action with the wrong event: a bug, not an input error.
    throw std::logic_error("replicator_fsm: event does not answer the pending action");
}

std::optional<round_report> replicator_fsm::take_report()
{
    return std::exchange(report_, std::nullopt);
}

replicator_action replicator_fsm::on_source(snapshot src)
{
    attempt_ = 0;
    if (std::max<std::uint64_t>(src.index, 1) < applied_)
        applied_ = 0;  // a restore or reap: what counts from now on is the new index line
    auto const step = next_wait_index(index_, src.index);
    index_ = step.next_index;
    if (!is_new_data(step))
        return read_source();
    // consul-template: a new index with deep-equal data is no event.
    if (round_done_ && src_ && same_entries(src_->entries, src.entries)) {
        if (managed_known_)
            applied_ = std::max(applied_, src.index);  // the destination mirrors this index too
        return read_source();
    }
    src_.reset();  // the old one goes before the new one is built
    src_ = compact_snapshot{src.index, compact(src.entries)};
    round_src_ = std::move(src);
    round_groups_.clear();
    mirrored_ = src_->index;
    round_done_ = false;
    ranges_.clear();
    return read_destination();
}

std::size_t replicator_fsm::selected_count(std::size_t lo, std::size_t hi) const
{
    std::string_view const source = config_.rule.spec.source;
    std::string_view const destination = config_.rule.spec.destination;
    std::size_t n = 0;
    for (std::size_t i = lo; i < hi; ++i) {
        std::string_view const key = src_->entries.key(i);
        if (key.starts_with(source) && prefixes::is_selected(config_.rule.filter, key) &&
            !prefixes::is_protected(config_.rule, destination, key.substr(source.size())))
            ++n;
    }
    return n;
}

replicator_action replicator_fsm::start_over()
{
    attempt_ = 0;
    index_ = 0;
    ranges_.clear();
    ranges_managed_ = 0;
    round_src_.reset();
    round_groups_.clear();
    // Whatever was spliced in must be planned by the full round even if the full read equals it.
    round_done_ = false;
    return read_source();
}

replicator_action replicator_fsm::on_delta(std::vector<event::group_listing> groups)
{
    if (!src_ || !round_done_ || !managed_known_ || config_.once)
        return start_over();
    attempt_ = 0;
    round_src_.reset();
    round_groups_.clear();
    std::string_view const source = config_.rule.spec.source;
    std::vector<std::string> changed;
    std::uint64_t top = src_->index;
    bool emptied = false;
    for (auto& g : groups) {
        if (!std::string_view(g.prefix).starts_with(source))
            return start_over();  // not a group of this pair: a driver bug, recover with a full read
        top = std::max(top, g.index);
        bool const now_empty = g.entries.empty();
        auto const [lo, hi] = prefix_range(src_->entries, g.prefix);
        std::size_t const before = selected_count(lo, hi);
        auto listing = std::move(g.entries);
        std::erase_if(listing, [&](const kv_entry& e) {
            return !std::string_view(e.key).starts_with(g.prefix);
        });
        sort_entries(listing);
        if (!splice_group(src_->entries, g.prefix, listing))
            continue;
        // The kept snapshot has no values: the round plans this group's puts from its listing.
        round_groups_.insert_or_assign(g.prefix, std::move(listing));
        // After the last clean round the destination held exactly the selected source keys, so
        // the managed keys of this range were `before`.
        ranges_managed_ += before;
        // A group that turned empty may be the first sight of a whole prefix deleted at once: the
        // guard must judge it on a full read, not group by group.
        if (now_empty && hi > lo)
            emptied = true;
        changed.push_back(std::move(g.prefix));
    }
    src_->index = std::max(src_->index, top);
    index_ = std::max(index_, top);
    if (emptied)
        return start_over();
    if (changed.empty()) {
        applied_ = std::max(applied_, index_);  // new indexes, same entries: no event
        return read_source();
    }
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    ranges_ = std::move(changed);
    round_done_ = false;
    return read_destination();
}

plan replicator_fsm::make_round_plan(const snapshot& dst, const checkpoint& previous, bool with_puts)
{
    escalate_ = false;
    if (ranges_.empty()) {
        // A streamed round that let its values go plans from the kept snapshot; its puts were
        // planned from the listing as it arrived.
        if (!round_src_ && with_puts)
            throw std::logic_error("replicator_fsm: a full round without the values of its source");
        plan p = guard_plan(
            round_src_
                ? make_plan(round_src_->entries, src_->index, dst.entries, config_.rule, previous, with_puts)
                : make_plan(src_->entries, src_->index, dst.entries, config_.rule, previous),
            config_.guard
        );
        next_managed_ = p.refused ? p.stats.destination_keys : p.stats.selected_keys;
        return p;
    }
    // A grouped round: plan each changed group against the destination keys it maps to, then
    // judge the whole against the whole destination. Its checkpoint stays at the last whole
    // listing's index: a group's read says nothing of the other groups (one source txn may span
    // several), so a group's higher index would claim keys not read yet, and consul-replicate
    // skips every key at or below LastReplicated.
    std::string_view const source = config_.rule.spec.source;
    std::string_view const destination = config_.rule.spec.destination;
    plan p;
    bool first = true;
    std::string mapped;
    for (auto const& g : ranges_) {
        mapped.assign(destination);
        mapped.append(std::string_view(g).substr(source.size()));
        auto const listing = round_groups_.find(g);
        if (listing == round_groups_.end())
            throw std::logic_error("replicator_fsm: a grouped round without the listing of a group");
        auto const [dlo, dhi] = prefix_range(dst.entries, mapped);
        plan part = make_plan(
            listing->second,
            mirrored_,
            std::span<const kv_entry>(dst.entries).subspan(dlo, dhi - dlo),
            config_.rule,
            first ? previous : checkpoint{}
        );
        first = false;
        std::move(part.puts.begin(), part.puts.end(), std::back_inserter(p.puts));
        std::move(part.deletes.begin(), part.deletes.end(), std::back_inserter(p.deletes));
        std::move(part.warnings.begin(), part.warnings.end(), std::back_inserter(p.warnings));
        p.stats.selected_keys += part.stats.selected_keys;
        p.stats.destination_keys += part.stats.destination_keys;
        p.stats.unchanged += part.stats.unchanged;
        p.stats.filtered += part.stats.filtered;
        p.stats.protected_keys += part.stats.protected_keys;
        p.next_checkpoint = part.next_checkpoint;
    }
    // After this round the ranges' managed keys are exactly their selected source keys; the rest of
    // the destination keeps what it had.
    std::size_t const outside = managed_ - std::min(managed_, ranges_managed_);
    p.stats.source_keys = src_->entries.size();
    p.stats.selected_keys += outside;
    p.stats.destination_keys = managed_;
    // Many deletes at once may be one mass delete seen group by group: a full round judges it.
    if (p.deletes.size() > config_.guard.min_keys)
        escalate_ = true;
    p = guard_plan(std::move(p), config_.guard);
    next_managed_ = p.refused ? managed_ : p.stats.selected_keys;
    return p;
}

replicator_action replicator_fsm::on_destination(
    snapshot dst, const std::optional<checkpoint>& prev, std::uint64_t status_modify_index
)
{
    status_index_ = status_modify_index;
    return plan_and_apply(dst, prev, nullptr, 0);
}

replicator_action replicator_fsm::plan_and_apply(
    const snapshot& dst,
    const std::optional<checkpoint>& prev,
    std::vector<put_op>* streamed_rest,
    std::size_t streamed
)
{
    checkpoint const previous = prev.value_or(checkpoint{});
    // A streamed round has planned its puts chunk by chunk already: they are not built again.
    bool const with_puts = streamed_rest == nullptr;
    plan p = make_round_plan(dst, previous, with_puts);
    if (escalate_)
        return start_over();

    current_ = round_report{};
    current_.source_index = src_->index;
    current_.puts = with_puts ? p.puts.size() : p.stats.selected_keys - p.stats.unchanged;
    current_.deletes = p.deletes.size();
    current_.stats = p.stats;
    current_.warnings = p.warnings;
    current_.refused = p.refused;
    current_.streamed_puts = streamed;
    // A streamed round already handed out the puts of every chunk but these.
    if (streamed_rest)
        p.puts = std::move(*streamed_rest);

    if (config_.lost_found && p.next_checkpoint) {
        p.next_checkpoint->source_datacenter = config_.lost_found->source_dc;
        p.next_checkpoint->mirrored_index = mirrored_;
    }
    std::vector<lost_found_save> saves;
    std::optional<txn_op> record_op;
    if (lost_found_active())
        std::tie(saves, record_op) = plan_saves(p, dst, prev);

    std::optional<txn_op> checkpoint_op;
    // Rewrite the checkpoint only when it moves or data changes (consul-replicate wrote it on
    // every pass); never for a refused plan.
    if (config_.encode_checkpoint && p.next_checkpoint &&
        (!prev || *prev != *p.next_checkpoint || has_changes(p) || streamed > 0)) {
        checkpoint_op =
            txn_op{txn_verb::set, config_.rule.status_key, config_.encode_checkpoint(*p.next_checkpoint), 0};
    }

    auto batches = make_batches(std::move(p), config_.limits, std::move(checkpoint_op));
    round_saves_.clear();
    save_batches_ = 0;
    if (batches && !saves.empty()) {
        // The saves go first, in batches of their own: committed before anything they protect.
        std::size_t const round_batches = batches->size();
        batches = prepend_saves(std::move(batches).value(), saves, std::move(record_op), config_.limits);
        if (batches) {
            save_batches_ = batches->size() - round_batches;
            for (auto& sv : saves) round_saves_.push_back(std::move(sv.original_key));
        }
    }
    if (!batches) {
        current_.batch_err = batches.error();
        current_.lost_found_saved = 0;
        batches_.clear();
        return finish_round();
    }
    batches_ = std::move(batches).value();
    next_batch_ = 0;
    current_.batches = batches_.size();
    current_.checkpoint_written = !batches_.empty() && batches_.back().carries_checkpoint;
    return next_batch_or_finish();
}

std::pair<std::vector<lost_found_save>, std::optional<txn_op>> replicator_fsm::plan_saves(
    const plan& p, const snapshot& dst, const std::optional<checkpoint>& prev
)
{
    auto const& lf = *config_.lost_found;
    auto const t = decide_threshold(lf, prev, status_index_, dst.index);
    std::string const turn = lost_found_turn_id(lf, status_index_);
    current_.lost_found = t;
    current_.lost_found_turn = turn;
    std::vector<kv_entry> sorted;
    std::span<const kv_entry> entries = dst.entries;
    if (!std::is_sorted(dst.entries.begin(), dst.entries.end(), [](const auto& a, const auto& b) {
            return a.key < b.key;
        })) {
        sorted = dst.entries;
        sort_entries(sorted);
        entries = sorted;
    }
    auto saves = lost_found_saves(p, entries, t.index, lf.prefix, turn, saved_);
    std::optional<txn_op> record_op;
    if (saves.empty())
        return {std::move(saves), std::move(record_op)};
    if (config_.encode_turn_record) {
        turn_record const rec{
            turn,
            lf.local_dc,
            lf.source_dc,
            lf.time,
            t.rule,
            t.precise ? std::optional<std::uint64_t>(t.source_replicated) : std::nullopt,
            t.local_checkpoint,
            saves.size()};
        record_op = txn_op{
            txn_verb::set, lost_found_key(lf.prefix, turn, turn_record_name), config_.encode_turn_record(rec), 0};
    }
    current_.lost_found_saved = saves.size();
    return {std::move(saves), std::move(record_op)};
}

replicator_action replicator_fsm::on_failure(std::string what)
{
    if (!should_retry(attempt_, config_.backoff))
        return finish(what + " (exceeded maximum retries)");
    auto const delay = backoff_delay(attempt_, config_.backoff, config_.seed);
    ++attempt_;
    state_ = state::sleeping;
    return action::sleep{delay};
}

replicator_action replicator_fsm::next_batch_or_finish()
{
    if (next_batch_ < batches_.size()) {
        state_ = state::applying;
        stage_end_ = next_batch_ + 1;
        if (config_.stage_batches)
            stage_end_ = next_batch_ < save_batches_ ? save_batches_ : batches_.size();
        auto const stage = std::span<const batch>(batches_).subspan(next_batch_, stage_end_ - next_batch_);
        return action::apply_batch{&batches_[next_batch_], next_batch_, batches_.size(), stage};
    }
    return finish_round();
}

replicator_action replicator_fsm::finish_round()
{
    attempt_ = 0;
    round_done_ = true;
    batches_.clear();
    next_batch_ = 0;
    ranges_.clear();
    ranges_managed_ = 0;
    round_src_.reset();
    round_groups_.clear();
    std::optional<std::string> problem;
    if (current_.batch_err)
        problem = current_.batch_err->message;
    else if (current_.refused)
        problem = current_.refused->message;
    managed_known_ = !problem;
    if (managed_known_) {
        managed_ = next_managed_;
        applied_ = current_.source_index;
    }
    // A clean round committed the checkpoint from this source: from now on this machine wrote
    // every key a round destroys (the next process starts from the record's ModifyIndex again).
    if (!problem && current_.checkpoint_written)
        lost_found_done_ = true;
    report_ = std::move(current_);
    current_ = round_report{};
    if (config_.once)
        return finish(std::move(problem));
    return read_source();
}

replicator_action replicator_fsm::finish(std::optional<std::string> error)
{
    state_ = state::finished;
    batches_.clear();
    stream_.reset();
    round_src_.reset();
    round_groups_.clear();
    return action::done{std::move(error)};
}

replicator_action replicator_fsm::read_source()
{
    if (config_.stream_full_reads && index_ == 0 && !std::exchange(whole_read_next_, false)) {
        state_ = state::stream_destination;
        stream_.emplace();
        return action::begin_stream{config_.rule.status_key};
    }
    state_ = state::reading_source;
    return action::read_source{index_};
}

void replicator_fsm::reset_stream()
{
    stream_.reset();
}

replicator_action replicator_fsm::on_stream_destination(
    snapshot dst, std::optional<checkpoint> prev, std::uint64_t status_modify_index
)
{
    // The attempt counter keeps running until the source has arrived: a source that keeps failing
    // must run out of retries although each attempt reads the destination first.
    stream_->dst = std::move(dst);
    stream_->prev = std::move(prev);
    stream_->status_modify_index = status_modify_index;
    if (lost_found_active()) {
        // An early put may overwrite a key that must be saved first: when the destination holds
        // any key the source may lack, the whole round is planned at the end, saves first.
        auto const t = decide_threshold(*config_.lost_found, stream_->prev, status_modify_index, stream_->dst.index);
        if (has_unreplicated(stream_->dst.entries, config_.rule, t.index))
            stream_->early_puts = false;
    }
    state_ = state::streaming;
    return action::stream_source{};
}

replicator_action replicator_fsm::on_chunk(std::vector<kv_entry> entries)
{
    auto& s = *stream_;
    if (entries.empty())
        return next_stream_action();
    if (s.early_puts) {
        bool const started = !s.listed.empty() || !s.kept.empty();
        bool sorted = !started || s.last_key < entries.front().key;
        for (std::size_t i = 1; sorted && i < entries.size(); ++i)
            sorted = entries[i - 1].key < entries[i].key;
        if (!sorted) {
            // Not Consul's order: the rest is planned at the end, as a whole (or, when the values
            // are gone already, from a whole read after this one).
            s.early_puts = false;
            s.held.clear();
            s.kept.clear();
        }
    }
    if (!s.early_puts) {
        if (!s.values_dropped)
            s.listed.insert(
                s.listed.end(),
                std::make_move_iterator(entries.begin()),
                std::make_move_iterator(entries.end())
            );
        return next_stream_action();
    }
    s.last_key = entries.back().key;

    // The destination keys this chunk's keys map to (order is kept by the prefix mapping).
    std::string_view const source = config_.rule.spec.source;
    std::string const& destination = config_.rule.spec.destination;
    auto const& dst = s.dst.entries;
    auto const by_key = [](const kv_entry& e, std::string_view k) { return std::string_view(e.key) < k; };
    std::size_t lo = 0;
    std::size_t hi = dst.size();
    std::string_view const front = entries.front().key;
    std::string_view const back = entries.back().key;
    if (front.starts_with(source))
        lo = static_cast<std::size_t>(
            std::lower_bound(
                dst.begin(), dst.end(), destination + std::string(front.substr(source.size())), by_key
            ) -
            dst.begin()
        );
    if (back.starts_with(source)) {
        std::string const last = destination + std::string(back.substr(source.size()));
        hi = static_cast<std::size_t>(
            std::upper_bound(
                dst.begin(),
                dst.end(),
                last,
                [](const std::string& k, const kv_entry& e) { return k < e.key; }
            ) -
            dst.begin()
        );
    }
    hi = std::max(lo, hi);
    plan part = make_plan(
        entries, 0, std::span<const kv_entry>(dst).subspan(lo, hi - lo), config_.rule, checkpoint{}
    );
    std::move(part.puts.begin(), part.puts.end(), std::back_inserter(s.held));

    // Keep the chunk: whole while the values are few, else only keys and digests.
    if (s.values_dropped) {
        s.kept.append(entries);
    } else {
        for (auto const& e : entries) s.listed_bytes += sizeof(kv_entry) + e.key.size() + e.value.size();
        s.listed.insert(
            s.listed.end(), std::make_move_iterator(entries.begin()), std::make_move_iterator(entries.end())
        );
        if (s.listed_bytes > config_.stream_keep_bytes) {
            s.kept = compact(s.listed);
            s.listed.clear();
            s.listed.shrink_to_fit();
            s.values_dropped = true;
        }
    }
    entries.clear();

    // Hand out whole batches; a remainder waits for the next chunk or the end of the round.
    std::size_t const per_batch = std::max<std::size_t>(1, config_.stream_batch);
    std::size_t const n = s.held.size() / per_batch * per_batch;
    if (n == 0)
        return next_stream_action();
    plan out;
    out.puts.assign(
        std::make_move_iterator(s.held.begin()),
        std::make_move_iterator(s.held.begin() + static_cast<std::ptrdiff_t>(n))
    );
    // A chunk holds parts of source transactions only (key order): full txns, not kept parts.
    auto batches = make_batches(out, config_.limits, std::nullopt, put_grouping::none);
    if (!batches) {
        // A put no txn can carry: the round reports it at the end, as a whole-snapshot round does
        // (or, when the values are gone already, from a whole read after this one).
        s.early_puts = false;
        s.held.clear();
        s.kept.clear();
        return next_stream_action();
    }
    s.held.erase(s.held.begin(), s.held.begin() + static_cast<std::ptrdiff_t>(n));
    for (auto& b : *batches) s.ready.push_back(std::move(b));
    return next_stream_action();
}

replicator_action replicator_fsm::next_stream_action()
{
    auto& s = *stream_;
    if (s.ready.empty())
        return action::read_chunk{};
    batch b = std::move(s.ready.front());
    s.ready.erase(s.ready.begin());
    s.streamed_puts += b.ops.size();
    return action::apply_puts{std::move(b)};
}

replicator_action replicator_fsm::on_stream_end(std::uint64_t index)
{
    auto s = std::move(*stream_);
    stream_.reset();
    attempt_ = 0;
    index_ = next_wait_index(index_, index).next_index;
    if (!s.early_puts && s.values_dropped) {
        // Planning everything at the end needs values this round no longer has: the puts that went
        // out early stand (values of this snapshot), and a whole read plans the round again.
        index_ = 0;
        whole_read_next_ = true;
        return read_source();
    }
    std::optional<snapshot> listed;
    if (!s.values_dropped) {
        listed = snapshot{index, std::move(s.listed)};
        if (!s.early_puts)
            sort_entries(listed->entries);
    }
    // consul-template: a new index with deep-equal data is no event (nothing went out early: the
    // destination mirrored these entries).
    if (std::max<std::uint64_t>(index, 1) < applied_)
        applied_ = 0;
    if (round_done_ && src_ && s.streamed_puts == 0 &&
        (listed ? same_entries(src_->entries, listed->entries) : same_entries(src_->entries, s.kept))) {
        if (managed_known_)
            applied_ = std::max(applied_, index);
        return read_source();
    }
    src_.reset();
    if (listed)
        src_ = compact_snapshot{index, compact(listed->entries)};
    else
        src_ = compact_snapshot{index, std::move(s.kept)};
    round_src_ = std::move(listed);
    round_groups_.clear();
    mirrored_ = src_->index;
    status_index_ = s.status_modify_index;
    round_done_ = false;
    ranges_.clear();
    ranges_managed_ = 0;
    if (!s.early_puts) {
        // Everything is planned now; puts that went out early are written again (same values).
        return plan_and_apply(s.dst, s.prev, nullptr, s.streamed_puts);
    }
    return plan_and_apply(s.dst, s.prev, &s.held, s.streamed_puts);
}

replicator_action replicator_fsm::read_destination()
{
    state_ = state::reading_destination;
    action::read_destination out{config_.rule.status_key, {}};
    std::string_view const source = config_.rule.spec.source;
    for (auto const& g : ranges_)
        out.ranges.push_back(
            config_.rule.spec.destination + std::string(std::string_view(g).substr(source.size()))
        );
    return out;
}

}  // namespace kvship::engine
