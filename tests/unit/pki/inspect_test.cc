// Every bad input an operator meets gives an error that names the file and the problem.
#include "pki/inspect.h"

#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pki/ossl.h"
#include "pki/pem.h"
#include "pki_fixture.h"

namespace tandem::pki {
namespace {

bool Has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

class InspectTest : public PkiTest {
 protected:
  void SetUp() override {
    PkiTest::SetUp();
    MakeCaAndNode();
  }
  std::string Server() const { return Node() + "/server.crt"; }
  InspectOptions Opts() const {
    InspectOptions o;
    o.now = now_;
    return o;
  }
  // The failed finding of check, with the test failing when there is none.
  Finding Failed(const Inspection& in, Check check) {
    const Finding* f = in.Find(check);
    EXPECT_NE(f, nullptr) << CheckName(check) << " was not run";
    if (f == nullptr) return Finding{check, true, "", ""};
    EXPECT_FALSE(f->ok) << CheckName(check) << " passed: " << f->detail;
    EXPECT_FALSE(in.ok());
    EXPECT_EQ(Summarize(in).state, CertState::kInvalid);
    return *f;
  }
  // A certificate for node1 signed by the CA in ca_dir, valid in [nb, na].
  std::string SignWith(const std::string& ca_dir, const std::string& name, int64_t nb, int64_t na) {
    auto key = GenerateKey();
    EXPECT_TRUE(key.ok());
    auto req = MakeRequest(key->get(), "node1", {"IP:10.0.0.1"});
    EXPECT_TRUE(req.ok());
    std::string csr = Path(name + ".csr");
    EXPECT_TRUE(WriteFileAtomic(csr, *RequestPem(req->get())).ok());
    EXPECT_TRUE(WritePrivateKey(Path(name + ".key"), key->get()).ok());
    auto r = SignRequestFile(csr, ca_dir, Usage::kServer, Validity{nb, na});
    EXPECT_TRUE(r.ok()) << r.error().message();
    return Path(name + ".crt");
  }
};

TEST_F(InspectTest, MissingFile) {
  auto in = Inspect(Path("nope.crt"), Opts());
  EXPECT_FALSE(in.cert);
  auto f = Failed(in, Check::kFile);
  EXPECT_EQ(f.detail, Path("nope.crt") + ": no such file (check the path)");
}

TEST_F(InspectTest, UnreadableFile) {
  ASSERT_TRUE(WriteFileAtomic(Path("locked.crt"), *ReadFile(Server()), 0).ok());
  if (geteuid() != 0) {  // root reads any file
    auto f = Failed(Inspect(Path("locked.crt"), Opts()), Check::kFile);
    EXPECT_TRUE(Has(f.detail, "cannot read " + Path("locked.crt") + ": Permission denied"))
        << f.detail;
    EXPECT_TRUE(Has(f.detail, "run as a user that may read it")) << f.detail;
  }
  ASSERT_TRUE(MakeDirs(Path("adir.crt")).ok());
  auto dir = Failed(Inspect(Path("adir.crt"), Opts()), Check::kFile);
  EXPECT_EQ(dir.detail, Path("adir.crt") + " is a directory; give the file in it");
  auto dev = Failed(Inspect("/dev/zero", Opts()), Check::kFile);
  EXPECT_TRUE(Has(dev.detail, "/dev/zero is not a regular file")) << dev.detail;
  ASSERT_TRUE(WriteFileAtomic(Path("big.crt"), std::string(2 << 20, 'x')).ok());
  auto big = Failed(Inspect(Path("big.crt"), Opts()), Check::kFile);
  EXPECT_TRUE(Has(big.detail, "is too large for a PEM file")) << big.detail;
}

TEST_F(InspectTest, EmptyFile) {
  ASSERT_TRUE(WriteFileAtomic(Path("empty.crt"), "\n").ok());
  auto f = Failed(Inspect(Path("empty.crt"), Opts()), Check::kFile);
  EXPECT_TRUE(Has(f.detail, Path("empty.crt") + " is empty")) << f.detail;
}

TEST_F(InspectTest, TruncatedPem) {
  std::string pem = *ReadFile(Server());
  ASSERT_TRUE(WriteFileAtomic(Path("cut.crt"), pem.substr(0, pem.size() / 2)).ok());
  auto f = Failed(Inspect(Path("cut.crt"), Opts()), Check::kFile);
  EXPECT_TRUE(Has(f.detail, Path("cut.crt") + " is truncated")) << f.detail;
  EXPECT_TRUE(Has(f.detail, "-----END CERTIFICATE-----")) << f.detail;
}

TEST_F(InspectTest, DerFile) {
  auto cert = LoadCertificate(Server());
  ASSERT_TRUE(cert.ok());
  unsigned char* der = nullptr;
  int n = i2d_X509(cert->get(), &der);
  ASSERT_GT(n, 0);
  ASSERT_TRUE(
      WriteFileAtomic(Path("server.der"), std::string(reinterpret_cast<char*>(der), n)).ok());
  OPENSSL_free(der);
  auto f = Failed(Inspect(Path("server.der"), Opts()), Check::kFile);
  EXPECT_TRUE(Has(f.detail, Path("server.der") +
                                " is not PEM; is it DER? convert with `openssl x509 -inform der"))
      << f.detail;
}

TEST_F(InspectTest, NotPemAtAll) {
  ASSERT_TRUE(WriteFileAtomic(Path("notes.txt"), "hello, I am not a certificate\n").ok());
  auto f = Failed(Inspect(Path("notes.txt"), Opts()), Check::kFile);
  EXPECT_TRUE(Has(f.detail, Path("notes.txt") + " is not PEM (no '-----BEGIN' line)")) << f.detail;
}

TEST_F(InspectTest, CorruptBase64) {
  std::string pem = *ReadFile(Server());
  size_t body = pem.find('\n') + 10;
  pem.replace(body, 20, "!!!!!!!!!!!!!!!!!!!!");
  ASSERT_TRUE(WriteFileAtomic(Path("corrupt.crt"), pem).ok());
  auto f = Failed(Inspect(Path("corrupt.crt"), Opts()), Check::kFile);
  EXPECT_TRUE(Has(f.detail, Path("corrupt.crt") + ": the PEM certificate does not decode"))
      << f.detail;
}

TEST_F(InspectTest, AKeyGivenAsTheCertificateIsNamedButNotShown) {
  auto f = Failed(Inspect(Node() + "/server.key", Opts()), Check::kFile);
  EXPECT_TRUE(Has(f.detail, Node() + "/server.key holds a private key")) << f.detail;
  EXPECT_TRUE(Has(f.detail, "--key")) << f.detail;
  EXPECT_FALSE(Has(f.detail, "MII")) << f.detail;  // no base64 of the key
}

TEST_F(InspectTest, ARequestGivenAsTheCertificate) {
  auto key = GenerateKey();
  auto req = MakeRequest(key->get(), "x", {});
  ASSERT_TRUE(WriteFileAtomic(Path("x.csr"), *RequestPem(req->get())).ok());
  auto f = Failed(Inspect(Path("x.csr"), Opts()), Check::kFile);
  EXPECT_TRUE(Has(f.detail, "holds a certificate request")) << f.detail;
  EXPECT_TRUE(Has(f.detail, "tandem pki sign")) << f.detail;
}

TEST_F(InspectTest, EncryptedKey) {
  auto key = LoadPrivateKey(Node() + "/server.key");
  ASSERT_TRUE(key.ok());
  FILE* fp = fopen(Path("encrypted.key").c_str(), "w");
  ASSERT_NE(fp, nullptr);
  static char pass[] = "secret";
  ASSERT_EQ(PEM_write_PrivateKey(fp, key->get(), EVP_aes_256_cbc(),
                                 reinterpret_cast<unsigned char*>(pass), 6, nullptr, nullptr),
            1);
  fclose(fp);
  chmod(Path("encrypted.key").c_str(), 0600);
  auto o = Opts();
  o.key_path = Path("encrypted.key");
  auto f = Failed(Inspect(Server(), o), Check::kKey);
  EXPECT_TRUE(Has(f.detail, Path("encrypted.key") + ": the key is encrypted")) << f.detail;
  EXPECT_TRUE(Has(f.detail, "openssl pkey -in " + Path("encrypted.key"))) << f.detail;

  // The traditional form ("Proc-Type: 4,ENCRYPTED") too.
  BIO* bio = BIO_new_file(Path("traditional.key").c_str(), "w");
  ASSERT_NE(bio, nullptr);
  ASSERT_EQ(PEM_write_bio_PrivateKey_traditional(bio, key->get(), EVP_aes_256_cbc(),
                                                 reinterpret_cast<unsigned char*>(pass), 6, nullptr,
                                                 nullptr),
            1);
  BIO_free(bio);
  ASSERT_TRUE(Has(*ReadFile(Path("traditional.key")), "Proc-Type: 4,ENCRYPTED"));
  auto t = LoadPrivateKey(Path("traditional.key"));
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(Has(t.error().message(), "the key is encrypted")) << t.error().message();
}

TEST_F(InspectTest, KeyDoesNotMatch) {
  auto o = Opts();
  o.key_path = Node() + "/client.key";
  auto f = Failed(Inspect(Server(), o), Check::kKey);
  EXPECT_EQ(f.reason, "key does not match");
  EXPECT_TRUE(Has(f.detail, Node() + "/client.key does not match the certificate " + Server()))
      << f.detail;
}

TEST_F(InspectTest, KeyReadableByOthers) {
  ASSERT_EQ(chmod((Node() + "/server.key").c_str(), 0644), 0);
  auto o = Opts();
  o.key_path = Node() + "/server.key";
  auto in = Inspect(Server(), o);
  EXPECT_TRUE(in.Find(Check::kKey)->ok);
  auto f = Failed(in, Check::kKeyMode);
  EXPECT_TRUE(Has(f.detail, "chmod 600 " + Node() + "/server.key")) << f.detail;
}

TEST_F(InspectTest, Expired) {
  std::string crt = SignWith(Ca(), "old", now_ - 100 * 86400, now_ - 10 * 86400);
  auto in = Inspect(crt, Opts());
  auto f = Failed(in, Check::kValidity);
  EXPECT_TRUE(Has(f.detail, crt + " expired on " + FormatUtc(now_ - 10 * 86400))) << f.detail;
  EXPECT_TRUE(Has(f.detail, "(10 days ago")) << f.detail;
  EXPECT_EQ(in.cert->days_left, -10);
  EXPECT_EQ(Summarize(in).text,
            "Invalid (expired on " + FormatUtc(now_ - 10 * 86400).substr(0, 10) + ")");
}

TEST_F(InspectTest, NotYetValid) {
  std::string crt = SignWith(Ca(), "future", now_ + 5 * 86400, now_ + 100 * 86400);
  auto f = Failed(Inspect(crt, Opts()), Check::kValidity);
  EXPECT_TRUE(Has(f.detail, crt + " is not valid yet: not before " + FormatUtc(now_ + 5 * 86400)))
      << f.detail;
  EXPECT_TRUE(Has(f.detail, "clock")) << f.detail;
}

TEST_F(InspectTest, SignedByAnotherCa) {
  ASSERT_TRUE(InitCa(Path("other"), "Other CA", ValidFor(now_, 100)).ok());
  std::string crt = SignWith(Path("other"), "stranger", now_ - 60, now_ + 86400);
  auto o = Opts();
  o.ca_path = Ca() + "/ca.crt";
  auto f = Failed(Inspect(crt, o), Check::kChain);
  EXPECT_EQ(f.reason, "signed by another CA");
  EXPECT_TRUE(Has(f.detail, crt + " is signed by another CA: its issuer is 'CN=Other CA' but " +
                                Ca() + "/ca.crt is 'CN=Test CA'"))
      << f.detail;
}

TEST_F(InspectTest, SignedByAnotherCaOfTheSameName) {
  ASSERT_TRUE(InitCa(Path("twin"), "Test CA", ValidFor(now_, 100)).ok());
  std::string crt = SignWith(Path("twin"), "twin", now_ - 60, now_ + 86400);
  auto o = Opts();
  o.ca_path = Ca() + "/ca.crt";
  auto f = Failed(Inspect(crt, o), Check::kChain);
  EXPECT_EQ(f.reason, "signed by another CA");
  EXPECT_TRUE(Has(f.detail, "does not verify with that CA's key")) << f.detail;
}

// A CA rotation trusts a bundle of the old and the new CA for a while: a
// certificate of either chains to it, one of a third CA does not.
TEST_F(InspectTest, EveryCaOfABundleIsATrustAnchor) {
  ASSERT_TRUE(InitCa(Path("next"), "Next CA", ValidFor(now_, 100)).ok());
  std::string renewed = SignWith(Path("next"), "renewed", now_ - 60, now_ + 86400);
  const std::string bundle = Path("bundle.crt");
  ASSERT_TRUE(
      WriteFileAtomic(bundle, *ReadFile(Path("next") + "/ca.crt") + *ReadFile(Ca() + "/ca.crt"))
          .ok());
  auto o = Opts();
  o.ca_path = bundle;
  EXPECT_TRUE(Inspect(renewed, o).Find(Check::kChain)->ok);
  EXPECT_TRUE(Inspect(Server(), o).Find(Check::kChain)->ok);
  ASSERT_TRUE(InitCa(Path("third"), "Third CA", ValidFor(now_, 100)).ok());
  std::string stranger = SignWith(Path("third"), "stranger", now_ - 60, now_ + 86400);
  EXPECT_EQ(Failed(Inspect(stranger, o), Check::kChain).reason, "signed by another CA");
}

TEST_F(InspectTest, BadCaFile) {
  auto o = Opts();
  o.ca_path = Path("missing-ca.crt");
  auto f = Failed(Inspect(Server(), o), Check::kChain);
  EXPECT_TRUE(Has(f.detail, Path("missing-ca.crt") + ": no such file")) << f.detail;
}

TEST_F(InspectTest, WrongHost) {
  auto o = Opts();
  o.host = "10.0.0.99";
  auto f = Failed(Inspect(Server(), o), Check::kHost);
  EXPECT_TRUE(Has(f.detail, "Common Name in certificate " + Server() +
                                " ('node1') does not match host '10.0.0.99'"))
      << f.detail;
  EXPECT_TRUE(Has(f.detail, "IP:10.0.0.1, DNS:db1.example.com")) << f.detail;
  o.host = "db2.example.com";
  Failed(Inspect(Server(), o), Check::kHost);
}

TEST_F(InspectTest, WrongRole) {
  auto o = Opts();
  o.role = Role::kServer;
  auto f = Failed(Inspect(Node() + "/client.crt", o), Check::kRole);
  EXPECT_EQ(f.reason, "not a server certificate");
  EXPECT_TRUE(Has(f.detail, Node() + "/client.crt is not a server certificate: its "
                                     "extendedKeyUsage is clientAuth"))
      << f.detail;
  o.role = Role::kClient;
  // `issue`'s server certificate has both usages (etcd); one signed --server has not.
  EXPECT_TRUE(Inspect(Server(), o).ok());
  Failed(Inspect(SignWith(Ca(), "server-only", now_ - 60, now_ + 86400), o), Check::kRole);
  // The CA is no node's certificate.
  Failed(Inspect(Ca() + "/ca.crt", o), Check::kRole);
}

TEST_F(InspectTest, EveryProblemIsReportedNotOnlyTheFirst) {
  ASSERT_TRUE(InitCa(Path("other"), "Other CA", ValidFor(now_, 100)).ok());
  std::string old = SignWith(Path("other"), "old", now_ - 100 * 86400, now_ - 10 * 86400);
  InspectOptions o = Opts();
  o.ca_path = Ca() + "/ca.crt";
  o.key_path = Node() + "/server.key";
  o.role = Role::kClient;
  o.host = "10.0.0.2";
  auto in = Inspect(old, o);
  int failed = 0;
  for (const auto& f : in.findings) failed += f.ok ? 0 : 1;
  EXPECT_EQ(failed, 5);  // validity, key, chain, role, host
}

TEST_F(InspectTest, InspectPemNamesItsLabel) {
  auto in = InspectPem("peer node2", "garbage", Opts());
  auto f = Failed(in, Check::kFile);
  EXPECT_TRUE(Has(f.detail, "peer node2 is not PEM")) << f.detail;
  auto ok = InspectPem("peer node1", *ReadFile(Server()), Opts());
  EXPECT_TRUE(ok.ok());
}

}  // namespace
}  // namespace tandem::pki
