#include "app.hpp"

#include <engine/lifecycle.hpp>

#include "lost_found.hpp"

#include "checkpoint_codec.hpp"
#include "client_params.hpp"

#include <engine/lifecycle.hpp>
#include <prefixes/rule.hpp>
#include <replicate/flags.hpp>
#include <replicate/loader.hpp>
#include <transport/consul_retry.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <functional>
#include <set>
#include <unistd.h>

namespace kvship::replicate {

namespace {

using clock = std::chrono::steady_clock;

std::chrono::milliseconds to_ms(nanos d)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

std::string exception_text(const std::exception_ptr& e)
{
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return ex.what();
    } catch (...) {
        return "unknown exception";
    }
}

awaitable<transport::consul_result<transport::agent_info>> agent_self_with_retry(
    transport::consul_client* client, transport::retry_params retry
)
{
    auto attempt = [client] { return client->agent_self(); };
    transport::retry_observer const quiet;
    auto op = transport::with_retry(retry, 0x5eed, attempt, quiet);
    auto r = co_await std::move(op);
    co_return r;
}

}  // namespace

app::app(asio::io_context& ioc, command_line cli, config cfg, app_tuning tuning)
    : ioc_(ioc),
      cli_(std::move(cli)),
      cfg_(std::move(cfg)),
      tuning_(tuning),
      log_(make_process_logger(cfg_)),
      signals_(ioc.get_executor()),
      wake_(ioc)
{
    declare_metrics(metrics_, KVSHIP_VERSION, "kvship");
    metrics_.set_callback(metric::up, {}, [this] { return alive_ ? 1.0 : 0.0; });
    metrics_.set_callback(metric::ready, {}, [this] { return ready().ready ? 1.0 : 0.0; });
}

app::~app() = default;

int app::run_promote()
{
    std::unique_ptr<transport::consul_client> client;
    try {
        client = transport::create_consul_client(
            ioc_.get_executor(), client_params(cfg_.consul.address, cfg_.consul.token)
        );
    } catch (const std::exception& e) {
        log_.err("promote", "{}", e.what());
        return static_cast<int>(exit_code::runner);
    }
    int code = static_cast<int>(exit_code::runner);
    asio::co_spawn(ioc_, run_promotion(cfg_, *client, log_, stdout), [&](std::exception_ptr e, int c) {
        if (e)
            log_.err("promote", "{}", exception_text(e));
        else
            code = c;
    });
    ioc_.run();
    std::fflush(stdout);
    return code;
}

std::optional<std::uint64_t> app::applied_from(const std::string& dc) const
{
    if (!pairs_source_ || *pairs_source_ != dc || pairs_.empty())
        return std::nullopt;
    std::optional<std::uint64_t> low;
    for (auto const& p : pairs_) {
        if (p.done || !p.replicator->status().initial_sync_done)
            return std::nullopt;
        auto const a = p.replicator->applied_index();
        low = low ? std::min(*low, a) : a;
    }
    return low;
}

int app::run()
{
    if (!cfg_.promote.empty())
        return run_promote();
    std::signal(SIGPIPE, SIG_IGN);
    arm_signals();
    auto signals = watch_signals();
    asio::co_spawn(ioc_, std::move(signals), asio::detached);
    auto loop = main_loop();
    asio::co_spawn(ioc_, std::move(loop), [this](std::exception_ptr e) {
        if (e) {
            log_.err("cli", "{}", exception_text(e));
            exit_code_ = static_cast<int>(exit_code::runner);
        }
        ioc_.stop();
    });
    ioc_.run();
    return exit_code_;
}

void app::arm_signals()
{
    // Like consul-replicate, catch the usual signals so they never kill the process by default;
    // only the kill signal and SIGTERM stop it, only the reload signal reloads. They are read from a
    // signalfd (signal_inbox.hpp): a second kill signal that comes while the process exits stays
    // pending instead of ending it by the signal (a handler's default action comes back at teardown).
    std::set<int> wanted{SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};
    if (!cfg_.kill_signal.disabled())
        wanted.insert(cfg_.kill_signal.number);
    if (!cfg_.reload_signal.disabled())
        wanted.insert(cfg_.reload_signal.number);
    std::erase_if(wanted, [](int s) { return s == SIGKILL || s == SIGSTOP; });
    if (auto e = signals_.receive(wanted))
        log_.warn("cli", "cannot catch signals: {}", *e);
}

awaitable<void> app::watch_signals()
{
    for (;;) {
        auto next = signals_.next();
        auto [ec, sig] = co_await std::move(next);
        if (ec) {
            if (ec == asio::error::operation_aborted && !alive_)
                co_return;
            if (ec != asio::error::operation_aborted) {
                log_.warn("cli", "cannot read signals: {}", ec.message());
                co_return;
            }
            continue;
        }
        if ((!cfg_.kill_signal.disabled() && sig == cfg_.kill_signal.number) || sig == SIGTERM) {
            if (kill_requests_ == 0)
                std::fputs("Cleaning up...\n", stderr);
            ++kill_requests_;
            notify();
        } else if (!cfg_.reload_signal.disabled() && sig == cfg_.reload_signal.number) {
            std::fputs("Reloading configuration...\n", stderr);
            reload_requested_ = true;
            notify();
        } else {
            log_.debug("cli", "receiving signal \"{}\"", ::strsignal(sig));
        }
    }
}

void app::notify()
{
    wake_.cancel();
}

void app::stop_pairs(bool hard)
{
    for (auto& p : pairs_) {
        if (p.done)
            continue;
        if (hard)
            p.replicator->abort();
        else
            p.replicator->request_stop();
    }
}

readiness app::ready() const
{
    if (lock_ && !lock_->held())
        return {false, fmt::format("standby: waiting for lock {}", lock_->key())};
    if (!running_)
        return {false, "starting"};
    if (stopping_)
        return {false, "stopping"};
    if (vault_) {
        if (auto why = vault_->not_ready_reason())
            return {false, *why};
    }
    if (gate_) {
        if (auto why = gate_->not_ready_reason())
            return {false, *why};
    }
    for (auto const& p : pairs_) {
        auto const& st = p.replicator->status();
        auto const& name = p.replicator->label();
        if (p.done && p.error)
            return {false, fmt::format("{}: stopped: {}", name, *p.error)};
        if (st.paused)
            return {false, fmt::format("{}: deletes held back by the delete guard", name)};
        if (!st.initial_sync_done)
            return {false, fmt::format("{}: initial sync not finished", name)};
        if (st.failing)
            return {false, fmt::format("{}: failing: {}", name, st.last_error)};
    }
    return {true, {}};
}

bool app::write_pid_file()
{
    if (cfg_.pid_file.empty())
        return true;
    log_.info("cli", "creating pid file at {:?}", cfg_.pid_file);
    int const fd = ::open(cfg_.pid_file.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0666);
    if (fd < 0) {
        fatal_ = fmt::format("could not write pid file {:?}: {}", cfg_.pid_file, std::strerror(errno));
        return false;
    }
    std::string const pid = std::to_string(::getpid());
    bool const ok = ::write(fd, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size());
    ::close(fd);
    if (!ok) {
        fatal_ = fmt::format("could not write pid file {:?}", cfg_.pid_file);
        return false;
    }
    pid_written_ = cfg_.pid_file;
    return true;
}

void app::remove_pid_file()
{
    if (pid_written_.empty())
        return;
    log_.debug("cli", "removing pid file at {:?}", pid_written_);
    if (::unlink(pid_written_.c_str()) != 0)
        log_.warn("cli", "could not remove pid file {:?}: {}", pid_written_, std::strerror(errno));
    pid_written_.clear();
}

transport::consul_params app::client_params(const std::string& address, const std::string& token) const
{
    return consul_client_params(cfg_, log_, address, token);
}

awaitable<void> app::main_loop()
{
    alive_ = true;
    if (!cfg_.metrics_addr.empty()) {
        try {
            endpoint_ = std::make_unique<metrics_endpoint>(
                ioc_.get_executor(), metrics_, [this] { return alive_; }, [this] { return ready(); }
            );
            endpoint_->start(cfg_.metrics_addr);
            log_.info(
                "cli",
                "serving metrics on http://{}/metrics",
                fmt::format(
                    "{}:{}",
                    endpoint_->local_endpoint().address().to_string(),
                    endpoint_->local_endpoint().port()
                )
            );
        } catch (const std::exception& e) {
            fatal_ = fmt::format("metrics address {:?}: {}", cfg_.metrics_addr, e.what());
            endpoint_.reset();
        }
    }
    if (fatal_.empty())
        write_pid_file();
    if (fatal_.empty() && cfg_.lock.enabled()) {
        try {
            lock_client_ = transport::create_consul_client(
                ioc_.get_executor(), client_params(cfg_.consul.address, cfg_.consul.token)
            );
        } catch (const std::exception& e) {
            fatal_ = e.what();
        }
        if (lock_client_) {
            lock_params lp;
            lp.key = lock_key(cfg_.lock.prefix);
            lp.session_name = cfg_.lock.name.empty() ? default_lock_name(cfg_.lock.prefix) : cfg_.lock.name;
            lp.ttl = cfg_.lock.ttl;
            lp.lock_delay = cfg_.lock.delay;
            lock_ = std::make_unique<lock_manager>(ioc_.get_executor(), *lock_client_, lp, log_, metrics_);
            lock_->on_change([this] { notify(); });
            auto lock_task = lock_->run();
            auto lock_done = [this](std::exception_ptr e) {
                if (e)
                    log_.err("lock", "{}", exception_text(e));
                lock_done_ = true;
                notify();
            };
            asio::co_spawn(ioc_, std::move(lock_task), std::move(lock_done));
        }
    }
    if (!fatal_.empty()) {
        log_.err("cli", "{}", fatal_);
        exit_code_ = static_cast<int>(exit_code::runner);
    } else {
        for (;;) {
            auto generation = run_generation();
            outcome const o = co_await std::move(generation);
            if (o == outcome::finished) {
                log_.info("runner", "run finished and -once is set, exiting");
                exit_code_ = 0;
                break;
            }
            if (o == outcome::failed) {
                log_.err("cli", "{}", fatal_);
                exit_code_ = static_cast<int>(exit_code::runner);
                break;
            }
            if (o == outcome::lock_lost)
                continue;
            if (o == outcome::killed) {
                remove_pid_file();
                exit_code_ = static_cast<int>(exit_code::interrupt);
                break;
            }
            // reload
            remove_pid_file();
            reload_requested_ = false;
            std::vector<std::string> warnings;
            auto next = load_config(cli_, process_environment(), warnings);
            if (!next) {
                log_.err("cli", "{}", next.error().message);
                exit_code_ = static_cast<int>(next.error().code);
                break;
            }
            std::set<std::string> keep;
            for (auto const& spec : next.value().prefixes) keep.insert(prefixes::to_string(spec));
            for (auto const& spec : cfg_.prefixes) {
                auto const name = prefixes::to_string(spec);
                if (!keep.contains(name))
                    metrics_.remove_labelled("pair", name);
            }
            if (next.value().metrics_addr != cfg_.metrics_addr)
                log_.warn("cli", "a changed metrics address takes effect only after a restart");
            if (next.value().lock != cfg_.lock)
                log_.warn("cli", "changed lock settings take effect only after a restart");
            cfg_ = std::move(next).value();
            log_ = make_process_logger(cfg_);
            for (auto const& w : warnings) log_.warn("cli", "{}", w);
            for (auto const& w : lint(cfg_)) log_.warn("cli", "{}", w);
            log_.debug("runner", "final config (tokens suppressed):\n{}", redacted_summary(cfg_));
            arm_signals();
            if (!write_pid_file()) {
                log_.err("cli", "{}", fatal_);
                exit_code_ = static_cast<int>(exit_code::runner);
                break;
            }
        }
    }
    if (lock_) {
        // Pairs are stopped: release the lock, clean the key up, destroy the session.
        lock_->stop();
        while (!lock_done_) {
            wake_.expires_at(clock::time_point::max());
            co_await wake_.async_wait(nothrow_awaitable);
        }
    }
    alive_ = false;
    signals_.close();
    if (endpoint_)
        endpoint_->stop();
}

void app::start_pairs(
    const std::vector<prefixes::rule>& rules,
    const std::optional<std::string>& gate_source,
    std::uint64_t hold
)
{
    auto& source = source_client_ ? *source_client_ : *destination_client_;
    pairs_.clear();
    pairs_.reserve(rules.size());
    std::uint64_t seed = static_cast<std::uint64_t>(::getpid()) * 0x9E3779B97F4A7C15ULL;
    for (auto const& rule : rules) {
        pair_params p;
        p.label = prefixes::to_string(rule.spec);
        p.source_dc = gate_source ? *gate_source : rule.spec.datacenter.value_or(std::string{});
        p.fsm.rule = rule;
        p.fsm.guard.max_delete_percent =
            static_cast<unsigned>(std::clamp(cfg_.delete_guard.max_delete_percent, 0, 100));
        p.fsm.guard.min_keys = static_cast<std::size_t>(std::max(0, cfg_.delete_guard.min_keys));
        p.fsm.guard.allow_empty_source = cfg_.delete_guard.allow_empty_source;
        p.fsm.guard.allow_mass_delete = cfg_.delete_guard.allow_mass_delete;
        // One batch is one txn: the driver keeps the machine's limits at the destination's learned
        // op and byte limits (less the fence op's room) and writes a whole stage of the round with
        // several txns in flight (the checkpoint's last).
        p.fsm.stage_batches = true;
        p.fsm.backoff.base = cfg_.consul.retry.backoff;
        p.fsm.backoff.max = cfg_.consul.retry.max_backoff;
        p.fsm.backoff.attempts = static_cast<unsigned>(std::max(0, cfg_.consul.retry.attempts));
        p.fsm.seed = seed++;
        p.fsm.once = cfg_.once;
        p.fsm.encode_checkpoint = &encode_checkpoint;
        // Gated: save what this pair's rounds would destroy that never reached the source.
        p.fsm.lost_found = lost_found_for_pair(cfg_, local_dc_, gate_source, utc_now_text());
        p.fsm.encode_turn_record = &encode_turn_record;
        // A dry run prints whole-round plans.
        p.fsm.stream_full_reads = tuning_.stream_full_reads > 0 && !cfg_.dry_run;
        p.max_stale = cfg_.max_stale;
        p.blocking_wait = tuning_.blocking_wait;
        if (cfg_.wait.enabled()) {
            p.wait_min = cfg_.wait.min;
            p.wait_max = cfg_.wait.max;
        }
        p.retry_enabled = cfg_.consul.retry.enabled;
        p.dry_run = cfg_.dry_run;
        p.destination_refresh = tuning_.destination_refresh;
        p.known_destination_bytes = tuning_.known_destination_bytes;
        p.source_watches = tuning_.source_watches / rules.size();
        p.group_min_keys = tuning_.group_min_keys;
        if (lock_) {
            p.fence = [this, hold]() -> std::optional<transport::txn_op> {
                if (lock_->holds() != hold)
                    return std::nullopt;
                return lock_->fence_op();
            };
            p.on_fenced = [this] { lock_->lose("a destination transaction was refused by its lock check"); };
        }
        log_.debug("watcher", "adding kv.list({})", p.label);
        pairs_.push_back(pair_slot{
            std::make_unique<pair_replicator>(
                source, *destination_client_, std::move(p), txn_limit_, log_, metrics_, stdout
            ),
            false,
            std::nullopt});
    }
    for (std::size_t i = 0; i < pairs_.size(); ++i) {
        auto task = pairs_[i].replicator->run();
        asio::co_spawn(
            ioc_,
            std::move(task),
            [this, i](std::exception_ptr e, std::optional<std::string> err) {
                pairs_[i].done = true;
                if (e)
                    pairs_[i].error = exception_text(e);
                else
                    pairs_[i].error = std::move(err);
                notify();
            }
        );
    }
}

awaitable<app::outcome> app::run_generation()
{
    pairs_.clear();
    running_ = false;
    stopping_ = false;
    fatal_.clear();
    if (kill_requests_ > 0)
        co_return outcome::killed;

    log_.info("runner", "creating new runner (once: {})", cfg_.once);
    try {
        source_client_.reset();
        destination_client_.reset();
        destination_client_ = transport::create_consul_client(
            ioc_.get_executor(), client_params(cfg_.consul.address, cfg_.consul.token)
        );
        std::string const source_token = cfg_.source_token.empty() ? cfg_.consul.token : cfg_.source_token;
        if (!cfg_.source_addr.empty()) {
            source_client_ = transport::create_consul_client(
                ioc_.get_executor(), client_params(cfg_.source_addr, source_token)
            );
        } else if (source_token != cfg_.consul.token) {
            source_client_ = transport::create_consul_client(
                ioc_.get_executor(), client_params(cfg_.consul.address, source_token)
            );
        }
    } catch (const std::exception& e) {
        fatal_ = e.what();
        co_return outcome::failed;
    }

    // consul-replicate's self-replication guard: the local agent's DC must not be a source DC.
    // The gate needs the local DC too.
    std::string local_dc;
    if (!cfg_.prefixes.empty() || cfg_.gate.enabled()) {
        transport::retry_params retry;
        retry.enabled = cfg_.consul.retry.enabled;
        retry.max_attempts = static_cast<unsigned>(std::max(0, cfg_.consul.retry.attempts));
        retry.backoff = to_ms(cfg_.consul.retry.backoff);
        retry.max_backoff = to_ms(cfg_.consul.retry.max_backoff);
        asio::cancellation_signal cancel_self;
        auto self_task = agent_self_with_retry(destination_client_.get(), retry);
        std::optional<transport::consul_result<transport::agent_info>> self;
        asio::co_spawn(
            ioc_,
            std::move(self_task),
            asio::bind_cancellation_slot(
                cancel_self.slot(),
                [this, &self](std::exception_ptr e, transport::consul_result<transport::agent_info> r) {
                    if (e)
                        self.emplace(transport::consul_error{transport::errc::cancelled, 0, exception_text(e)}
                        );
                    else
                        self.emplace(std::move(r));
                    notify();
                }
            )
        );
        while (!self) {
            if (kill_requests_ > 0 || reload_requested_)
                cancel_self.emit(asio::cancellation_type::terminal);
            wake_.expires_at(clock::time_point::max());
            co_await wake_.async_wait(nothrow_awaitable);
        }
        if (kill_requests_ > 0)
            co_return outcome::killed;
        if (reload_requested_)
            co_return outcome::reload;
        if (!*self) {
            fatal_ = fmt::format("agent/self: {}", self->error().what());
            co_return outcome::failed;
        }
        local_dc = self->value().datacenter;
        local_dc_ = local_dc;
        for (auto const& spec : cfg_.prefixes) {
            if (spec.datacenter && *spec.datacenter == local_dc) {
                fatal_ = fmt::format(
                    "{}: local datacenter cannot be the source datacenter", prefixes::to_string(spec)
                );
                co_return outcome::failed;
            }
        }
    }

    // -lock: pairs run only while the lock is held (one holding period per generation).
    if (lock_ && !lock_->held())
        log_.info("runner", "standby: waiting for lock {:?}", lock_->key());
    while (lock_ && !lock_->held()) {
        if (kill_requests_ > 0)
            co_return outcome::killed;
        if (reload_requested_)
            co_return outcome::reload;
        if (lock_->state() == lock_state::failed || lock_done_) {
            fatal_ = lock_->error().empty() ? std::string("the lock manager stopped") : lock_->error();
            co_return outcome::failed;
        }
        wake_.expires_at(clock::time_point::max());
        co_await wake_.async_wait(nothrow_awaitable);
    }
    std::uint64_t const hold = lock_ ? lock_->holds() : 0;
    auto lock_lost = [this, hold] { return lock_ && (!lock_->held() || lock_->holds() != hold); };

    txn_limit_.max_ops = cfg_.txn_max_ops > 0 ? static_cast<std::size_t>(cfg_.txn_max_ops) : 128;
    auto rules = prefixes::make_rules(cfg_.prefixes, prefixes::key_filter{cfg_.excludes, {}}, cfg_.status_dir);
    protect_registry(rules);
    // Two-way replication is refused before anything is written (registry.hpp).
    if (auto refused = co_await open_registry(local_dc, rules)) {
        fatal_ = std::move(*refused);
        co_return outcome::failed;
    }
    log_.info("runner", "starting");
    if (cfg_.gate.enabled()) {
        // Pairs start and stop as the gate decides; sources are read through the local agent.
        try {
            auto params = client_params(cfg_.consul.address, cfg_.consul.token);
            params.request_timeout =
                std::max<std::chrono::milliseconds>(std::chrono::seconds(5), 2 * to_ms(cfg_.gate.interval));
            gate_client_ = transport::create_consul_client(ioc_.get_executor(), std::move(params));
        } catch (const std::exception& e) {
            fatal_ = e.what();
        }
        if (!gate_client_) {
            co_await close_registry();
            co_return outcome::failed;
        }
        declare_gate_metrics(metrics_);
        declare_lost_found_metrics(metrics_);
        if (cfg_.vault.enabled()) {
            vault_ = std::make_unique<vault_ha_runner>(
                cfg_.vault,
                cfg_.gate.interval,
                local_dc,
                *gate_client_,
                log_,
                metrics_,
                [this](const std::string& dc) { return applied_from(dc); },
                [this] { notify(); },
                [this] { return pairs_.empty() && (!gate_ || !gate_->source_dc()); }
            );
            vault_done_ = false;
            asio::co_spawn(ioc_, vault_->run(), [this](std::exception_ptr e) {
                if (e)
                    log_.err("vault", "stopped: {}", exception_text(e));
                vault_done_ = true;
                notify();
            });
            detector_ = make_designation_detector(*vault_);
        } else {
            detector_ = make_primary_detector(cfg_.gate, *gate_client_);
        }
        gate_ = std::make_unique<gate_runner>(cfg_.gate, local_dc, *detector_, log_, metrics_, [this] {
            notify();
        });
        gate_done_ = false;
        asio::co_spawn(ioc_, gate_->run(), [this](std::exception_ptr e) {
            if (e)
                log_.err("gate", "stopped: {}", exception_text(e));
            gate_done_ = true;
            notify();
        });
    } else {
        start_pairs(rules, std::nullopt, hold);
    }
    running_ = true;

    // The lifecycle machine decides (engine/lifecycle.hpp); this loop looks and does what it says.
    engine::lifecycle life(tuning_.stop_grace);
    auto const origin = clock::now();
    auto since = [origin](clock::time_point t) { return std::chrono::duration_cast<engine::life_time>(t - origin); };
    pairs_source_.reset();
    for (;;) {
        engine::life_view v;
        v.signals = kill_requests_;
        v.reload = reload_requested_;
        v.have_pairs = !pairs_.empty();
        for (auto const& p : pairs_) {
            v.pair_failed = v.pair_failed || (p.done && p.error);
            v.pairs_done = v.pairs_done && p.done;
        }
        v.lock_lost = lock_lost();
        v.gated = gate_ != nullptr;
        v.gate_done = gate_done_;
        v.vault = vault_ != nullptr;
        v.vault_done = vault_done_;
        v.refused = registry_ && registry_->refused();
        v.gate_source = gate_ ? gate_->source_dc() : std::nullopt;
        v.once = cfg_.once;
        auto const from = life.pairs_source();
        auto const step = life.step(v, since(clock::now()));
        stopping_ = life.stopping();
        pairs_source_ = life.pairs_source();
        if (step.turn_began)
            log_.info(
                "runner",
                "stopping the pairs reading from {} ({})",
                from.value_or(""),
                v.gate_source ? "turning to " + *v.gate_source : engine::describe(gate_->state())
            );
        if (step.stop_pairs)
            stop_pairs(false);
        if (step.abort_pairs)
            stop_pairs(true);
        if (step.stop_runners) {
            if (gate_)
                gate_->stop();
            if (vault_)
                vault_->stop();
        }
        if (step.clear_pairs)
            pairs_.clear();
        if (step.start_from) {
            log_.info("runner", "starting the pairs from the primary {} (full read)", *step.start_from);
            start_pairs(rules, step.start_from, hold);
        }
        if (step.finished)
            break;
        wake_.expires_at(step.wake_at == engine::life_never ? clock::time_point::max() : origin + step.wake_at);
        co_await wake_.async_wait(nothrow_awaitable);
    }
    running_ = false;
    gate_.reset();
    detector_.reset();
    vault_.reset();
    gate_client_.reset();
    std::optional<std::string> const two_way = registry_ ? registry_->refused() : std::nullopt;
    co_await close_registry();

    std::string errors;
    for (auto const& p : pairs_) {
        if (p.error) {
            if (!errors.empty())
                errors += "; ";
            errors += fmt::format("{}: {}", p.replicator->label(), *p.error);
        }
    }
    outcome result = outcome::finished;
    switch (engine::generation_outcome(
        kill_requests_ > 0, lock_lost(), two_way.has_value(), !errors.empty(), reload_requested_, cfg_.once
    )) {
        case engine::generation_end::finished:
            break;
        case engine::generation_end::killed:
            result = outcome::killed;
            break;
        case engine::generation_end::lock_lost:
            result = outcome::lock_lost;
            break;
        case engine::generation_end::reload:
            result = outcome::reload;
            break;
        case engine::generation_end::failed:
            fatal_ = two_way ? *two_way : !errors.empty() ? std::move(errors) : std::string("replication stopped");
            result = outcome::failed;
            break;
    }
    log_.info("runner", "stopping");
    pairs_.clear();
    co_return result;
}

awaitable<std::optional<std::string>> app::open_registry(
    const std::string& local_dc, const std::vector<prefixes::rule>& rules
)
{
    if (rules.empty() || local_dc.empty())
        co_return std::nullopt;
    registry_ = std::make_unique<replicator_registry>(
        ioc_.get_executor(),
        *destination_client_,
        source_client_ ? *source_client_ : *destination_client_,
        registry_params_from_env(log_, !cfg_.once && !cfg_.dry_run),
        make_self_entry(local_dc, rules, cfg_.gate.enabled()),
        log_,
        [this] { notify(); }
    );
    auto refused = co_await registry_->check();
    if (refused) {
        registry_.reset();
        co_return refused;
    }
    registry_->start();
    co_return std::nullopt;
}

awaitable<void> app::close_registry()
{
    if (!registry_)
        co_return;
    co_await registry_->stop();
    registry_.reset();
}

}  // namespace kvship::replicate
