// The agent refuses bad TLS files with an error naming the key, the file, the
// problem and the fix, and never shows key material; the private copies have
// the owner and mode PostgreSQL accepts.
#include "agent/tls_files.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include "base/file.h"
#include "base/strings.h"
#include "pki/ca.h"
#include "pki/pem.h"
#include "unit/pki/pki_fixture.h"

namespace tandem::agent {
namespace {

bool Has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

class TlsFilesTest : public pki::PkiTest {
 protected:
  void SetUp() override {
    PkiTest::SetUp();
    ASSERT_TRUE(pki::InitCa(Ca(), "Test CA", pki::ValidFor(now_, pki::kDefaultCaDays)).ok());
    Issue("good", pki::ValidFor(now_, pki::kDefaultCertDays));
    cfg_ = ConfigFor("good");
  }

  std::string Issue(const std::string& name, const pki::Validity& v,
                    const std::string& client_cn = "postgres", const std::string& ca = "") {
    pki::NodeRequest r;
    r.node = "node1";
    r.address = "127.0.0.1";
    r.client_cn = client_cn;
    r.out_dir = Path(name);
    auto f = pki::IssueNode(ca.empty() ? Ca() : ca, r, v);
    EXPECT_TRUE(f.ok()) << f.error().message();
    return Path(name);
  }

  Config ConfigFor(const std::string& name) const {
    Config c;
    c.path = "/etc/tandem/tandem.yaml";
    c.node_name = "node1";
    c.node_address = "127.0.0.1";
    c.state_dir = Path("state");
    const std::string d = Path(name) + "/";
    c.tls_server_key = d + "server.key";
    c.tls_server_cert = d + "server.crt";
    c.tls_client_key = d + "client.key";
    c.tls_client_cert = d + "client.crt";
    c.tls_ca_cert = Ca() + "/ca.crt";
    return c;
  }

  std::string ErrorOf(const Config& c) const {
    auto st = ValidateTlsFiles(c, now_);
    return st.ok() ? "" : st.error().message();
  }

  // No line of any key's base64 body appears in `text`.
  void ExpectNoKeyMaterial(const std::string& text) const {
    for (const auto& key : {cfg_.tls_server_key, cfg_.tls_client_key, Ca() + "/ca.key"}) {
      for (const auto& line : Split(*ReadFile(key), '\n')) {
        if (line.empty() || line[0] == '-') continue;
        EXPECT_FALSE(Has(text, line)) << "key material of " << key << " in: " << text;
      }
    }
  }

  Config cfg_;
};

TEST_F(TlsFilesTest, AnIssuedSetPassesInEveryMode) {
  EXPECT_EQ(ErrorOf(cfg_), "");
  Config c = cfg_;
  c.tls_mode = TlsMode::kPermissive;
  EXPECT_EQ(ErrorOf(c), "");
  Config off;
  EXPECT_TRUE(ValidateTlsFiles(off, now_).ok());
}

TEST_F(TlsFilesTest, ClientCommonNameMustBePostgres) {
  Issue("app", pki::ValidFor(now_, 30), "app");
  Config c = cfg_;
  c.tls_client_cert = Path("app") + "/client.crt";
  c.tls_client_key = Path("app") + "/client.key";
  auto e = ErrorOf(c);
  EXPECT_TRUE(Has(e, "tls.client_cert: " + c.tls_client_cert + " has Common Name 'app'")) << e;
  EXPECT_TRUE(Has(e, "must have CN postgres")) << e;
  EXPECT_TRUE(Has(e, "maps CN postgres to the replication user")) << e;
  EXPECT_TRUE(Has(e, "tandem pki issue")) << e;
}

TEST_F(TlsFilesTest, ExpiredAndNotYetValid) {
  Issue("old", {now_ - 20 * 86400, now_ - 86400});
  Issue("future", {now_ + 86400, now_ + 20 * 86400});
  for (const char* name : {"old", "future"}) {
    Config c = ConfigFor(name);
    auto e = ErrorOf(c);
    EXPECT_TRUE(Has(e, "tls.server_cert: ")) << e;
    EXPECT_TRUE(Has(e, "tls.client_cert: ")) << e;
    EXPECT_TRUE(Has(e, c.tls_server_cert)) << e;
    EXPECT_TRUE(Has(e, std::string(name) == "old" ? "expired" : "is not valid yet")) << e;
    EXPECT_TRUE(Has(e, "tandem pki inspect")) << e;
  }
}

TEST_F(TlsFilesTest, SignedByAnotherCa) {
  ASSERT_TRUE(pki::InitCa(Path("other-ca"), "Other", pki::ValidFor(now_, 100)).ok());
  Issue("stranger", pki::ValidFor(now_, 30), "postgres", Path("other-ca"));
  auto e = ErrorOf(ConfigFor("stranger"));
  EXPECT_TRUE(Has(e, "tls.server_cert: ")) << e;
  EXPECT_TRUE(Has(e, "signed by another CA")) << e;
}

TEST_F(TlsFilesTest, KeyNotMatchingItsCertificate) {
  Config c = cfg_;
  c.tls_server_key = cfg_.tls_client_key;
  auto e = ErrorOf(c);
  EXPECT_TRUE(Has(e, "tls.server_key: " + c.tls_server_key + " does not match the certificate " +
                         c.tls_server_cert))
      << e;
  ExpectNoKeyMaterial(e);
}

TEST_F(TlsFilesTest, TruncatedPem) {
  std::string pem = *ReadFile(cfg_.tls_server_cert);
  ASSERT_TRUE(WriteFileAtomic(Path("cut.crt"), pem.substr(0, pem.size() / 2)).ok());
  Config c = cfg_;
  c.tls_server_cert = Path("cut.crt");
  auto e = ErrorOf(c);
  EXPECT_TRUE(Has(e, "tls.server_cert: " + Path("cut.crt") + " is truncated")) << e;

  std::string key = *ReadFile(cfg_.tls_client_key);
  ASSERT_TRUE(WriteFileAtomic(Path("cut.key"), key.substr(0, key.size() / 2), 0600).ok());
  c = cfg_;
  c.tls_client_key = Path("cut.key");
  e = ErrorOf(c);
  EXPECT_TRUE(Has(e, "tls.client_key: " + Path("cut.key") + " is truncated")) << e;
  ExpectNoKeyMaterial(e);
}

TEST_F(TlsFilesTest, EncryptedKey) {
  auto key = pki::LoadPrivateKey(cfg_.tls_client_key);
  ASSERT_TRUE(key.ok());
  FILE* fp = fopen(Path("encrypted.key").c_str(), "w");
  ASSERT_NE(fp, nullptr);
  static char pass[] = "secret";
  ASSERT_EQ(PEM_write_PrivateKey(fp, key->get(), EVP_aes_256_cbc(),
                                 reinterpret_cast<unsigned char*>(pass), 6, nullptr, nullptr),
            1);
  fclose(fp);
  Config c = cfg_;
  c.tls_client_key = Path("encrypted.key");
  auto e = ErrorOf(c);
  EXPECT_TRUE(Has(e, "tls.client_key: " + Path("encrypted.key") + ": the key is encrypted")) << e;
  EXPECT_TRUE(Has(e, "openssl pkey -in")) << e;
  EXPECT_FALSE(Has(e, "secret")) << e;
}

TEST_F(TlsFilesTest, MissingOrUnreadableFile) {
  Config c = cfg_;
  c.tls_ca_cert = Path("nowhere/ca.crt");
  auto e = ErrorOf(c);
  EXPECT_TRUE(Has(e, "tls.ca_cert: ")) << e;
  EXPECT_TRUE(Has(e, Path("nowhere/ca.crt"))) << e;
  c = cfg_;
  c.tls_server_key = Path("good");  // a directory: cannot be read as a file
  e = ErrorOf(c);
  EXPECT_TRUE(Has(e, "tls.server_key: ")) << e;
  EXPECT_TRUE(Has(e, Path("good"))) << e;
}

TEST_F(TlsFilesTest, ACaThatIsNotACa) {
  Config c = cfg_;
  c.tls_ca_cert = cfg_.tls_server_cert;
  auto e = ErrorOf(c);
  EXPECT_TRUE(Has(e, "tls.ca_cert: " + cfg_.tls_server_cert + " is not a CA certificate")) << e;
}

TEST_F(TlsFilesTest, EnforceWithHostCheckNeedsTheNodeAddressInTheServerCertificate) {
  Config c = cfg_;
  c.node_address = "127.0.0.9";
  auto e = ErrorOf(c);
  EXPECT_TRUE(Has(e, "tls.server_cert: ")) << e;
  EXPECT_TRUE(Has(e, "does not match host '127.0.0.9'")) << e;
  EXPECT_TRUE(Has(e, "tandem pki issue")) << e;
  EXPECT_TRUE(Has(e, "tls.verify_hostname: false")) << e;
  c.tls_verify_hostname = false;  // seed 1: verify-ca, CN = domain name, no SAN
  EXPECT_EQ(ErrorOf(c), "");
  c.tls_verify_hostname = true;
  c.tls_mode = TlsMode::kPermissive;
  EXPECT_EQ(ErrorOf(c), "");
}

TEST_F(TlsFilesTest, CopiesArePrivateAndFollowTheSources) {
  auto r = InstallTlsCopies(cfg_, "");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(*r);
  const auto c = TlsCopies(cfg_);
  EXPECT_EQ(Mode(c.dir), 0700u);
  for (const auto& [from, to] :
       std::vector<std::pair<std::string, std::string>>{{cfg_.tls_server_key, c.server_key},
                                                        {cfg_.tls_server_cert, c.server_cert},
                                                        {cfg_.tls_client_key, c.client_key},
                                                        {cfg_.tls_client_cert, c.client_cert},
                                                        {cfg_.tls_ca_cert, c.ca_cert}}) {
    EXPECT_EQ(Mode(to), 0600u) << to;
    EXPECT_EQ(*ReadFile(from), *ReadFile(to)) << to;
  }
  EXPECT_TRUE(TlsCopiesCurrent(cfg_));
  auto again = InstallTlsCopies(cfg_, "");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);  // nothing changed, nothing written

  // A rotated server certificate: noticed, and copied.
  ASSERT_TRUE(WriteFileAtomic(cfg_.tls_server_cert, *ReadFile(cfg_.tls_client_cert)).ok());
  EXPECT_FALSE(TlsCopiesCurrent(cfg_));
  auto rotated = InstallTlsCopies(cfg_, "");
  ASSERT_TRUE(rotated.ok());
  EXPECT_TRUE(*rotated);
  EXPECT_TRUE(TlsCopiesCurrent(cfg_));
  EXPECT_EQ(*ReadFile(c.server_cert), *ReadFile(cfg_.tls_client_cert));
}

// The states the alarm rules read (certificate-expiring, certificate-invalid).
TEST_F(TlsFilesTest, States) {
  auto states = CertificateStates(cfg_, now_);
  ASSERT_EQ(states.size(), 3u);
  for (const auto& s : states) EXPECT_EQ(s.summary.text, "Valid") << s.name;
  EXPECT_EQ(NodeCertificateSummary(states), "Valid");

  Issue("soon", pki::ValidFor(now_, 12));
  states = CertificateStates(ConfigFor("soon"), now_);
  EXPECT_EQ(NodeCertificateSummary(states), "Expiring in 12 days");
  ASSERT_EQ(states.size(), 3u);
  EXPECT_EQ(states[0].name, "server");
  EXPECT_EQ(states[0].summary.state, pki::CertState::kExpiring);
  EXPECT_EQ(states[0].days_left, 12);
  EXPECT_EQ(states[1].summary.state, pki::CertState::kExpiring);  // the client's too

  Issue("app", pki::ValidFor(now_, 300), "app");
  states = CertificateStates(ConfigFor("app"), now_);
  EXPECT_EQ(NodeCertificateSummary(states), "Invalid (client: Common Name is not postgres)");
  int invalid = 0;
  for (const auto& st : states) invalid += st.summary.state == pki::CertState::kInvalid ? 1 : 0;
  EXPECT_EQ(invalid, 1);

  Issue("old", {now_ - 20 * 86400, now_ - 86400});
  states = CertificateStates(ConfigFor("old"), now_);
  EXPECT_TRUE(Has(NodeCertificateSummary(states), "Invalid (server: expired"))
      << NodeCertificateSummary(states);
  EXPECT_TRUE(CertificateStates(Config{}, now_).empty());
}

}  // namespace
}  // namespace tandem::agent
