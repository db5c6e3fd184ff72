// OpenSSL plumbing for src/pki: the error queue as text, names, times, serials
// and SANs as text, generating keys and requests, PEM output, writing a key
// 0600. Internal to src/pki.
#include "pki/ossl.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <cstdio>
#include <ctime>

#include "base/file.h"

namespace tandem::pki {

namespace {
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}
}  // namespace

std::string DrainOpenSslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    const char* reason = ERR_reason_error_string(e);
    std::string r = reason != nullptr ? reason : "error " + std::to_string(e);
    if (out.find(r) != std::string::npos) continue;
    if (!out.empty()) out += "; ";
    out += r;
  }
  return out;
}

Error OpenSslError(ErrorCode code, const std::string& what) {
  std::string why = DrainOpenSslErrors();
  return Error(code, why.empty() ? what : what + " (OpenSSL: " + why + ")");
}

std::string NameToString(const X509_NAME* name) {
  if (name == nullptr) return "";
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
    DrainOpenSslErrors();
    return "";
  }
  return BioContents(bio.get());
}

std::string CommonName(const X509_NAME* name) {
  if (name == nullptr) return "";
  int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (i < 0) return "";
  const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) {
    DrainOpenSslErrors();
    return "";
  }
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

Result<int64_t> AsnTimeToUnix(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    DrainOpenSslErrors();
    return Error(ErrorCode::kInvalidArgument, "malformed time in the certificate");
  }
  return static_cast<int64_t>(timegm(&tm));
}

std::string FormatUtc(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string SerialNumber(const X509* cert) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  char* hex = bn != nullptr ? BN_bn2hex(bn) : nullptr;
  std::string h = hex != nullptr ? hex : "";
  OPENSSL_free(hex);
  BN_free(bn);
  if (h.size() % 2 == 1) h = "0" + h;
  std::string out;
  for (size_t i = 0; i < h.size(); i += 2) out += (i == 0 ? "" : ":") + h.substr(i, 2);
  return out;
}

std::string KeyType(const EVP_PKEY* key) {
  if (key == nullptr) return "unknown";
  int id = EVP_PKEY_get_base_id(key);
  switch (id) {
    case EVP_PKEY_EC: {
      char group[64] = {0};
      size_t len = 0;
      std::string curve = "unknown curve";
      if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) == 1) {
        curve = group;
        int nid = OBJ_sn2nid(group);
        if (nid == NID_undef) nid = OBJ_ln2nid(group);
        const char* nist = nid != NID_undef ? EC_curve_nid2nist(nid) : nullptr;
        if (nist != nullptr) curve = nist;
      }
      DrainOpenSslErrors();
      return "EC " + curve;
    }
    case EVP_PKEY_RSA:
      return "RSA " + std::to_string(EVP_PKEY_get_bits(key));
    case EVP_PKEY_ED25519:
      return "ED25519";
    case EVP_PKEY_ED448:
      return "ED448";
    default: {
      const char* sn = OBJ_nid2sn(id);
      return sn != nullptr ? sn : "unknown";
    }
  }
}

std::vector<std::string> CertificateSans(const X509* cert) {
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  std::vector<std::string> out = SubjectAltNames(names);
  GENERAL_NAMES_free(names);
  return out;
}

std::vector<std::string> SubjectAltNames(const GENERAL_NAMES* names) {
  std::vector<std::string> out;
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    if (g->type == GEN_DNS) {
      const ASN1_STRING* s = g->d.dNSName;
      out.push_back("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                         static_cast<size_t>(ASN1_STRING_length(s))));
    } else if (g->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* s = g->d.iPAddress;
      char buf[INET6_ADDRSTRLEN] = {0};
      int len = ASN1_STRING_length(s);
      const unsigned char* p = ASN1_STRING_get0_data(s);
      if (len == 4) {
        inet_ntop(AF_INET, p, buf, sizeof buf);
      } else if (len == 16) {
        inet_ntop(AF_INET6, p, buf, sizeof buf);
      } else {
        std::snprintf(buf, sizeof buf, "(%d bytes)", len);
      }
      out.push_back(std::string("IP:") + buf);
    } else if (g->type == GEN_EMAIL) {
      const ASN1_STRING* s = g->d.rfc822Name;
      out.push_back("email:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                           static_cast<size_t>(ASN1_STRING_length(s))));
    } else if (g->type == GEN_URI) {
      const ASN1_STRING* s = g->d.uniformResourceIdentifier;
      out.push_back("URI:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                         static_cast<size_t>(ASN1_STRING_length(s))));
    } else {
      out.push_back("other:(type " + std::to_string(g->type) + ")");
    }
  }
  return out;
}

Result<PkeyPtr> GenerateKey() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError(ErrorCode::kInternal, "cannot generate an EC P-256 key");
  return key;
}

Result<std::string> PrivateKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError(ErrorCode::kInternal, "cannot encode the private key");
  }
  std::string pem = BioContents(bio.get());
  // The BIO's buffer held the key too: wipe it before it is freed.
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  if (n > 0) OPENSSL_cleanse(data, static_cast<size_t>(n));
  return pem;
}

Result<std::string> CertificatePem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return OpenSslError(ErrorCode::kInternal, "cannot encode the certificate");
  }
  return BioContents(bio.get());
}

Result<std::string> RequestPem(X509_REQ* req) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), req) != 1) {
    return OpenSslError(ErrorCode::kInternal, "cannot encode the certificate request");
  }
  return BioContents(bio.get());
}

Result<X509ReqPtr> MakeRequest(EVP_PKEY* key, const std::string& common_name,
                               const std::vector<std::string>& sans) {
  X509ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1 || X509_REQ_set_pubkey(req.get(), key) != 1) {
    return OpenSslError(ErrorCode::kInternal, "cannot build the certificate request");
  }
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1) {
    return OpenSslError(
        ErrorCode::kInvalidArgument,
        "cannot use '" + common_name + "' as a Common Name (at most 64 characters)");
  }
  if (!sans.empty()) {
    std::string value;
    for (const auto& s : sans) value += (value.empty() ? "" : ",") + s;
    X509_EXTENSION* ext =
        X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, value.c_str());
    if (ext == nullptr) {
      return OpenSslError(ErrorCode::kInvalidArgument, "cannot encode the SANs '" + value + "'");
    }
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    sk_X509_EXTENSION_push(exts, ext);
    int rc = X509_REQ_add_extensions(req.get(), exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    if (rc != 1) return OpenSslError(ErrorCode::kInternal, "cannot add the SANs to the request");
  }
  if (X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) {
    return OpenSslError(ErrorCode::kInternal, "cannot sign the certificate request");
  }
  return req;
}

Status WritePrivateKey(const std::string& path, EVP_PKEY* key) {
  auto pem = PrivateKeyPem(key);
  if (!pem) return pem.error();
  Status st = WriteFileAtomic(path, *pem, 0600);
  OPENSSL_cleanse(pem->data(), pem->size());
  return st;
}

}  // namespace tandem::pki
