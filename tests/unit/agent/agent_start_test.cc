// An agent (re)started on a node whose PostgreSQL runs as a primary, with no
// leader key in the store (the key expired while the agent was down): it
// keeps the primary and takes the key (core::Decide, "no leader key and
// postgres is a running primary") - it does not demote it because its HA
// loop's first cycle ran before its lease thread's first grant.
#include <gtest/gtest.h>

#include "unit/agent/agent_harness.h"

namespace tandem::agenttest {
namespace {

// Disabled: fails today. Agent::StartLoop starts the lease thread and the
// loop together; when the loop's first cycle sees no lease yet (here: the
// first grant fails once, as a slow or refused first request would), Decide
// says "no leader key and no valid lease while primary: demoting", the
// primary is stopped, restarted as a standby and promoted again: a new
// timeline and a write outage for nothing. Reported in
// /work/notes/agenttest-blockers.md. (AgentHarness::StartCluster avoids the
// race by leaving n1's server stopped.)
TEST(AgentStart, DISABLED_ARunningPrimaryIsKeptWhenTheFirstLeaseGrantIsLate) {
  AgentHarness h;
  ASSERT_TRUE(h.pg(0).Start(0).ok());
  h.pg(0).ClearCalls();
  h.node(0).store->FailNext("GrantLease");
  ASSERT_TRUE(h.StartAgent(0).ok());
  ASSERT_TRUE(h.AdvanceUntil([&] { return h.LeaderHolder() == "n1"; }, 2'000)) << h.Describe();
  EXPECT_EQ(h.pg(0).IndexOf("Stop(fast)"), -1) << h.Describe();
  EXPECT_EQ(h.pg(0).IndexOf("Stop(immediate)"), -1);
  EXPECT_EQ(h.pg(0).IndexOf("Promote"), -1);
  EXPECT_EQ(h.pg(0).timeline(), 1u);
}

// The same start with the first grant in time keeps the primary.
TEST(AgentStart, ARunningPrimaryWithNoLeaderKeyTakesTheKeyAndKeepsRunning) {
  AgentHarness h;
  ASSERT_TRUE(h.pg(0).Start(0).ok());
  h.pg(0).ClearCalls();
  // The loop's first cycle must see the lease: hold every store call but
  // the grant (the loop's first read waits) until the grant went through.
  h.node(0).store->SetFrozen(true, "GrantLease");
  ASSERT_TRUE(h.StartAgent(0).ok());
  ASSERT_TRUE(h.Settle());
  h.node(0).store->SetFrozen(false);
  ASSERT_TRUE(h.AdvanceUntil([&] { return h.LeaderHolder() == "n1"; }, 2'000)) << h.Describe();
  ASSERT_TRUE(h.Step(500));
  EXPECT_EQ(h.LeaderHolder(), "n1");
  EXPECT_EQ(h.pg(0).state(), FakePostgres::State::kPrimary);
  EXPECT_EQ(h.pg(0).timeline(), 1u);
}

}  // namespace
}  // namespace tandem::agenttest
