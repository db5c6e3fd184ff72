// OpenSSL plumbing shared by the pki module: owning pointers, the error queue,
// times and names as text, keys and requests. Internal to src/pki; callers use
// ca.h, csr.h, pem.h and inspect.h.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

namespace tandem::pki {

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct X509ReqFree {
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using X509ReqPtr = std::unique_ptr<X509_REQ, X509ReqFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// Drains OpenSSL's error queue of this thread into one line ("" when empty), so that a
// failed call leaves no stale error for the next one.
std::string DrainOpenSslErrors();
// An Error with `what` and, when there is one, OpenSSL's reason.
Error OpenSslError(ErrorCode code, const std::string& what);

// "CN=node1,O=..." (RFC 2253 order, as `openssl x509 -nameopt RFC2253`).
std::string NameToString(const X509_NAME* name);
// The subject's CN, or "" when there is none.
std::string CommonName(const X509_NAME* name);
// Unix seconds of an ASN1_TIME, or an error for a malformed one.
Result<int64_t> AsnTimeToUnix(const ASN1_TIME* t);
// 2026-12-01T18:04:09Z
std::string FormatUtc(int64_t unix_seconds);
// "4A:1F:..." (hex bytes, as openssl x509 -serial but with colons).
std::string SerialNumber(const X509* cert);
// "EC P-256", "RSA 2048", "ED25519".
std::string KeyType(const EVP_PKEY* key);
// The subjectAltName entries as "DNS:x" / "IP:y" ("" when there is no extension).
std::vector<std::string> SubjectAltNames(const GENERAL_NAMES* names);
// The same, read from a certificate's subjectAltName extension.
std::vector<std::string> CertificateSans(const X509* cert);

// A new EC P-256 key.
Result<PkeyPtr> GenerateKey();
// PKCS#8 PEM of a key, unencrypted. The caller writes it with mode 0600 and wipes it.
Result<std::string> PrivateKeyPem(EVP_PKEY* key);
Result<std::string> CertificatePem(X509* cert);
Result<std::string> RequestPem(X509_REQ* req);
// A certificate request for CN=common_name with the given SANs ("DNS:x", "IP:y"; already
// validated), signed with key (SHA-256).
Result<X509ReqPtr> MakeRequest(EVP_PKEY* key, const std::string& common_name,
                               const std::vector<std::string>& sans);

// Writes a private key file atomically with mode 0600 and wipes the PEM from memory.
Status WritePrivateKey(const std::string& path, EVP_PKEY* key);

}  // namespace tandem::pki
