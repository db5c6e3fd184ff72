// The cluster CA, requests, signing and issuing: what each writes, and what it refuses.
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki/csr.h"
#include "pki/inspect.h"
#include "pki/ossl.h"
#include "pki/pem.h"
#include "pki_fixture.h"

namespace tandem::pki {
namespace {

InspectOptions Opts(int64_t now, std::string ca = "", std::string key = "",
                    std::optional<Role> role = std::nullopt, std::string host = "") {
  InspectOptions o;
  o.ca_path = std::move(ca);
  o.key_path = std::move(key);
  o.role = role;
  o.host = std::move(host);
  o.now = now;
  return o;
}

TEST_F(PkiTest, CaInitWritesASelfSignedCaWithAPrivateKey) {
  ASSERT_TRUE(InitCa(Ca(), "Test CA", ValidFor(now_, kDefaultCaDays)).ok());
  EXPECT_EQ(Mode(Ca() + "/ca.key"), 0600u);
  EXPECT_EQ(Mode(Ca()), 0700u);
  EXPECT_FALSE(PathExists(Ca() + "/ca.key.tmp"));
  auto cert = LoadCertificate(Ca() + "/ca.crt");
  ASSERT_TRUE(cert.ok()) << cert.error().message();
  X509* x = cert->get();
  EXPECT_EQ(X509_check_ca(x), 1);
  EXPECT_NE(X509_get_extension_flags(x) & EXFLAG_SS, 0u);  // self-signed
  EXPECT_TRUE(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
  EXPECT_TRUE(X509_get_key_usage(x) & KU_CRL_SIGN);
  EXPECT_EQ(CommonName(X509_get_subject_name(x)), "Test CA");
  EXPECT_EQ(KeyType(X509_get0_pubkey(x)), "EC P-256");
  auto info = Inspect(Ca() + "/ca.crt", Opts(now_, Ca() + "/ca.crt", Ca() + "/ca.key"));
  ASSERT_TRUE(info.cert);
  EXPECT_TRUE(info.ok()) << info.FirstFailure()->detail;
  EXPECT_TRUE(info.cert->is_ca);
  // Ten years by default, give or take the leap days.
  EXPECT_GE(info.cert->days_left, 3649);
  EXPECT_LE(info.cert->days_left, 3650);
}

TEST_F(PkiTest, CaInitRefusesToReplaceAnExistingCa) {
  ASSERT_TRUE(InitCa(Ca(), "Test CA", ValidFor(now_, 10)).ok());
  auto before = ReadFile(Ca() + "/ca.crt");
  Status again = InitCa(Ca(), "Other CA", ValidFor(now_, 10));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(again.error().message().find(Ca() + "/ca.key already exists"), std::string::npos)
      << again.error().message();
  EXPECT_NE(again.error().message().find("another --dir"), std::string::npos);
  EXPECT_EQ(*ReadFile(Ca() + "/ca.crt"), *before);
}

TEST_F(PkiTest, CaInitRefusesABadCommonName) {
  EXPECT_FALSE(InitCa(Ca(), "", ValidFor(now_, 10)).ok());
  EXPECT_FALSE(InitCa(Ca(), std::string(65, 'x'), ValidFor(now_, 10)).ok());
  EXPECT_FALSE(PathExists(Ca() + "/ca.key"));
}

TEST_F(PkiTest, IssueWritesServerAndClientPairsThatPassEveryCheck) {
  MakeCaAndNode();
  for (const char* key : {"server.key", "client.key"}) EXPECT_EQ(Mode(Node() + "/" + key), 0600u);
  EXPECT_EQ(*ReadFile(Node() + "/ca.crt"), *ReadFile(Ca() + "/ca.crt"));

  auto server =
      Inspect(Node() + "/server.crt",
              Opts(now_, Node() + "/ca.crt", Node() + "/server.key", Role::kServer, "10.0.0.1"));
  ASSERT_TRUE(server.cert);
  EXPECT_TRUE(server.ok()) << server.FirstFailure()->detail;
  EXPECT_EQ(server.findings.size(), 7u);  // file, validity, key, key_mode, chain, role, host
  EXPECT_EQ(server.cert->subject, "CN=node1");
  EXPECT_EQ(server.cert->issuer, "CN=Test CA");
  EXPECT_EQ(server.cert->sans, (std::vector<std::string>{"IP:10.0.0.1", "DNS:db1.example.com"}));
  // Both usages: etcd's peer pair is used as server and as client.
  EXPECT_EQ(server.cert->extended_key_usage,
            (std::vector<std::string>{"serverAuth", "clientAuth"}));
  EXPECT_EQ(server.cert->key_type, "EC P-256");
  EXPECT_FALSE(server.cert->is_ca);
  EXPECT_EQ(server.cert->serial.size(), 16u * 3 - 1);  // 16 bytes, "AB:CD:..."
  EXPECT_EQ(Summarize(server).text, "Valid");

  auto by_name =
      Inspect(Node() + "/server.crt", Opts(now_, "", "", std::nullopt, "db1.example.com"));
  EXPECT_TRUE(by_name.ok());

  auto client = Inspect(Node() + "/client.crt",
                        Opts(now_, Ca() + "/ca.crt", Node() + "/client.key", Role::kClient));
  EXPECT_TRUE(client.ok()) << client.FirstFailure()->detail;
  EXPECT_EQ(client.cert->common_name, "postgres");
  EXPECT_EQ(client.cert->extended_key_usage, (std::vector<std::string>{"clientAuth"}));
  EXPECT_TRUE(client.cert->sans.empty());
}

TEST_F(PkiTest, IssueRefusesToReplaceKeysUnlessForced) {
  MakeCaAndNode();
  auto key = ReadFile(Node() + "/server.key");
  NodeRequest r;
  r.node = "node1";
  r.address = "10.0.0.1";
  r.out_dir = Node();
  auto again = IssueNode(Ca(), r, ValidFor(now_, 10));
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message().find("--force"), std::string::npos);
  EXPECT_EQ(*ReadFile(Node() + "/server.key"), *key);
  r.force = true;
  ASSERT_TRUE(IssueNode(Ca(), r, ValidFor(now_, 10)).ok());
  EXPECT_NE(*ReadFile(Node() + "/server.key"), *key);
}

TEST_F(PkiTest, IssueRefusesBadInputsAndAMissingCa) {
  NodeRequest r;
  r.node = "node1";
  r.address = "10.0.0.1";
  r.out_dir = Node();
  auto no_ca = IssueNode(Ca(), r, ValidFor(now_, 10));
  ASSERT_FALSE(no_ca.ok());
  EXPECT_NE(no_ca.error().message().find(Ca() + "/ca.crt"), std::string::npos);
  EXPECT_NE(no_ca.error().message().find("tandem pki ca init --dir " + Ca()), std::string::npos)
      << no_ca.error().message();
  ASSERT_TRUE(InitCa(Ca(), "Test CA", ValidFor(now_, 10)).ok());
  r.address = "node1.example.com";
  auto bad_ip = IssueNode(Ca(), r, ValidFor(now_, 10));
  ASSERT_FALSE(bad_ip.ok());
  EXPECT_NE(bad_ip.error().message().find("not an IP address"), std::string::npos);
  r.address = "10.0.0.1";
  r.node = "../etc";
  EXPECT_FALSE(IssueNode(Ca(), r, ValidFor(now_, 10)).ok());
  r.node = "node1";
  r.dns = {"bad name"};
  EXPECT_FALSE(IssueNode(Ca(), r, ValidFor(now_, 10)).ok());
  EXPECT_FALSE(PathExists(Node() + "/server.key"));
}

TEST_F(PkiTest, CsrAndSignCopyTheSansAndSetTheUsage) {
  ASSERT_TRUE(InitCa(Ca(), "Test CA", ValidFor(now_, 100)).ok());
  auto files = MakeKeyAndRequest(Path("req"), "web", "web.example.com",
                                 {"DNS:web.example.com", "ip:192.0.2.7", "IP:2001:db8::1"});
  ASSERT_TRUE(files.ok()) << files.error().message();
  EXPECT_EQ(files->key, Path("req") + "/web.key");
  EXPECT_EQ(files->csr, Path("req") + "/web.csr");
  EXPECT_EQ(Mode(files->key), 0600u);

  auto issued = SignRequestFile(files->csr, Ca(), Usage::kBoth, ValidFor(now_, 30));
  ASSERT_TRUE(issued.ok()) << issued.error().message();
  EXPECT_EQ(issued->path, Path("req") + "/web.crt");
  EXPECT_EQ(issued->subject, "CN=web.example.com");
  EXPECT_EQ(issued->sans,
            (std::vector<std::string>{"DNS:web.example.com", "IP:192.0.2.7", "IP:2001:db8::1"}));
  // An hour later: 29 whole days left.
  auto in = Inspect(issued->path,
                    Opts(now_ + 3600, Ca() + "/ca.crt", files->key, Role::kClient, "2001:db8::1"));
  EXPECT_TRUE(in.ok()) << in.FirstFailure()->detail;
  EXPECT_EQ(in.cert->extended_key_usage, (std::vector<std::string>{"serverAuth", "clientAuth"}));
  EXPECT_EQ(in.cert->days_left, 29);
  EXPECT_EQ(Summarize(in).text, "Expiring in 29 days");

  auto again = MakeKeyAndRequest(Path("req"), "web", "web.example.com", {});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message().find("web.key already exists"), std::string::npos);
}

TEST_F(PkiTest, CsrRefusesMalformedSans) {
  auto no_prefix = MakeKeyAndRequest(Path("r"), "a", "a", {"10.0.0.1"});
  ASSERT_FALSE(no_prefix.ok());
  EXPECT_NE(no_prefix.error().message().find("--san IP:10.0.0.1"), std::string::npos)
      << no_prefix.error().message();
  EXPECT_FALSE(MakeKeyAndRequest(Path("r"), "a", "a", {"IP:10.0.0.300"}).ok());
  EXPECT_FALSE(MakeKeyAndRequest(Path("r"), "a", "a", {"DNS:has space"}).ok());
  EXPECT_FALSE(MakeKeyAndRequest(Path("r"), "a/b", "a", {}).ok());
  EXPECT_FALSE(PathExists(Path("r") + "/a.key"));
}

TEST_F(PkiTest, SignRefusesARequestWhoseSignatureDoesNotVerify) {
  ASSERT_TRUE(InitCa(Ca(), "Test CA", ValidFor(now_, 100)).ok());
  auto files = MakeKeyAndRequest(Path("req"), "node2", "node2", {"IP:10.0.0.2"});
  ASSERT_TRUE(files.ok());
  // Someone changes the subject after the request was signed.
  auto req = LoadRequest(files->csr);
  ASSERT_TRUE(req.ok());
  X509_NAME* name = X509_NAME_new();
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("evil"), -1, -1, 0);
  ASSERT_EQ(X509_REQ_set_subject_name(req->get(), name), 1);
  X509_NAME_free(name);
  auto pem = RequestPem(req->get());
  ASSERT_TRUE(pem.ok());
  ASSERT_TRUE(WriteFileAtomic(files->csr, *pem).ok());

  auto r = SignRequestFile(files->csr, Ca(), Usage::kServer, ValidFor(now_, 10));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find(files->csr + ": the request's signature does not verify"),
            std::string::npos)
      << r.error().message();
  EXPECT_FALSE(PathExists(Path("req") + "/node2.crt"));
}

TEST_F(PkiTest, SignNeverCopiesARequestedCaFlag) {
  ASSERT_TRUE(InitCa(Ca(), "Test CA", ValidFor(now_, 100)).ok());
  // A request that asks for CA:TRUE, made by hand.
  auto key = GenerateKey();
  ASSERT_TRUE(key.ok());
  X509_REQ* req = X509_REQ_new();
  X509_REQ_set_pubkey(req, key->get());
  X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("sneaky"), -1, -1, 0);
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  sk_X509_EXTENSION_push(
      exts, X509V3_EXT_conf_nid(nullptr, nullptr, NID_basic_constraints, "critical,CA:TRUE"));
  X509_REQ_add_extensions(req, exts);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  X509_REQ_sign(req, key->get(), EVP_sha256());
  auto pem = RequestPem(req);
  X509_REQ_free(req);
  ASSERT_TRUE(pem.ok());
  ASSERT_TRUE(WriteFileAtomic(Path("sneaky.csr"), *pem).ok());
  auto r = SignRequestFile(Path("sneaky.csr"), Ca(), Usage::kServer, ValidFor(now_, 10));
  ASSERT_TRUE(r.ok()) << r.error().message();
  auto in = Inspect(Path("sneaky.crt"), Opts(now_));
  ASSERT_TRUE(in.cert);
  EXPECT_FALSE(in.cert->is_ca);
}

TEST_F(PkiTest, ACertificateNeverOutlivesItsCa) {
  ASSERT_TRUE(InitCa(Ca(), "Short CA", ValidFor(now_, 10)).ok());
  auto files = MakeKeyAndRequest(Path("r"), "n", "n", {"IP:10.0.0.3"});
  ASSERT_TRUE(files.ok());
  auto r = SignRequestFile(files->csr, Ca(), Usage::kServer, ValidFor(now_, 730));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(r->shortened);
  EXPECT_EQ(r->not_after, ValidFor(now_, 10).not_after);
  NodeRequest n;
  n.node = "n";
  n.address = "10.0.0.3";
  n.out_dir = Path("n");
  auto issued = IssueNode(Ca(), n, ValidFor(now_, 730));
  ASSERT_TRUE(issued.ok());
  EXPECT_TRUE(issued->shortened);
  auto in = Inspect(issued->server_cert, Opts(now_));
  EXPECT_EQ(in.cert->not_after, ValidFor(now_, 10).not_after);
}

TEST_F(PkiTest, AnExpiredCaSignsNothing) {
  ASSERT_TRUE(InitCa(Ca(), "Old CA", Validity{now_ - 100 * 86400, now_ - 86400}).ok());
  auto files = MakeKeyAndRequest(Path("r"), "n", "n", {"IP:10.0.0.3"});
  ASSERT_TRUE(files.ok());
  auto r = SignRequestFile(files->csr, Ca(), Usage::kServer, ValidFor(now_, 30));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find(Ca() + "/ca.crt expired on " + FormatUtc(now_ - 86400)),
            std::string::npos)
      << r.error().message();
  EXPECT_FALSE(PathExists(Path("r") + "/n.crt"));
}

}  // namespace
}  // namespace tandem::pki
