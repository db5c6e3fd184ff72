// MakeHttpClient: an httplib client for one URL with the cluster's TLS
// settings (CA, client certificate, hostname check) and the timeouts given.
// No state; any thread.
#include "dcs/tls_client.h"

#include <httplib.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/strings.h"

namespace tandem::dcs {
namespace {

// "https://h:p" -> "h"; "https://[v6]:p" -> "v6".
std::string HostOf(const std::string& base) {
  auto start = base.find("://");
  std::string rest = start == std::string::npos ? base : base.substr(start + 3);
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    return close == std::string::npos ? rest : rest.substr(1, close - 1);
  }
  auto colon = rest.rfind(':');
  return colon == std::string::npos ? rest : rest.substr(0, colon);
}

}  // namespace

std::unique_ptr<httplib::Client> MakeHttpClient(const std::string& base,
                                                const TlsClientOptions& tls) {
  const bool https = base.rfind("https://", 0) == 0;
  if (!https) return std::make_unique<httplib::Client>(base);
  auto c = tls.cert_file.empty()
               ? std::make_unique<httplib::Client>(base)
               : std::make_unique<httplib::Client>(base, tls.cert_file, tls.key_file);
  // httplib's own check would verify chain and host together; the context
  // below does each as the options say (httplib then leaves it alone).
  c->enable_server_certificate_verification(false);
  SSL_CTX* ctx = c->ssl_context();
  if (ctx == nullptr) return c;  // the client pair did not load: every call fails to connect
  if (!tls.verify_peer || tls.ca_file.empty()) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return c;
  }
  if (SSL_CTX_load_verify_locations(ctx, tls.ca_file.c_str(), nullptr) != 1) {
    // No trust anchor: verification fails on every handshake (fail closed).
    ERR_clear_error();
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (tls.verify_hostname) {
    X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
    const std::string host = HostOf(base);
    if (IsIpAddress(host)) {
      X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    }
  }
  return c;
}

}  // namespace tandem::dcs
