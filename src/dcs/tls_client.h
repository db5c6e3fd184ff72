// HTTP(S) clients with the cluster's TLS settings, for the etcd client here and
// the agent's calls to other agents (src/net/http_client.cc).
#pragma once

#include <memory>
#include <string>

namespace httplib {
class Client;
}

namespace tandem::dcs {

// What an https client presents and checks. Ignored for http:// URLs.
struct TlsClientOptions {
  std::string ca_file;    // the cluster CA: the trust anchor for the server's certificate
  std::string cert_file;  // the client certificate presented (empty = none)
  std::string key_file;   // its key
  // Refuse a server whose certificate does not chain to ca_file (enforce).
  // false (permissive): encrypted, but any server certificate is accepted.
  bool verify_peer = true;
  // With verify_peer: the certificate must also name the URL's host (IP SAN,
  // DNS SAN, or the CN when there are no DNS SANs).
  bool verify_hostname = true;
};

// A client for base = "scheme://host:port". For https it presents the client
// certificate and verifies as the options say; the TLS handshake fails
// (httplib::Error::SSLConnection) when verification fails.
std::unique_ptr<httplib::Client> MakeHttpClient(const std::string& base,
                                                const TlsClientOptions& tls);

}  // namespace tandem::dcs
