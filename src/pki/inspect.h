// Inspecting a certificate: what it is, and whether it is fit for a use. Each check is a
// separate Finding, so the CLI (`tandem pki inspect`), the agent's TLS modes and the
// status view (Valid / Invalid (reason) / Expiring in N days) share one implementation.
//
// Pure but for reading the named files: the time is an input (InspectOptions::now).
//
// The checks, each run only when its input is given:
//   file      the certificate file reads and decodes (missing, unreadable, empty, DER,
//             truncated, the wrong kind of PEM: see pem.h). Always.
//   validity  now is within [notBefore, notAfter]. Always.
//   key       --key: the private key decodes, is not encrypted, and is the certificate's.
//   key_mode  --key: the key file's mode is one PostgreSQL accepts (no group or other
//             access; group read allowed when root owns it).
//   chain     --ca: the certificate's signature verifies with the CA's key (the CA is
//             the trust anchor; times are not part of this check).
//   role      --role: extendedKeyUsage allows serverAuth (server) or clientAuth (client);
//             a CA certificate fits neither.
//   host      --host: a subjectAltName (DNS or IP) matches the name or address; the Common
//             Name counts only when there is no DNS SAN (as in TLS clients).
// Every failed finding names the file and says how to fix it. No key material is ever
// put into a finding.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tandem::pki {

enum class Role { kServer, kClient };

struct CertificateInfo {
  std::string subject;            // "CN=node1"
  std::string common_name;        // "node1" ("" when none)
  std::string issuer;             // "CN=Tandem CA"
  std::string serial;             // "4A:1F:..."
  std::vector<std::string> sans;  // "DNS:x", "IP:y"
  int64_t not_before = 0;         // Unix seconds
  int64_t not_after = 0;
  int64_t days_left = 0;  // whole days from now to notAfter; negative once expired
  std::string key_type;   // "EC P-256", "RSA 2048"
  bool is_ca = false;
  std::vector<std::string> extended_key_usage;  // "serverAuth", "clientAuth"; empty = any
};

enum class Check { kFile, kValidity, kKey, kKeyMode, kChain, kRole, kHost };
const char* CheckName(Check check);  // "file", "validity", "key", ...

struct Finding {
  Check check;
  bool ok = false;
  std::string reason;  // short, for a status line: "expired on 2026-01-01", "signed by another CA"
  std::string detail;  // the whole story; on failure it names the file and the fix
};

struct InspectOptions {
  std::string ca_path;       // "" = no chain check
  std::string key_path;      // "" = no key checks
  std::optional<Role> role;  // nullopt = no role check
  std::string host;          // "" = no host check; a DNS name or an IP address
  int64_t now = 0;           // Unix seconds
};

struct Inspection {
  std::string path;
  std::optional<CertificateInfo> cert;  // absent when the file did not decode
  std::vector<Finding> findings;        // in the order of the list above
  bool ok() const;
  const Finding* FirstFailure() const;  // nullptr when every check passed
  const Finding* Find(Check check) const;
};

// Inspects the certificate in path (the first one, in a chain file).
Inspection Inspect(const std::string& path, const InspectOptions& opts);
// The same for PEM text already in memory (a peer's certificate); label names it in messages.
Inspection InspectPem(const std::string& label, const std::string& pem, const InspectOptions& opts);

enum class CertState { kValid, kExpiring, kInvalid };
struct Summary {
  CertState state;
  std::string text;  // "Valid", "Expiring in 12 days", "Invalid (expired on 2026-01-01)"
};
// A certificate that passed every check but expires within warn_days is kExpiring.
Summary Summarize(const Inspection& inspection, int warn_days = 30);

// 2026-12-01T18:04:09Z
std::string FormatUtc(int64_t unix_seconds);

}  // namespace tandem::pki
