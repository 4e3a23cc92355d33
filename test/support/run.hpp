// run(ioc, awaitable): drives a coroutine to completion in a test (servertech's run_coroutine).
#pragma once

#include <transport/asio.hpp>

#include <exception>
#include <optional>
#include <utility>

namespace kvship::test {

// Runs `aw` on `ioc` until it finishes and returns its value (rethrows its exception).
template <class T>
T run(asio::io_context& ioc, awaitable<T> aw)
{
    std::optional<T> out;
    std::exception_ptr error;
    asio::co_spawn(ioc, std::move(aw), [&](std::exception_ptr e, T v) {
        error = e;
        if (!e) {
            out.emplace(std::move(v));
        }
    });
    ioc.restart();
    while (!out && !error) {
        ioc.run_one();
    }
    if (error) {
        std::rethrow_exception(error);
    }
    return std::move(*out);
}

}  // namespace kvship::test
