// A refused command changes nothing, the node's status included (issue 19,
// item 5): only a command that started and then failed records "Failed" and
// turns the status to Error until `clear-error`.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "unit/agent/agent_harness.h"

namespace tandem::agenttest {
namespace {

nlohmann::json LastCommand(agent::Agent& a) {
  return a.StatusJson()["last_command"];
}

TEST(AgentCommandOutcome, ARefusedCommandLeavesTheStatusAndTheLastCommandAsTheyWere) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  const auto before = h.agent(0).StatusJson();
  ASSERT_EQ(before["status"], "Enabled") << before.dump(2);

  // Refusals: a precondition (already a member), a validation (no such
  // node), and one the store's answer decides (the primary without --force).
  auto init = h.agent(0).Initialize();
  ASSERT_FALSE(init.ok());
  EXPECT_NE(init.error().message().find("nothing was changed"), std::string::npos);
  auto unknown = h.agent(0).Remove("n9", false);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message().find("no node named 'n9'"), std::string::npos);
  auto primary = h.agent(1).Remove("n1", false);
  ASSERT_FALSE(primary.ok());
  EXPECT_NE(primary.error().message().find("--force"), std::string::npos);
  auto join = h.agent(1).StartJoin("127.0.0.1:1");
  ASSERT_FALSE(join.ok());

  for (int i = 0; i < 2; ++i) {
    const auto after = h.agent(i).StatusJson();
    EXPECT_EQ(after["status"], "Enabled") << after.dump(2);
    EXPECT_EQ(after["error"], "") << after.dump(2);
    EXPECT_EQ(after["last_command"], before["last_command"]) << after.dump(2);
  }
}

TEST(AgentCommandOutcome, ACommandThatStartedAndFailedSetsErrorUntilClearError) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  // Removing n2 from n1 starts (it passed every check), then the store
  // refuses the deregistration.
  h.node(0).store->FailNext("Delete");
  auto st = h.agent(0).Remove("n2", false);
  ASSERT_FALSE(st.ok());
  const auto lc = LastCommand(h.agent(0));
  EXPECT_EQ(lc["command"], "tandem cluster remove n2");
  EXPECT_EQ(lc["result"], "Failed");
  auto status = h.agent(0).StatusJson();
  EXPECT_EQ(status["status"], "Error") << status.dump(2);
  EXPECT_FALSE(status["error"].get<std::string>().empty());

  // A refusal now keeps the failure on record, not its own.
  ASSERT_FALSE(h.agent(0).Remove("n9", false).ok());
  EXPECT_EQ(LastCommand(h.agent(0))["command"], "tandem cluster remove n2");

  ASSERT_TRUE(h.agent(0).ClearError().ok());
  status = h.agent(0).StatusJson();
  EXPECT_EQ(status["status"], "Enabled") << status.dump(2);
  EXPECT_EQ(status["error"], "");
}

}  // namespace
}  // namespace tandem::agenttest
