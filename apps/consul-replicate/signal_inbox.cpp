#include "signal_inbox.hpp"

#include <boost/asio/buffer.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace kvship::replicate {

namespace {

sigset_t to_sigset(const std::set<int>& signals)
{
    sigset_t m;
    sigemptyset(&m);
    for (int s : signals) sigaddset(&m, s);
    return m;
}

}  // namespace

signal_inbox::signal_inbox(asio::any_io_executor ex) : fd_(std::move(ex)) {}

signal_inbox::~signal_inbox() = default;

std::optional<std::string> signal_inbox::receive(const std::set<int>& signals)
{
    sigset_t const wanted = to_sigset(signals);
    // Block the new set before the old one's extra signals are unblocked: a signal in both is never
    // left to its default action in between.
    if (int const e = pthread_sigmask(SIG_BLOCK, &wanted, nullptr); e != 0)
        return fmt::format("pthread_sigmask: {}", std::strerror(e));
    int const fd = ::signalfd(fd_.is_open() ? fd_.native_handle() : -1, &wanted, fd_.is_open() ? 0 : SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return fmt::format("signalfd: {}", std::strerror(errno));
    if (!fd_.is_open()) {
        boost::system::error_code ec;
        fd_.assign(fd, ec);
        if (ec) {
            ::close(fd);
            return fmt::format("signalfd: {}", ec.message());
        }
    }
    std::set<int> gone;
    for (int s : signals_)
        if (!signals.contains(s))
            gone.insert(s);
    if (!gone.empty()) {
        sigset_t const m = to_sigset(gone);
        pthread_sigmask(SIG_UNBLOCK, &m, nullptr);
    }
    signals_ = signals;
    return std::nullopt;
}

awaitable<signal_inbox::received> signal_inbox::next()
{
    signalfd_siginfo info{};
    auto [ec, n] = co_await fd_.async_read_some(asio::buffer(&info, sizeof info), nothrow_awaitable);
    if (!ec && n != sizeof info)
        ec = asio::error::message_size;
    co_return received{ec, ec ? 0 : static_cast<int>(info.ssi_signo)};
}

void signal_inbox::close()
{
    boost::system::error_code ec;
    fd_.cancel(ec);
}

}  // namespace kvship::replicate
