// Persistence for -data-dir: DIR/snapshot (store::encode_snapshot) plus DIR/journal, one store event per
// line (store::encode_event). Loading restores the snapshot and replays the journal, so indexes never go
// backwards across a restart. Events are buffered and written with write(2) by flush(), which the API
// calls before it answers a write. Blocking file I/O on purpose: a write is not acknowledged before it is
// in the journal.
#pragma once

#include "store/store.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace kvship::kvsim::api {

class journal
{
public:
    // Creates DIR if needed, loads DIR/snapshot and replays DIR/journal into `st` (which must be fresh),
    // then opens the journal for appending. Throws std::runtime_error with a message naming the file.
    journal(std::string dir, store& st, std::size_t compact_bytes);
    ~journal();
    journal(journal const&) = delete;
    journal& operator=(journal const&) = delete;

    void append(store_event const& ev);
    // Writes the buffered events. Throws std::runtime_error on an I/O error.
    void flush();
    // Writes the whole store as the snapshot (temp file + rename) and empties the journal.
    void compact(store const& st);
    // compact() when the journal has grown past the threshold.
    void maybe_compact(store const& st);

    [[nodiscard]] std::uint64_t replayed_events() const { return replayed_; }

    [[nodiscard]] std::string const& dir() const { return dir_; }

private:
    std::string dir_;
    std::size_t compact_bytes_;
    int fd_ = -1;
    std::string buffer_;
    std::uint64_t journal_size_ = 0;
    std::uint64_t replayed_ = 0;
};

}  // namespace kvship::kvsim::api
