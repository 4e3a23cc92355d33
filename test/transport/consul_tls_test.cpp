// HTTPS to a fake Consul with certificates made at runtime with OpenSSL: CA file and directory,
// SNI/server name and host name checks, verify off, client certificates, bad files at startup.
#include "fake_consul.hpp"

#include <transport/consul_client.hpp>
#include <transport/tls.hpp>

#include <boost/asio/ssl/context.hpp>

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>

using namespace kvship;
using namespace kvship::transport;
namespace fs = std::filesystem;
namespace ssl = boost::asio::ssl;

namespace {

struct pem_pair
{
    std::string cert;
    std::string key;
};

template <class T, void (*F)(T*)>
struct deleter
{
    void operator()(T* p) const { F(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY, EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, deleter<X509, X509_free>>;
using bio_ptr = std::unique_ptr<BIO, deleter<BIO, BIO_free_all>>;

std::string bio_string(BIO* b)
{
    char* data = nullptr;
    auto const n = BIO_get_mem_data(b, &data);
    return std::string(data, static_cast<std::size_t>(n));
}

void add_ext(X509* cert, int nid, char const* value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) {
        throw std::runtime_error("X509V3_EXT_conf_nid failed");
    }
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

// A self-signed P-256 certificate usable as its own trust anchor, valid for `san`.
pem_pair make_self_signed(std::string const& cn, std::string const& san)
{
    pkey_ptr key(EVP_EC_gen("P-256"));
    REQUIRE(key);
    x509_ptr cert(X509_new());
    X509_set_version(cert.get(), 2);
    static long serial = 1000;
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ++serial);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<unsigned char const*>(cn.c_str()), -1, -1,
                               0);
    X509_set_issuer_name(cert.get(), name);
    add_ext(cert.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), NID_key_usage, "critical,digitalSignature,keyCertSign");
    add_ext(cert.get(), NID_ext_key_usage, "serverAuth,clientAuth");
    add_ext(cert.get(), NID_subject_key_identifier, "hash");
    add_ext(cert.get(), NID_subject_alt_name, san.c_str());
    REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);

    bio_ptr cb(BIO_new(BIO_s_mem()));
    bio_ptr kb(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(cb.get(), cert.get());
    PEM_write_bio_PrivateKey(kb.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    return {bio_string(cb.get()), bio_string(kb.get())};
}

// OpenSSL's hashed name for a CA directory ("<subject hash>.0").
std::string hashed_name(std::string const& cert_pem)
{
    bio_ptr b(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
    x509_ptr cert(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
    return fmt::format("{:08x}.0", X509_subject_name_hash(cert.get()));
}

struct temp_dir
{
    fs::path path;
    temp_dir()
    {
        std::string tmpl = (fs::temp_directory_path() / "kvship-tls-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~temp_dir()
    {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string write(std::string const& name, std::string const& content) const
    {
        auto const p = path / name;
        std::ofstream(p) << content;
        return p.string();
    }
};

std::shared_ptr<ssl::context> server_context(pem_pair const& server, std::string const* client_ca = nullptr)
{
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    ctx->use_certificate_chain(asio::buffer(server.cert));
    ctx->use_private_key(asio::buffer(server.key), ssl::context::pem);
    if (client_ca) {
        ctx->add_certificate_authority(asio::buffer(*client_ca));
        ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    }
    return ctx;
}

struct tls_fixture
{
    temp_dir dir;
    pem_pair server = make_self_signed("consul.test", "DNS:localhost,DNS:server.dc1.consul,IP:127.0.0.1");
    pem_pair other = make_self_signed("someone else", "DNS:localhost,IP:127.0.0.1");
    std::string server_ca = dir.write("server-ca.pem", server.cert);
    std::string other_ca = dir.write("other-ca.pem", other.cert);
    asio::io_context ioc{1};

    consul_params params(test::fake_consul const& consul) const
    {
        consul_params p;
        p.address = consul.address();
        p.token = "tls-secret-token";
        p.retry.enabled = false;
        p.request_timeout = std::chrono::seconds(5);
        p.tls.enabled = true;
        p.tls.ca_file = server_ca;
        return p;
    }

    consul_result<agent_info> self(test::fake_consul& consul, consul_params p)
    {
        consul.push(test::reply(200, R"({"Config":{"Datacenter":"dc1","NodeName":"n1"}})"));
        auto client = create_consul_client(ioc.get_executor(), p);
        return test::run(ioc, client->agent_self());
    }
};

}  // namespace

TEST_CASE("TLS: verified round trip with a CA file, by IP and by server name", "[transport][tls]")
{
    tls_fixture f;
    test::fake_consul consul(f.ioc, server_context(f.server));
    auto r = f.self(consul, f.params(consul));
    REQUIRE(r);
    CHECK(r->datacenter == "dc1");
    REQUIRE(consul.requests().size() == 1);
    CHECK(consul.requests()[0].token == std::optional<std::string>("tls-secret-token"));

    auto named = f.params(consul);
    named.tls.server_name = "server.dc1.consul";
    CHECK(f.self(consul, named));

    auto https = f.params(consul);
    https.tls.enabled = false;
    https.address = "https://" + consul.address();
    CHECK(f.self(consul, https));  // the scheme turns TLS on
}

TEST_CASE("TLS: a CA directory in c_rehash layout", "[transport][tls]")
{
    tls_fixture f;
    test::fake_consul consul(f.ioc, server_context(f.server));
    temp_dir cas;
    cas.write(hashed_name(f.server.cert), f.server.cert);
    auto p = f.params(consul);
    p.tls.ca_file.clear();
    p.tls.ca_path = cas.path.string();
    CHECK(f.self(consul, p));
}

TEST_CASE("TLS: a CA directory with plain file names, as Go reads it", "[transport][tls]")
{
    tls_fixture f;
    test::fake_consul consul(f.ioc, server_context(f.server));
    temp_dir cas;
    cas.write("my-ca.pem", f.server.cert);
    cas.write("another.crt", f.other.cert);
    auto p = f.params(consul);
    p.tls.ca_file.clear();
    p.tls.ca_path = cas.path.string();
    CHECK(f.self(consul, p));

    temp_dir junk;
    junk.write("notes.txt", "not a certificate");
    p.tls.ca_path = junk.path.string();
    CHECK_THROWS_WITH(make_client_tls_context(p.tls), Catch::Contains("notes.txt"));
}

TEST_CASE("TLS: the wrong CA or the wrong name fails verification; verify off accepts", "[transport][tls]")
{
    tls_fixture f;
    test::fake_consul consul(f.ioc, server_context(f.server));

    auto wrong_ca = f.params(consul);
    wrong_ca.tls.ca_file = f.other_ca;
    auto r = f.self(consul, wrong_ca);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::tls_failed);
    CHECK_FALSE(is_retryable(r.error()));
    // OpenSSL's reason, not only "certificate verify failed"
    CHECK_THAT(r.error().what(), Catch::Contains("self-signed certificate"));
    CHECK_THAT(r.error().what(), !Catch::Contains("tls-secret-token"));

    auto wrong_name = f.params(consul);
    wrong_name.tls.server_name = "evil.example";
    auto n = f.self(consul, wrong_name);
    REQUIRE_FALSE(n);
    CHECK(n.error() == errc::tls_failed);
    CHECK_THAT(n.error().what(), Catch::Contains("hostname mismatch"));

    auto off = f.params(consul);
    off.tls.ca_file = f.other_ca;
    off.tls.verify = false;
    std::vector<std::string> lines;
    off.log = kvship::logging::logger(log_level::info, [&](log_level, std::string_view, std::string_view l) {
        lines.emplace_back(l);
    });
    CHECK(f.self(consul, off));
    CHECK(std::find(lines.begin(), lines.end(), "disabling consul SSL verification") != lines.end());
    CHECK(consul.requests().size() == 1);  // only the unverified one got through
}

TEST_CASE("TLS: a server that requires a client certificate", "[transport][tls]")
{
    tls_fixture f;
    auto const client = make_self_signed("kvship client", "DNS:kvship");
    test::fake_consul consul(f.ioc, server_context(f.server, &client.cert));

    auto without = f.params(consul);
    auto r = f.self(consul, without);
    CHECK_FALSE(r);

    auto with = f.params(consul);
    with.tls.cert_file = f.dir.write("client.pem", client.cert);
    with.tls.key_file = f.dir.write("client.key", client.key);
    CHECK(f.self(consul, with));

    auto combined = f.params(consul);  // cert and key in one file, as -consul-ssl-cert allows
    combined.tls.cert_file = f.dir.write("client-both.pem", client.cert + client.key);
    CHECK(f.self(consul, combined));
}

TEST_CASE("TLS: unusable files are refused at construction, naming the file", "[transport][tls]")
{
    tls_fixture f;
    auto make = [&](tls_params t) {
        t.enabled = true;
        return create_consul_client(f.ioc.get_executor(), consul_params{.address = "127.0.0.1:1", .tls = t});
    };
    CHECK_THROWS_WITH(make({.ca_file = "/nonexistent/ca.pem"}), Catch::Contains("/nonexistent/ca.pem"));
    CHECK_THROWS_WITH(make({.ca_file = f.dir.write("junk.pem", "not a certificate")}), Catch::Contains("junk.pem"));
    CHECK_THROWS_WITH(make({.ca_path = f.server_ca}), Catch::Contains("not a directory"));
    CHECK_THROWS_WITH(make({.cert_file = f.dir.write("c.pem", f.server.cert), .key_file = "/nonexistent/k.pem"}),
                      Catch::Contains("/nonexistent/k.pem"));
    CHECK_THROWS_WITH(make({.cert_file = f.dir.write("c2.pem", f.server.cert),
                            .key_file = f.dir.write("k2.pem", f.other.key)}),
                      Catch::Contains("k2.pem") && Catch::Contains("mismatch"));
    CHECK_THROWS_WITH(make({.key_file = f.dir.write("k3.pem", f.other.key)}), Catch::Contains("without a certificate"));
    CHECK_NOTHROW(make({.verify = false}));
}
