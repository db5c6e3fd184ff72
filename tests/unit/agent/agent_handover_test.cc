// Who does what, in which order, when the primary changes (safety rule 1:
// only the key holder runs a writable primary; docs/design/state-machine.md;
// docs/design/timing.md "What a failover costs"): an operator's switchover,
// a failover after the primary's node dies, and a PostgreSQL crash under a
// live agent (restarted in place; handed over after max_start_failures).
#include <gtest/gtest.h>

#include "unit/agent/agent_harness.h"

namespace tandem::agenttest {
namespace {

using State = FakePostgres::State;

bool StandbyOf(AgentHarness& h, int i, int of) {
  auto up = h.pg(i).upstream();
  return h.pg(i).state() == State::kStandby && up && up->port == h.node(of).cfg.pg_port;
}

// Every call after `from0` / `from1`, for failure messages.
std::string Trace(AgentHarness& h, size_t from0, size_t from1) {
  std::string out;
  for (int i = 0; i < 2; ++i) {
    const auto calls = h.pg(i).Calls();
    out += "\n" + h.node(i).name + ":";
    for (size_t k = i == 0 ? from0 : from1; k < calls.size(); ++k) {
      if (calls[k].method == "Query" || calls[k].method == "Replication") continue;
      out += " " + calls[k].ToString() + "@" + std::to_string(calls[k].at) + "#" +
             std::to_string(calls[k].seq);
    }
  }
  return out;
}

TEST(AgentSwitchover, TheOldPrimaryStopsCleanlyAndHandsOverBeforeTheTargetPromotes) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  ASSERT_TRUE(h.Step(300));
  const size_t old_before = h.pg(0).CallCount(), new_before = h.pg(1).CallCount();
  const uint32_t timeline = h.pg(0).timeline();
  auto r = h.agent(0).RequestSwitchover("n2", 0);
  ASSERT_TRUE(r.ok()) << r.error().message();
  const uint64_t asked = h.Seq();
  const MonoMs asked_at = h.clock().Now();
  ASSERT_TRUE(h.AdvanceUntil(
      [&] {
        return h.LeaderHolder() == "n2" && h.pg(1).state() == State::kPrimary && StandbyOf(h, 0, 1);
      },
      3'000))
      << h.Describe();
  // n1: checkpoint while serving, then a fast (clean) stop, then the one
  // transaction that records its final position and deletes the key.
  const uint64_t checkpoint = h.pg(0).SeqOf("Sql(CHECKPOINT)", old_before);
  const uint64_t stop = h.pg(0).SeqOf("Stop(fast)", old_before);
  auto handover = h.FirstRequest(0, "Txn", "/intent", /*only_ok=*/true, asked);
  // n2: takes the key, then promotes.
  auto acquire = h.FirstRequest(1, "Txn", "/leader", true, asked);
  const uint64_t promote = h.pg(1).SeqOf("Promote", new_before);
  ASSERT_NE(checkpoint, 0u);
  ASSERT_NE(stop, 0u);
  ASSERT_TRUE(handover.has_value());
  ASSERT_TRUE(acquire.has_value());
  ASSERT_NE(promote, 0u);
  EXPECT_LT(checkpoint, stop);
  EXPECT_LT(stop, handover->seq);
  EXPECT_LT(handover->seq, acquire->seq);
  EXPECT_LT(acquire->seq, promote);
  // Clean: no fencing, no rewind for the old primary.
  EXPECT_EQ(h.pg(0).IndexOf("Stop(immediate)", old_before), -1);
  EXPECT_EQ(h.pg(0).IndexOf("Rewind(" + std::to_string(h.node(1).cfg.pg_port) + ")", old_before),
            -1);
  EXPECT_EQ(h.pg(1).timeline(), timeline + 1) << Trace(h, old_before, new_before);
  // The request was acted on at once (the primary's own agent recorded it):
  // the target promoted within one loop interval of clock time.
  const auto calls = h.pg(1).Calls();
  for (const auto& c : calls) {
    if (c.seq == promote) {
      EXPECT_LE(c.at - asked_at, 250) << "promoted at " << c.at;
    }
  }
}

TEST(AgentFailover, AReplicaTakesTheKeyOnlyOnceTheDeadPrimarysLeaseExpired) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  ASSERT_TRUE(h.Step(600));
  const size_t new_before = h.pg(1).CallCount();
  // The primary's node dies (agent and PostgreSQL frozen for good).
  h.Pause(0);
  const uint64_t died = h.Seq();
  const auto renewals = h.node(0).store->KeepAliveTimes(true);
  ASSERT_FALSE(renewals.empty());
  const MonoMs last = renewals.back();
  ASSERT_TRUE(h.AdvanceUntil([&] { return h.pg(1).state() == State::kPrimary; }, 4'000, 5))
      << h.Describe();
  auto acquire = h.FirstRequest(1, "Txn", "/leader", /*only_ok=*/true, died);
  ASSERT_TRUE(acquire.has_value());
  // The store deletes the key ttl after the last renewal; the watch wakes
  // the replica's loop at once.
  EXPECT_GE(acquire->at, last + 2'000);
  EXPECT_LE(acquire->at, last + 2'000 + 10);
  const uint64_t promote = h.pg(1).SeqOf("Promote", new_before);
  ASSERT_NE(promote, 0u);
  EXPECT_LT(acquire->seq, promote);
  EXPECT_EQ(h.LeaderHolder(), "n2");
}

TEST(AgentFailover, APostgresCrashUnderALiveAgentIsRestartedInPlace) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  ASSERT_TRUE(h.Step(600));
  const size_t before = h.pg(0).CallCount();
  const MonoMs crashed = h.clock().Now();
  h.pg(0).Crash();
  ASSERT_TRUE(h.AdvanceUntil([&] { return h.pg(0).state() == State::kPrimary; }, 1'000))
      << h.Describe();
  const MonoMs started = h.pg(0).TimeOf("Start", before);
  ASSERT_GE(started, 0);
  EXPECT_LE(started - crashed, 250) << "restarted at the loop's next look";
  EXPECT_EQ(h.LeaderHolder(), "n1");
  ASSERT_TRUE(h.Step(1'000));
  EXPECT_EQ(h.pg(1).IndexOf("Promote"), -1);
  EXPECT_EQ(h.LeaderHolder(), "n1");
}

TEST(AgentFailover, APrimaryThatWillNotRestartReleasesTheKeyAfterMaxStartFailures) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  ASSERT_TRUE(h.Step(600));
  const size_t before = h.pg(0).CallCount();
  const uint64_t crashed = h.Seq();
  h.pg(0).SetStartFails(true);
  h.pg(0).Crash();
  ASSERT_TRUE(h.AdvanceUntil(
      [&] { return h.LeaderHolder() == "n2" && h.pg(1).state() == State::kPrimary; }, 5'000))
      << h.Describe();
  auto release = h.FirstRequest(0, "Txn", "/leader", /*only_ok=*/true, crashed);
  ASSERT_TRUE(release.has_value()) << "n1 deleted the key itself";
  int starts = 0;
  uint64_t last_start = 0;
  const auto calls = h.pg(0).Calls();
  for (size_t k = before; k < calls.size(); ++k) {
    if (calls[k].method == "Start" && calls[k].seq < release->seq) {
      ++starts;
      last_start = calls[k].seq;
    }
  }
  EXPECT_EQ(starts, 2) << "max_start_failures";
  EXPECT_LT(last_start, release->seq);
  // n2 promoted after the key was free.
  auto acquire = h.FirstRequest(1, "Txn", "/leader", true, release->seq);
  ASSERT_TRUE(acquire.has_value());
  EXPECT_GT(h.pg(1).SeqOf("Promote"), acquire->seq);
}

// Among the replicas, the most advanced one takes over (rule 3's ranking;
// asynchronous here): a lagging replica waits and then follows the winner.
TEST(AgentFailover, TheMostAdvancedReplicaTakesOverAndTheOtherFollowsIt) {
  HarnessOptions o;
  o.nodes = 3;
  AgentHarness h(o);
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  // n3 stops receiving; the primary writes on; n2 gets it all.
  h.pg(2).SetStreamAllowed(false);
  ASSERT_TRUE(h.Step(300));
  h.pg(0).AdvanceLsn(4'096);
  ASSERT_TRUE(h.AdvanceUntil([&] { return h.pg(1).lsn() == h.pg(0).lsn(); }, 1'000));
  ASSERT_TRUE(h.Step(300));  // both publish their positions
  ASSERT_LT(h.pg(2).lsn(), h.pg(1).lsn());
  h.Pause(0);  // the primary's node dies
  ASSERT_TRUE(h.AdvanceUntil([&] { return h.pg(1).state() == State::kPrimary; }, 4'000))
      << h.Describe();
  ASSERT_TRUE(h.Step(500));
  EXPECT_EQ(h.LeaderHolder(), "n2");
  EXPECT_EQ(h.pg(2).IndexOf("Promote"), -1) << "the lagging replica never promoted";
  EXPECT_NE(h.pg(2).state(), State::kPrimary);
  h.pg(2).SetStreamAllowed(true);
  ASSERT_TRUE(
      h.AdvanceUntil([&] { return StandbyOf(h, 2, 1) && h.pg(2).lsn() == h.pg(1).lsn(); }, 3'000))
      << h.Describe();
}

}  // namespace
}  // namespace tandem::agenttest
