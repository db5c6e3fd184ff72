// Safety rule 2 on the whole agent (ARCHITECTURE.md; docs/design/timing.md):
// a primary that cannot renew its lease stops accepting writes at its local
// deadline - (time the last successful renewal was sent) + ttl - margin -
// which is before the lease can expire in the store; not earlier; whatever
// its loop is doing; and a paused agent that wakes late demotes before it
// does anything else as the primary.
#include <gtest/gtest.h>

#include <set>

#include "unit/agent/agent_harness.h"

namespace tandem::agenttest {
namespace {

constexpr MonoMs kTtl = 2'000, kMargin = 500;
// The watchdog polls every 20 ms of the clock (timing.md, "fence watchdog"),
// and the harness steps 5 ms at a time here.
constexpr MonoMs kFenceSlack = 20 + 5;

MonoMs LastRenewal(AgentHarness& h, int i) {
  const auto ok = h.node(i).store->KeepAliveTimes(/*only_ok=*/true);
  return ok.empty() ? -1 : ok.back();
}

// The first Stop (either mode) of node i at or after call index `from`.
const FakePostgres::Call* FirstStop(const std::vector<FakePostgres::Call>& calls, size_t from) {
  for (size_t k = from; k < calls.size(); ++k) {
    if (calls[k].method == "Stop") return &calls[k];
  }
  return nullptr;
}

// Every route node i published after `since` that sends writes to itself is
// void by `deadline`.
void ExpectNoSelfRoutePast(AgentHarness& h, int i, MonoMs since, MonoMs deadline) {
  for (const auto& e : h.Routes(i)) {
    if (e.at < since || !e.route.read_write) continue;
    if (e.route.read_write->member != h.node(i).name) continue;
    EXPECT_LE(e.route.valid_until, deadline) << "route published at " << e.at;
  }
}

TEST(AgentFencing, APrimaryWhoseRenewalsFailStopsAtItsDeadlineBeforeTheLeaseExpires) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  ASSERT_TRUE(h.Step(600));
  const size_t calls_before = h.pg(0).CallCount();
  const MonoMs cut = h.clock().Now();
  h.Partition(0, true, /*request_timeout_ms=*/250);
  const MonoMs last = LastRenewal(h, 0);
  const MonoMs deadline = last + kTtl - kMargin;
  ASSERT_TRUE(h.AdvanceUntil([&] { return !h.pg(0).running(); }, 3'000, 5)) << h.Describe();
  const auto calls = h.pg(0).Calls();
  const FakePostgres::Call* stop = FirstStop(calls, calls_before);
  ASSERT_NE(stop, nullptr);
  EXPECT_EQ(stop->detail, "immediate") << "no time left for a fast stop";
  EXPECT_GE(stop->at, deadline) << "stopped before the rules say (last renewal " << last << ")";
  EXPECT_LE(stop->at, deadline + kFenceSlack);
  EXPECT_LT(stop->at, last + kTtl) << "the lease could have expired in the store first";
  // The client endpoint never sent writes here past the deadline either.
  ExpectNoSelfRoutePast(h, 0, cut, deadline);
  bool valid = true;
  EXPECT_TRUE(h.RouteWriteTarget(0, &valid) != "n1" || !valid);
}

TEST(AgentFencing, TheWatchdogFencesALoopStuckInPostgresWhenTheDeadlinePasses) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  ASSERT_TRUE(h.Step(600));
  // The loop hangs in a query (a stuck backend) and stays there.
  h.pg(0).Block("Query");
  ASSERT_TRUE(h.AdvanceUntil([&] { return h.pg(0).BlockedCallers() == 1; }, 1'000)) << h.Describe();
  const size_t calls_before = h.pg(0).CallCount();
  h.Partition(0, true, 250);
  const MonoMs last = LastRenewal(h, 0);
  const MonoMs deadline = last + kTtl - kMargin;
  ASSERT_TRUE(h.AdvanceUntil([&] { return !h.pg(0).running(); }, 3'000, 5)) << h.Describe();
  EXPECT_EQ(h.pg(0).BlockedCallers(), 1) << "the loop must still be stuck: the watchdog fenced";
  const auto calls = h.pg(0).Calls();
  const FakePostgres::Call* stop = FirstStop(calls, calls_before);
  ASSERT_NE(stop, nullptr);
  EXPECT_EQ(stop->detail, "immediate");
  EXPECT_GE(stop->at, deadline);
  EXPECT_LE(stop->at, deadline + kFenceSlack);
  EXPECT_LT(stop->at, last + kTtl);
  // The lease expires in the store and n2 takes over; then n1's loop is
  // released and n1 comes back only as a standby of n2 (rule 4).
  ASSERT_TRUE(
      h.AdvanceUntil([&] { return h.pg(1).state() == FakePostgres::State::kPrimary; }, 3'000))
      << h.Describe();
  h.Partition(0, false);
  h.pg(0).Unblock("Query");
  ASSERT_TRUE(h.AdvanceUntil(
      [&] {
        auto up = h.pg(0).upstream();
        return h.pg(0).state() == FakePostgres::State::kStandby && up &&
               up->port == h.node(1).cfg.pg_port;
      },
      5'000))
      << h.Describe();
  for (const auto& c : h.pg(0).Calls()) {
    if (c.seq > stop->seq) {
      EXPECT_NE(c.ToString(), "Promote");
    }
  }
  EXPECT_EQ(h.LeaderHolder(), "n2");
}

// Calls that act on PostgreSQL or act as its primary (what must not come
// before the demotion of a primary that lost its lease).
bool Acts(const FakePostgres::Call& c) {
  static const std::set<std::string> kActs = {"Stop",        "Start",
                                              "Promote",     "Reload",
                                              "WriteConfig", "EnsureReplicationUser",
                                              "SyncSlots",   "BaseBackup",
                                              "Rewind",      "WriteStandbyConfigWithoutSource"};
  return kActs.count(c.method) != 0 || (c.method == "Sql" && c.detail == "CHECKPOINT");
}

TEST(AgentFencing, APausedPrimaryThatWakesLateDemotesBeforeActingAsPrimary) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  ASSERT_TRUE(h.Step(600));
  // The whole node freezes (SIGSTOP, a VM pause): the agent and PostgreSQL.
  h.Pause(0);
  ASSERT_TRUE(h.AdvanceUntil(
      [&] { return h.LeaderHolder() == "n2" && h.pg(1).state() == FakePostgres::State::kPrimary; },
      5'000))
      << h.Describe();
  ASSERT_TRUE(h.Step(1'000));
  const size_t calls_before = h.pg(0).CallCount();
  const uint64_t woke_seq = h.Seq();
  const MonoMs woke = h.clock().Now();
  h.Resume(0);
  ASSERT_TRUE(
      h.AdvanceUntil([&] { return h.pg(0).state() != FakePostgres::State::kPrimary; }, 1'000, 5))
      << h.Describe();
  const auto calls = h.pg(0).Calls();
  const FakePostgres::Call* first = nullptr;
  for (size_t k = calls_before; k < calls.size() && !first; ++k) {
    if (Acts(calls[k])) first = &calls[k];
  }
  ASSERT_NE(first, nullptr);
  std::string after;
  for (size_t k = calls_before; k < calls.size(); ++k) {
    after += " " + calls[k].ToString() + "@" + std::to_string(calls[k].at);
  }
  // The first act is an immediate stop, whether the watchdog or the loop's
  // demotion gets there first: the node no longer holds the leader key, so
  // no open session may commit anything more (ActDemote).
  EXPECT_EQ(first->ToString(), "Stop(immediate)") << "the first act after waking:" << after;
  EXPECT_EQ(first->at, woke) << "demoted at once";
  // Nothing written as the leader after waking, no route to itself.
  for (const auto& r : h.node(0).store->Requests()) {
    if (r.seq <= woke_seq || !r.ok || r.op != "Txn") continue;
    ADD_FAILURE() << "a transaction after waking: " << r.key;
  }
  for (const auto& e : h.Routes(0)) {
    if (e.at >= woke && e.route.read_write) {
      EXPECT_NE(e.route.read_write->member, "n1");
    }
  }
  // Rule 4: it comes back only as a standby of the new primary, after a rewind.
  ASSERT_TRUE(h.AdvanceUntil(
      [&] {
        auto up = h.pg(0).upstream();
        return h.pg(0).state() == FakePostgres::State::kStandby && up &&
               up->port == h.node(1).cfg.pg_port;
      },
      5'000))
      << h.Describe();
  const int rewind =
      h.pg(0).IndexOf("Rewind(" + std::to_string(h.node(1).cfg.pg_port) + ")", calls_before);
  const int start = h.pg(0).IndexOf("Start", calls_before);
  ASSERT_GE(rewind, 0) << h.Describe();
  EXPECT_LT(rewind, start);
}

}  // namespace
}  // namespace tandem::agenttest
