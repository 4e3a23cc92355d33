#include <transport/tls.hpp>

#include <boost/asio/ssl/context.hpp>

#include <fmt/format.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <openssl/x509_vfy.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <vector>

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

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class verify_category_impl final : public boost::system::error_category
{
public:
    char const* name() const noexcept override { return "kvship.tls_verify"; }
    std::string message(int ev) const override { return X509_verify_cert_error_string(ev); }
};
#pragma GCC diagnostic pop

verify_category_impl const verify_category_instance;

}  // namespace

boost::system::error_category const& tls_verify_category() noexcept
{
    return verify_category_instance;
}

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
        // As Go's consul-replicate (go-rootcerts LoadCAPath): every regular file of the directory is a PEM
        // bundle, whatever its name (OpenSSL's own CA directory wants c_rehash names).
        require_readable("CA directory", p.ca_path, true);
        std::vector<std::string> files;
        std::error_code dec;
        for (auto const& entry : std::filesystem::directory_iterator(p.ca_path, dec)) {
            std::error_code fec;
            if (entry.is_regular_file(fec)) {
                files.push_back(entry.path().string());
            }
        }
        if (dec) {
            throw std::runtime_error(fmt::format("TLS: cannot list CA directory {:?}: {}", p.ca_path, dec.message()));
        }
        std::sort(files.begin(), files.end());
        if (files.empty()) {
            throw std::runtime_error(fmt::format("TLS: CA directory {:?} holds no files", p.ca_path));
        }
        for (auto const& f : files) {
            ctx->load_verify_file(f, ec);
            if (ec) {
                fail("CA file", f, ec);
            }
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
