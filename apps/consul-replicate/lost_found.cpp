#include "lost_found.hpp"

#include "checkpoint_codec.hpp"
#include "client_params.hpp"
#include "lost_found_codec.hpp"
#include "gate.hpp"
#include "logger.hpp"
#include "vault_ha.hpp"

#include <gotext/go_string.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <map>
#include <utility>
#include <vector>

namespace kvship::replicate {

void declare_lost_found_metrics(metrics_registry& reg)
{
    reg.describe(
        std::string(lost_found_entries_metric),
        metric_type::counter,
        "Destination keys a turn would have destroyed that never reached the new primary, saved under "
        "the lost+found prefix."
    );
}

std::string utc_now_text()
{
    return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now())));
}

std::optional<engine::lost_found_config> lost_found_for_pair(
    const config& cfg, const std::string& local_dc, const std::optional<std::string>& source_dc, std::string now_utc
)
{
    if (!cfg.gate.enabled() || !source_dc || source_dc->empty() || *source_dc == local_dc || local_dc.empty())
        return std::nullopt;
    engine::lost_found_config lf;
    lf.prefix = cfg.lost_found_prefix;
    lf.local_dc = local_dc;
    lf.source_dc = *source_dc;
    lf.time = std::move(now_utc);
    return lf;
}

awaitable<bool> load_source_record(transport::consul_client& source, engine::lost_found_config& lf, std::string status_key)
{
    transport::query_options q;
    q.dc = lf.source_dc;
    q.mode = transport::consistency::consistent;
    auto got = co_await source.get(status_key, q);
    if (!got) {
        lf.source_record_note = fmt::format("the source's record could not be read: {}", got.error().what());
        co_return false;
    }
    if (!got->entry) {
        lf.source_record_note = fmt::format("no record {:?} in {}", status_key, lf.source_dc);
        co_return false;
    }
    auto c = decode_checkpoint(got->entry->value.value_or(std::string{}));
    if (!c) {
        lf.source_record_note = fmt::format("the source's record does not decode: {}", c.error());
        co_return false;
    }
    lf.source_record = std::move(*c);
    co_return true;
}

namespace {

struct saved_turn
{
    std::optional<engine::turn_record> record;
    std::string record_problem;
    std::vector<transport::kv_entry> entries;  // keys are the original keys
};

// Groups `<prefix><turn>/<original>` entries by turn.
std::map<std::string, saved_turn> group_turns(const std::string& prefix, std::vector<transport::kv_entry> entries)
{
    std::map<std::string, saved_turn> out;
    for (auto& e : entries) {
        std::string_view rest = e.key;
        if (!rest.starts_with(prefix))
            continue;
        rest.remove_prefix(prefix.size());
        auto const slash = rest.find('/');
        if (slash == std::string_view::npos || slash == 0)
            continue;
        std::string const turn(rest.substr(0, slash));
        auto& t = out[turn];
        auto const name = rest.substr(slash + 1);
        if (name == engine::turn_record_name) {
            auto r = decode_turn_record(e.value.value_or(std::string{}));
            if (r)
                t.record = std::move(*r);
            else
                t.record_problem = r.error();
            continue;
        }
        if (name.empty())
            continue;
        e.key = std::string(name);
        t.entries.push_back(std::move(e));
    }
    return out;
}

std::string json_str(std::string_view s)
{
    std::string out;
    gotext::append_go_json_string(out, s);
    return out;
}

void print_list(std::FILE* out, const std::map<std::string, saved_turn>& turns, log_format format)
{
    std::string text;
    for (auto const& [id, t] : turns) {
        auto const& r = t.record;
        if (format == log_format::json) {
            text += fmt::format(
                "{{\"turn\":{},\"old_primary\":{},\"new_primary\":{},\"time\":{},\"rule\":{},\"entries\":{}}}\n",
                json_str(id),
                json_str(r ? r->old_primary : ""),
                json_str(r ? r->new_primary : ""),
                json_str(r ? r->time : ""),
                json_str(r ? r->rule : ""),
                t.entries.size()
            );
            for (auto const& e : t.entries)
                text += fmt::format(
                    "{{\"turn\":{},\"key\":{},\"bytes\":{},\"flags\":{}}}\n",
                    json_str(id),
                    json_str(e.key),
                    e.value ? e.value->size() : 0,
                    e.flags
                );
            continue;
        }
        if (r)
            text += fmt::format(
                "turn {} old={} new={} time={} rule={} entries={}\n",
                id,
                r->old_primary,
                r->new_primary,
                r->time,
                r->rule,
                t.entries.size()
            );
        else
            text += fmt::format(
                "turn {} (no record{}) entries={}\n",
                id,
                t.record_problem.empty() ? "" : ": " + t.record_problem,
                t.entries.size()
            );
        for (auto const& e : t.entries)
            text += fmt::format("  {:?} ({} bytes, flags {})\n", e.key, e.value ? e.value->size() : 0, e.flags);
    }
    std::fwrite(text.data(), 1, text.size(), out);
    std::fflush(out);
}

struct command_error
{
    std::string message;
};

// Whether this DC may restore: the gate must name it as the only primary.
awaitable<std::optional<std::string>> restore_refusal(
    transport::consul_client& client, const config& cfg, const std::string& local_dc
)
{
    if (!cfg.gate.enabled())
        co_return std::string(
            "no gate is configured, so it cannot be told whether this DC is the primary; restore in the "
            "primary DC (its copy replicates to the others), or pass -force"
        );
    if (cfg.vault.enabled()) {
        // vault { }: the designation records decide the primary, not a detector.
        auto d = co_await read_designation(cfg.vault, client, local_dc, nullptr);
        if (!d)
            co_return fmt::format("the designation cannot be read ({}); pass -force to restore anyway", d.error());
        if (!d->unreachable.empty())
            co_return fmt::format(
                "the designation records of {} cannot be read (one may name a newer primary); pass -force to "
                "restore anyway",
                fmt::join(d->unreachable, ", ")
            );
        if (d->effective.primary != local_dc || d->effective.stage != engine::ha_record::phase::primary)
            co_return fmt::format(
                "the designation says the primary is {} ({}), not this DC ({}): a restore here would be "
                "overwritten by replication; run it against the primary DC's agent, or pass -force",
                d->effective.primary,
                engine::describe(d->effective),
                local_dc
            );
        co_return std::nullopt;
    }
    auto detector = make_primary_detector(cfg.gate, client);
    auto obs = co_await detector->detect();
    if (obs.error)
        co_return fmt::format("the gate cannot tell the primary ({}); pass -force to restore anyway", *obs.error);
    if (obs.claimants.size() != 1 || obs.claimants.front() != local_dc) {
        std::string who = obs.claimants.empty() ? std::string("no DC") : fmt::format("{}", fmt::join(obs.claimants, ", "));
        co_return fmt::format(
            "the gate says the primary is {}, not this DC ({}): a restore here would be overwritten by "
            "replication; run it against the primary DC's agent, or pass -force",
            who,
            local_dc
        );
    }
    co_return std::nullopt;
}

awaitable<int> lost_found_command(const command_line& cli, const config& cfg, std::FILE* out)
{
    auto ex = co_await asio::this_coro::executor;
    logger const log = make_process_logger(cfg);
    auto client =
        transport::create_consul_client(ex, consul_client_params(cfg, log, cfg.consul.address, cfg.consul.token));
    std::string const& prefix = cfg.lost_found_prefix;
    transport::query_options q;
    q.mode = transport::consistency::consistent;
    if (cli.lost_found_list) {
        auto listing = co_await client->list(prefix, q);
        if (!listing)
            throw command_error{fmt::format("reading {:?}: {}", prefix, listing.error().what())};
        print_list(out, group_turns(prefix, std::move(listing->entries)), cfg.format);
        co_return 0;
    }

    std::string const arg = *cli.lost_found_restore;
    auto const slash = arg.find('/');
    std::string const turn = arg.substr(0, slash);
    std::optional<std::string> key;
    if (slash != std::string::npos)
        key = arg.substr(slash + 1);
    if (turn.empty() || (key && key->empty()))
        throw command_error{fmt::format("-lost-found-restore {:?}: want <turn> or <turn>/<key>", arg)};

    auto self = co_await client->agent_self();
    if (!self)
        throw command_error{fmt::format("reading the local agent: {}", self.error().what())};
    if (!cli.force) {
        auto refusal = co_await restore_refusal(*client, cfg, self->datacenter);
        if (refusal)
            throw command_error{"refusing to restore: " + *refusal};
    }
    // The saves live in the old primary's DC (the turn id names it); restoring writes the local DC.
    std::string const base = engine::lost_found_key(prefix, turn, "");
    auto const dash = turn.find('-');
    auto const to = turn.find("-to-", dash == std::string::npos ? 0 : dash + 1);
    if (dash == std::string::npos || to == std::string::npos || to <= dash + 1)
        throw command_error{fmt::format("{:?} is not a turn id (<index>-<old>-to-<new>)", turn)};
    std::string const saved_dc = turn.substr(dash + 1, to - dash - 1);
    if (saved_dc != self->datacenter)
        q.dc = saved_dc;
    auto listing = co_await client->list(base, q);
    if (!listing)
        throw command_error{fmt::format("reading {:?}: {}", base, listing.error().what())};
    auto turns = group_turns(prefix, std::move(listing->entries));
    auto it = turns.find(turn);
    std::vector<transport::kv_entry> todo;
    if (it != turns.end()) {
        for (auto& e : it->second.entries)
            if (!key || e.key == *key)
                todo.push_back(std::move(e));
    }
    if (todo.empty())
        throw command_error{
            key ? fmt::format("no saved key {:?} in turn {:?} under {:?}", *key, turn, prefix)
                : fmt::format("no turn {:?} with saved keys under {:?}", turn, prefix)};
    std::size_t done = 0;
    for (auto& e : todo) {
        transport::put_options po;
        po.flags = e.flags;
        auto put = co_await client->put(e.key, e.value.value_or(std::string{}), po);
        if (!put || !*put)
            throw command_error{fmt::format(
                "restoring {:?} failed after {} of {} keys: {}",
                e.key,
                done,
                todo.size(),
                put ? std::string("the server said false") : put.error().what()
            )};
        ++done;
        if (cfg.format == log_format::json)
            fmt::print(out, "{{\"restored\":{},\"turn\":{},\"bytes\":{},\"flags\":{}}}\n", json_str(e.key), json_str(turn), e.value ? e.value->size() : 0, e.flags);
        else
            fmt::print(out, "restored {:?} from turn {} ({} bytes, flags {})\n", e.key, turn, e.value ? e.value->size() : 0, e.flags);
    }
    std::fflush(out);
    co_return 0;
}

}  // namespace

int run_lost_found_command(const command_line& cli, const config& cfg, std::FILE* out)
{
    asio::io_context ioc(1);
    int code = 14;
    std::string problem;
    asio::co_spawn(ioc, lost_found_command(cli, cfg, out), [&](std::exception_ptr e, int rc) {
        if (!e) {
            code = rc;
            return;
        }
        try {
            std::rethrow_exception(e);
        } catch (const command_error& ce) {
            problem = ce.message;
        } catch (const std::exception& ex) {
            problem = ex.what();
        }
    });
    ioc.run();
    if (!problem.empty()) {
        std::string const line =
            format_log_line(cfg.format, std::chrono::system_clock::now(), log_level::err, "lost+found", problem);
        std::fwrite(line.data(), 1, line.size(), stderr);
        std::fputc('\n', stderr);
        std::fflush(stderr);
    }
    return code;
}

}  // namespace kvship::replicate
