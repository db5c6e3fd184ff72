// The node's TLS files (the config's tls: section): checking them before the
// agent uses them, installing the private copies PostgreSQL and libpq read,
// and the certificate state shown by `tandem cluster status`.
//
// Checks (ValidateTlsFiles), each failure naming the config key, the file, the
// problem and the fix (never key material):
//   every file     readable, PEM, not truncated
//   ca_cert        a CA certificate, within its validity
//   server_cert    within validity, chains to ca_cert, serverAuth, server_key is
//                  its key (unencrypted); enforce + verify_hostname: names
//                  node.address (SAN IP/DNS, or the CN when there is no DNS SAN)
//   client_cert    the same with clientAuth and client_key, and CN `postgres`
//                  (the user PostgreSQL's certificate authentication maps)
// The source files' modes do not matter: PostgreSQL reads the private copies.
//
// Private copies (InstallTlsCopies): <state_dir>/tls/ (0700) holds
// server.key, server.crt, client.key, client.crt, ca.crt, each 0600 and owned by
// the PostgreSQL run user, written atomically (temporary file, owner and mode
// set, then renamed), so PostgreSQL and libpq accept the keys whatever the
// source's owner and mode. A file is rewritten only when its content differs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/config.h"
#include "base/result.h"
#include "dcs/tls_client.h"
#include "pki/inspect.h"

namespace tandem::agent {

// kInvalidArgument listing every problem ("; " between them) when the tls
// files are not fit; Ok when TLS is off or every check passes. `now` is Unix
// seconds.
Status ValidateTlsFiles(const Config& cfg, int64_t now);

struct TlsCopyPaths {
  std::string dir, server_key, server_cert, client_key, client_cert, ca_cert;
};
// <state_dir>/tls/...
TlsCopyPaths TlsCopies(const Config& cfg);

// Makes the copies match the sources (user = owner of dir and files, "" =
// the current user). Returns true when any file was (re)written. The caller
// validates the sources first.
Result<bool> InstallTlsCopies(const Config& cfg, const std::string& user);

// True when every source file's content equals its copy's (cheap: five small
// reads). False also when a file cannot be read.
bool TlsCopiesCurrent(const Config& cfg);

struct CertificateState {
  std::string name;  // "server", "client", "ca"
  std::string path;  // the configured source file
  pki::Summary summary;
  int64_t days_left = 0;
  int64_t not_after = 0;  // Unix seconds; 0 when the file did not decode
};
// The state of this node's server, client and CA certificates (as checked by
// ValidateTlsFiles); empty when TLS is off. The last answer is reused for up
// to 10 s of `now` while the five files (inode, size, mtime) and the settings
// are unchanged: a replaced file is checked at once, an expiry shows within
// 10 s.
std::vector<CertificateState> CertificateStates(const Config& cfg, int64_t now);

// One line for the node's server and client certificates together, the worse
// of the two: "Valid", "Expiring in 12 days", "Invalid (client: expired on ...)".
// "" when `states` is empty.
std::string NodeCertificateSummary(const std::vector<CertificateState>& states);

// A node's TLS client settings (for net::SetHttpClientTls and the store
// client): its client pair, the cluster CA, and the mode's checks (enforce:
// chain, and the host with tls.verify_hostname; permissive: none). Empty when
// cfg has no tls section.
dcs::TlsClientOptions ClientTlsFor(const Config& cfg);
// The same from the agent's private copies (<state_dir>/tls), which follow a
// certificate rotation: what the agent's own connections present and trust.
dcs::TlsClientOptions AgentClientTls(const Config& cfg);

}  // namespace tandem::agent
