// The client endpoint's route on the whole agent (safety rule 5; core/route.h;
// Agent::SetRouteSink): the write route to this node lives one TTL after the
// HA loop computed it, so a loop that stops renewing it (stuck, or stopped)
// takes the route away even while the lease thread keeps the lease alive.
#include <gtest/gtest.h>

#include "unit/agent/agent_harness.h"

namespace tandem::agenttest {
namespace {

TEST(AgentRoute, TheWriteRouteExpiresOneTtlAfterTheLoopLastComputedIt) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  ASSERT_TRUE(h.Step(600));
  bool valid = false;
  ASSERT_EQ(h.RouteWriteTarget(0, &valid), "n1");
  ASSERT_TRUE(valid);
  ASSERT_EQ(h.RouteWriteTarget(1, &valid), "n1") << "replicas route writes to the primary too";
  // The loop gets stuck (in a query); the lease thread keeps renewing.
  const MonoMs before_block = h.clock().Now();
  h.pg(0).Block("Query");
  ASSERT_TRUE(h.AdvanceUntil([&] { return h.pg(0).BlockedCallers() == 1; }, 1'000));
  const MonoMs stuck = h.clock().Now();
  ASSERT_TRUE(h.AdvanceUntil(
      [&] {
        bool v = true;
        return h.RouteWriteTarget(0, &v) != "n1" || !v;
      },
      4'000))
      << h.Describe();
  const MonoMs expired = h.clock().Now();
  // The loop's last route was computed at or before `stuck`, after
  // `before_block` minus one interval: it expires one TTL later at most.
  EXPECT_LE(expired, stuck + 2'000);
  EXPECT_GT(expired, before_block - 250 + 2'000 - 10);
  // Renewals went on meanwhile (the route did not expire with the lease).
  int renewals = 0;
  for (MonoMs t : h.node(0).store->KeepAliveTimes(true)) renewals += t > stuck ? 1 : 0;
  EXPECT_GE(renewals, 6);
  EXPECT_EQ(h.pg(0).state(), FakePostgres::State::kPrimary);
  // The extensions never pushed the route past one TTL after the last route
  // published before the loop got stuck (the loop's, or an extension of it).
  MonoMs last_loop_route = 0;
  for (const auto& e : h.Routes(0)) {
    if (e.at <= stuck) last_loop_route = std::max(last_loop_route, e.at);
  }
  for (const auto& e : h.Routes(0)) {
    if (e.route.read_write && e.route.read_write->member == "n1") {
      EXPECT_LE(e.route.valid_until, last_loop_route + 2'000) << "published at " << e.at;
    }
  }
  // Unstuck, the loop routes writes here again at its next cycle.
  h.pg(0).Unblock("Query");
  ASSERT_TRUE(h.AdvanceUntil(
      [&] {
        bool v = false;
        return h.RouteWriteTarget(0, &v) == "n1" && v;
      },
      500));
}

TEST(AgentRoute, AStoppedLoopPublishesARouteToNowhere) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  ASSERT_TRUE(h.Step(300));
  ASSERT_EQ(h.RouteWriteTarget(1), "n1");
  h.ShutdownAgent(1);
  const auto routes = h.Routes(1);
  ASSERT_FALSE(routes.empty());
  EXPECT_FALSE(routes.back().route.read_write.has_value());
  EXPECT_TRUE(routes.back().route.read_only.empty());
}

}  // namespace
}  // namespace tandem::agenttest
