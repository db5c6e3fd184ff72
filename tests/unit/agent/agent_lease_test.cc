// The whole agent on the test clock: the session lease is renewed at the
// configured interval from its own thread (docs/design/timing.md,
// `dcs.loop_interval`), whatever the HA loop is doing.
#include <gtest/gtest.h>

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

TEST_P(AgentLeaseCadence, EveryMemberRenewsItsLeaseOncePerLoopInterval) {
  HarnessOptions o;
  o.nodes = 3;
  o.ttl_ms = GetParam().ttl_ms;
  o.loop_interval_ms = GetParam().loop_ms;
  o.safety_margin_ms = GetParam().margin_ms;
  AgentHarness h(o);
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  const MonoMs from = h.clock().Now();
  const MonoMs span = 12 * o.loop_interval_ms;
  ASSERT_TRUE(h.Step(span));
  for (int i = 0; i < h.size(); ++i) {
    const auto times = RenewalsSince(h, i, from);
    // One per interval: 12 intervals hold 12 or 13 renewals, by phase.
    EXPECT_GE(times.size(), 12u) << h.node(i).name;
    EXPECT_LE(times.size(), 13u) << h.node(i).name;
    ExpectEvenlySpaced(times, o.loop_interval_ms, h.node(i).name);
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

}  // namespace
}  // namespace tandem::agenttest
