// The process's asynchronous signals, read as data from a signalfd(2) instead of caught by a handler.
// The signals in the set are blocked (so the set must be given before any other thread starts:
// Asio's resolver thread inherits the mask) and each one waits in the kernel until next() reads it.
// Nothing ever puts their default action back (asio::signal_set does when it is destroyed), so a
// kill signal that comes while the process tears down stays pending and cannot end the process by
// the signal instead of with its exit code.
#pragma once

#include <transport/asio.hpp>

#include <boost/asio/posix/stream_descriptor.hpp>

#include <optional>
#include <set>
#include <string>

namespace kvship::replicate {

class signal_inbox
{
public:
    explicit signal_inbox(asio::any_io_executor ex);
    ~signal_inbox();
    signal_inbox(const signal_inbox&) = delete;
    signal_inbox& operator=(const signal_inbox&) = delete;

    // Receive exactly `signals` from now on (a reload may change the set: one that leaves it is
    // unblocked again and has its default action). Returns what failed, naming the call.
    [[nodiscard]] std::optional<std::string> receive(const std::set<int>& signals);

    // The next signal; an error when close() cancelled the wait (operation_aborted) or the read failed.
    struct received
    {
        boost::system::error_code ec;
        int signal = 0;
    };

    awaitable<received> next();
    // Ends a next() in progress (it returns operation_aborted); the signals stay blocked.
    void close();

private:
    asio::posix::stream_descriptor fd_;
    std::set<int> signals_;
};

}  // namespace kvship::replicate
