// A node whose PostgreSQL cannot start says so in status: postgres_error
// holds the cause and alarm 1012 (postgres-start-failure) is raised, until PostgreSQL runs again;
// what the start found wrong in the state directory is listed in warnings.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "unit/agent/agent_harness.h"

namespace tandem::agenttest {
namespace {

std::string WarningsOf(const nlohmann::json& s) {
  std::string all;
  for (const auto& w : s.value("warnings", nlohmann::json::array())) {
    all += w.get<std::string>() + "\n";
  }
  return all;
}

TEST(AgentPostgresError, AStartFailureIsInStatusUntilPostgresRuns) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  EXPECT_EQ(h.agent(1).StatusJson().value("postgres_error", "?"), "");

  h.pg(1).SetStartFails(true);
  h.pg(1).Crash();
  ASSERT_TRUE(h.AdvanceUntil(
      [&] { return !h.agent(1).StatusJson().value("postgres_error", "").empty(); }, 5'000))
      << h.Describe();
  const auto failing = h.agent(1).StatusJson();
  EXPECT_NE(failing.value("postgres_error", "").find("fake PostgreSQL failed to start"),
            std::string::npos)
      << failing.dump();
  // Alarm 1012 (postgres-start-failure) on node 1, in the store (every node sees it).
  auto has_alarm = [&](int node) {
    for (const auto& a : h.agent(node).StatusJson().value("alarms", nlohmann::json::array())) {
      if (a.value("id", 0) == 1012 && a.value("node", "") == h.node(1).cfg.node_name) return true;
    }
    return false;
  };
  ASSERT_TRUE(h.AdvanceUntil([&] { return has_alarm(0); }, 5'000)) << h.Describe();

  h.pg(1).SetStartFails(false);
  ASSERT_TRUE(h.AdvanceUntil(
      [&] { return h.agent(1).StatusJson().value("postgres_error", "?").empty(); }, 10'000))
      << h.Describe();
  EXPECT_EQ(WarningsOf(h.agent(1).StatusJson()).find("cannot start"), std::string::npos);
  ASSERT_TRUE(h.AdvanceUntil([&] { return !has_alarm(1); }, 5'000)) << "cleared once it runs";
}

// A member whose config lost its tls section (its state directory still has
// the certificate copies of a TLS run) says so at start and in status.
TEST(AgentStartWarnings, AMissingTlsSectionOnANodeThatRanWithTlsIsNamed) {
  AgentHarness h;
  ASSERT_TRUE(MakeDirs(h.node(1).cfg.state_dir + "/tls", 0700).ok());
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  const std::string w = WarningsOf(h.agent(1).StatusJson());
  EXPECT_NE(w.find("this node ran with TLS before"), std::string::npos) << w;
  EXPECT_NE(w.find("has no tls section"), std::string::npos) << w;
  EXPECT_NE(w.find("Put the tls section back"), std::string::npos) << w;
  EXPECT_EQ(WarningsOf(h.agent(0).StatusJson()).find("ran with TLS"), std::string::npos);
}

}  // namespace
}  // namespace tandem::agenttest
