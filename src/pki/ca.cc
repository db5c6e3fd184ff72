// The cluster CA: InitCa (key and self-signed certificate), signing a request
// with the CA's extensions and validity, and IssueNode (a node's server and
// client certificates in one step). Files are written atomically; keys never
// reach a message. Runs on the CLI's thread; time comes in as Validity.
#include "pki/ca.h"

#include <openssl/bn.h>
#include <openssl/rand.h>

#include "base/file.h"
#include "pki/names.h"
#include "pki/ossl.h"
#include "pki/pem.h"

namespace tandem::pki {

namespace {

struct LoadedCa {
  X509Ptr cert;
  PkeyPtr key;
  std::string cert_pem;  // ca.crt as it is on disk, for copies
};

Error NoCa(const std::string& ca_dir, const Error& why) {
  return Error(why.code(), why.message() + "; is --ca-dir " + ca_dir +
                               " the CA's directory? create a CA with `tandem pki ca init --dir " +
                               ca_dir + "`");
}

Result<LoadedCa> LoadCa(const std::string& ca_dir) {
  CaPaths p = CaFiles(ca_dir);
  auto pem = ReadFile(p.cert);
  if (!pem) return NoCa(ca_dir, pem.error());
  auto cert = ParseCertificate(p.cert, *pem);
  if (!cert) return cert.error();
  auto key = LoadPrivateKey(p.key);
  if (!key)
    return key.error().code() == ErrorCode::kNotFound ? NoCa(ca_dir, key.error()) : key.error();
  if (X509_check_ca(cert->get()) == 0) {
    return Error(ErrorCode::kInvalidArgument,
                 p.cert +
                     " is not a CA certificate (no basicConstraints CA:TRUE); give the "
                     "directory made by `tandem pki ca init`");
  }
  if (EVP_PKEY_eq(X509_get0_pubkey(cert->get()), key->get()) != 1) {
    DrainOpenSslErrors();
    return Error(ErrorCode::kInvalidArgument,
                 p.key + " does not match " + p.cert +
                     " (the key's public half differs from the certificate's); put the CA's "
                     "own key and certificate together in " +
                     ca_dir);
  }
  return LoadedCa{std::move(cert).value(), std::move(key).value(), std::move(pem).value()};
}

Status SetRandomSerial(X509* x) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return OpenSslError(ErrorCode::kInternal, "no randomness for a serial number");
  }
  bytes[0] &= 0x7f;  // positive
  bytes[0] |= 0x40;  // and never zero, always 16 bytes long
  BIGNUM* bn = BN_bin2bn(bytes, sizeof bytes, nullptr);
  ASN1_INTEGER* serial = bn != nullptr ? BN_to_ASN1_INTEGER(bn, nullptr) : nullptr;
  BN_free(bn);
  int rc = serial != nullptr ? X509_set_serialNumber(x, serial) : 0;
  ASN1_INTEGER_free(serial);
  if (rc != 1) return OpenSslError(ErrorCode::kInternal, "cannot set the serial number");
  return Ok();
}

Status AddExtension(X509* x, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  if (ext == nullptr) {
    return OpenSslError(ErrorCode::kInternal,
                        std::string("cannot make the extension ") + OBJ_nid2sn(nid) + "=" + value);
  }
  int rc = X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  if (rc != 1) return OpenSslError(ErrorCode::kInternal, "cannot add an extension");
  return Ok();
}

Status SetValidity(X509* x, const Validity& v) {
  if (v.not_after <= v.not_before) {
    return Error(ErrorCode::kInvalidArgument,
                 "the validity period is empty (not after <= not before)");
  }
  if (ASN1_TIME_set(X509_getm_notBefore(x), static_cast<time_t>(v.not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(x), static_cast<time_t>(v.not_after)) == nullptr) {
    return OpenSslError(ErrorCode::kInternal, "cannot set the validity period");
  }
  return Ok();
}

const char* ExtendedKeyUsage(Usage usage) {
  switch (usage) {
    case Usage::kServer:
      return "serverAuth";
    case Usage::kClient:
      return "clientAuth";
    case Usage::kBoth:
      return "serverAuth,clientAuth";
  }
  return "serverAuth";
}

// The leaf's validity inside the CA's: notAfter cut to the CA's; refused if the CA has
// expired by the leaf's notBefore.
Result<Validity> WithinCa(const LoadedCa& ca, const std::string& ca_dir, Validity v,
                          bool* shortened) {
  auto ca_end = AsnTimeToUnix(X509_get0_notAfter(ca.cert.get()));
  if (!ca_end) return ca_end.error();
  if (*ca_end <= v.not_before) {
    return Error(ErrorCode::kFailedPrecondition,
                 CaFiles(ca_dir).cert + " expired on " + FormatUtc(*ca_end) +
                     ": nothing it signs would be trusted. Create a new CA (`tandem pki ca "
                     "init` in another directory) and issue every node again");
  }
  *shortened = v.not_after > *ca_end;
  if (*shortened) v.not_after = *ca_end;
  return v;
}

// A leaf certificate for the request, signed by the CA: the request's subject, key and
// subjectAltName, nothing else of what it asks for.
Result<X509Ptr> SignRequest(X509_REQ* req, const LoadedCa& ca, Usage usage, const Validity& v) {
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req);
  if (pub == nullptr) {
    return OpenSslError(ErrorCode::kInvalidArgument, "the request has no usable public key");
  }
  X509Ptr x(X509_new());
  if (!x || X509_set_version(x.get(), 2) != 1 ||
      X509_set_subject_name(x.get(), X509_REQ_get_subject_name(req)) != 1 ||
      X509_set_issuer_name(x.get(), X509_get_subject_name(ca.cert.get())) != 1 ||
      X509_set_pubkey(x.get(), pub) != 1) {
    return OpenSslError(ErrorCode::kInternal, "cannot build the certificate");
  }
  TANDEM_TRY(SetRandomSerial(x.get()));
  TANDEM_TRY(SetValidity(x.get(), v));
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca.cert.get(), x.get(), nullptr, nullptr, 0);
  TANDEM_TRY(AddExtension(x.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
  // RSA keys also encipher in TLS 1.2's RSA key exchange; EC keys only sign.
  TANDEM_TRY(AddExtension(x.get(), &ctx, NID_key_usage,
                          EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA
                              ? "critical,digitalSignature,keyEncipherment"
                              : "critical,digitalSignature"));
  TANDEM_TRY(AddExtension(x.get(), &ctx, NID_ext_key_usage, ExtendedKeyUsage(usage)));
  TANDEM_TRY(AddExtension(x.get(), &ctx, NID_subject_key_identifier, "hash"));
  TANDEM_TRY(AddExtension(x.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
  for (int i = 0; exts != nullptr && i < sk_X509_EXTENSION_num(exts); ++i) {
    X509_EXTENSION* e = sk_X509_EXTENSION_value(exts, i);
    if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) == NID_subject_alt_name) {
      if (X509_add_ext(x.get(), e, -1) != 1) {
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        return OpenSslError(ErrorCode::kInternal, "cannot copy the request's SANs");
      }
    }
  }
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  if (X509_sign(x.get(), ca.key.get(), EVP_sha256()) <= 0) {
    return OpenSslError(ErrorCode::kInternal, "cannot sign the certificate with the CA key");
  }
  return x;
}

Issued Describe(const std::string& path, X509* x) {
  Issued out;
  out.path = path;
  out.subject = NameToString(X509_get_subject_name(x));
  out.serial = SerialNumber(x);
  out.sans = CertificateSans(x);
  auto na = AsnTimeToUnix(X509_get0_notAfter(x));
  out.not_after = na ? *na : 0;
  DrainOpenSslErrors();
  return out;
}

Status WriteCertificate(const std::string& path, X509* x) {
  auto pem = CertificatePem(x);
  if (!pem) return pem.error();
  return WriteFileAtomic(path, *pem, 0644);
}

}  // namespace

Validity ValidFor(int64_t now, int days) {
  return Validity{now - kBackdateSeconds, now + static_cast<int64_t>(days) * 86400};
}

CaPaths CaFiles(const std::string& ca_dir) {
  return CaPaths{ca_dir + "/ca.key", ca_dir + "/ca.crt"};
}

const char* UsageName(Usage usage) {
  switch (usage) {
    case Usage::kServer:
      return "server";
    case Usage::kClient:
      return "client";
    case Usage::kBoth:
      return "server and client";
  }
  return "?";
}

Status InitCa(const std::string& ca_dir, const std::string& common_name, const Validity& validity) {
  TANDEM_TRY(CheckCommonName(common_name));
  CaPaths p = CaFiles(ca_dir);
  for (const std::string& f : {p.key, p.cert}) {
    if (PathExists(f)) {
      return Error(ErrorCode::kFailedPrecondition,
                   f + " already exists: " + ca_dir +
                       " already holds a CA, and replacing it would make every certificate "
                       "it signed untrusted. Keep it, or move " +
                       ca_dir + " aside (or choose another --dir) to start a new one");
    }
  }
  TANDEM_TRY(MakeDirs(ca_dir, 0700));
  auto key = GenerateKey();
  if (!key) return key.error();
  X509Ptr x(X509_new());
  if (!x || X509_set_version(x.get(), 2) != 1) {
    return OpenSslError(ErrorCode::kInternal, "cannot build the CA certificate");
  }
  X509_NAME* name = X509_get_subject_name(x.get());
  if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1 ||
      X509_set_issuer_name(x.get(), name) != 1 || X509_set_pubkey(x.get(), key->get()) != 1) {
    return OpenSslError(ErrorCode::kInternal, "cannot build the CA certificate");
  }
  TANDEM_TRY(SetRandomSerial(x.get()));
  TANDEM_TRY(SetValidity(x.get(), validity));
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, x.get(), x.get(), nullptr, nullptr, 0);
  TANDEM_TRY(AddExtension(x.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE"));
  TANDEM_TRY(AddExtension(x.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
  TANDEM_TRY(AddExtension(x.get(), &ctx, NID_subject_key_identifier, "hash"));
  TANDEM_TRY(AddExtension(x.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  if (X509_sign(x.get(), key->get(), EVP_sha256()) <= 0) {
    return OpenSslError(ErrorCode::kInternal, "cannot self-sign the CA certificate");
  }
  // The key first: a ca.crt never exists without its key.
  TANDEM_TRY(WritePrivateKey(p.key, key->get()));
  TANDEM_TRY(WriteCertificate(p.cert, x.get()));
  return Ok();
}

Result<Issued> SignRequestFile(const std::string& csr_path, const std::string& ca_dir, Usage usage,
                               const Validity& validity) {
  auto req = LoadRequest(csr_path);
  if (!req) return req.error();
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req->get());
  if (pub == nullptr || X509_REQ_verify(req->get(), pub) != 1) {
    DrainOpenSslErrors();
    return Error(ErrorCode::kInvalidArgument,
                 csr_path +
                     ": the request's signature does not verify (it was altered or "
                     "corrupted after it was made); make a new one with `tandem pki csr`");
  }
  auto ca = LoadCa(ca_dir);
  if (!ca) return ca.error();
  bool shortened = false;
  auto v = WithinCa(*ca, ca_dir, validity, &shortened);
  if (!v) return v.error();
  auto x = SignRequest(req->get(), *ca, usage, *v);
  if (!x) return x.error();
  std::string out = csr_path;
  if (out.size() > 4 && out.compare(out.size() - 4, 4, ".csr") == 0) out.resize(out.size() - 4);
  out += ".crt";
  TANDEM_TRY(WriteCertificate(out, x->get()));
  Issued issued = Describe(out, x->get());
  issued.shortened = shortened;
  return issued;
}

Result<NodeFiles> IssueNode(const std::string& ca_dir, const NodeRequest& r,
                            const Validity& validity) {
  TANDEM_TRY(CheckFileName("node name", r.node));
  TANDEM_TRY(CheckCommonName(r.node));
  TANDEM_TRY(CheckCommonName(r.client_cn));
  if (!IsIpAddress(r.address)) {
    return Error(ErrorCode::kInvalidArgument, "--address '" + r.address +
                                                  "' is not an IP address: give the IP the node "
                                                  "clusters on (node.address), e.g. 10.0.0.1");
  }
  std::vector<std::string> sans = {"IP:" + r.address};
  for (const auto& d : r.dns) {
    if (!IsDnsName(d)) {
      return Error(ErrorCode::kInvalidArgument,
                   "--dns '" + d + "' is not a DNS name (e.g. db1.example.com)");
    }
    sans.push_back("DNS:" + d);
  }
  NodeFiles f{r.out_dir + "/server.key", r.out_dir + "/server.crt", r.out_dir + "/client.key",
              r.out_dir + "/client.crt", r.out_dir + "/ca.crt"};
  if (!r.force) {
    for (const std::string& k : {f.server_key, f.client_key}) {
      if (PathExists(k)) {
        return Error(ErrorCode::kFailedPrecondition,
                     k + " already exists; pass --force to replace the node's keys and "
                         "certificates, or choose another --out");
      }
    }
  }
  auto ca = LoadCa(ca_dir);
  if (!ca) return ca.error();
  bool shortened = false;
  auto v = WithinCa(*ca, ca_dir, validity, &shortened);
  if (!v) return v.error();
  f.not_after = v->not_after;
  f.shortened = shortened;
  TANDEM_TRY(MakeDirs(r.out_dir, 0700));

  auto server_key = GenerateKey();
  if (!server_key) return server_key.error();
  auto server_req = MakeRequest(server_key->get(), r.node, sans);
  if (!server_req) return server_req.error();
  // serverAuth and clientAuth: etcd uses the one peer pair in both directions
  // (and its JSON gateway dials its own gRPC port with the server pair).
  auto server = SignRequest(server_req->get(), *ca, Usage::kBoth, *v);
  if (!server) return server.error();

  auto client_key = GenerateKey();
  if (!client_key) return client_key.error();
  auto client_req = MakeRequest(client_key->get(), r.client_cn, {});
  if (!client_req) return client_req.error();
  auto client = SignRequest(client_req->get(), *ca, Usage::kClient, *v);
  if (!client) return client.error();

  TANDEM_TRY(WritePrivateKey(f.server_key, server_key->get()));
  TANDEM_TRY(WriteCertificate(f.server_cert, server->get()));
  TANDEM_TRY(WritePrivateKey(f.client_key, client_key->get()));
  TANDEM_TRY(WriteCertificate(f.client_cert, client->get()));
  TANDEM_TRY(WriteFileAtomic(f.ca_cert, ca->cert_pem, 0644));
  return f;
}

}  // namespace tandem::pki
