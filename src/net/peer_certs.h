// This node's check of its peers' certificates (seed 2: per-peer "Certificate:
// Valid / Invalid (reason)", and the check before switching to enforce).
//
// A peer's server certificate is fetched from the peer itself (its API port,
// or its PostgreSQL port after PostgreSQL's SSLRequest) without trusting it,
// then judged as a node in enforce mode would judge it: it chains to this
// node's CA, allows serverAuth, is valid now, and (with verify_hostname) names
// the address this node connects to.
//
// Library placement (src/net): the agent (its peer checks) and the CLI
// (`cluster tls-mode`) both use this; it needs pki and base only. Time is an
// input: `now` is the caller's Clock::WallSeconds().
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "base/result.h"
#include "pki/inspect.h"

namespace tandem::net {

// "https://h:p/x" -> {"h", p}; "https://[v6]:p" -> {"v6", p}; port 0 when absent.
std::pair<std::string, int> HostPortOfUrl(const std::string& url);

enum class TlsService { kHttps, kPostgres };

// The PEM of the leaf certificate the server at host:port presents. The
// handshake checks nothing (the caller inspects the certificate); a client
// pair, when given, is presented (PostgreSQL with a CA asks for one).
// kUnavailable when the port cannot be reached or does not speak TLS.
Result<std::string> FetchServerCertificate(const std::string& host, int port, TlsService service,
                                           const std::string& client_cert,
                                           const std::string& client_key, int64_t timeout_ms);

struct PeerCertificate {
  pki::Summary summary;  // Valid / Expiring in N days / Invalid (reason)
  std::string detail;    // the failing finding's whole story ("" when valid)
  std::string serial;    // of the certificate seen ("" when none was fetched)
  bool reached = true;   // false: no certificate could be fetched ("Unknown (...)")
};

// Judges a fetched certificate (pem) of the peer at `address` as enforce would.
// label names it in messages ("node2's API certificate").
PeerCertificate JudgePeerCertificate(const std::string& label, const std::string& pem,
                                     const std::string& ca_file, const std::string& address,
                                     bool verify_hostname, int64_t now);

// Fetch and judge. A peer that cannot be reached (or whose handshake fails) is
// not reached: state kInvalid, text "Unknown (cannot connect)".
PeerCertificate CheckPeerCertificate(const std::string& label, const std::string& address, int port,
                                     TlsService service, const std::string& ca_file,
                                     const std::string& client_cert, const std::string& client_key,
                                     bool verify_hostname, int64_t now, int64_t timeout_ms);

}  // namespace tandem::net
