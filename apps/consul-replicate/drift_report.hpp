// `consul-replicate -diff`: the drift report. Reads every pair's destination and source once (the
// source streamed, as a replicator's full read) and prints what differs (engine::drift_scan), as
// text or JSON lines (-log-format=json) on `out`. Sends reads only: no PUT, DELETE, txn or session.
#pragma once

#include "logger.hpp"

#include <replicate/config.hpp>

#include <cstdio>

namespace kvship::replicate {

// The process exit code: 0 when every pair is equal, 1 when some pair differs, 14 when a side
// could not be read completely and truthfully (unreachable, 403, listing filtered by ACLs, no
// leader, a malformed or unordered listing, a gate that cannot name one primary) — the report on
// `out` is then incomplete, the error is logged. With a gate, the source is the primary the gate
// detects in one look; when that is the local DC, nothing is replicated into it: exit 0.
[[nodiscard]] int run_drift_report(const config& cfg, const logger& log, std::FILE* out);

}  // namespace kvship::replicate
