// Scripted scenarios: one fault story each, told against the real Decide().
// Every Step() also checks the safety rules, so each test ends by asserting
// that no violation was recorded.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "sim/sim.h"

namespace tandem::sim {
namespace {

constexpr MonoMs kTtl = 10'000;
constexpr MonoMs kLoop = 1'000;
constexpr MonoMs kMargin = 2'000;

SimOptions Options(int nodes = 3, std::vector<std::string> nofailover = {},
                   core::SyncMode mode = core::SyncMode::kQuorum) {
  SimOptions opt;
  opt.cfg.sync_mode = mode;
  opt.nodes = nodes;
  opt.seed = 7;
  opt.cfg.ttl_ms = kTtl;
  opt.cfg.loop_interval_ms = kLoop;
  opt.cfg.safety_margin_ms = kMargin;
  opt.random_rewind_failures = false;
  opt.nofailover = std::move(nofailover);
  return opt;
}

// Converged, and (with synchronous replication) the sync record counts the
// standbys: until then a crash of the primary leaves no provable candidate.
bool Settled(const Cluster& c) {
  if (!c.Converged()) return false;
  if (c.cfg().sync_mode == core::SyncMode::kOff) return true;
  auto rec = c.ReadSync();
  return rec && rec->leader == c.LeaderHolder() && rec->quorum > 0;
}

// Boots and returns the name of the elected primary.
std::string Boot(Cluster& c) {
  EXPECT_TRUE(c.RunUntil([&] { return Settled(c); }, 6 * kTtl)) << c.Summary();
  return c.LeaderHolder();
}

bool WritableLeaderOtherThan(Cluster& c, const std::string& old) {
  const std::string holder = c.LeaderHolder();
  return !holder.empty() && holder != old && c.Writable(c.node(holder));
}

// SIM_VERBOSE=1 prints each scenario's last events, to read the story.
void Show(const Cluster& c) {
  if (std::getenv("SIM_VERBOSE")) {
    std::printf("%s%s", c.Summary().c_str(), c.Transcript().c_str());
  }
}

#define EXPECT_SAFE(c) \
  Show(c);             \
  EXPECT_EQ((c).violation(), "") << (c).Transcript()

TEST(Scenarios, BootElectsExactlyOnePrimary) {
  Cluster c(Options(5));
  std::string leader = Boot(c);
  EXPECT_FALSE(leader.empty());
  c.RunFor(3 * kTtl);
  EXPECT_EQ(c.LeaderHolder(), leader);
  EXPECT_TRUE(c.Converged());
  EXPECT_SAFE(c);
}

TEST(Scenarios, PrimaryCrashReplicaTakesOver) {
  Cluster c(Options());
  const std::string old = Boot(c);
  const MonoMs crashed_at = c.now();
  c.Crash(old);
  ASSERT_TRUE(c.RunUntil([&] { return WritableLeaderOtherThan(c, old); }, 2 * kTtl))
      << c.Transcript();
  // The key expires at most ttl after the last renewal; then one watch event.
  EXPECT_LE(c.now() - crashed_at, kTtl + kLoop);
  const std::string leader = c.LeaderHolder();
  c.Restart(old);
  ASSERT_TRUE(c.RunUntil([&] { return c.Converged(); }, 3 * kTtl)) << c.Transcript();
  EXPECT_EQ(c.LeaderHolder(), leader);
  EXPECT_EQ(c.node(old).pg.following, leader);
  EXPECT_SAFE(c);
}

TEST(Scenarios, IsolatedPrimaryDemotesBeforeLeaseExpires) {
  Cluster c(Options());
  const std::string old = Boot(c);
  c.Partition(old);
  ASSERT_TRUE(c.RunUntil([&] { return !c.Writable(c.node(old)); }, 2 * kTtl));
  // Fenced while the store still names it leader: nobody else can have taken over.
  EXPECT_EQ(c.LeaderHolder(), old);
  ASSERT_TRUE(c.RunUntil([&] { return WritableLeaderOtherThan(c, old); }, 2 * kTtl));
  const std::string leader = c.LeaderHolder();
  c.Heal(old);
  ASSERT_TRUE(c.RunUntil([&] { return c.Converged(); }, 3 * kTtl)) << c.Transcript();
  EXPECT_EQ(c.LeaderHolder(), leader);
  EXPECT_FALSE(c.node(old).needs_rewind);  // it was rewound before following
  EXPECT_SAFE(c);
}

TEST(Scenarios, PausedPrimaryWakesAndDemotes) {
  Cluster c(Options());
  const std::string old = Boot(c);
  c.Pause(old);
  ASSERT_TRUE(c.RunUntil([&] { return WritableLeaderOtherThan(c, old); }, 2 * kTtl));
  const std::string leader = c.LeaderHolder();
  // Frozen, its PostgreSQL still believes it is a primary.
  EXPECT_FALSE(c.node(old).pg.in_recovery);
  c.Unpause(old);
  c.Step();  // its agent runs first and must fence before anything else (checked inside)
  EXPECT_FALSE(c.Writable(c.node(old)));
  ASSERT_TRUE(c.RunUntil([&] { return c.Converged(); }, 3 * kTtl)) << c.Transcript();
  EXPECT_EQ(c.LeaderHolder(), leader);
  EXPECT_SAFE(c);
}

TEST(Scenarios, ShortPauseOfPrimaryKeepsItsLeadership) {
  Cluster c(Options());
  const std::string leader = Boot(c);
  c.Pause(leader, kTtl - kMargin - 2 * kLoop);
  c.RunFor(2 * kTtl);
  EXPECT_EQ(c.LeaderHolder(), leader);
  EXPECT_TRUE(c.Converged());
  EXPECT_SAFE(c);
}

TEST(Scenarios, KilledPostgresOnPrimaryIsRestartedInPlace) {
  Cluster c(Options());
  const std::string leader = Boot(c);
  c.KillPostgres(leader);
  ASSERT_TRUE(c.RunUntil([&] { return c.Converged(); }, 2 * kLoop + 100)) << c.Transcript();
  EXPECT_EQ(c.LeaderHolder(), leader);
  EXPECT_SAFE(c);
}

TEST(Scenarios, PrimaryThatCannotStartReleasesTheKey) {
  Cluster c(Options());
  const std::string old = Boot(c);
  const MonoMs killed_at = c.now();
  c.FailStarts(old, 10 * kTtl);
  c.KillPostgres(old);
  ASSERT_TRUE(c.RunUntil([&] { return WritableLeaderOtherThan(c, old); }, 2 * kTtl));
  // max_start_failures (2) attempts, one release, one election: well under a ttl.
  EXPECT_LT(c.now() - killed_at, kTtl / 2);
  EXPECT_SAFE(c);
}

TEST(Scenarios, StoreOutageDemotesThePrimaryThenItLeadsAgain) {
  // The store is out for everyone past the ttl: the primary fences itself and
  // the key expires. When the store returns the former primary, most advanced
  // and still on the newest timeline, must be promotable again (a rule that
  // blocked promotion on needs_rewind left this cluster without a primary).
  Cluster c(Options());
  const std::string old = Boot(c);
  for (const Node& n : c.nodes()) c.Partition(n.name);
  c.RunFor(kTtl + 2 * kLoop);
  EXPECT_FALSE(c.Writable(c.node(old)));
  EXPECT_EQ(c.LeaderHolder(), "");
  for (const Node& n : c.nodes()) c.Heal(n.name);
  ASSERT_TRUE(c.RunUntil([&] { return c.Converged(); }, 3 * kTtl)) << c.Transcript();
  EXPECT_SAFE(c);
}

TEST(Scenarios, ReplicasOnAnOlderTimelineWaitForTheNewestOne) {
  // n_old leads; it is cut off and n_new is promoted while the third node is
  // frozen. n_new then crashes. The two survivors hold timeline-1 WAL that may
  // run past n_new's fork point: neither may be promoted (Rule 4) until a
  // member on the newest timeline is back. Asynchronous: with a sync record
  // the lone survivor could not prove it holds every write, so nobody would
  // be promoted in the first place (see SyncDoubleLoss...).
  Cluster c(Options(3, {}, core::SyncMode::kOff));
  const std::string old = Boot(c);
  std::string third;
  for (const Node& n : c.nodes()) {
    if (n.name != old) third = n.name;  // the last one
  }
  c.Partition(old);
  c.Pause(third);
  ASSERT_TRUE(c.RunUntil([&] { return WritableLeaderOtherThan(c, old); }, 2 * kTtl));
  const std::string newest = c.LeaderHolder();
  const uint32_t newest_timeline = c.node(newest).pg.timeline();
  c.Crash(newest);
  c.Heal(old);
  c.Unpause(third);
  c.RunFor(3 * kTtl);
  EXPECT_EQ(c.LeaderHolder(), "") << c.Transcript();
  c.Restart(newest);
  ASSERT_TRUE(c.RunUntil([&] { return c.Converged(); }, 3 * kTtl)) << c.Transcript();
  EXPECT_GT(c.node(c.LeaderHolder()).pg.timeline(), newest_timeline);
  EXPECT_SAFE(c);
}

TEST(Scenarios, NoFailoverMembersAreNeverPromoted) {
  Cluster c(Options(3, {"n2", "n3"}, core::SyncMode::kOff));
  EXPECT_EQ(Boot(c), "n1");
  c.Crash("n1");
  c.RunFor(3 * kTtl);
  EXPECT_EQ(c.LeaderHolder(), "");
  c.Restart("n1");
  ASSERT_TRUE(c.RunUntil([&] { return c.Converged(); }, 3 * kTtl)) << c.Transcript();
  EXPECT_EQ(c.LeaderHolder(), "n1");
  EXPECT_SAFE(c);
}

TEST(Scenarios, FlakyLinkToThePrimaryNeverYieldsTwoPrimaries) {
  Cluster c(Options(5));
  const std::string old = Boot(c);
  c.MakeFlaky(old);
  c.RunFor(10 * kTtl);
  c.Heal(old);
  ASSERT_TRUE(c.RunUntil([&] { return c.Converged(); }, 6 * kTtl)) << c.Transcript();
  EXPECT_SAFE(c);
}

TEST(Scenarios, SyncDoubleLossIsNeverPromotedAutomatically) {
  // ANY 1 (a, b): the primary and one sync standby crash together. The
  // survivor may miss writes only the other standby acknowledged: it waits
  // (Rule 3); when either comes back, the cluster recovers.
  Cluster c(Options(3));
  const std::string old = Boot(c);
  std::vector<std::string> standbys;
  for (const Node& n : c.nodes()) {
    if (n.name != old) standbys.push_back(n.name);
  }
  c.Crash(old);
  c.Crash(standbys[0]);
  c.RunFor(3 * kTtl);
  EXPECT_EQ(c.LeaderHolder(), "") << c.Transcript();
  c.Restart(standbys[0]);
  ASSERT_TRUE(c.RunUntil([&] { return WritableLeaderOtherThan(c, old); }, 3 * kTtl))
      << c.Transcript();
  c.Restart(old);
  ASSERT_TRUE(c.RunUntil([&] { return c.Converged(); }, 6 * kTtl)) << c.Transcript();
  EXPECT_SAFE(c);
}

TEST(Scenarios, SyncPrimaryCrashPromotesASyncStandbyWithEveryWrite) {
  Cluster c(Options(3));
  const std::string old = Boot(c);
  c.RunFor(2 * kTtl);  // writes flow and are acknowledged
  c.Crash(old);
  ASSERT_TRUE(c.RunUntil([&] { return WritableLeaderOtherThan(c, old); }, 2 * kTtl))
      << c.Transcript();
  auto rec = c.ReadSync();
  ASSERT_TRUE(rec.has_value());
  c.Restart(old);
  ASSERT_TRUE(c.RunUntil([&] { return c.Converged(); }, 6 * kTtl)) << c.Transcript();
  EXPECT_SAFE(c);  // includes Rule 3: the new primary had every acknowledged write
}

}  // namespace
}  // namespace tandem::sim
