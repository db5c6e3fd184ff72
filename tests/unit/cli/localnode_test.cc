// `tandem cluster localnode` (src/cli/localnode.cc) and the config edit it
// makes (src/agent/config_edit.cc): the interface or address is checked on
// this machine (lo and 127.0.0.1 exist everywhere), written into the node
// section with the rest of the file kept, and refused once the node is a
// member or for a target this machine does not have; a refusal changes
// nothing.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "agent/config_edit.h"
#include "agent/local_state.h"
#include "base/clock.h"
#include "base/file.h"
#include "cli/commands.h"

namespace tandem::cli {
namespace {

TEST(ConfigEdit, AnInterfaceReplacesTheAddressInPlaceAndKeepsEverythingElse) {
  const std::string in =
      "cluster: c\n# top\nnode:\n  name: n1\n  # peers use this\n  address: 10.0.0.1  # x\n"
      "  state_dir: /s\npostgresql:\n  address: keep\n";
  auto out = agent::SetClusteringEndpoint(in, "eth1", "");
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(*out,
            "cluster: c\n# top\nnode:\n  name: n1\n  # peers use this\n  interface: eth1\n"
            "  state_dir: /s\npostgresql:\n  address: keep\n");
}

TEST(ConfigEdit, AnAddressReplacesTheInterfaceAndNestedKeysAreNotTouched) {
  const std::string in = "node:\n    name: n1\n    interface: eth1\n    extra:\n      address: x\n";
  auto out = agent::SetClusteringEndpoint(in, "", "192.0.2.7");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "node:\n    name: n1\n    address: 192.0.2.7\n    extra:\n      address: x\n");
}

TEST(ConfigEdit, AMissingNodeSectionIsAppended) {
  auto out = agent::SetClusteringEndpoint("cluster: c\n", "lo", "");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "cluster: c\nnode:\n  interface: lo\n");
}

TEST(ConfigEdit, AOneLineNodeSectionIsRefusedWithTheWayOut) {
  auto out = agent::SetClusteringEndpoint("node: {name: n1, address: 10.0.0.1}\n", "lo", "");
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message().find("by hand"), std::string::npos);
}

class LocalnodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tandem-localnode-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    config_ = dir_ + "/tandem.yaml";
    ASSERT_TRUE(WriteFileAtomic(config_,
                                "cluster: demo\nnode:\n  name: n1\n  # kept\n"
                                "  address: 127.0.0.1\n  state_dir: " +
                                    dir_ + "/state\npostgresql:\n  port: 26790\n")
                    .ok());
  }
  void TearDown() override { (void)RemoveAll(dir_); }
  std::string File() {
    auto t = ReadFile(config_);
    return t.ok() ? *t : "";
  }
  int Localnode(const std::string& target) { return ClusterLocalnode(clock_, config_, target); }

  ManualClock clock_;
  std::string dir_, config_;
};

TEST_F(LocalnodeTest, AnInterfaceThatIsUpIsWrittenAndAnAddressOfItToo) {
  EXPECT_EQ(Localnode("lo"), 0);
  EXPECT_NE(File().find("  interface: lo\n"), std::string::npos) << File();
  EXPECT_EQ(File().find("address:"), std::string::npos) << File();
  EXPECT_NE(File().find("# kept"), std::string::npos);
  EXPECT_EQ(Localnode("127.0.0.1"), 0);
  EXPECT_NE(File().find("  address: 127.0.0.1\n"), std::string::npos) << File();
  EXPECT_EQ(File().find("interface:"), std::string::npos) << File();
  const std::string before = File();
  EXPECT_EQ(Localnode("127.0.0.1"), 0);  // already so: nothing changed
  EXPECT_EQ(File(), before);
}

TEST_F(LocalnodeTest, ATargetThisMachineDoesNotHaveIsRefusedAndNothingChanges) {
  const std::string before = File();
  EXPECT_EQ(Localnode("nosuchif0"), 1);
  EXPECT_EQ(Localnode("203.0.113.77"), 1);  // TEST-NET-3: on no interface here
  EXPECT_EQ(File(), before);
}

TEST_F(LocalnodeTest, AMemberIsRefusedAndNothingChanges) {
  agent::LocalState st;
  st.member = true;
  st.cluster = "demo";
  ASSERT_TRUE(::mkdir((dir_ + "/state").c_str(), 0755) == 0);
  ASSERT_TRUE(agent::SaveLocalState(dir_ + "/state/state.json", st).ok());
  const std::string before = File();
  EXPECT_EQ(Localnode("lo"), 1);
  EXPECT_EQ(File(), before);
}

TEST_F(LocalnodeTest, WithoutATargetItShowsAndChangesNothing) {
  const std::string before = File();
  EXPECT_EQ(Localnode(""), 0);
  EXPECT_EQ(File(), before);
}

}  // namespace
}  // namespace tandem::cli
