#include <transport/consul_client.hpp>
#include <transport/tls.hpp>
#include <gotext/base64.hpp>
#include <transport/consul_codec.hpp>
#include <transport/consul_request.hpp>
#include <transport/http_client.hpp>

#include <boost/asio/ssl/error.hpp>

#include <fmt/format.h>

#include <random>
#include <stdexcept>
#include <utility>

namespace kvship::transport {

namespace {

namespace ssl = asio::ssl;
using std::chrono::milliseconds;

// "http://h:p/" → "h:p"; "https://" also asks for TLS; "unix:///path" → "unix:/path" (http_client's
// form of a Unix domain socket; plain HTTP, as in Consul's Go client).
std::string normalize_address(std::string address, bool& tls)
{
    if (address.rfind("unix://", 0) == 0) {
        std::string path = address.substr(7);
        if (path.empty() || path.front() != '/') {
            throw std::invalid_argument(fmt::format("Consul address {:?}: a unix:// address needs an absolute socket path", address));
        }
        return "unix:" + path;
    }
    auto const strip = [&](std::string_view scheme) {
        if (address.rfind(scheme, 0) == 0) {
            address.erase(0, scheme.size());
            return true;
        }
        return false;
    };
    if (strip("https://")) {
        tls = true;
    } else if (!strip("http://") && address.find("://") != std::string::npos) {
        throw std::invalid_argument(fmt::format("Consul address {:?}: only http://, https:// and unix:// are supported", address));
    }
    while (!address.empty() && address.back() == '/') {
        address.pop_back();
    }
    if (address.empty()) {
        throw std::invalid_argument("Consul address is empty");
    }
    return address;
}

// A token goes into a header line: anything outside visible ASCII could split or forge headers.
void check_token(std::string const& token)
{
    for (char c : token) {
        auto const u = static_cast<unsigned char>(c);
        if (u < 0x21 || u > 0x7E) {
            throw std::invalid_argument("Consul token holds a space, control or non-ASCII byte");
        }
    }
}

errc classify_transport_error(boost::system::error_code const& ec)
{
    namespace ae = asio::error;
    if (ec == ae::timed_out || ec == beast::error::timeout) {
        return errc::timed_out;
    }
    if (ec == ae::operation_aborted) {
        return errc::cancelled;
    }
    if (ec == http::error::body_limit) {
        return errc::response_too_large;
    }
    if (ec == ssl::error::stream_truncated) {
        return errc::connection_lost;
    }
    if (ec.category() == ae::get_ssl_category() || ec.category() == ssl::error::get_stream_category() ||
        ec.category() == tls_verify_category()) {
        return errc::tls_failed;
    }
    if (ec == ae::connection_refused || ec == ae::host_unreachable || ec == ae::network_unreachable ||
        ec == ae::host_not_found || ec == ae::host_not_found_try_again || ec == ae::no_data ||
        ec.category() == ae::get_netdb_category() || ec.category() == ae::get_addrinfo_category()) {
        return errc::connect_failed;
    }
    if (ec.category() == make_error_code(http::error::bad_version).category() && ec != http::error::end_of_stream &&
        ec != http::error::partial_message) {
        return errc::malformed_response;
    }
    return errc::connection_lost;
}

class client_impl final : public consul_client
{
public:
    client_impl(asio::any_io_executor ex, consul_params params)
        : params_(std::move(params)),
          address_(normalize_address(params_.address, params_.tls.enabled)),
          http_(ex, make_http_params(params_)),
          seed_(params_.retry.seed != 0 ? params_.retry.seed : std::random_device{}()),
          ex_(std::move(ex))
    {
        check_token(params_.token);
        if (!params_.basic_auth.empty()) {
            basic_auth_header_ = "Basic " + gotext::base64_encode(params_.basic_auth);
        }
        if (params_.tls.enabled && !params_.tls.verify) {
            log(log_level::warn, "disabling consul SSL verification");
        }
    }

    awaitable<consul_result<kv_listing>> list(std::string prefix, query_options q) override
    {
        auto attempt = [this, prefix, q] { return list_once(prefix, q); };
        auto r = co_await with_retry(params_.retry, next_seed(), attempt, observer());
        co_return r;
    }

    awaitable<consul_result<kv_listing>> list_stream(std::string prefix, query_options q, entry_sink sink,
                                                     std::size_t batch) override
    {
        bool delivered = false;
        auto attempt = [this, prefix, q, &sink, batch, &delivered] {
            return list_stream_once(prefix, q, sink, batch, delivered);
        };
        // Once entries went to the sink, a second attempt would deliver them again: no retry then.
        auto r = co_await with_retry(params_.retry, next_seed(), attempt, observer(), [&delivered] { return !delivered; });
        co_return r;
    }

    awaitable<consul_result<key_listing>> keys(std::string prefix, std::optional<std::string> separator,
                                               query_options q) override
    {
        auto attempt = [this, prefix, separator, q] { return keys_once(prefix, separator, q); };
        auto r = co_await with_retry(params_.retry, next_seed(), attempt, observer());
        co_return r;
    }

    awaitable<consul_result<kv_get_result>> get(std::string key, query_options q) override
    {
        auto attempt = [this, key, q] { return get_once(key, q); };
        auto r = co_await with_retry(params_.retry, next_seed(), attempt, observer());
        co_return r;
    }

    awaitable<consul_result<txn_outcome>> txn(std::vector<txn_op> ops, std::string dc) override
    {
        target_builder t("/v1/txn");
        if (!dc.empty()) {
            t.param("dc", dc);
        }
        auto const what = "PUT " + t.str();
        auto r = co_await request(http::verb::put, t.str(), encode_txn(ops), params_.request_timeout);
        if (!r) {
            co_return r.error();
        }
        auto const status = r->result_int();
        if (status != 200 && status != 409) {
            co_return fail(error_from_status(what, status, r->body()));
        }
        if (auto e = check_encoding(*r, what)) {
            co_return *e;
        }
        auto out = decode_txn_response(std::move(r->body()), status == 200);
        if (!out) {
            co_return codec_error(what, status, out.error());
        }
        co_return std::move(*out);
    }

    awaitable<consul_result<bool>> put(std::string key, std::string value, put_options opts) override
    {
        target_builder t("/v1/kv/" + escape_path(key));
        if (opts.flags != 0) {
            t.param("flags", opts.flags);
        }
        if (opts.cas) {
            t.param("cas", *opts.cas);
        }
        if (!opts.acquire.empty()) {
            t.param("acquire", opts.acquire);
        }
        if (!opts.release.empty()) {
            t.param("release", opts.release);
        }
        if (!opts.dc.empty()) {
            t.param("dc", opts.dc);
        }
        auto r = co_await simple(http::verb::put, t.str(), std::move(value));
        if (!r) {
            co_return r.error();
        }
        auto out = co_await decode_ok(std::move(*r), "PUT " + t.str(), decode_bool);
        co_return out;
    }

    awaitable<consul_result<bool>> remove(std::string key, std::optional<std::uint64_t> cas, std::string dc) override
    {
        target_builder t("/v1/kv/" + escape_path(key));
        if (cas) {
            t.param("cas", *cas);
        }
        if (!dc.empty()) {
            t.param("dc", dc);
        }
        auto r = co_await simple(http::verb::delete_, t.str(), {});
        if (!r) {
            co_return r.error();
        }
        auto out = co_await decode_ok(std::move(*r), "DELETE " + t.str(), decode_bool);
        co_return out;
    }

    awaitable<consul_result<agent_info>> agent_self() override
    {
        auto attempt = [this] { return get_json("/v1/agent/self", decode_agent_self); };
        auto r = co_await with_retry(params_.retry, next_seed(), attempt, observer());
        co_return r;
    }

    awaitable<consul_result<std::vector<std::string>>> datacenters() override
    {
        auto attempt = [this] { return get_json("/v1/catalog/datacenters", decode_string_array); };
        auto r = co_await with_retry(params_.retry, next_seed(), attempt, observer());
        co_return r;
    }

    awaitable<consul_result<std::string>> session_create(session_params p, std::string dc) override
    {
        target_builder t("/v1/session/create");
        if (!dc.empty()) {
            t.param("dc", dc);
        }
        auto r = co_await simple(http::verb::put, t.str(), encode_session_create(p));
        if (!r) {
            co_return r.error();
        }
        auto out = co_await decode_ok(std::move(*r), "PUT " + t.str(), decode_session_id);
        co_return out;
    }

    awaitable<consul_result<std::string>> session_renew(std::string id, std::string dc) override
    {
        target_builder t("/v1/session/renew/" + escape_query_value(id));
        if (!dc.empty()) {
            t.param("dc", dc);
        }
        auto r = co_await simple(http::verb::put, t.str(), {});
        if (!r) {
            co_return r.error();
        }
        auto out = co_await decode_ok(std::move(*r), "PUT " + t.str(), decode_session_renew);
        co_return out;
    }

    awaitable<consul_result<bool>> session_destroy(std::string id, std::string dc) override
    {
        target_builder t("/v1/session/destroy/" + escape_query_value(id));
        if (!dc.empty()) {
            t.param("dc", dc);
        }
        auto r = co_await simple(http::verb::put, t.str(), {});
        if (!r) {
            co_return r.error();
        }
        auto out = co_await decode_ok(std::move(*r), "PUT " + t.str(), decode_bool);
        co_return out;
    }

    awaitable<consul_result<std::vector<service_instance>>> health_service(std::string name, health_query q)
        override
    {
        target_builder t("/v1/health/service/" + escape_path(name));
        if (!q.tag.empty()) {
            t.param("tag", q.tag);
        }
        if (q.passing) {
            t.flag("passing");
        }
        if (!q.dc.empty()) {
            t.param("dc", q.dc);
        }
        auto attempt = [this, target = t.str()] { return get_json(target, decode_health_service); };
        auto r = co_await with_retry(params_.retry, next_seed(), attempt, observer());
        co_return r;
    }

    awaitable<consul_result<std::vector<service_instance>>> catalog_service(std::string name, std::string dc)
        override
    {
        target_builder t("/v1/catalog/service/" + escape_path(name));
        if (!dc.empty()) {
            t.param("dc", dc);
        }
        auto attempt = [this, target = t.str()] { return get_json(target, decode_catalog_service); };
        auto r = co_await with_retry(params_.retry, next_seed(), attempt, observer());
        co_return r;
    }

    awaitable<consul_result<vault_leader>> vault_sys_leader(std::string base_url) override
    {
        bool tls = false;
        std::string host;
        try {
            host = normalize_address(base_url, tls);
        } catch (std::invalid_argument const& e) {
            co_return fail(consul_error{errc::bad_request, 0, e.what()});
        }
        auto const what = fmt::format("GET {}/v1/sys/leader", tls ? "https://" + host : "http://" + host);
        http_request req{http::verb::get, "/v1/sys/leader", 11};
        req.set(http::field::user_agent, "kvship");
        auto& client = foreign_client(tls);
        auto r = co_await client.send(host, std::move(req), params_.request_timeout);
        if (!r) {
            auto const code = classify_transport_error(r.error());
            co_return fail(consul_error{code, 0, fmt::format("{}: {}", what, r.error().message())});
        }
        auto out = co_await decode_ok(std::move(*r), what, decode_vault_leader);
        co_return out;
    }

    void close_idle() override { http_.close_idle(); }

private:
    consul_params params_;
    std::string basic_auth_header_;  // "Basic <base64(user:password)>", or empty
    std::string address_;
    http_client http_;
    std::uint64_t seed_;
    std::uint64_t calls_ = 0;

    static client_params make_http_params(consul_params const& p)
    {
        client_params cp;
        cp.body_limit = p.body_limit;
        cp.connect_timeout = p.connect_timeout;
        cp.max_idle_per_host = p.max_idle_connections;
        cp.max_idle_total = p.max_idle_total;
        cp.idle_timeout = p.idle_timeout;
        cp.tcp_keep_alive = p.tcp_keep_alive;
        cp.disable_keep_alives = p.disable_keep_alives;
        cp.tls_handshake_timeout = p.tls_handshake_timeout;
        if (p.tls.enabled) {
            cp.tls = make_client_tls_context(p.tls);
            cp.tls_verify = p.tls.verify;
            cp.tls_server_name = p.tls.server_name;
        }
        return cp;
    }

    // Vault answers on other hosts, with or without TLS whatever the Consul agent speaks.
    asio::any_io_executor ex_;
    std::unique_ptr<http_client> foreign_plain_;
    std::unique_ptr<http_client> foreign_tls_;

    // Their own pools: the Consul pool may speak TLS with the agent's server name.
    http_client& foreign_client(bool tls)
    {
        auto& slot = tls ? foreign_tls_ : foreign_plain_;
        if (!slot) {
            consul_params p = params_;
            p.tls.enabled = tls;
            p.tls.server_name.clear();
            p.body_limit = std::size_t{1} << 20;
            slot = std::make_unique<http_client>(ex_, make_http_params(p));
        }
        return *slot;
    }

    std::uint64_t next_seed() { return seed_ + 0x9E3779B97F4A7C15ULL * ++calls_; }

    void log(log_level level, std::string_view line) const { params_.log.write(level, line); }

    retry_observer observer() const
    {
        if (!params_.log.enabled(log_level::warn)) {
            return {};
        }
        return [this](unsigned n, milliseconds delay, consul_error const& e) {
            log(log_level::warn, fmt::format("consul retry attempt={} after_ms={} error=\"{}\"", n, delay.count(),
                                                e.what()));
        };
    }

    // Every error leaves through here: the token is scrubbed from its text, whatever put it there.
    consul_error fail(consul_error e) const
    {
        redact(e.message, params_.token);
        redact(e.message, params_.basic_auth);
        redact(e.message, basic_auth_header_);
        log(log_level::debug, fmt::format("consul error=\"{}\"", e.what()));
        return e;
    }

    consul_error codec_error(std::string_view what, unsigned status, consul_error e) const
    {
        e.http_status = status;
        e.message = fmt::format("{}: HTTP {}: {}", what, status, e.message);
        return fail(std::move(e));
    }

    std::optional<consul_error> check_encoding(http_response const& res, std::string_view what) const
    {
        auto const enc = res.find(http::field::content_encoding);
        if (enc != res.end() && !beast::iequals(enc->value(), "identity")) {
            return fail(consul_error{errc::malformed_response, res.result_int(),
                                     fmt::format("{}: unrequested Content-Encoding {}", what,
                                                 body_excerpt(enc->value(), 40))});
        }
        return std::nullopt;
    }

    // One exchange. The request line in errors and logs is "<METHOD> <target>"; the token only
    // ever travels in the X-Consul-Token header.
    awaitable<consul_result<http_response>> request(http::verb verb, std::string target, std::string body,
                                                    milliseconds timeout)
    {
        http_request req{verb, target, 11};
        if (!params_.token.empty()) {
            req.set("X-Consul-Token", params_.token);
        }
        if (!basic_auth_header_.empty()) {
            req.set(http::field::authorization, basic_auth_header_);
        }
        req.set(http::field::user_agent, "kvship");
        if (!body.empty()) {
            req.body() = std::move(body);
        }
        auto const what = fmt::format("{} {}", http::to_string(verb), target);
        auto const start = std::chrono::steady_clock::now();
        auto r = co_await http_.send(address_, std::move(req), timeout);
        auto const took =
            std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start).count();
        if (!r) {
            auto const code = classify_transport_error(r.error());
            std::string message = fmt::format("{}: {}", what, r.error().message());
            if (code == errc::timed_out) {
                message += fmt::format(" (deadline {} ms)", timeout.count());
            }
            co_return fail(consul_error{code, 0, std::move(message)});
        }
        if (params_.log.enabled(log_level::debug)) {
            log(log_level::debug, fmt::format("consul {} status={} bytes={} took_ms={}", what, r->result_int(),
                                              r->body().size(), took));
        }
        co_return std::move(*r);
    }

    // A GET whose body goes to `on_body` as it arrives (see http_client::send_streaming).
    awaitable<consul_result<http_response>> request_streaming(std::string target, milliseconds timeout,
                                                              http_client::head_callback on_head,
                                                              http_client::body_callback on_body)
    {
        http_request req{http::verb::get, target, 11};
        if (!params_.token.empty()) {
            req.set("X-Consul-Token", params_.token);
        }
        if (!basic_auth_header_.empty()) {
            req.set(http::field::authorization, basic_auth_header_);
        }
        req.set(http::field::user_agent, "kvship");
        auto const what = fmt::format("GET {}", target);
        auto const start = std::chrono::steady_clock::now();
        auto r = co_await http_.send_streaming(address_, std::move(req), timeout, std::move(on_head),
                                               std::move(on_body));
        auto const took =
            std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start).count();
        if (!r) {
            auto const code = classify_transport_error(r.error());
            std::string message = fmt::format("{}: {}", what, r.error().message());
            if (code == errc::timed_out) {
                message += fmt::format(" (deadline {} ms)", timeout.count());
            }
            co_return fail(consul_error{code, 0, std::move(message)});
        }
        if (params_.log.enabled(log_level::debug)) {
            log(log_level::debug, fmt::format("consul {} status={} streamed took_ms={}", what, r->result_int(), took));
        }
        co_return std::move(*r);
    }

    // A non-read request under the plain deadline.
    awaitable<consul_result<http_response>> simple(http::verb verb, std::string target, std::string body)
    {
        auto r = co_await request(verb, std::move(target), std::move(body), params_.request_timeout);
        co_return r;
    }

    // 200 → decode(body); anything else → the status error.
    template <class Decode>
    awaitable<std::invoke_result_t<Decode, std::string>> decode_ok(http_response res, std::string what, Decode decode)
    {
        auto const status = res.result_int();
        if (status != 200) {
            co_return fail(error_from_status(what, status, res.body()));
        }
        if (auto e = check_encoding(res, what)) {
            co_return *e;
        }
        auto out = decode(std::move(res.body()));
        if (!out) {
            co_return codec_error(what, status, out.error());
        }
        co_return out;
    }

    template <class Decode>
    awaitable<std::invoke_result_t<Decode, std::string>> get_json(std::string target, Decode decode)
    {
        auto r = co_await request(http::verb::get, target, {}, params_.request_timeout);
        if (!r) {
            co_return r.error();
        }
        auto out = co_await decode_ok(std::move(*r), "GET " + target, decode);
        co_return out;
    }

    // A KV read: 200 and 404 carry the meta headers; anything else is an error.
    awaitable<consul_result<std::pair<query_meta, http_response>>> kv_read(std::string target, query_options q)
    {
        auto const what = "GET " + target;
        auto const timeout = read_deadline(q, params_.request_timeout, params_.blocking_margin);
        auto r = co_await request(http::verb::get, target, {}, timeout);
        if (!r) {
            co_return r.error();
        }
        auto const status = r->result_int();
        if (status != 200 && status != 404) {
            co_return fail(error_from_status(what, status, r->body()));
        }
        auto meta = parse_query_meta(r->base(), what);
        if (!meta) {
            auto e = meta.error();
            e.http_status = status;
            co_return fail(std::move(e));
        }
        if (auto e = check_encoding(*r, what)) {
            co_return *e;
        }
        co_return std::pair<query_meta, http_response>{*meta, std::move(*r)};
    }

    awaitable<consul_result<kv_listing>> list_once(std::string prefix, query_options q)
    {
        auto const target = target_builder("/v1/kv/" + escape_path(prefix)).flag("recurse").query(q).str();
        auto r = co_await kv_read(target, q);
        if (!r) {
            co_return r.error();
        }
        auto& [meta, res] = *r;
        kv_listing out{meta.index, meta.known_leader, meta.last_contact, {}};
        out.results_filtered = meta.results_filtered;
        if (res.result_int() == 200) {
            auto entries = decode_kv_entries(std::move(res.body()));
            if (!entries) {
                co_return codec_error("GET " + target, 200, entries.error());
            }
            out.entries = std::move(*entries);
        }
        co_return out;
    }

    awaitable<consul_result<kv_listing>> list_stream_once(std::string prefix, query_options q,
                                                          entry_sink const& sink, std::size_t batch,
                                                          bool& delivered)
    {
        auto const target = target_builder("/v1/kv/" + escape_path(prefix)).flag("recurse").query(q).str();
        auto const what = "GET " + target;
        auto const timeout = read_deadline(q, params_.request_timeout, params_.blocking_margin);
        std::optional<consul_error> failure;  // a refused head, a decode error or the sink's error
        std::optional<query_meta> meta;
        kv_listing_decoder decoder(batch);
        bool streaming = false;
        auto on_head = [&](http::response_header<> const& head) {
            auto const status = head.result_int();
            if (status != 200 && status != 404) {
                return false;  // read the body whole for the error message
            }
            auto m = parse_query_meta(head, what);
            if (!m) {
                auto e = m.error();
                e.http_status = status;
                failure = std::move(e);
                return false;
            }
            meta = *m;
            auto const enc = head.find(http::field::content_encoding);
            if (enc != head.end() && !beast::iequals(enc->value(), "identity")) {
                failure = consul_error{errc::malformed_response, status,
                                       fmt::format("{}: unrequested Content-Encoding {}", what,
                                                   body_excerpt(enc->value(), 40))};
                return false;
            }
            streaming = status == 200;
            return streaming;
        };
        auto deliver = [&]() -> awaitable<std::optional<consul_error>> {
            if (decoder.ready() == 0) {
                co_return std::nullopt;
            }
            delivered = true;
            auto r = co_await sink(*meta, decoder.take());
            co_return r;
        };
        auto on_body = [&](std::string_view bytes) -> awaitable<boost::system::error_code> {
            if (auto e = decoder.feed(bytes)) {
                failure = codec_error(what, 200, std::move(*e));
                co_return make_error_code(errc::malformed_response);
            }
            if (auto e = co_await deliver()) {
                failure = std::move(*e);
                co_return failure->code ? failure->code : make_error_code(errc::cancelled);
            }
            co_return boost::system::error_code{};
        };
        auto r = co_await request_streaming(target, timeout, on_head, on_body);
        if (failure) {
            co_return fail(std::move(*failure));
        }
        if (!r) {
            co_return r.error();
        }
        auto const status = r->result_int();
        if (status != 200 && status != 404) {
            co_return fail(error_from_status(what, status, r->body()));
        }
        kv_listing out{meta->index, meta->known_leader, meta->last_contact, {}};
        out.results_filtered = meta->results_filtered;
        if (streaming) {
            if (auto e = decoder.finish()) {
                co_return codec_error(what, 200, std::move(*e));
            }
            if (auto e = co_await deliver()) {
                co_return fail(std::move(*e));
            }
        }
        co_return out;
    }

    awaitable<consul_result<key_listing>> keys_once(std::string prefix, std::optional<std::string> separator,
                                                    query_options q)
    {
        target_builder t("/v1/kv/" + escape_path(prefix));
        t.flag("keys");
        if (separator) {
            t.param("separator", *separator);
        }
        auto const target = t.query(q).str();
        auto r = co_await kv_read(target, q);
        if (!r) {
            co_return r.error();
        }
        auto& [meta, res] = *r;
        key_listing out{meta.index, meta.known_leader, meta.last_contact, {}};
        if (res.result_int() == 200) {
            auto keys = decode_string_array(std::move(res.body()));
            if (!keys) {
                co_return codec_error("GET " + target, 200, keys.error());
            }
            out.keys = std::move(*keys);
        }
        co_return out;
    }

    awaitable<consul_result<kv_get_result>> get_once(std::string key, query_options q)
    {
        auto const target = target_builder("/v1/kv/" + escape_path(key)).query(q).str();
        auto r = co_await kv_read(target, q);
        if (!r) {
            co_return r.error();
        }
        auto& [meta, res] = *r;
        kv_get_result out{meta.index, meta.known_leader, meta.last_contact, std::nullopt};
        if (res.result_int() == 200) {
            auto entries = decode_kv_entries(std::move(res.body()));
            if (!entries) {
                co_return codec_error("GET " + target, 200, entries.error());
            }
            if (entries->size() != 1 || (*entries)[0].key != key) {
                co_return fail(consul_error{errc::malformed_response, 200,
                                            fmt::format("GET {}: expected the one entry {:?}, got {} entries",
                                                        target, key, entries->size())});
            }
            out.entry = std::move((*entries)[0]);
        }
        co_return out;
    }
};

}  // namespace

std::unique_ptr<consul_client> create_consul_client(asio::any_io_executor ex, consul_params params)
{
    return std::make_unique<client_impl>(std::move(ex), std::move(params));
}

}  // namespace kvship::transport
