// The primary's replication slots (Agent::KeepSlots, src/agent/housekeeping.cc):
// a full pass when a term starts and whenever the registered nodes change,
// then one recheck every few seconds, not a pg_replication_slots read every
// cycle (issue #11's idle cost).
#include <gtest/gtest.h>

#include "unit/agent/agent_harness.h"

namespace tandem::agenttest {
namespace {

using State = FakePostgres::State;

int CountCalls(AgentHarness& h, int i, const std::string& method, size_t from) {
  int n = 0;
  const auto calls = h.pg(i).Calls();
  for (size_t k = from; k < calls.size(); ++k) n += calls[k].method == method ? 1 : 0;
  return n;
}

// The index in Calls() of the first call of `method` at or after `from`.
std::optional<FakePostgres::Call> FirstCall(AgentHarness& h, int i, const std::string& method,
                                            size_t from) {
  const auto calls = h.pg(i).Calls();
  for (size_t k = from; k < calls.size(); ++k) {
    if (calls[k].method == method) return calls[k];
  }
  return std::nullopt;
}

TEST(AgentSlots, AnIdlePrimaryRechecksItsSlotsEveryFewSecondsNotEveryCycle) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  ASSERT_TRUE(h.Step(1'000));
  const size_t from = h.pg(0).CallCount();
  ASSERT_TRUE(h.Step(20'000, 50));
  // 80 cycles in 20 s; a recheck every 5 s.
  const int passes = CountCalls(h, 0, "SyncSlots", from);
  EXPECT_GE(passes, 3) << h.Describe();
  EXPECT_LE(passes, 5) << h.Describe();
  EXPECT_EQ(CountCalls(h, 1, "SyncSlots", 0), 0) << "a standby keeps no slots";
}

TEST(AgentSlots, ANewPrimaryPassesItsSlotsInItsFirstCycleAsPrimary) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  ASSERT_TRUE(h.Step(1'000));
  const size_t from1 = h.pg(1).CallCount();
  auto r = h.agent(0).RequestSwitchover("n2", 0);
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_TRUE(h.AdvanceUntil(
      [&] { return h.LeaderHolder() == "n2" && h.pg(1).state() == State::kPrimary; }, 3'000))
      << h.Describe();
  auto promote = FirstCall(h, 1, "Promote", from1);
  ASSERT_TRUE(promote.has_value());
  ASSERT_TRUE(h.Step(1'000));
  auto slots = FirstCall(h, 1, "SyncSlots", from1);
  ASSERT_TRUE(slots.has_value()) << h.Describe();
  // The cycle after the promotion sees a primary: within two loop intervals.
  EXPECT_LE(slots->at - promote->at, 2 * h.node(1).cfg.ha.loop_interval_ms);
  // And the old primary, a standby now, starts its next term afresh: back as
  // primary, it passes again at once (switch back).
  const size_t from0 = h.pg(0).CallCount();
  r = h.agent(1).RequestSwitchover("n1", 0);
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_TRUE(h.AdvanceUntil(
      [&] { return h.LeaderHolder() == "n1" && h.pg(0).state() == State::kPrimary; }, 3'000))
      << h.Describe();
  auto promote0 = FirstCall(h, 0, "Promote", from0);
  ASSERT_TRUE(promote0.has_value());
  ASSERT_TRUE(h.Step(1'000));
  auto slots0 = FirstCall(h, 0, "SyncSlots", from0);
  ASSERT_TRUE(slots0.has_value()) << h.Describe();
  EXPECT_LE(slots0->at - promote0->at, 2 * h.node(0).cfg.ha.loop_interval_ms);
}

TEST(AgentSlots, AFailedPassIsRetriedTheNextCycle) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  ASSERT_TRUE(h.Step(6'000, 50));  // past a recheck: the next pass is the one that fails
  h.pg(0).FailNext("SyncSlots", Error(ErrorCode::kUnavailable, "injected"));
  const size_t from = h.pg(0).CallCount();
  ASSERT_TRUE(h.Step(6'000, 50));
  // The failed recheck, the retry a cycle later, and no more before the next
  // recheck 5 s on (one more at most).
  auto calls = h.pg(0).Calls();
  std::vector<MonoMs> at;
  for (size_t k = from; k < calls.size(); ++k) {
    if (calls[k].method == "SyncSlots") at.push_back(calls[k].at);
  }
  ASSERT_GE(at.size(), 2u) << h.Describe();
  EXPECT_LE(at[1] - at[0], 2 * h.node(0).cfg.ha.loop_interval_ms);
  EXPECT_LE(at.size(), 3u);
}

}  // namespace
}  // namespace tandem::agenttest
