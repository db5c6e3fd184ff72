// The whole agent on the test clock: the session lease is renewed from its
// own thread, whatever the HA loop is doing: every `dcs.loop_interval` on the
// primary, every third of the demotion window elsewhere
// (core::LeaseRenewalInterval, docs/design/timing.md).
#include <gtest/gtest.h>

#include <algorithm>

#include "unit/agent/agent_harness.h"

namespace tandem::agenttest {
namespace {

// The successful renewals of node i at or after `from`.
std::vector<MonoMs> RenewalsSince(AgentHarness& h, int i, MonoMs from) {
  std::vector<MonoMs> out;
  for (MonoMs t : h.node(i).store->KeepAliveTimes(/*only_ok=*/true)) {
    if (t >= from) out.push_back(t);
  }
  return out;
}

void ExpectEvenlySpaced(const std::vector<MonoMs>& times, MonoMs interval, const std::string& who) {
  for (size_t k = 1; k < times.size(); ++k) {
    EXPECT_EQ(times[k] - times[k - 1], interval) << who << " renewal " << k;
  }
}

struct Timing {
  int64_t ttl_ms, loop_ms, margin_ms;
};

class AgentLeaseCadence : public ::testing::TestWithParam<Timing> {};

// The primary (n1) renews every loop interval; the replicas every third of
// the demotion window, at most the margin (core::LeaseRenewalInterval).
TEST_P(AgentLeaseCadence, ThePrimaryRenewsEveryLoopIntervalTheReplicasLessOften) {
  HarnessOptions o;
  o.nodes = 3;
  o.ttl_ms = GetParam().ttl_ms;
  o.loop_interval_ms = GetParam().loop_ms;
  o.safety_margin_ms = GetParam().margin_ms;
  AgentHarness h(o);
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  ASSERT_EQ(h.LeaderHolder(), "n1");
  const MonoMs replica_interval =
      std::min<MonoMs>((o.ttl_ms - o.safety_margin_ms) / 3, o.safety_margin_ms);
  ASSERT_GT(replica_interval, o.loop_interval_ms);
  // Let the replicas settle into their cadence (their last renewal before
  // this point may have been on the start-up cadence).
  ASSERT_TRUE(h.Step(2 * replica_interval));
  const MonoMs from = h.clock().Now();
  const MonoMs span = 12 * o.loop_interval_ms;
  ASSERT_TRUE(h.Step(span));
  for (int i = 0; i < h.size(); ++i) {
    const auto times = RenewalsSince(h, i, from);
    const MonoMs interval = i == 0 ? o.loop_interval_ms : replica_interval;
    // One per interval: span / interval intervals hold that many or one more.
    const size_t n = static_cast<size_t>(span / interval);
    EXPECT_GE(times.size(), n) << h.node(i).name;
    EXPECT_LE(times.size(), n + 1) << h.node(i).name;
    ExpectEvenlySpaced(times, interval, h.node(i).name);
    // No renewal failed meanwhile.
    EXPECT_EQ(h.node(i).store->KeepAliveTimes(false).size(),
              h.node(i).store->KeepAliveTimes(true).size());
  }
}

INSTANTIATE_TEST_SUITE_P(AgentDefaults, AgentLeaseCadence,
                         ::testing::Values(Timing{2'000, 250, 500}));
INSTANTIATE_TEST_SUITE_P(AgentSlower, AgentLeaseCadence,
                         ::testing::Values(Timing{4'000, 400, 900}));

// The lease thread is not the loop: a cycle stuck in PostgreSQL (a long
// checkpoint, a hung query) delays no renewal, so the primary keeps its
// lease and the watchdog has nothing to fence.
TEST(AgentLease, RenewalsKeepTheirCadenceWhileTheLoopIsStuck) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  h.pg(0).Block("Query");
  ASSERT_TRUE(h.AdvanceUntil([&] { return h.pg(0).BlockedCallers() == 1; }, 1'000)) << h.Describe();
  const MonoMs stuck = h.clock().Now();
  ASSERT_TRUE(h.Step(3'000));  // longer than the TTL
  EXPECT_EQ(h.pg(0).BlockedCallers(), 1) << "the loop stayed stuck";
  const auto times = RenewalsSince(h, 0, stuck);
  EXPECT_GE(times.size(), 12u);
  ExpectEvenlySpaced(times, 250, "n1");
  EXPECT_EQ(h.pg(0).IndexOf("Stop(immediate)"), -1) << "fenced with a live lease";
  EXPECT_EQ(h.pg(0).state(), FakePostgres::State::kPrimary);
  EXPECT_EQ(h.LeaderHolder(), "n1");
  h.pg(0).Unblock("Query");
  ASSERT_TRUE(h.Step(500));
  EXPECT_EQ(h.LeaderHolder(), "n1");
  EXPECT_EQ(h.pg(1).IndexOf("Promote"), -1);
}

// A replica's failed renewal is retried after one loop interval, not a whole
// replica interval later: its lease must not run out over one lost call.
TEST(AgentLease, AReplicasFailedRenewalIsRetriedAfterOneLoopInterval) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  ASSERT_TRUE(h.Step(1'000));
  const size_t before = h.node(1).store->KeepAliveTimes(false).size();
  h.node(1).store->FailNext("KeepAlive");
  ASSERT_TRUE(h.AdvanceUntil(
      [&] { return h.node(1).store->KeepAliveTimes(false).size() >= before + 2; }, 2'000))
      << h.Describe();
  const auto all = h.node(1).store->KeepAliveTimes(false);
  const auto ok = h.node(1).store->KeepAliveTimes(true);
  ASSERT_EQ(all.size(), ok.size() + 1) << "exactly the one injected failure";
  // The failed attempt is the first after `before`; the retry one loop later.
  EXPECT_EQ(all[before + 1] - all[before], 250);
}

// A replica that takes over renews at the primary's cadence from the cycle
// its watchdog is armed, not a replica interval later.
TEST(AgentLease, ANewPrimaryRenewsEveryLoopIntervalFromItsPromotion) {
  HarnessOptions o;
  o.nodes = 3;
  AgentHarness h(o);
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  h.Pause(0);  // the primary's node stops: its lease expires, a replica takes over
  ASSERT_TRUE(h.AdvanceUntil(
      [&] {
        return h.pg(1).state() == FakePostgres::State::kPrimary ||
               h.pg(2).state() == FakePostgres::State::kPrimary;
      },
      10'000))
      << h.Describe();
  const int p = h.pg(1).state() == FakePostgres::State::kPrimary ? 1 : 2;
  ASSERT_TRUE(h.Step(300));  // the cycle that promoted arms the watchdog
  const MonoMs from = h.clock().Now();
  ASSERT_TRUE(h.Step(2'000));
  const auto times = RenewalsSince(h, p, from);
  ASSERT_GE(times.size(), 7u) << h.node(p).name;
  ExpectEvenlySpaced(times, 250, h.node(p).name);
}

}  // namespace
}  // namespace tandem::agenttest
