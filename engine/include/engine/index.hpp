// Consul's blocking-query index rules (consul-api.md §5-§6), as pure decisions.
#pragma once

#include <cstdint>
#include <string_view>

namespace kvship::engine {

enum class index_change
{
    first,      // the first answer (we sent index 0): take it, it is data
    unchanged,  // same index as before: a timeout or a spurious wake-up, no event
    advanced,   // a higher index: new data
    reset,      // the index went backwards (tombstone reap, snapshot restore, another leader):
                // start over with a full, non-blocking read
};

// What to do with the X-Consul-Index of one answer.
struct index_step
{
    std::uint64_t next_index = 0;  // the index to send on the next read (0 = non-blocking full read)
    index_change change = index_change::first;

    bool operator==(const index_step&) const = default;
};

// prev is the index sent with the request (0 on a first or reset read); returned is the
// X-Consul-Index of the answer. A returned 0 is treated as 1, so a blocking read never sends an
// index below 1. Then:
//  * prev == 0            -> first,     next = returned
//  * returned <  prev     -> reset,     next = 0
//  * returned == prev     -> unchanged, next = prev
//  * returned >  prev     -> advanced,  next = returned
[[nodiscard]] index_step next_wait_index(std::uint64_t prev, std::uint64_t returned);

// True when the answer carries data to act on (first or advanced). A reset answer is not used;
// the caller re-reads with index 0.
[[nodiscard]] bool is_new_data(const index_step& step);

[[nodiscard]] std::string_view to_string(index_change change);

}  // namespace kvship::engine
