// A temporary directory with a cluster CA and one issued node, for the pki tests.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <string>

#include "base/clock.h"
#include "base/file.h"
#include "pki/ca.h"

namespace tandem::pki {

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tandem-pki-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (getenv("TANDEM_KEEP_TEST_DIRS") == nullptr) (void)RemoveAll(dir_);
  }

  // dir_/ca (CN=Test CA) and dir_/node1 (issued for 10.0.0.1 and db1.example.com).
  void MakeCaAndNode() {
    Status st = InitCa(Ca(), "Test CA", ValidFor(now_, kDefaultCaDays));
    ASSERT_TRUE(st.ok()) << st.error().message();
    NodeRequest r;
    r.node = "node1";
    r.address = "10.0.0.1";
    r.dns = {"db1.example.com"};
    r.out_dir = Node();
    auto f = IssueNode(Ca(), r, ValidFor(now_, kDefaultCertDays));
    ASSERT_TRUE(f.ok()) << f.error().message();
  }

  std::string Ca() const { return dir_ + "/ca"; }
  std::string Node() const { return dir_ + "/node1"; }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  static mode_t Mode(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }

  std::string dir_;
  // "Now" for every issue and judgement of a test, from the test's clock: a
  // fixed instant, so no verdict depends on when (or how fast) the test runs.
  // Nothing here checks real time (chain checks ignore times; no handshakes).
  ManualClock clock_{1'000'000, /*2027-01-15T08:00:00Z*/ 1'800'000'000'000};
  const int64_t now_ = clock_.WallSeconds();
};

}  // namespace tandem::pki
