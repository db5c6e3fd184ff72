// Failover candidates: the ranking (timeline, LSN, name), the rules that drop
// a candidate (rule 3: lag; rule 4: behind the cluster timeline), and which
// members the sync record lets take over.
#include "core/candidates.h"

#include <gtest/gtest.h>

#include "unit/core/observation_builder.h"

namespace tandem::core {
namespace {

using testing::Member;
using testing::Replica;
using Names = std::vector<std::string>;

TEST(RankCandidates, OrdersByTimelineThenLsnThenName) {
  Observation obs = Replica();  // n1: timeline 2, 0/3000000
  obs.members.push_back(Member("n4", Role::kReplica, 2, 0x3000000));
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x3000010));
  obs.members.push_back(Member("n3", Role::kReplica, 3, 0x2000000));
  obs.members.push_back(Member("n0", Role::kReplica, 2, 0x3000000));
  EXPECT_EQ(RankCandidates(obs, HaConfig{}), (Names{"n3", "n2", "n0", "n1", "n4"}));
}

TEST(RankCandidates, HigherTimelineBeatsHigherLsn) {
  Observation obs = Replica();
  obs.pg.lsn = 0x9000000;
  obs.members.push_back(Member("n2", Role::kReplica, 3, 0x3000000));
  EXPECT_EQ(RankCandidates(obs, HaConfig{}), (Names{"n2", "n1"}));
}

TEST(RankCandidates, OnlyReplicasThatMayFailOverAreCandidates) {
  Observation obs = Replica();
  obs.members.push_back(Member("p", Role::kPrimary, 9, 0x9000000));
  obs.members.push_back(Member("s", Role::kStopped, 9, 0x9000000));
  obs.members.push_back(Member("u", Role::kUnknown, 9, 0x9000000));
  obs.members.push_back(Member("nf", Role::kReplica, 9, 0x9000000, /*nofailover=*/true));
  obs.members.push_back(Member("r", Role::kReplica, 1, 0x1000));
  EXPECT_EQ(RankCandidates(obs, HaConfig{}), (Names{"n1"}));
  HaConfig no_lag_limit;
  no_lag_limit.max_lag_bytes = UINT64_MAX;
  EXPECT_EQ(RankCandidates(obs, no_lag_limit), (Names{"n1", "r"}));
}

TEST(RankCandidates, SelfRankedByLocalPositionNotPublished) {
  Observation obs = Replica();
  obs.members[0].lsn = 0x1000;  // published a cycle ago
  obs.members[0].timeline = 1;
  obs.pg.lsn = 0x5000000;  // seen directly now
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x4000000));
  std::vector<Candidate> ranked = RankCandidateDetails(obs, HaConfig{});
  ASSERT_EQ(ranked.size(), 2u);
  EXPECT_EQ(ranked[0].name, "n1");
  EXPECT_EQ(ranked[0].timeline, 2u);
  EXPECT_EQ(ranked[0].lsn, 0x5000000u);
}

TEST(RankCandidates, SelfPublishedAsStoppedButNowAStandbyIsACandidate) {
  Observation obs = Replica();
  obs.members[0].role = Role::kStopped;
  EXPECT_EQ(RankCandidates(obs, HaConfig{}), (Names{"n1"}));
}

TEST(RankCandidates, SelfIsNotACandidateUnlessARunningStandby) {
  Observation obs = Replica();
  obs.pg.running = false;
  EXPECT_TRUE(RankCandidates(obs, HaConfig{}).empty());
  obs.pg.running = true;
  obs.pg.in_recovery = false;
  EXPECT_TRUE(RankCandidates(obs, HaConfig{}).empty());
}

TEST(RankCandidates, SelfNotPublishedOrNoFailoverIsNotACandidate) {
  Observation obs = Replica();
  obs.members[0].nofailover = true;
  EXPECT_TRUE(RankCandidates(obs, HaConfig{}).empty());
  obs.members.clear();
  EXPECT_TRUE(RankCandidates(obs, HaConfig{}).empty());
}

TEST(RankCandidates, Rule3_CandidateBehindTheBestByMoreThanMaxLagIsDropped) {
  HaConfig cfg;
  cfg.max_lag_bytes = 1000;
  Observation obs = Replica();                                               // n1 at 0x3000000
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x3000000 + 1000));  // exactly at limit
  obs.members.push_back(Member("n3", Role::kReplica, 2, 0x3000000 - 1));     // 1001 behind
  EXPECT_EQ(RankCandidates(obs, cfg), (Names{"n2", "n1"}));
}

TEST(RankCandidates, LagIsMeasuredFromTheTopRankedCandidate) {
  // A candidate on a newer timeline wins even with a lower lsn; the others are
  // compared with it, not with the highest lsn overall.
  HaConfig cfg;
  cfg.max_lag_bytes = 1000;
  Observation obs = Replica();  // timeline 2, 0x3000000
  obs.members.push_back(Member("n2", Role::kReplica, 3, 0x2000000));
  EXPECT_EQ(RankCandidates(obs, cfg), (Names{"n2", "n1"}));
}

TEST(RankCandidates, Rule4_MembersBehindTheClusterTimelineAreNotCandidates) {
  Observation obs = Replica();  // n1 on timeline 2
  obs.cluster_timeline = 3;
  obs.members.push_back(Member("n2", Role::kReplica, 3, 0x100000));
  obs.members.push_back(Member("n3", Role::kReplica, 2, 0x9000000));
  HaConfig no_lag_limit;
  no_lag_limit.max_lag_bytes = UINT64_MAX;
  EXPECT_EQ(RankCandidates(obs, no_lag_limit), (Names{"n2"}));
  obs.cluster_timeline = 0;  // nothing recorded: no restriction
  EXPECT_EQ(RankCandidates(obs, no_lag_limit), (Names{"n2", "n3", "n1"}));
}

TEST(RankCandidates, DuplicateMemberIsListedOnce) {
  Observation obs = Replica();
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x100));
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x4000000));
  EXPECT_EQ(RankCandidates(obs, HaConfig{}), (Names{"n2", "n1"}));
}

TEST(RankCandidates, NoMembersNoCandidates) {
  Observation obs = Replica();
  obs.members.clear();
  EXPECT_TRUE(RankCandidateDetails(obs, HaConfig{}).empty());
}

TEST(SyncSurvivesWriterLoss, TheWriterListedInItsOwnRecordDoesNotCount) {
  // Right after a promotion the record still lists its writer (n1), who holds
  // every write itself: losing it then leaves no proven holder.
  const SyncRecord just_promoted{"n1", SyncMode::kQuorum, {"n1", "n3"}, 1};
  EXPECT_FALSE(SyncSurvivesWriterLoss(just_promoted, {"n3"}));
  const SyncRecord narrowed{"n1", SyncMode::kQuorum, {"n3"}, 1};
  EXPECT_TRUE(SyncSurvivesWriterLoss(narrowed, {"n3"}));
  EXPECT_FALSE(SyncSurvivesWriterLoss(narrowed, {"n2"}));
}

TEST(SyncSurvivesWriterLoss, QuorumNeedsSizeMinusKPlusOneLiveMembers) {
  const SyncRecord any1{"n0", SyncMode::kQuorum, {"n1", "n2", "n3"}, 1};
  EXPECT_FALSE(SyncSurvivesWriterLoss(any1, {"n1", "n2"}));
  EXPECT_TRUE(SyncSurvivesWriterLoss(any1, {"n1", "n2", "n3"}));
  const SyncRecord any2{"n0", SyncMode::kQuorum, {"n1", "n2", "n3"}, 2};
  EXPECT_TRUE(SyncSurvivesWriterLoss(any2, {"n1", "n3"}));
  EXPECT_FALSE(SyncSurvivesWriterLoss(any2, {"n3"}));
  EXPECT_FALSE(SyncSurvivesWriterLoss(SyncRecord{"n0", SyncMode::kQuorum, {"n1"}, 0}, {"n1"}));
  EXPECT_FALSE(SyncSurvivesWriterLoss(SyncRecord{"n0", SyncMode::kOff, {}, 0}, {"n1"}));
}

}  // namespace
}  // namespace tandem::core
