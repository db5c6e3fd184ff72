// The state file: missing is a new node, unless a member's leftovers say the
// node was one (then the warning names the cause and the fix); empty or
// corrupt is refused naming the file and the fix; what a restarted agent
// adopts (the lease id, the old fence guard) survives a save and a load.
#include "agent/local_state.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "base/file.h"

namespace tandem::agent {
namespace {

class LocalStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tandem_local_state_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)RemoveAll(dir_); }
  std::string dir_;
};

TEST_F(LocalStateTest, AMissingFileIsANewNodeWithoutWarningWhenNothingIsLeft) {
  auto s = LoadLocalState(dir_ + "/state.json");
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->member);
  EXPECT_EQ(MissingStateWarning(dir_ + "/state.json", {dir_ + "/secrets.json"}, "n1"), "");
}

TEST_F(LocalStateTest, AMissingFileBesideAMembersLeftoversNamesTheCauseAndTheFix) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/secrets.json", "{}", 0600).ok());
  const std::string w =
      MissingStateWarning(dir_ + "/state.json", {dir_ + "/secrets.json", dir_ + "/etcd"}, "n1");
  EXPECT_NE(w.find(dir_ + "/state.json is missing, but " + dir_ + "/secrets.json"),
            std::string::npos)
      << w;
  EXPECT_NE(w.find("tandem cluster remove n1"), std::string::npos) << w;
  EXPECT_NE(w.find("Restore"), std::string::npos) << w;
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/state.json", "{}", 0644).ok());
  EXPECT_EQ(MissingStateWarning(dir_ + "/state.json", {dir_ + "/secrets.json"}, "n1"), "");
}

TEST_F(LocalStateTest, AnEmptyOrCorruptFileIsRefusedNamingItAndTheFix) {
  const std::string path = dir_ + "/state.json";
  for (const char* text : {"", "  \n", "{\"member\": tr", "[1, 2]", "\"x\"", "{\"member\": 3}"}) {
    ASSERT_TRUE(WriteFileAtomic(path, text, 0644).ok());
    auto s = LoadLocalState(path);
    ASSERT_FALSE(s.ok()) << "'" << text << "'";
    EXPECT_NE(s.error().message().find(path), std::string::npos) << s.error().message();
    EXPECT_NE(s.error().message().find("restore it from a backup"), std::string::npos)
        << s.error().message();
  }
}

TEST_F(LocalStateTest, TheLeaseAndTheFenceGuardForTheNextAgentSurviveASaveAndALoad) {
  const std::string path = dir_ + "/state.json";
  LocalState st;
  st.member = true;
  st.cluster = "c";
  st.lease_id = 6866478964533013512;
  st.guard_pid = 4242;
  st.guard_start_time = 123456789012ULL;
  ASSERT_TRUE(SaveLocalState(path, st).ok());
  auto back = LoadLocalState(path);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->lease_id, st.lease_id);
  EXPECT_EQ(back->guard_pid, 4242);
  EXPECT_EQ(back->guard_start_time, 123456789012ULL);
  // A file written before these fields existed: no lease, no guard to adopt.
  ASSERT_TRUE(WriteFileAtomic(path, "{\"member\": true, \"cluster\": \"c\"}", 0644).ok());
  auto old = LoadLocalState(path);
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->lease_id, 0);
  EXPECT_EQ(old->guard_pid, 0);
}

}  // namespace
}  // namespace tandem::agent
