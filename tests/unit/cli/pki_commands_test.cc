// `tandem pki ...` as an operator runs it: exit codes, the ERROR line, and no private key
// material in anything a command prints.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <sstream>

#include "base/file.h"
#include "cli/commands.h"

namespace tandem::cli {
namespace {

class PkiCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tandem-pki-cli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (getenv("TANDEM_KEEP_TEST_DIRS") == nullptr) (void)RemoveAll(dir_);
  }

  // Runs a command, keeping what it printed on stdout and stderr.
  template <typename F>
  int Run(F f) {
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    int rc = f();
    std::string out = ::testing::internal::GetCapturedStdout();
    std::string err = ::testing::internal::GetCapturedStderr();
    last_ = out + err;
    all_ += last_;
    return rc;
  }

  // Every base64 line of every private key under dir_.
  std::vector<std::string> KeyLines() {
    std::vector<std::string> lines;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_)) {
      if (e.path().extension() != ".key") continue;
      std::istringstream in(*ReadFile(e.path().string()));
      std::string line;
      while (std::getline(in, line)) {
        if (line.rfind("-----", 0) != 0 && line.size() >= 16) lines.push_back(line);
      }
    }
    return lines;
  }

  // Issuing and inspecting share one fixed "now" (nothing here needs real time).
  ManualClock clock_;
  std::string dir_;
  std::string last_;
  std::string all_;
};

TEST_F(PkiCommandsTest, TheWholeFlowPrintsNoPrivateKeyMaterial) {
  const std::string ca = dir_ + "/ca", n1 = dir_ + "/node1";
  EXPECT_EQ(Run([&] { return PkiCaInit(clock_, ca, "Test CA", 3650); }), 0) << last_;
  EXPECT_NE(last_.find(ca + "/ca.key"), std::string::npos) << last_;
  EXPECT_EQ(Run([&] { return PkiCaInit(clock_, ca, "Test CA", 3650); }), 1);
  EXPECT_EQ(last_.rfind("ERROR : " + ca + "/ca.key already exists", 0), 0u) << last_;

  EXPECT_EQ(Run([&] { return PkiIssue(clock_, "node1", ca, "10.0.0.1", {"db1"}, n1, 730, false); }),
            0)
      << last_;
  EXPECT_NE(last_.find("server_key: " + n1 + "/server.key"), std::string::npos) << last_;

  EXPECT_EQ(Run([&] { return PkiCsr("node2", "node2", {"IP:10.0.0.2"}, dir_ + "/n2"); }), 0)
      << last_;
  EXPECT_EQ(Run([&] { return PkiSign(clock_, dir_ + "/n2/node2.csr", ca, 30, "both"); }), 0)
      << last_;
  EXPECT_TRUE(PathExists(dir_ + "/n2/node2.crt"));

  PkiInspectOptions ok;
  ok.files = {n1 + "/server.crt"};
  ok.ca = n1 + "/ca.crt";
  ok.key = n1 + "/server.key";
  ok.role = "server";
  ok.host = "10.0.0.1";
  EXPECT_EQ(Run([&] { return PkiInspect(clock_, ok); }), 0) << last_;
  EXPECT_NE(last_.find("State         : Valid"), std::string::npos) << last_;
  ok.json = true;
  EXPECT_EQ(Run([&] { return PkiInspect(clock_, ok); }), 0) << last_;
  EXPECT_NE(last_.find("\"state\": \"valid\""), std::string::npos) << last_;

  // Keys where certificates belong, a mismatching key: errors, still no key material.
  PkiInspectOptions bad;
  bad.files = {n1 + "/server.key", n1 + "/client.crt", dir_ + "/n2/node2.key"};
  bad.key = n1 + "/server.key";
  bad.role = "server";
  EXPECT_EQ(Run([&] { return PkiInspect(clock_, bad); }), 1) << last_;
  EXPECT_NE(last_.find("ERROR : " + n1 + "/server.key holds a private key"), std::string::npos)
      << last_;
  EXPECT_NE(last_.find("ERROR : " + n1 + "/server.key does not match the certificate " + n1 +
                       "/client.crt"),
            std::string::npos)
      << last_;
  bad.json = true;
  EXPECT_EQ(Run([&] { return PkiInspect(clock_, bad); }), 1);

  auto lines = KeyLines();
  ASSERT_GE(lines.size(), 8u);  // ca, node1 server and client, node2: a few lines each
  EXPECT_EQ(all_.find("PRIVATE KEY"), std::string::npos) << all_;
  for (const auto& l : lines) EXPECT_EQ(all_.find(l), std::string::npos) << l;
}

TEST_F(PkiCommandsTest, SignRefusesAMissingCsrWithTheFileName) {
  EXPECT_EQ(Run([&] { return PkiSign(clock_, dir_ + "/x.csr", dir_ + "/ca", 30, "server"); }), 1);
  EXPECT_EQ(last_, "ERROR : " + dir_ + "/x.csr: no such file (check the path)\n");
}

}  // namespace
}  // namespace tandem::cli
