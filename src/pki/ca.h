// The cluster's certificate authority: creating it, signing requests with it, and
// issuing a node's server and client certificates in one step.
//
// Files: <ca_dir>/ca.key (EC P-256, PKCS#8 PEM, mode 0600) and <ca_dir>/ca.crt. Every file
// is written atomically (a reader sees the old file or the new one, never half). Private
// keys are never printed, logged or put into an error message.
//
// Time is an input (`Validity`), so tests can make certificates that have expired or are
// not yet valid.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace tandem::pki {

constexpr int kDefaultCaDays = 3650;   // 10 years: replacing a CA means reissuing everything
constexpr int kDefaultCertDays = 730;  // 2 years; renewed by hand, status warns ahead
constexpr int kBackdateSeconds = 300;  // notBefore is 5 minutes early: a peer clock a little
                                       // behind still accepts a fresh certificate

// Unix seconds, UTC.
struct Validity {
  int64_t not_before = 0;
  int64_t not_after = 0;
};
// [now - kBackdateSeconds, now + days].
Validity ValidFor(int64_t now, int days);

struct CaPaths {
  std::string key;
  std::string cert;
};
CaPaths CaFiles(const std::string& ca_dir);

// Creates ca_dir (mode 0700) if needed and writes a self-signed CA: CN=common_name,
// basicConstraints critical CA:TRUE, keyUsage critical keyCertSign+cRLSign. Refuses
// (kFailedPrecondition, naming the file and the fix) if ca.key or ca.crt already exists.
Status InitCa(const std::string& ca_dir, const std::string& common_name, const Validity& validity);

// What a signed certificate may be used for (extendedKeyUsage).
enum class Usage { kServer, kClient, kBoth };
const char* UsageName(Usage usage);  // "server", "client", "server and client"

struct Issued {
  std::string path;               // the certificate written
  std::string subject;            // "CN=node1"
  std::string serial;             // hex
  std::vector<std::string> sans;  // "DNS:x", "IP:y"
  int64_t not_after = 0;
  bool shortened = false;  // notAfter was cut to the CA's own notAfter
};

// A certificate never outlives its CA: a notAfter past the CA's is cut to the CA's
// (`shortened`). A CA that has expired by validity.not_before signs nothing
// (kFailedPrecondition).
//
// Signs the request in csr_path with the CA in ca_dir and writes the certificate beside
// it (NAME.csr -> NAME.crt, replacing an older one). The request's signature must verify
// (else kInvalidArgument: it was altered or corrupted). Only the request's subject, key and
// subjectAltName are used; any other extension it asks for (CA:TRUE, ...) is ignored.
Result<Issued> SignRequestFile(const std::string& csr_path, const std::string& ca_dir, Usage usage,
                               const Validity& validity);

struct NodeRequest {
  std::string node;                    // CN of the server certificate; file-safe
  std::string address;                 // IP the node clusters on: SAN IP:address
  std::vector<std::string> dns;        // extra SAN DNS names
  std::string client_cn = "postgres";  // the database user the client certificate logs in as
  std::string out_dir;
  bool force = false;  // replace existing keys in out_dir
};
struct NodeFiles {
  std::string server_key, server_cert, client_key, client_cert, ca_cert;
  int64_t not_after = 0;
  bool shortened = false;  // notAfter was cut to the CA's own notAfter
};
// Writes into out_dir (created 0700): server.key/server.crt (CN=node, SAN IP:address and
// the DNS names,
// serverAuth+clientAuth: etcd's peer pair works in both directions), client.key/client.crt
// (CN=client_cn, clientAuth) and a copy of ca.crt. Refuses to replace existing keys unless force.
Result<NodeFiles> IssueNode(const std::string& ca_dir, const NodeRequest& req,
                            const Validity& validity);

}  // namespace tandem::pki
