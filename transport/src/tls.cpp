#include <transport/tls.hpp>

#include <boost/asio/ssl/context.hpp>

#include <fmt/format.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace kvship::transport {

namespace {

namespace ssl = boost::asio::ssl;

[[noreturn]] void fail(std::string_view what, std::string const& file, boost::system::error_code const& ec)
{
    throw std::runtime_error(fmt::format("TLS: cannot use {} {:?}: {}", what, file, ec.message()));
}

void require_readable(std::string_view what, std::string const& file, bool directory)
{
    std::error_code ec;
    auto const st = std::filesystem::status(file, ec);
    if (ec || !std::filesystem::exists(st)) {
        throw std::runtime_error(fmt::format("TLS: {} {:?} does not exist", what, file));
    }
    if (directory != std::filesystem::is_directory(st)) {
        throw std::runtime_error(
            fmt::format("TLS: {} {:?} is {}a directory", what, file, directory ? "not " : ""));
    }
}

}  // namespace

std::shared_ptr<ssl::context> make_client_tls_context(tls_params const& p)
{
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    boost::system::error_code ec;
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                         ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                     ec);
    if (!p.ca_file.empty()) {
        require_readable("CA file", p.ca_file, false);
        ctx->load_verify_file(p.ca_file, ec);
        if (ec) {
            fail("CA file", p.ca_file, ec);
        }
    } else if (!p.ca_path.empty()) {
        require_readable("CA directory", p.ca_path, true);
        ctx->add_verify_path(p.ca_path, ec);
        if (ec) {
            fail("CA directory", p.ca_path, ec);
        }
    } else {
        ctx->set_default_verify_paths(ec);  // best effort: a system without a bundle still works with verify off
    }
    if (!p.cert_file.empty()) {
        require_readable("client certificate", p.cert_file, false);
        ctx->use_certificate_chain_file(p.cert_file, ec);
        if (ec) {
            fail("client certificate", p.cert_file, ec);
        }
        auto const& key = p.key_file.empty() ? p.cert_file : p.key_file;
        require_readable("client key", key, false);
        ctx->use_private_key_file(key, ssl::context::pem, ec);
        if (ec) {
            fail("client key", key, ec);
        }
        if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
            ERR_clear_error();
            throw std::runtime_error(fmt::format("TLS: client key {:?} does not match certificate {:?}", key,
                                                 p.cert_file));
        }
    } else if (!p.key_file.empty()) {
        throw std::runtime_error(fmt::format("TLS: client key {:?} given without a certificate", p.key_file));
    }
    ctx->set_verify_mode(p.verify ? ssl::verify_peer : ssl::verify_none);
    return ctx;
}

}  // namespace kvship::transport
