// The agent's counters (agent/metrics_registry.h) and the snapshot GET
// /metrics is built from (agent/metrics_snapshot.h): the histogram's buckets,
// what counts as a leader change, concurrent recording, the query rows'
// parsing, and whole agents on the fake clock (agent_harness.h) reporting
// their roles, renewals, cycles and a failover's leader change.
#include "agent/metrics_registry.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "agent/metrics_snapshot.h"
#include "unit/agent/agent_harness.h"

namespace tandem::agent {
namespace {

uint64_t Total(const std::vector<uint64_t>& counts) {
  uint64_t n = 0;
  for (auto c : counts) n += c;
  return n;
}

TEST(DurationHistogram, ObservationsLandInTheirBucketAndTheSumIsInSeconds) {
  DurationHistogram h;
  h.Observe(0);      // le 0.001
  h.Observe(1);      // le 0.001 (bounds are inclusive)
  h.Observe(2);      // le 0.002
  h.Observe(3);      // le 0.005
  h.Observe(60000);  // +Inf
  h.Observe(-5);     // a clock that went backwards counts as 0
  const auto s = h.Read();
  ASSERT_EQ(s.counts.size(), s.upper_bounds_seconds.size() + 1);
  EXPECT_EQ(s.upper_bounds_seconds.front(), 0.001);
  EXPECT_EQ(s.upper_bounds_seconds.back(), 10.0);
  EXPECT_EQ(s.counts[0], 3u);
  EXPECT_EQ(s.counts[1], 1u);
  EXPECT_EQ(s.counts[2], 1u);
  EXPECT_EQ(s.counts.back(), 1u);
  EXPECT_EQ(Total(s.counts), 6u);
  EXPECT_DOUBLE_EQ(s.sum_seconds, 60.006);
}

TEST(AgentMetrics, LeaderChangeIsANewHolderNotTheFirstNorAReturn) {
  AgentMetrics m;
  m.ObserveLeader(std::nullopt);
  m.ObserveLeader(core::LeaderKey{"n1", 1, 1});  // the first holder seen: no change
  m.ObserveLeader(core::LeaderKey{"n1", 2, 1});  // the same holder again
  m.ObserveLeader(std::nullopt);                 // the key gone (a failover begins)
  m.ObserveLeader(core::LeaderKey{"n1", 5, 2});  // ... and back to n1: no change
  EXPECT_EQ(m.Read().leader_changes, 0u);
  m.ObserveLeader(core::LeaderKey{"n2", 7, 3});
  m.ObserveLeader(core::LeaderKey{"n2", 8, 3});
  m.ObserveLeader(core::LeaderKey{"n1", 9, 4});
  EXPECT_EQ(m.Read().leader_changes, 2u);
}

TEST(AgentMetrics, RenewalsCountByResultAndSuccessIsTheStoresLastSeen) {
  AgentMetrics m;
  m.LeaseRenewal(true, 3, 1'000'000);
  m.LeaseRenewal(false, 1000, 2'000'000);
  const auto s = m.Read();
  EXPECT_EQ(s.lease_renewals_ok, 1u);
  EXPECT_EQ(s.lease_renewals_failed, 1u);
  EXPECT_EQ(s.store_last_seen_ms, 1'000'000) << "a failure is not a contact";
  EXPECT_EQ(Total(s.lease_renewal.counts), 2u);
}

TEST(AgentMetrics, ActionsByTypeAndResult) {
  AgentMetrics m;
  m.ActionDone(core::ActionType::kPromote, true);
  m.ActionDone(core::ActionType::kStepDown, false);
  const auto s = m.Read();
  ASSERT_EQ(s.actions.size(), AgentMetrics::kActionTypes);
  EXPECT_EQ(s.actions[static_cast<size_t>(core::ActionType::kPromote)][0], 1u);
  EXPECT_EQ(s.actions[static_cast<size_t>(core::ActionType::kStepDown)][1], 1u);
  EXPECT_EQ(s.actions[static_cast<size_t>(core::ActionType::kDemote)][0], 0u);
}

TEST(AgentMetrics, ConcurrentRecordingLosesNothing) {
  AgentMetrics m;
  constexpr int kThreads = 4, kEach = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m, t] {
      for (int i = 0; i < kEach; ++i) {
        m.CycleDone(i % 7);
        m.LeaseRenewal(i % 2 == 0, 1, 1);
        m.ActionDone(core::ActionType::kFollow, t % 2 == 0);
      }
    });
  }
  for (int i = 0; i < 100; ++i) (void)m.Read();  // reading meanwhile is fine
  for (auto& th : threads) th.join();
  const auto s = m.Read();
  EXPECT_EQ(Total(s.cycle.counts), uint64_t{kThreads} * kEach);
  EXPECT_EQ(s.lease_renewals_ok + s.lease_renewals_failed, uint64_t{kThreads} * kEach);
  const auto& follow = s.actions[static_cast<size_t>(core::ActionType::kFollow)];
  EXPECT_EQ(follow[0] + follow[1], uint64_t{kThreads} * kEach);
}

// A PostgreSQL that does not answer holds one scrape, not every API worker:
// a scrape that finds another's query running takes the last answer.
TEST(AgentMetrics, ScrapesQueryPostgresOneAtATime) {
  AgentMetrics m;
  std::vector<std::string> rows;
  EXPECT_TRUE(
      m.QueryPostgres([] { return Result<std::vector<std::string>>({"version 1"}); }, &rows));
  EXPECT_EQ(rows, std::vector<std::string>{"version 1"});
  std::promise<void> entered, release;
  std::thread slow([&] {
    std::vector<std::string> mine;
    (void)m.QueryPostgres(
        [&] {
          entered.set_value();
          release.get_future().wait();
          return Result<std::vector<std::string>>({"version 3"});
        },
        &mine);
  });
  entered.get_future().wait();
  int ran = 0;
  EXPECT_TRUE(m.QueryPostgres(
      [&] {
        ++ran;
        return Result<std::vector<std::string>>({"version 2"});
      },
      &rows));
  EXPECT_EQ(ran, 0) << "did not queue behind the slow query";
  EXPECT_EQ(rows, std::vector<std::string>{"version 1"}) << "the last answer";
  release.set_value();
  slow.join();
  // A failed query leaves nothing stale behind.
  EXPECT_FALSE(m.QueryPostgres(
      [] { return Result<std::vector<std::string>>(Error(ErrorCode::kUnavailable, "down")); },
      &rows));
}

TEST(MetricsSnapshot, ParsesTheQueryRows) {
  NodeMetrics m;
  ParsePgMetricRows(
      {"start 1733234567.123456", "version 150004", "pending 2", "received 5000", "replayed 4000",
       "replay_ts 1733234500.5", "paused 1", "replica 4096 0.25 quorum n2",
       "replica 0 0 async node with space", "replica 1 2 async ", "garbage", "unknown 5"},
      &m);
  EXPECT_DOUBLE_EQ(m.postmaster_start_time, 1733234567.123456);
  EXPECT_EQ(m.server_version, 150004);
  EXPECT_EQ(m.pending_restart, 2);
  EXPECT_EQ(m.received_lsn, 5000u);
  EXPECT_EQ(m.replayed_lsn, 4000u);
  EXPECT_DOUBLE_EQ(m.replayed_timestamp, 1733234500.5);
  EXPECT_TRUE(m.replay_paused);
  ASSERT_EQ(m.replicas.size(), 2u) << "a row without a name is skipped";
  EXPECT_EQ(m.replicas[0].name, "n2");
  EXPECT_EQ(m.replicas[0].lag_bytes, 4096u);
  EXPECT_DOUBLE_EQ(m.replicas[0].lag_seconds, 0.25);
  EXPECT_TRUE(m.replicas[0].sync);
  EXPECT_EQ(m.replicas[1].name, "node with space");
  EXPECT_FALSE(m.replicas[1].sync);
}

TEST(MetricsSnapshot, LsnsAboveTwoToThe53AreExact) {
  NodeMetrics m;
  ParsePgMetricRows({"replayed 18446744073709551360"}, &m);
  EXPECT_EQ(m.replayed_lsn, 18446744073709551360ull);
}

// Whole agents on the fake clock: the snapshot says who is primary, the
// loop and the lease thread count, and a failover is one leader change.
TEST(MetricsSnapshot, AgentsReportRolesCountersAndAFailover) {
  agenttest::AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  ASSERT_TRUE(h.Step(1000));
  NodeMetrics p = h.agent(0).MetricsSnapshot();
  NodeMetrics r = h.agent(1).MetricsSnapshot();
  EXPECT_TRUE(p.member);
  EXPECT_TRUE(p.primary);
  EXPECT_TRUE(p.lease_held);
  EXPECT_TRUE(p.fence_armed);
  EXPECT_EQ(p.leader, "n1");
  EXPECT_FALSE(r.primary);
  EXPECT_TRUE(r.replica);
  EXPECT_TRUE(r.in_recovery);
  EXPECT_GT(p.counters.lease_renewals_ok, 0u);
  EXPECT_GT(Total(p.counters.cycle.counts), 0u);
  EXPECT_GT(p.counters.store_last_seen_ms, 0);
  EXPECT_GE(p.counters.actions[static_cast<size_t>(core::ActionType::kPromote)][0], 1u);
  EXPECT_EQ(r.counters.leader_changes, 0u);

  // n1 cut from the store: n2 takes over, and sees one leader change.
  h.Partition(0, true);
  ASSERT_TRUE(h.AdvanceUntil([&] { return h.LeaderHolder() == "n2"; }, 10'000)) << h.Describe();
  ASSERT_TRUE(h.AdvanceUntil([&] { return h.agent(1).MetricsSnapshot().primary; }, 5'000));
  r = h.agent(1).MetricsSnapshot();
  EXPECT_EQ(r.counters.leader_changes, 1u);
  EXPECT_EQ(r.leader, "n2");
  p = h.agent(0).MetricsSnapshot();
  EXPECT_FALSE(p.primary) << "a partitioned old primary is not reported primary";
  EXPECT_FALSE(p.store_ok);
  EXPECT_GT(p.counters.lease_renewals_failed, 0u);
}

}  // namespace
}  // namespace tandem::agent
