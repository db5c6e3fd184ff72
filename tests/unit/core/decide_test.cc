// Decide(): one test per rule of docs/design/state-machine.md. Test names start
// with the safety rule of ARCHITECTURE.md they protect (Rule1..Rule6), or with
// the table row (Leader*, Follower*, NoLeader*, Store*, Paused*) for liveness rows.
#include "core/decide.h"

#include <gtest/gtest.h>

#include "base/strings.h"
#include "unit/core/observation_builder.h"

namespace tandem::core {
namespace {

using testing::Acts;
using testing::Key;
using testing::kLease;
using testing::kNow;
using testing::Leader;
using testing::Member;
using testing::Replica;

constexpr ActionType kAcquire = ActionType::kAcquireLeader;
constexpr ActionType kTakeOver = ActionType::kTakeOverLeader;
constexpr ActionType kRelease = ActionType::kReleaseLeader;
constexpr ActionType kPromote = ActionType::kPromote;
constexpr ActionType kDemote = ActionType::kDemote;
constexpr ActionType kStartPrimary = ActionType::kStartPrimary;
constexpr ActionType kStartReplica = ActionType::kStartReplica;
constexpr ActionType kFollow = ActionType::kFollow;
constexpr ActionType kRewind = ActionType::kRewind;
constexpr ActionType kReclone = ActionType::kReclone;

const HaConfig kCfg;

#define EXPECT_HAS(haystack, needle) EXPECT_PRED_FORMAT2(::testing::IsSubstring, needle, haystack)

// Follower of n2, which holds the key.
Observation FollowerOfN2() {
  Observation obs = Replica();
  obs.leader = Key("n2", 99);
  obs.members.push_back(Member("n2", Role::kPrimary, 2, 0x3000100));
  obs.pg.following = "n2";
  return obs;
}

// ---- the store cannot be reached ----

TEST(Decide, Rule2_StoreDownPrimaryDemotesAtLocalLeaseDeadline) {
  Observation obs = Leader();
  obs.store_ok = false;
  obs.leader.reset();
  obs.members.clear();
  obs.now = obs.lease_deadline;  // the deadline itself counts as passed
  Decision d = Decide(obs, kCfg);
  EXPECT_EQ(d.actions, Acts({{kDemote, ""}}));
  EXPECT_EQ(d.reason, "cannot reach the store and the lease deadline passed: demoting");
}

TEST(Decide, Rule2_StoreDownPrimaryWithoutLeaseDemotes) {
  Observation obs = Leader();
  obs.store_ok = false;
  obs.lease = 0;
  EXPECT_EQ(Decide(obs, kCfg).actions, Acts({{kDemote, ""}}));
}

TEST(Decide, StoreDownPrimaryKeepsServingUntilDeadlineAndSaysHowLong) {
  Observation obs = Leader();
  obs.store_ok = false;
  obs.lease_deadline = kNow + 1500;
  Decision d = Decide(obs, kCfg);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_HAS(d.reason, "cannot reach the store");
  EXPECT_HAS(d.reason, "1500ms");
}

TEST(Decide, StoreDownStandbyOrStoppedDoesNothing) {
  Observation obs = Replica();
  obs.store_ok = false;
  obs.lease_deadline = kNow - 1;
  Decision d = Decide(obs, kCfg);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_HAS(d.reason, "store unreachable");
  obs.pg.running = false;
  EXPECT_TRUE(Decide(obs, kCfg).actions.empty());
}

TEST(Decide, StoreDownIgnoresTheUntrustedClusterView) {
  // A leftover leader key naming self must not lead to a take-over or promotion.
  Observation obs = Replica();
  obs.store_ok = false;
  obs.leader = Key("n1", 1);
  EXPECT_TRUE(Decide(obs, kCfg).actions.empty());
}

// ---- maintenance mode ----

TEST(Decide, PausedMakesNoRoleChangeEvenWhenItWouldPromote) {
  Observation obs = Replica();  // alone and first: would acquire + promote
  obs.paused = true;
  Decision d = Decide(obs, kCfg);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_HAS(d.reason, "paused");
}

TEST(Decide, PausedPrimaryIsNotDemotedForAnotherHolder) {
  Observation obs = Leader();
  obs.leader = Key("n2", 99);
  obs.paused = true;
  Decision d = Decide(obs, kCfg);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_HAS(d.reason, "n2 holds the leader key");
}

TEST(Decide, PausedLeaderDoesNotStartOrTakeOver) {
  Observation obs = Leader();
  obs.pg.running = false;
  obs.leader = Key("n1", 1);
  obs.paused = true;
  EXPECT_TRUE(Decide(obs, kCfg).actions.empty());
}

TEST(Decide, Rule2_StoreDownBeatsPausedAtTheDeadline) {
  Observation obs = Leader();
  obs.paused = true;
  obs.store_ok = false;
  obs.now = obs.lease_deadline + 1;
  EXPECT_EQ(Decide(obs, kCfg).actions, Acts({{kDemote, ""}}));
}

// ---- the leader key names this node ----

TEST(Decide, Rule2_LeaderDemotesAtLocalLeaseDeadline) {
  Observation obs = Leader();
  obs.now = obs.lease_deadline;
  Decision d = Decide(obs, kCfg);
  EXPECT_EQ(d.actions, Acts({{kDemote, ""}}));
  EXPECT_HAS(d.reason, "lease deadline passed");
}

TEST(Decide, Rule2_LeaderWithoutLeaseDemotes) {
  Observation obs = Leader();
  obs.lease = 0;
  EXPECT_EQ(Decide(obs, kCfg).actions, Acts({{kDemote, ""}}));
}

TEST(Decide, LeaderKeyWithoutValidLeaseAndNoPrimaryWaits) {
  Observation obs = Leader();
  obs.pg.in_recovery = true;
  obs.now = obs.lease_deadline + 10;
  Decision d = Decide(obs, kCfg);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_HAS(d.reason, "no valid lease");
}

TEST(Decide, LeaderWithTheLockDoesNothing) {
  Decision d = Decide(Leader(), kCfg);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_EQ(d.reason, "I am the leader with the lock");
}

TEST(Decide, LeaderKeyOnOldLeaseIsTakenOver) {
  Observation obs = Leader();
  obs.leader = Key("n1", 5);
  Decision d = Decide(obs, kCfg);
  EXPECT_EQ(d.actions, Acts({{kTakeOver, ""}}));
  EXPECT_HAS(d.reason, "lease 5");
  EXPECT_HAS(d.reason, "I am the leader with the lock");
}

TEST(Decide, LeaderWithStandbyPromotes) {
  Observation obs = Leader();
  obs.pg.in_recovery = true;
  Decision d = Decide(obs, kCfg);
  EXPECT_EQ(d.actions, Acts({{kPromote, ""}}));
  EXPECT_HAS(d.reason, "promoting");
}

TEST(Decide, LeaderOnOldLeaseTakesOverThenPromotes) {
  Observation obs = Leader();
  obs.pg.in_recovery = true;
  obs.leader = Key("n1", 5);
  EXPECT_EQ(Decide(obs, kCfg).actions, Acts({{kTakeOver, ""}, {kPromote, ""}}));
}

TEST(Decide, LeaderWithStoppedPostgresStartsItAsPrimary) {
  Observation obs = Leader();
  obs.pg.running = false;
  obs.pg.start_failures = 1;
  Decision d = Decide(obs, kCfg);
  EXPECT_EQ(d.actions, Acts({{kStartPrimary, ""}}));
  EXPECT_HAS(d.reason, "attempt 2 of 2");
}

TEST(Decide, LeaderRestartedAfterCrashTakesOverThenStartsPrimary) {
  Observation obs = Leader();
  obs.pg.running = false;
  obs.leader = Key("n1", 5);
  EXPECT_EQ(Decide(obs, kCfg).actions, Acts({{kTakeOver, ""}, {kStartPrimary, ""}}));
}

TEST(Decide, LeaderReleasesKeyAfterMaxStartFailures) {
  Observation obs = Leader();
  obs.pg.running = false;
  obs.pg.start_failures = kCfg.max_start_failures;
  obs.leader = Key("n1", 5);  // no take-over first: the release compares the mod_revision read
  Decision d = Decide(obs, kCfg);
  EXPECT_EQ(d.actions, Acts({{kRelease, ""}}));
  EXPECT_HAS(d.reason, "failed to start 2 times");
}

// ---- the leader key names another member ----

TEST(Decide, Rule1_PrimaryDemotesWhenAnotherMemberHoldsTheKey) {
  Observation obs = Leader();
  obs.leader = Key("n2", 99);
  Decision d = Decide(obs, kCfg);
  EXPECT_EQ(d.actions, Acts({{kDemote, ""}}));
  EXPECT_EQ(d.reason, "n2 holds the leader key; demoting");
}

TEST(Decide, Rule1_PrimaryDemotesEvenWhenTheHolderIsUnnamed) {
  Observation obs = Leader();
  obs.leader = Key("", 99);
  EXPECT_EQ(Decide(obs, kCfg).actions, Acts({{kDemote, ""}}));
  obs.pg.in_recovery = true;
  EXPECT_TRUE(Decide(obs, kCfg).actions.empty());  // and never follows ""
}

TEST(Decide, Rule4_RecloneComesBeforeRewind) {
  Observation obs = FollowerOfN2();
  obs.pg.needs_rewind = true;
  obs.pg.needs_reclone = true;
  Decision d = Decide(obs, kCfg);
  EXPECT_EQ(d.actions, Acts({{kReclone, "n2"}}));
  EXPECT_HAS(d.reason, "re-cloning from n2");
}

TEST(Decide, Rule4_DivergedReplicaRewindsBeforeFollowing) {
  Observation obs = FollowerOfN2();
  obs.pg.needs_rewind = true;
  EXPECT_EQ(Decide(obs, kCfg).actions, Acts({{kRewind, "n2"}}));
  obs.pg.running = false;  // a stopped former primary too: rewind before any start
  EXPECT_EQ(Decide(obs, kCfg).actions, Acts({{kRewind, "n2"}}));
}

// The leader takes the key before it promotes: a rewind (or re-clone) onto a
// leader still in recovery finds "no rewind required" for WAL that will
// diverge, and the node could never stream from it. Seen in cluster_test.
TEST(Decide, Rule4_RewindWaitsUntilTheLeaderReportsARunningPrimary) {
  Observation obs = FollowerOfN2();
  obs.pg.running = false;
  obs.pg.needs_rewind = true;
  obs.members.back().role = Role::kReplica;  // n2 holds the key, not promoted yet
  Decision d = Decide(obs, kCfg);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_HAS(d.reason, "waiting for its promotion before rewinding");
  obs.pg.needs_reclone = true;
  EXPECT_TRUE(Decide(obs, kCfg).actions.empty());
  obs.members.pop_back();  // n2's state not published at all
  EXPECT_TRUE(Decide(obs, kCfg).actions.empty());
  obs.members.push_back(Member("n2", Role::kPrimary, 3, 0x3000100));
  EXPECT_EQ(Decide(obs, kCfg).actions, Acts({{kReclone, "n2"}}));
  obs.pg.needs_reclone = false;
  EXPECT_EQ(Decide(obs, kCfg).actions, Acts({{kRewind, "n2"}}));
}

TEST(Decide, FollowerStartsStoppedPostgresAsReplicaOfTheLeader) {
  Observation obs = FollowerOfN2();
  obs.pg.running = false;
  Decision d = Decide(obs, kCfg);
  EXPECT_EQ(d.actions, Acts({{kStartReplica, "n2"}}));
  EXPECT_HAS(d.reason, "n2");
}

TEST(Decide, FollowerRepointsReplicationAtTheLeader) {
  Observation obs = FollowerOfN2();
  obs.pg.following = "n3";
  Decision d = Decide(obs, kCfg);
  EXPECT_EQ(d.actions, Acts({{kFollow, "n2"}}));
  EXPECT_HAS(d.reason, "from n3 to n2");
  obs.pg.following = "";
  EXPECT_EQ(Decide(obs, kCfg).actions, Acts({{kFollow, "n2"}}));
}

TEST(Decide, FollowerAlreadyFollowingDoesNothing) {
  Decision d = Decide(FollowerOfN2(), kCfg);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_HAS(d.reason, "following n2");
}

TEST(Decide, FollowerIgnoresItsOwnLeaseWhileAnotherLeads) {
  Observation obs = FollowerOfN2();
  obs.lease = 0;
  EXPECT_TRUE(Decide(obs, kCfg).actions.empty());
}

// ---- nobody holds the leader key ----

TEST(Decide, Rule1_RunningPrimaryWithoutKeyAcquiresIt) {
  Observation obs = Leader();
  obs.leader.reset();
  Decision d = Decide(obs, kCfg);
  EXPECT_EQ(d.actions, Acts({{kAcquire, ""}}));
  EXPECT_HAS(d.reason, "acquiring");
}

TEST(Decide, Rule2_RunningPrimaryWithoutKeyOrLeaseDemotes) {
  Observation obs = Leader();
  obs.leader.reset();
  obs.now = obs.lease_deadline;
  EXPECT_EQ(Decide(obs, kCfg).actions, Acts({{kDemote, ""}}));
  obs.now = kNow;
  obs.lease = 0;
  EXPECT_EQ(Decide(obs, kCfg).actions, Acts({{kDemote, ""}}));
}

TEST(Decide, NoLeaderStartsStoppedPostgresAsStandbyWithoutSource) {
  Observation obs = Replica();
  obs.pg.running = false;
  EXPECT_EQ(Decide(obs, kCfg).actions, Acts({{kStartReplica, ""}}));
}

TEST(Decide, Rule3_MostAdvancedReplicaAcquiresAndPromotes) {
  Observation obs = Replica();
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x2000000));
  Decision d = Decide(obs, kCfg);
  EXPECT_EQ(d.actions, Acts({{kAcquire, ""}, {kPromote, ""}}));
  EXPECT_HAS(d.reason, "no leader; I am the most advanced healthy replica");
  EXPECT_HAS(d.reason, FormatLsn(0x3000000));
}

TEST(Decide, Rule3_ReplicaBehindAnotherWaitsAndNamesIt) {
  Observation obs = Replica();
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x3000001));
  Decision d = Decide(obs, kCfg);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_HAS(d.reason, "n2 is ahead");
  EXPECT_HAS(d.reason, FormatLsn(0x3000001));
}

TEST(Decide, Rule3_NewerTimelineWinsOverHigherLsn) {
  Observation obs = Replica();
  obs.pg.lsn = 0x9000000;
  obs.members.push_back(Member("n2", Role::kReplica, 3, 0x3000000));
  EXPECT_TRUE(Decide(obs, kCfg).actions.empty());
}

TEST(Decide, Rule3_RanksSelfByLocalPositionNotTheStalePublishedOne) {
  Observation obs = Replica();
  obs.members[0].lsn = 0x1000;
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x2000000));
  EXPECT_EQ(Decide(obs, kCfg).actions, Acts({{kAcquire, ""}, {kPromote, ""}}));
}

TEST(Decide, Rule3_EqualPositionsBreakTiesByName) {
  Observation obs = Replica();
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x3000000));
  EXPECT_EQ(Decide(obs, kCfg).actions.size(), 2u);  // n1 < n2
  obs.self = "n2";
  obs.members[1].name = "n1";
  obs.members[0].name = "n2";
  EXPECT_TRUE(Decide(obs, kCfg).actions.empty());
}

TEST(Decide, Rule3_NoFailoverMemberNeverPromotes) {
  Observation obs = Replica();
  obs.members[0].nofailover = true;
  Decision d = Decide(obs, kCfg);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_HAS(d.reason, "not a failover candidate");
}

TEST(Decide, Rule3_AheadButNoFailoverMemberDoesNotBlockOthers) {
  Observation obs = Replica();
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x9000000, /*nofailover=*/true));
  EXPECT_EQ(Decide(obs, kCfg).actions.size(), 2u);
}

TEST(Decide, Rule3_ReplicaLaggingBeyondMaxLagDoesNotPromote) {
  HaConfig cfg;
  cfg.max_lag_bytes = 0x1000;
  Observation obs = Replica();
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x3002000));
  Decision d = Decide(obs, cfg);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_HAS(d.reason, "not a failover candidate");
}

TEST(Decide, Rule4_MostAdvancedButNeedsRecloneDoesNotPromote) {
  Observation obs = Replica();
  obs.pg.needs_reclone = true;
  Decision d = Decide(obs, kCfg);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_HAS(d.reason, "re-clone");
}

TEST(Decide, Rule4_DemotedPrimaryStillOnTheNewestTimelineMayPromoteAgain) {
  // needs_rewind says "diverged from the leader"; with no leader there is
  // nothing to rewind onto. Blocking here would leave a cluster whose store was
  // briefly unreachable without a primary forever (found by the simulation).
  Observation obs = Replica();
  obs.pg.needs_rewind = true;
  obs.cluster_timeline = 2;
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x2000000));
  EXPECT_EQ(Decide(obs, kCfg).actions, Acts({{kAcquire, ""}, {kPromote, ""}}));
}

TEST(Decide, Rule4_ReplicaBehindTheClusterTimelineNeverPromotes) {
  // Timeline 3 exists (its holders are down); our timeline-2 WAL may run past
  // the point 3 forked from 2, so promoting us would resurrect a dead history.
  Observation obs = Replica();
  obs.cluster_timeline = 3;
  Decision d = Decide(obs, kCfg);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_HAS(d.reason, "cluster reached timeline 3");
}

TEST(Decide, Rule4_ReplicaOnTheClusterTimelinePromotes) {
  Observation obs = Replica();
  obs.cluster_timeline = 2;
  EXPECT_EQ(Decide(obs, kCfg).actions.size(), 2u);
}

TEST(Decide, Rule4_MemberBehindTheClusterTimelineDoesNotBlockOthers) {
  Observation obs = Replica();  // timeline 2
  obs.cluster_timeline = 2;
  obs.members.push_back(Member("n2", Role::kReplica, 1, 0x9000000));
  EXPECT_EQ(Decide(obs, kCfg).actions.size(), 2u);
}

TEST(Decide, Rule4_KeylessPrimaryBehindTheClusterTimelineDemotes) {
  Observation obs = Leader();
  obs.leader.reset();
  obs.cluster_timeline = 3;
  Decision d = Decide(obs, kCfg);
  EXPECT_EQ(d.actions, Acts({{kDemote, ""}}));
  EXPECT_HAS(d.reason, "newer timeline 3");
}

TEST(Decide, Rule2_MostAdvancedButWithoutValidLeaseDoesNotPromote) {
  Observation obs = Replica();
  obs.now = obs.lease_deadline;
  Decision d = Decide(obs, kCfg);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_HAS(d.reason, "no valid lease");
}

TEST(Decide, NoLeaderAndNoCandidatesSaysSo) {
  Observation obs = Replica();
  obs.members.clear();  // self not published yet
  Decision d = Decide(obs, kCfg);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_HAS(d.reason, "nor is any other member");
}

TEST(Decide, SameInputSameDecision) {
  Observation obs = Replica();
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x2000000));
  Decision a = Decide(obs, kCfg);
  Decision b = Decide(obs, kCfg);
  EXPECT_EQ(a.actions, b.actions);
  EXPECT_EQ(a.reason, b.reason);
}

TEST(Decide, ReasonsAreOneLine) {
  std::vector<Observation> all = {Replica(), Leader(), FollowerOfN2()};
  for (Observation obs : all) {
    for (int bits = 0; bits < 64; ++bits) {
      obs.store_ok = bits & 1;
      obs.pg.running = bits & 2;
      obs.pg.in_recovery = bits & 4;
      obs.pg.needs_rewind = bits & 8;
      obs.now = (bits & 16) ? obs.lease_deadline : kNow;
      obs.paused = bits & 32;
      Decision d = Decide(obs, kCfg);
      EXPECT_FALSE(d.reason.empty());
      EXPECT_EQ(d.reason.find('\n'), std::string::npos) << d.reason;
    }
  }
}

// ---- CheckTiming (Rule 6) ----

HaConfig Timing(int64_t ttl, int64_t loop, int64_t margin) {
  HaConfig cfg;
  cfg.ttl_ms = ttl;
  cfg.loop_interval_ms = loop;
  cfg.safety_margin_ms = margin;
  return cfg;
}

TEST(CheckTiming, Rule6_DefaultsHold) {
  EXPECT_EQ(CheckTiming(HaConfig{}), "");
}

TEST(CheckTiming, Rule6_LoopIntervalMustBePositive) {
  EXPECT_HAS(CheckTiming(Timing(10000, 0, 2000)), "dcs.loop_interval (0ms)");
  EXPECT_HAS(CheckTiming(Timing(10000, -5, 2000)), "must be positive");
}

TEST(CheckTiming, Rule6_TtlAtLeastTwoSeconds) {
  std::string msg = CheckTiming(Timing(1999, 100, 200));
  EXPECT_HAS(msg, "dcs.ttl (1999ms) must be at least 2s");
  EXPECT_EQ(CheckTiming(Timing(2000, 100, 200)), "");
}

TEST(CheckTiming, Rule6_SafetyMarginLargerThanLoopInterval) {
  EXPECT_HAS(CheckTiming(Timing(10000, 1000, 500)),
             "dcs.safety_margin (500ms) must be larger than dcs.loop_interval (1s): ");
  EXPECT_HAS(CheckTiming(Timing(10000, 1000, 1000)), "raise dcs.safety_margin");
  EXPECT_EQ(CheckTiming(Timing(10000, 1000, 1001)), "");
}

TEST(CheckTiming, Rule6_TwoRenewalsFitBeforeTheLocalDeadline) {
  // ttl - margin = 1999 < 2 * 1000
  std::string msg = CheckTiming(Timing(5000, 1000, 3001));
  EXPECT_HAS(msg, "dcs.ttl (5s) minus dcs.safety_margin (3001ms)");
  EXPECT_HAS(msg, "twice dcs.loop_interval (1s)");
  EXPECT_EQ(CheckTiming(Timing(5000, 1000, 3000)), "");  // exactly two fit
}

TEST(CheckTiming, Rule6_MessagesAreOneLine) {
  for (const HaConfig& cfg : {Timing(10000, 0, 1), Timing(1000, 100, 200), Timing(10000, 1000, 10),
                              Timing(3000, 1000, 2000)}) {
    std::string msg = CheckTiming(cfg);
    EXPECT_FALSE(msg.empty());
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
}

}  // namespace
}  // namespace tandem::core
