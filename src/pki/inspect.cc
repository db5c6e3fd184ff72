// Inspect: one Finding per check of a certificate (file, validity, key, key
// mode, chain, role, host, name), the summary line the status view shows
// (Valid / Invalid (reason) / Expiring in N days). Pure but for reading the
// named files; `now` is an input.
#include "pki/inspect.h"

#include <openssl/bn.h>
#include <openssl/x509_vfy.h>
#include <sys/stat.h>

#include <cstdio>

#include "base/file.h"
#include "pki/names.h"
#include "pki/ossl.h"
#include "pki/pem.h"

namespace tandem::pki {

namespace {

struct StoreFree {
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string Day(int64_t t) {
  return FormatUtc(t).substr(0, 10);
}

int64_t FloorDays(int64_t seconds) {
  return seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
}

std::string Plural(int64_t n, const char* unit) {
  return std::to_string(n) + " " + unit + (n == 1 ? "" : "s");
}

CertificateInfo Describe(X509* x, int64_t now) {
  CertificateInfo c;
  c.subject = NameToString(X509_get_subject_name(x));
  c.common_name = CommonName(X509_get_subject_name(x));
  c.issuer = NameToString(X509_get_issuer_name(x));
  c.serial = SerialNumber(x);
  c.sans = CertificateSans(x);
  auto nb = AsnTimeToUnix(X509_get0_notBefore(x));
  auto na = AsnTimeToUnix(X509_get0_notAfter(x));
  c.not_before = nb ? *nb : 0;
  c.not_after = na ? *na : 0;
  c.days_left = FloorDays(c.not_after - now);
  c.key_type = KeyType(X509_get0_pubkey(x));
  c.is_ca = X509_check_ca(x) != 0;
  auto* eku =
      static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(x, NID_ext_key_usage, nullptr, nullptr));
  for (int i = 0; eku != nullptr && i < sk_ASN1_OBJECT_num(eku); ++i) {
    const ASN1_OBJECT* o = sk_ASN1_OBJECT_value(eku, i);
    int nid = OBJ_obj2nid(o);
    if (nid != NID_undef) {
      c.extended_key_usage.push_back(OBJ_nid2sn(nid));
    } else {
      char buf[80];
      OBJ_obj2txt(buf, sizeof buf, o, 1);
      c.extended_key_usage.push_back(buf);
    }
  }
  EXTENDED_KEY_USAGE_free(eku);
  DrainOpenSslErrors();
  return c;
}

Finding Pass(Check check, std::string detail) {
  return Finding{check, true, "", std::move(detail)};
}
Finding Fail(Check check, std::string reason, std::string detail) {
  return Finding{check, false, std::move(reason), std::move(detail)};
}

Finding CheckValidity(const std::string& path, const CertificateInfo& c, int64_t now) {
  if (now < c.not_before) {
    return Fail(Check::kValidity, "not valid until " + Day(c.not_before),
                path + " is not valid yet: not before " + FormatUtc(c.not_before) + " (in " +
                    Plural(FloorDays(c.not_before - now) + 1, "day") + "; now is " +
                    FormatUtc(now) + "); check this machine's clock (`date -u`)");
  }
  if (now > c.not_after) {
    return Fail(Check::kValidity, "expired on " + Day(c.not_after),
                path + " expired on " + FormatUtc(c.not_after) + " (" +
                    Plural(FloorDays(now - c.not_after), "day") + " ago; valid from " +
                    FormatUtc(c.not_before) +
                    "); issue a new one with `tandem pki issue` or `tandem pki sign`");
  }
  return Pass(Check::kValidity, "valid from " + FormatUtc(c.not_before) + " to " +
                                    FormatUtc(c.not_after) + " (" + Plural(c.days_left, "day") +
                                    " left)");
}

Finding CheckKey(const std::string& path, X509* x, const std::string& key_path) {
  auto key = LoadPrivateKey(key_path);
  if (!key) return Fail(Check::kKey, "key unusable", key.error().message());
  if (EVP_PKEY_eq(X509_get0_pubkey(x), key->get()) != 1) {
    DrainOpenSslErrors();
    return Fail(Check::kKey, "key does not match",
                key_path + " does not match the certificate " + path +
                    " (the key's public half is not the certificate's); give the key that was "
                    "made with this certificate's request, or issue a new pair");
  }
  return Pass(Check::kKey, key_path + " is the certificate's key (" + KeyType(key->get()) + ")");
}

// PostgreSQL's rule for ssl_key_file (be-secure-common.c): owned by the server's user with
// no group or other access, or owned by root with at most group read.
Finding CheckKeyMode(const std::string& key_path) {
  struct stat st {};
  if (::stat(key_path.c_str(), &st) != 0) {
    return Fail(Check::kKeyMode, "key unreadable", key_path + ": cannot stat the key file");
  }
  unsigned mode = st.st_mode & 07777;
  char octal[8];
  std::snprintf(octal, sizeof octal, "%04o", mode);
  bool root = st.st_uid == 0;
  bool bad = root ? (mode & (S_IWGRP | S_IXGRP | S_IRWXO)) != 0 : (mode & (S_IRWXG | S_IRWXO)) != 0;
  if (bad) {
    return Fail(Check::kKeyMode, "key file mode " + std::string(octal),
                key_path + " has mode " + octal +
                    ": other users may read the private key, and PostgreSQL refuses such a key "
                    "file; run `chmod 600 " +
                    key_path + "`");
  }
  return Pass(Check::kKeyMode, key_path + " has mode " + octal);
}

Finding CheckChain(const std::string& path, X509* x, const std::string& ca_path) {
  // Every certificate of a bundle is a trust anchor (a CA rotation trusts the
  // old and the new CA for a while); messages name the first.
  auto cas = LoadCertificates(ca_path);
  if (!cas) return Fail(Check::kChain, "CA unusable", cas.error().message());
  const X509Ptr* ca = &cas->front();
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  bool added = store != nullptr;
  for (const auto& c : *cas) added = added && X509_STORE_add_cert(store.get(), c.get()) == 1;
  if (!ctx || !added || X509_STORE_CTX_init(ctx.get(), store.get(), x, nullptr) != 1) {
    return Fail(Check::kChain, "cannot verify",
                OpenSslError(ErrorCode::kInternal, "cannot set up the verification").message());
  }
  // Times are the validity check's business; the CA given is the trust anchor even when
  // it is an intermediate.
  X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_NO_CHECK_TIME | X509_V_FLAG_PARTIAL_CHAIN);
  int rc = X509_verify_cert(ctx.get());
  int err = X509_STORE_CTX_get_error(ctx.get());
  DrainOpenSslErrors();
  std::string ca_subject = NameToString(X509_get_subject_name(ca->get()));
  std::string issuer = NameToString(X509_get_issuer_name(x));
  if (rc == 1) {
    return Pass(Check::kChain, "signed by " + ca_subject + " (" + ca_path + ")");
  }
  bool same_name = X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca->get())) == 0;
  if (err == X509_V_ERR_CERT_SIGNATURE_FAILURE ||
      (same_name && (err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                     err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
                     err == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
                     err == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN))) {
    return Fail(Check::kChain, "signed by another CA",
                path + " is signed by another CA: it names '" + issuer + "' as its issuer, like " +
                    ca_path +
                    ", but its signature does not verify with that CA's key (a different CA "
                    "of the same name); use the CA that signed it, or reissue it with this one");
  }
  if (err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
      err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
      err == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
      err == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN) {
    return Fail(Check::kChain, "signed by another CA",
                path + " is signed by another CA: its issuer is '" + issuer + "' but " + ca_path +
                    " is '" + ca_subject +
                    "'; give the CA that signed it with --ca, or reissue it with this CA "
                    "(`tandem pki issue` / `tandem pki sign`)");
  }
  return Fail(Check::kChain, "does not chain to the CA",
              path + " does not chain to " + ca_path + ": " + X509_verify_cert_error_string(err));
}

Finding CheckRole(const std::string& path, const CertificateInfo& c, Role role) {
  const char* want = role == Role::kServer ? "server" : "client";
  const char* eku = role == Role::kServer ? "serverAuth" : "clientAuth";
  const char* flag = role == Role::kServer ? "--server" : "--client";
  if (c.is_ca) {
    return Fail(Check::kRole, "a CA certificate, not a " + std::string(want) + " certificate",
                path + " is a CA certificate (CA:TRUE), not a " + want +
                    " certificate; give the node's " + want + ".crt");
  }
  if (c.extended_key_usage.empty()) {
    return Pass(Check::kRole,
                std::string("no extendedKeyUsage: fits any role, ") + want + " included");
  }
  for (const auto& u : c.extended_key_usage) {
    if (u == eku)
      return Pass(Check::kRole, std::string("fits the ") + want + " role (" + eku + ")");
  }
  return Fail(Check::kRole, std::string("not a ") + want + " certificate",
              path + " is not a " + want + " certificate: its extendedKeyUsage is " +
                  Join(c.extended_key_usage) + ", without " + eku + "; use the node's " + want +
                  ".crt, or sign its request with `tandem pki sign CSR " + flag + "`");
}

Finding CheckHost(const std::string& path, X509* x, const CertificateInfo& c,
                  const std::string& host) {
  bool match = IsIpAddress(host) ? X509_check_ip_asc(x, host.c_str(), 0) == 1
                                 : X509_check_host(x, host.c_str(), host.size(), 0, nullptr) == 1;
  DrainOpenSslErrors();
  if (match) return Pass(Check::kHost, "matches " + host);
  std::string names = c.sans.empty() ? "no subjectAltName" : "subjectAltName " + Join(c.sans);
  return Fail(Check::kHost, "does not match host " + host,
              "Common Name in certificate " + path + " ('" + c.common_name +
                  "') does not match host '" + host + "', nor does any SAN (" + names +
                  "); clients that verify the host refuse it. Reissue it for this node with "
                  "`tandem pki issue NODE --address IP [--dns NAME]`");
}

Inspection Run(const std::string& path, Result<X509Ptr> loaded, const InspectOptions& o) {
  Inspection out;
  out.path = path;
  if (!loaded) {
    out.findings.push_back(Fail(Check::kFile,
                                loaded.error().code() == ErrorCode::kNotFound
                                    ? "no such file"
                                    : "not a readable PEM certificate",
                                loaded.error().message()));
    return out;
  }
  X509* x = loaded->get();
  out.cert = Describe(x, o.now);
  out.findings.push_back(Pass(Check::kFile, path + " is a PEM certificate"));
  out.findings.push_back(CheckValidity(path, *out.cert, o.now));
  if (!o.key_path.empty()) {
    out.findings.push_back(CheckKey(path, x, o.key_path));
    if (PathExists(o.key_path)) out.findings.push_back(CheckKeyMode(o.key_path));
  }
  if (!o.ca_path.empty()) out.findings.push_back(CheckChain(path, x, o.ca_path));
  if (o.role) out.findings.push_back(CheckRole(path, *out.cert, *o.role));
  if (!o.host.empty()) out.findings.push_back(CheckHost(path, x, *out.cert, o.host));
  return out;
}

}  // namespace

const char* CheckName(Check check) {
  switch (check) {
    case Check::kFile:
      return "file";
    case Check::kValidity:
      return "validity";
    case Check::kKey:
      return "key";
    case Check::kKeyMode:
      return "key_mode";
    case Check::kChain:
      return "chain";
    case Check::kRole:
      return "role";
    case Check::kHost:
      return "host";
  }
  return "?";
}

bool Inspection::ok() const {
  return FirstFailure() == nullptr;
}

const Finding* Inspection::FirstFailure() const {
  for (const auto& f : findings) {
    if (!f.ok) return &f;
  }
  return nullptr;
}

const Finding* Inspection::Find(Check check) const {
  for (const auto& f : findings) {
    if (f.check == check) return &f;
  }
  return nullptr;
}

Inspection Inspect(const std::string& path, const InspectOptions& opts) {
  return Run(path, LoadCertificate(path), opts);
}

Inspection InspectPem(const std::string& label, const std::string& pem,
                      const InspectOptions& opts) {
  return Run(label, ParseCertificate(label, pem), opts);
}

Summary Summarize(const Inspection& in, int warn_days) {
  if (const Finding* f = in.FirstFailure()) {
    return Summary{CertState::kInvalid, "Invalid (" + f->reason + ")"};
  }
  if (in.cert && in.cert->days_left < warn_days) {
    return Summary{CertState::kExpiring, "Expiring in " + Plural(in.cert->days_left, "day")};
  }
  return Summary{CertState::kValid, "Valid"};
}

}  // namespace tandem::pki
