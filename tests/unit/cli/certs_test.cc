// `tandem cluster certs`: the files are checked before anything is written, a
// bad set (or a CA change) changes nothing, a good one is installed with key
// modes 0600 and the config points at it; the config rewrite keeps the rest.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "agent/config.h"
#include "base/file.h"
#include "cli/commands.h"

namespace tandem::cli {
namespace {

const TlsPaths kPaths{"/s/server.key", "/s/server.crt", "/s/client.key", "/s/client.crt",
                      "/s/ca.crt"};

TEST(WithTlsPaths, AddsASectionAtTheEndAndKeepsTheRest) {
  const std::string in = "# my node\nnode:\n  name: n1   # the name\n";
  auto out = WithTlsPaths(in, kPaths);
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(out->rfind(in, 0), 0u) << *out;  // the original text, unchanged, first
  EXPECT_NE(out->find("\ntls:"), std::string::npos);
  EXPECT_NE(out->find("  ca_cert: \"/s/ca.crt\"\n"), std::string::npos) << *out;
}

TEST(WithTlsPaths, ReplacesThePathsInAnExistingSectionAndKeepsItsOtherKeys) {
  const std::string in =
      "node:\n  name: n1\ntls:\n    # from the old CA\n    server_key: /old/s.key\n"
      "    mode: permissive\n    ca_cert: /old/ca.crt  # old\nlog:\n  level: info\n";
  auto out = WithTlsPaths(in, kPaths);
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(out->find("/old/"), std::string::npos) << *out;
  EXPECT_NE(out->find("    server_key: \"/s/server.key\"\n"), std::string::npos) << *out;
  EXPECT_NE(out->find("    client_cert: \"/s/client.crt\"\n"), std::string::npos) << *out;
  EXPECT_NE(out->find("    mode: permissive\n"), std::string::npos) << *out;
  EXPECT_NE(out->find("    # from the old CA\n"), std::string::npos) << *out;
  EXPECT_NE(out->find("log:\n  level: info\n"), std::string::npos) << *out;
  // Still one tls section, and it loads.
  EXPECT_EQ(out->find("tls:"), out->rfind("tls:"));
  auto cfg = agent::ParseConfig(
      "node:\n  name: n1\n  address: 10.0.0.1\n  state_dir: /x\n" + out->substr(out->find("tls:")),
      "t.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message();
  EXPECT_EQ(cfg->tls_client_key, "/s/client.key");
  EXPECT_EQ(cfg->tls_mode, agent::TlsMode::kPermissive);
}

TEST(WithTlsPaths, AnInlineSectionIsRefused) {
  auto out = WithTlsPaths("tls: {mode: enforce}\n", kPaths);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message().find("inline"), std::string::npos);
}

class ClusterCertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tandem-certs-cli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    config_ = dir_ + "/tandem.yaml";
    ASSERT_TRUE(WriteFileAtomic(config_, "node:\n  name: n1\n  address: 127.0.0.1\n  state_dir: " +
                                             dir_ + "/state\n")
                    .ok());
    ASSERT_EQ(Run([&] { return PkiCaInit(clock_, dir_ + "/ca", "Cluster CA", 3650); }), 0) << last_;
    ASSERT_EQ(Run([&] {
                return PkiIssue(clock_, "n1", dir_ + "/ca", "127.0.0.1", {}, dir_ + "/n1", 730,
                                false);
              }),
              0)
        << last_;
    ASSERT_EQ(Run([&] { return PkiCaInit(clock_, dir_ + "/other", "Other CA", 3650); }), 0)
        << last_;
    ASSERT_EQ(Run([&] {
                return PkiIssue(clock_, "n1", dir_ + "/other", "127.0.0.1", {}, dir_ + "/x", 730,
                                false);
              }),
              0)
        << last_;
  }
  void TearDown() override {
    if (getenv("TANDEM_KEEP_TEST_DIRS") == nullptr) (void)RemoveAll(dir_);
  }
  template <typename F>
  int Run(F f) {
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    const int rc = f();
    last_ = ::testing::internal::GetCapturedStdout() + ::testing::internal::GetCapturedStderr();
    return rc;
  }
  std::vector<std::string> Set(const std::string& d) {
    return {d + "/server.key", d + "/server.crt", d + "/client.key", d + "/client.crt",
            d + "/ca.crt"};
  }
  static mode_t Mode(const std::string& p) {
    struct stat sb {};
    return ::stat(p.c_str(), &sb) == 0 ? (sb.st_mode & 0777) : 0;
  }
  // Issuing and checking share one fixed "now" (nothing here needs real time).
  ManualClock clock_;
  std::string dir_, config_, last_;
};

TEST_F(ClusterCertsTest, AGoodSetIsInstalledAndTheConfigPointsAtIt) {
  ASSERT_EQ(Run([&] { return ClusterCerts(clock_, config_, Set(dir_ + "/n1"), false); }), 0)
      << last_;
  const std::string installed = dir_ + "/state/certs";
  EXPECT_EQ(Mode(installed + "/server.key"), 0600u);
  EXPECT_EQ(Mode(installed + "/client.key"), 0600u);
  EXPECT_FALSE(PathExists(installed + "/server.key.new"));  // staged copies renamed
  EXPECT_EQ(*ReadFile(installed + "/ca.crt"), *ReadFile(dir_ + "/ca/ca.crt"));
  auto cfg = agent::LoadConfig(config_);
  ASSERT_TRUE(cfg.ok()) << cfg.error().message();
  EXPECT_TRUE(cfg->tls_enabled());
  EXPECT_EQ(cfg->tls_server_key, installed + "/server.key");
  EXPECT_EQ(cfg->tls_ca_cert, installed + "/ca.crt");
  // Never a key in what it printed.
  const std::string key = *ReadFile(dir_ + "/n1/server.key");
  const std::string body_line = key.substr(key.find('\n') + 1, 40);
  EXPECT_EQ(last_.find(body_line), std::string::npos);
}

TEST_F(ClusterCertsTest, ABadSetChangesNothing) {
  const std::string before = *ReadFile(config_);
  // The client pair from another CA than the CA file given.
  auto files = Set(dir_ + "/n1");
  files[2] = dir_ + "/x/client.key";
  files[3] = dir_ + "/x/client.crt";
  EXPECT_EQ(Run([&] { return ClusterCerts(clock_, config_, files, false); }), 1);
  EXPECT_NE(last_.find("client.crt"), std::string::npos) << last_;
  EXPECT_NE(last_.find("Nothing was installed"), std::string::npos) << last_;
  // A truncated certificate.
  const std::string full = *ReadFile(dir_ + "/n1/server.crt");
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/cut.crt", full.substr(0, full.size() / 2)).ok());
  files = Set(dir_ + "/n1");
  files[1] = dir_ + "/cut.crt";
  EXPECT_EQ(Run([&] { return ClusterCerts(clock_, config_, files, false); }), 1);
  EXPECT_NE(last_.find("cut.crt"), std::string::npos) << last_;
  // Neither the config nor the install directory was touched.
  EXPECT_EQ(*ReadFile(config_), before);
  EXPECT_FALSE(PathExists(dir_ + "/state/certs"));
}

TEST_F(ClusterCertsTest, ANewCaNeedsForceAndTheShortFormKeepsTheServerPair) {
  ASSERT_EQ(Run([&] { return ClusterCerts(clock_, config_, Set(dir_ + "/n1"), false); }), 0)
      << last_;
  const std::string server_key = *ReadFile(dir_ + "/state/certs/server.key");
  // Another CA while the node runs TLS with this one: refused, nothing changed.
  EXPECT_EQ(Run([&] { return ClusterCerts(clock_, config_, Set(dir_ + "/x"), false); }), 1);
  EXPECT_NE(last_.find("--force"), std::string::npos) << last_;
  EXPECT_EQ(*ReadFile(dir_ + "/state/certs/ca.crt"), *ReadFile(dir_ + "/ca/ca.crt"));
  // The 3-file form: a new client pair from the same CA, the server pair kept.
  ASSERT_EQ(Run([&] {
              return PkiIssue(clock_, "n1", dir_ + "/ca", "127.0.0.1", {}, dir_ + "/renew", 730,
                              false);
            }),
            0)
      << last_;
  const std::vector<std::string> three = {dir_ + "/renew/client.key", dir_ + "/renew/client.crt",
                                          dir_ + "/ca/ca.crt"};
  ASSERT_EQ(Run([&] { return ClusterCerts(clock_, config_, three, false); }), 0) << last_;
  EXPECT_EQ(*ReadFile(dir_ + "/state/certs/client.crt"), *ReadFile(dir_ + "/renew/client.crt"));
  EXPECT_EQ(*ReadFile(dir_ + "/state/certs/server.key"), server_key);
  EXPECT_NE(last_.find("already pointed at them"), std::string::npos) << last_;
}

// A CA rotation in its documented steps needs no --force: a bundle that keeps
// the current CA, then the new CA alone out of that bundle.
TEST_F(ClusterCertsTest, ACaRotationInStepsNeedsNoForce) {
  ASSERT_EQ(Run([&] { return ClusterCerts(clock_, config_, Set(dir_ + "/n1"), false); }), 0)
      << last_;
  const std::string bundle = dir_ + "/bundle.crt";
  ASSERT_TRUE(
      WriteFileAtomic(bundle, *ReadFile(dir_ + "/other/ca.crt") + *ReadFile(dir_ + "/ca/ca.crt"))
          .ok());
  // Step 1: this node's pairs (old CA), the bundle as the CA.
  auto step1 = Set(dir_ + "/n1");
  step1[4] = bundle;
  ASSERT_EQ(Run([&] { return ClusterCerts(clock_, config_, step1, false); }), 0) << last_;
  EXPECT_EQ(*ReadFile(dir_ + "/state/certs/ca.crt"), *ReadFile(bundle));
  // Step 2: the new CA's pairs, still with the bundle.
  auto step2 = Set(dir_ + "/x");
  step2[4] = bundle;
  ASSERT_EQ(Run([&] { return ClusterCerts(clock_, config_, step2, false); }), 0) << last_;
  // Step 3: the new CA alone.
  ASSERT_EQ(Run([&] { return ClusterCerts(clock_, config_, Set(dir_ + "/x"), false); }), 0)
      << last_;
  EXPECT_EQ(*ReadFile(dir_ + "/state/certs/ca.crt"), *ReadFile(dir_ + "/other/ca.crt"));
  // Back to the first CA in one step: a CA the node does not trust now.
  EXPECT_EQ(Run([&] { return ClusterCerts(clock_, config_, Set(dir_ + "/n1"), false); }), 1);
  EXPECT_NE(last_.find("first a bundle of the old and the new CA"), std::string::npos) << last_;
}

TEST_F(ClusterCertsTest, TheShortFormNeedsAServerPairAlready) {
  const std::vector<std::string> three = {dir_ + "/n1/client.key", dir_ + "/n1/client.crt",
                                          dir_ + "/n1/ca.crt"};
  EXPECT_EQ(Run([&] { return ClusterCerts(clock_, config_, three, false); }), 1);
  EXPECT_NE(last_.find("give all 5 files"), std::string::npos) << last_;
}

}  // namespace
}  // namespace tandem::cli
