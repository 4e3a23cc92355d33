#include "client_params.hpp"

namespace kvship::replicate {

namespace {

std::chrono::milliseconds to_ms(nanos d)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

}  // namespace

transport::consul_params consul_client_params(
    const config& cfg, const logger& log, const std::string& address, const std::string& token
)
{
    transport::consul_params p;
    p.address = address;
    p.token = token;
    // -consul-auth belongs to the local agent (-consul-addr), as in consul-replicate; Go sends "user:" when
    // no password is given.
    if (cfg.consul.auth.enabled && address == cfg.consul.address)
        p.basic_auth = cfg.consul.auth.username + ":" + cfg.consul.auth.password;
    auto const& ssl = cfg.consul.ssl;
    p.tls.enabled = ssl.enabled;
    p.tls.verify = ssl.verify;
    p.tls.ca_file = ssl.ca_cert;
    p.tls.ca_path = ssl.ca_path;
    p.tls.cert_file = ssl.cert;
    p.tls.key_file = ssl.key;
    p.tls.server_name = ssl.server_name;
    if (cfg.consul.transport.dial_timeout.count() > 0)
        p.connect_timeout = to_ms(cfg.consul.transport.dial_timeout);
    auto const& tr = cfg.consul.transport;
    if (tr.max_idle_conns_per_host > 0)
        p.max_idle_connections = static_cast<std::size_t>(tr.max_idle_conns_per_host);
    p.max_idle_total = tr.max_idle_conns > 0 ? static_cast<std::size_t>(tr.max_idle_conns) : 0;
    p.idle_timeout = tr.idle_conn_timeout.count() > 0 ? to_ms(tr.idle_conn_timeout) : std::chrono::milliseconds{0};
    p.tcp_keep_alive = tr.dial_keep_alive.count() > 0 ? to_ms(tr.dial_keep_alive) : std::chrono::milliseconds{0};
    p.disable_keep_alives = tr.disable_keep_alives;
    if (tr.tls_handshake_timeout.count() > 0)
        p.tls_handshake_timeout = to_ms(tr.tls_handshake_timeout);
    // The pair loop owns retries (engine backoff), so the client does not retry on its own.
    p.retry.enabled = false;
    // The client's lines carry no component: they are the "clients" component's.
    p.log = logger(log.level(), [&log](log_level l, std::string_view, std::string_view line) {
        log.write(l, "clients", line);
    });
    return p;
}

}  // namespace kvship::replicate
