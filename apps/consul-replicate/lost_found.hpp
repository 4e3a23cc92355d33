// Lost+found around the engine's saves (engine/lost_found.hpp): the .turn record's JSON, the source
// record a gated pair reads before it starts, the metric, and the operator's commands
// -lost-found-list and -lost-found-restore.
#pragma once

#include "lost_found_codec.hpp"
#include "metrics.hpp"

#include <engine/lost_found.hpp>
#include <replicate/config.hpp>
#include <transport/consul_client.hpp>

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace kvship::replicate {

inline constexpr std::string_view lost_found_entries_metric = "kvship_lost_found_entries_total";

// Declares kvship_lost_found_entries_total{pair} (keys saved, counted when their txn committed).
void declare_lost_found_metrics(metrics_registry& reg);

// The lost+found settings of a gated pair that reads `source_dc` from `local_dc`; nullopt when
// there is no gate (ungated runs never save anything) or the pair would read its own DC. The
// source record is not read yet (see load_source_record). `now_utc` goes into the .turn record.
[[nodiscard]] std::optional<engine::lost_found_config> lost_found_for_pair(
    const config& cfg, const std::string& local_dc, const std::optional<std::string>& source_dc, std::string now_utc
);

// The current UTC time as "2026-12-03T17:00:00Z".
[[nodiscard]] std::string utc_now_text();

// Reads the source DC's own status record at `status_key` (?dc=<lf.source_dc>, consistent) into
// lf.source_record; on a missing key, a read error or a record that does not decode, leaves it
// nullopt and says why in lf.source_record_note (the round then saves every unreplicated key).
// True when a record was loaded.
awaitable<bool> load_source_record(transport::consul_client& source, engine::lost_found_config& lf, std::string status_key);

// -lost-found-list / -lost-found-restore against cfg.consul.address (the local DC). List: every turn
// under cfg.lost_found_prefix with its record and keys (sizes and flags, never values), text or
// JSON lines (cfg.format) on `out`; exit 0. Restore `<turn>` or `<turn>/<key>`: the saves are read
// from the turn's old primary DC (named in the id, ?dc= over the WAN) and each value and its flags
// PUT back at the original key in the local DC. Refused (exit 14) unless the gate (cfg.gate) says this
// DC is the primary, or `force`: a restore in a follower DC would be overwritten by the next
// round, and only the primary's copy replicates to every DC. Errors: exit 14 with the reason on
// stderr; a missing turn or key is an error.
[[nodiscard]] int run_lost_found_command(const command_line& cli, const config& cfg, std::FILE* out);

}  // namespace kvship::replicate
