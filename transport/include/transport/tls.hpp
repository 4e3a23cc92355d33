// TLS settings of a client connection (consul-replicate's -consul-ssl* flags) and the OpenSSL
// context built from them.
#pragma once

#include <boost/system/error_category.hpp>

#include <memory>
#include <string>

namespace boost::asio::ssl {
class context;
}

namespace kvship::transport {

struct tls_params
{
    bool enabled = false;
    bool verify = true;       // verify the server's chain and name; false accepts any certificate
    std::string ca_file{};      // PEM bundle; preferred over ca_path when both are set
    std::string ca_path{};      // directory of PEM CA files: every regular file in it is loaded, as Go does
    std::string cert_file{};    // client certificate (PEM); holds the key too when key_file is empty
    std::string key_file{};     // client private key (PEM)
    std::string server_name{};  // SNI and the name checked; empty: the host of the address
};

// A TLS 1.2+ client context: trust from ca_file, else ca_path, else OpenSSL's default paths;
// the client certificate and key when cert_file is set (checked to match). Throws
// std::runtime_error naming the file and OpenSSL's reason when a file cannot be used.
std::shared_ptr<boost::asio::ssl::context> make_client_tls_context(tls_params const& p);

// Why a certificate was refused: the error code is OpenSSL's X509 verify result (X509_V_ERR_*), the
// message OpenSSL's text for it ("certificate has expired", "Hostname mismatch", ...).
boost::system::error_category const& tls_verify_category() noexcept;

}  // namespace kvship::transport
