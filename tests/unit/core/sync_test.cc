// Synchronous replication: the planner's order of steps (PlanSync), the
// promotion rule that reads the record (Rule 3), and the operator intents.
#include "core/sync.h"

#include <gtest/gtest.h>

#include "core/candidates.h"
#include "core/decide.h"
#include "unit/core/observation_builder.h"

namespace tandem::core {
namespace {

using testing::Key;
using testing::Leader;
using testing::Member;
using testing::Replica;
using Kind = SyncStep::Kind;

#define EXPECT_HAS(haystack, needle) EXPECT_PRED_FORMAT2(::testing::IsSubstring, needle, haystack)

const HaConfig kCfg;

SyncRecord Rec(std::vector<std::string> members, int quorum, std::string leader = "p") {
  return SyncRecord{std::move(leader), SyncMode::kQuorum, std::move(members), quorum};
}

SyncInput Primary(std::optional<SyncRecord> rec, PgSyncSet pg,
                  std::vector<SyncStandby> standbys = {}) {
  SyncInput in;
  in.self = "p";
  in.mode = SyncMode::kQuorum;
  in.count = 1;
  in.record = std::move(rec);
  in.pg = std::move(pg);
  in.standbys = std::move(standbys);
  in.primary_flush_lsn = 1000;
  return in;
}

// Applies steps until the plan settles (at most 10), as the agent would over
// successive cycles, checking after every step that the record's claim is
// kept: PostgreSQL's set is inside the record's and waits for enough.
std::pair<SyncRecord, PgSyncSet> Settle(SyncInput in) {
  for (int i = 0; i < 10; ++i) {
    SyncStep s = PlanSync(in);
    if (s.kind == Kind::kNone) break;
    if (s.kind == Kind::kWriteRecord) in.record = s.record;
    if (s.kind == Kind::kSetPg) in.pg = s.pg;
    if (in.record && in.record->quorum > 0) {
      for (const auto& n : in.pg.names) {
        EXPECT_NE(std::find(in.record->members.begin(), in.record->members.end(), n),
                  in.record->members.end())
            << "PostgreSQL waits for " << n
            << " which the record does not list, after: " << s.reason;
      }
      const auto& m = in.record->members;
      const int self = std::find(m.begin(), m.end(), in.self) != m.end() ? 1 : 0;
      EXPECT_GE(in.pg.quorum + self, in.record->quorum) << "after: " << s.reason;
    }
  }
  return {*in.record, in.pg};
}

TEST(PlanSync, FreshPrimaryRecordsAnEmptySetFirst) {
  SyncStep s = PlanSync(Primary(std::nullopt, {}));
  ASSERT_EQ(s.kind, Kind::kWriteRecord);
  EXPECT_EQ(s.record, Rec({}, 0));
}

TEST(PlanSync, ANewStandbyIsRecordedBeforePostgresWaitsForIt) {
  SyncInput in = Primary(Rec({}, 0), {}, {{"r1", true, 0, true}});
  SyncStep s = PlanSync(in);
  ASSERT_EQ(s.kind, Kind::kWriteRecord) << s.reason;
  EXPECT_EQ(s.record.members, std::vector<std::string>{"r1"});
  EXPECT_EQ(s.record.quorum, 0);
  in.record = s.record;
  s = PlanSync(in);
  ASSERT_EQ(s.kind, Kind::kSetPg) << s.reason;
  EXPECT_EQ(s.pg, (PgSyncSet{{"r1"}, 1}));
}

TEST(PlanSync, TheRecordCountsAStandbyOnlyOnceItFlushedPastThePrimary) {
  // r1 is in PostgreSQL's set but behind the primary's flush position.
  SyncInput in = Primary(Rec({"r1"}, 0), {{"r1"}, 1}, {{"r1", true, 900, true}});
  SyncStep s = PlanSync(in);
  EXPECT_EQ(s.kind, Kind::kNone);
  EXPECT_HAS(s.reason, "waiting for the standbys to flush past");
  in.standbys[0].flush_lsn = 1000;
  s = PlanSync(in);
  ASSERT_EQ(s.kind, Kind::kWriteRecord);
  EXPECT_EQ(s.record, Rec({"r1"}, 1));
}

TEST(PlanSync, ALostStandbyLeavesPostgresFirstAndTheRecordAfterTheOthersCaughtUp) {
  SyncInput in = Primary(Rec({"r1", "r2"}, 1), {{"r1", "r2"}, 1},
                         {{"r1", true, 1000, true}, {"r2", false, 500, true}});
  SyncStep s = PlanSync(in);
  ASSERT_EQ(s.kind, Kind::kSetPg) << s.reason;
  EXPECT_EQ(s.pg, (PgSyncSet{{"r1"}, 1}));
  in.pg = s.pg;
  in.standbys[0].flush_lsn = 999;  // r1 has not flushed everything yet
  EXPECT_EQ(PlanSync(in).kind, Kind::kNone);
  in.standbys[0].flush_lsn = 1000;
  s = PlanSync(in);
  ASSERT_EQ(s.kind, Kind::kWriteRecord);
  EXPECT_EQ(s.record, Rec({"r1"}, 1));
}

TEST(PlanSync, QuorumModeWithNoStandbyRunsAloneAndClaimsNothing) {
  SyncInput in = Primary(Rec({"r1"}, 1), {{"r1"}, 1}, {{"r1", false, 0, true}});
  auto [rec, pg] = Settle(in);
  EXPECT_EQ(pg, PgSyncSet{});
  EXPECT_EQ(rec, Rec({}, 0));
}

SyncStandby Reconnecting(std::string name) {
  SyncStandby s{std::move(name), false, 0, true};
  s.reconnecting = true;
  return s;
}

TEST(PlanSync, StandbysReconnectingAfterARestartStayInPostgresAndTheRecord) {
  // The primary's PostgreSQL restarted: no standby streams yet, but both did a
  // moment ago. Dropping them would leave the writes on the primary alone and
  // no failover possible until they caught up again.
  SyncInput in =
      Primary(Rec({"r1", "r2"}, 1), {{"r1", "r2"}, 1}, {Reconnecting("r1"), Reconnecting("r2")});
  SyncStep s = PlanSync(in);
  EXPECT_EQ(s.kind, Kind::kNone) << s.reason;
  auto [rec, pg] = Settle(in);
  EXPECT_EQ(pg, (PgSyncSet{{"r1", "r2"}, 1}));
  EXPECT_EQ(rec, Rec({"r1", "r2"}, 1));
  // Past the grace they are lost: quorum mode then runs alone, as before.
  in.standbys = {{"r1", false, 0, true}, {"r2", false, 0, true}};
  std::tie(rec, pg) = Settle(in);
  EXPECT_EQ(pg, PgSyncSet{});
  EXPECT_EQ(rec, Rec({}, 0));
}

TEST(PlanSync, AReconnectingStandbyIsNeverCountedAsCaughtUp) {
  // PostgreSQL waits for r1 and r2, the record counts neither yet; r1 only
  // reconnects (whatever position it last reported), r2 streams but is behind.
  SyncStandby r1 = Reconnecting("r1");
  r1.flush_lsn = 5000;
  SyncInput in = Primary(Rec({"r1", "r2"}, 0), {{"r1", "r2"}, 1}, {r1, {"r2", true, 900, true}});
  SyncStep s = PlanSync(in);
  EXPECT_EQ(s.kind, Kind::kNone) << s.reason;
  EXPECT_HAS(s.reason, "waiting for the standbys to flush past");
  in.standbys[1].flush_lsn = 1000;
  s = PlanSync(in);
  ASSERT_EQ(s.kind, Kind::kWriteRecord) << s.reason;
  EXPECT_EQ(s.record, Rec({"r1", "r2"}, 1));
}

TEST(PlanSync, StrictModeKeepsWaitingForTheStandbysItHad) {
  SyncInput in = Primary(Rec({"r1"}, 1), {{"r1"}, 1}, {{"r1", false, 0, true}});
  in.mode = SyncMode::kStrict;
  in.record->mode = SyncMode::kStrict;
  auto [rec, pg] = Settle(in);
  EXPECT_EQ(pg, (PgSyncSet{{"r1"}, 1}));
  EXPECT_EQ(rec.quorum, 1);
}

TEST(PlanSync, StrictModeWithNoStandbyEverWaitsForAnyStandby) {
  SyncInput in = Primary(std::nullopt, {});
  in.mode = SyncMode::kStrict;
  auto [rec, pg] = Settle(in);
  EXPECT_EQ(pg, (PgSyncSet{{"*"}, 1}));
  EXPECT_EQ(rec.quorum, 0);
}

TEST(PlanSync, TwoHealthyStandbysSettleAtAnyOneOfBoth) {
  SyncInput in = Primary(std::nullopt, {}, {{"r2", true, 1000, true}, {"r1", true, 1000, true}});
  auto [rec, pg] = Settle(in);
  EXPECT_EQ(pg, (PgSyncSet{{"r1", "r2"}, 1}));
  EXPECT_EQ(rec, Rec({"r1", "r2"}, 1));
}

TEST(PlanSync, NofailoverStandbysAreNotCounted) {
  SyncInput in = Primary(std::nullopt, {}, {{"r1", true, 1000, false}});
  auto [rec, pg] = Settle(in);
  EXPECT_EQ(pg, PgSyncSet{});
  EXPECT_EQ(rec.quorum, 0);
}

TEST(PlanSync, PostgresWaitingOutsideTheRecordWidensTheRecord) {
  SyncInput in = Primary(Rec({"r1"}, 1), {{"r2"}, 1});
  SyncStep s = PlanSync(in);
  ASSERT_EQ(s.kind, Kind::kWriteRecord);
  EXPECT_EQ(s.record.members, (std::vector<std::string>{"r1", "r2"}));
}

TEST(PlanSync, ANewPrimaryListedInTheRecordKeepsItsClaim) {
  // After r1's promotion: the record was written by p and lists r1.
  SyncInput in = Primary(Rec({"r1", "r2"}, 1, "old"), {});
  in.self = "r1";
  SyncStep s = PlanSync(in);
  ASSERT_EQ(s.kind, Kind::kWriteRecord);
  EXPECT_EQ(s.record, Rec({"r1", "r2"}, 1, "r1"));
  // It then moves to its own standbys, dropping itself only after they caught up.
  in.record = s.record;
  in.standbys = {{"r2", true, 1000, true}};
  auto [rec, pg] = Settle(in);
  EXPECT_EQ(pg, (PgSyncSet{{"r2"}, 1}));
  EXPECT_EQ(rec, Rec({"r2"}, 1, "r1"));
}

TEST(PlanSync, OffTurnsTheRecordOffBeforePostgres) {
  SyncInput in = Primary(Rec({"r1"}, 1), {{"r1"}, 1});
  in.mode = SyncMode::kOff;
  SyncStep s = PlanSync(in);
  ASSERT_EQ(s.kind, Kind::kWriteRecord);
  EXPECT_EQ(s.record.mode, SyncMode::kOff);
  in.record = s.record;
  s = PlanSync(in);
  ASSERT_EQ(s.kind, Kind::kSetPg);
  EXPECT_EQ(s.pg, PgSyncSet{});
}

TEST(SyncForPromotion, AListedStandbyNeedsOneAcknowledgementFewer) {
  PromotionSync p = SyncForPromotion(Rec({"r1", "r2", "r3"}, 2), "r1", SyncMode::kQuorum, 2);
  ASSERT_TRUE(p.record.has_value());
  EXPECT_EQ(*p.record, Rec({"r1", "r2", "r3"}, 2, "r1"));  // same claim, new writer
  EXPECT_EQ(p.pg, (PgSyncSet{{"r2", "r3"}, 1}));
  p = SyncForPromotion(Rec({"r1", "r2"}, 1), "r1", SyncMode::kQuorum, 1);
  EXPECT_EQ(p.pg, PgSyncSet{});
  p = SyncForPromotion(Rec({"r1", "r2"}, 1), "r1", SyncMode::kStrict, 1);
  EXPECT_EQ(p.pg, (PgSyncSet{{"r2"}, 1}));
}

TEST(SyncForPromotion, AnUnlistedStandbyRecordsThatNothingIsProvenFirst) {
  PromotionSync p = SyncForPromotion(Rec({"r2"}, 1), "r1", SyncMode::kQuorum, 1);
  ASSERT_TRUE(p.record.has_value());
  EXPECT_EQ(p.record->quorum, 0);
  EXPECT_EQ(p.record->leader, "r1");
}

TEST(SyncStandbyNames, RenderAndParseRoundTrip) {
  PgSyncSet s{{"node2", "node3"}, 1};
  EXPECT_EQ(RenderSyncStandbyNames(s), "ANY 1 (\"node2\", \"node3\")");
  EXPECT_EQ(ParseSyncStandbyNames(RenderSyncStandbyNames(s)), s);
  EXPECT_EQ(ParseSyncStandbyNames(""), PgSyncSet{});
  EXPECT_EQ(ParseSyncStandbyNames("ANY 1 (*)"), (PgSyncSet{{"*"}, 1}));
  EXPECT_EQ(ParseSyncStandbyNames("2 (a, b)"), (PgSyncSet{{"a", "b"}, 2}));
  EXPECT_EQ(ParseSyncStandbyNames("a, b"), (PgSyncSet{{"a", "b"}, 1}));
  EXPECT_FALSE(ParseSyncStandbyNames("ANY x (a)").has_value());
  EXPECT_FALSE(ParseSyncStandbyNames("ANY 1 (a").has_value());
  EXPECT_FALSE(ParseSyncStandbyNames("ANY 1 (\"a)").has_value());
}

// ---- Rule 3: promotion under a sync record

// n1 (self, standby at 0/3000000) with the record ANY k (members).
Observation NoLeaderWithSync(std::vector<std::string> members, int k) {
  Observation obs = Replica();
  obs.sync = SyncRecord{"p", SyncMode::kQuorum, std::move(members), k};
  return obs;
}

bool Promotes(const Decision& d) {
  for (const Action& a : d.actions) {
    if (a.type == ActionType::kPromote) return true;
  }
  return false;
}

TEST(Rule3Sync, AReplicaOutsideTheSyncSetIsNeverPromoted) {
  Observation obs = NoLeaderWithSync({"n2"}, 1);
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x2000000));  // n2 behind n1
  Decision d = Decide(obs, kCfg);
  EXPECT_FALSE(Promotes(d)) << d.reason;
  EXPECT_HAS(d.reason, "n2 is the most advanced synchronous standby");
}

TEST(Rule3Sync, TheMostAdvancedSyncStandbyIsPromotedWhenEnoughAreLive) {
  Observation obs = NoLeaderWithSync({"n1", "n2"}, 1);
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x2000000));
  Decision d = Decide(obs, kCfg);
  EXPECT_TRUE(Promotes(d)) << d.reason;
}

TEST(Rule3Sync, ADoubleLossIsNeverPromotedAutomatically) {
  // ANY 1 (n1, n2): n2 may be the only one holding the last writes, and it is gone.
  Observation obs = NoLeaderWithSync({"n1", "n2"}, 1);
  Decision d = Decide(obs, kCfg);
  EXPECT_FALSE(Promotes(d)) << d.reason;
  EXPECT_HAS(d.reason, "no automatic failover");
  EXPECT_HAS(d.reason, "--accept-data-loss");
}

TEST(Rule3Sync, ARecordWithQuorumZeroPromotesNobody) {
  Observation obs = NoLeaderWithSync({"n1"}, 0);
  EXPECT_FALSE(Promotes(Decide(obs, kCfg)));
}

TEST(Rule3Sync, TheRecordsWriterHoldsEveryWriteItAcknowledged) {
  // p ran alone (quorum 0) and was demoted; it is back as a replica.
  Observation obs = NoLeaderWithSync({}, 0);
  obs.members.push_back(Member("p", Role::kReplica, 2, 0x3000000));
  Decision d = Decide(obs, kCfg);  // n1 is not known to hold p's writes
  EXPECT_FALSE(Promotes(d)) << d.reason;
  EXPECT_HAS(d.reason, "p is the most advanced");
  obs.self = "p";  // p itself may be promoted
  obs.members = {Member("p", Role::kReplica, 2, 0x3000000)};
  d = Decide(obs, kCfg);
  EXPECT_TRUE(Promotes(d)) << d.reason;
}

TEST(Rule3Sync, TheAsyncRecordFallsBackToTheLagRule) {
  Observation obs = Replica();
  obs.sync = SyncRecord{"p", SyncMode::kOff, {}, 0};
  EXPECT_TRUE(Promotes(Decide(obs, kCfg)));
}

TEST(Rule3Sync, ANofailoverStandbyAheadBlocksTheOthers) {
  Observation obs = NoLeaderWithSync({"n1", "n2"}, 1);
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x4000000, /*nofailover=*/true));
  Decision d = Decide(obs, kCfg);
  EXPECT_FALSE(Promotes(d)) << d.reason;
  EXPECT_HAS(d.reason, "nofailover");
}

// ---- operator intents

TEST(Intent, SwitchoverLeaderStepsDownForAStreamingReplica) {
  Observation obs = Leader();
  MemberState r2 = Member("n2", Role::kReplica, 2, 0x3000000);
  r2.streaming = true;
  r2.following = "n1";
  obs.members.push_back(r2);
  obs.intent = Intent{Intent::Kind::kSwitchover, "n1", "n2"};
  Decision d = Decide(obs, kCfg);
  ASSERT_EQ(d.actions.size(), 1u) << d.reason;
  EXPECT_EQ(d.actions[0], (Action{ActionType::kStepDown, "n2"}));
}

TEST(Intent, SwitchoverWaitsForATargetThatDoesNotStream) {
  Observation obs = Leader();
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x3000000));
  obs.intent = Intent{Intent::Kind::kSwitchover, "n1", "n2"};
  Decision d = Decide(obs, kCfg);
  EXPECT_TRUE(d.actions.empty()) << d.reason;
  EXPECT_HAS(d.reason, "waits");
}

TEST(Intent, ScheduledSwitchoverWaitsForItsTime) {
  Observation obs = Leader();
  MemberState r2 = Member("n2", Role::kReplica, 2, 0x3000000);
  r2.streaming = true;
  r2.following = "n1";
  obs.members.push_back(r2);
  obs.intent = Intent{Intent::Kind::kSwitchover, "n1", "n2"};
  obs.intent->due = false;
  EXPECT_TRUE(Decide(obs, kCfg).actions.empty());
}

TEST(Intent, SwitchoverTargetPromotesOnlyPastTheOldPrimarysFinalPosition) {
  Observation obs = Replica();
  obs.intent = Intent{Intent::Kind::kSwitchover, "n0", "n1"};
  obs.intent->final_timeline = 2;
  obs.intent->final_lsn = 0x3000000;  // we are AT it: the checkpoint record is not in yet
  Decision d = Decide(obs, kCfg);
  EXPECT_FALSE(Promotes(d)) << d.reason;
  obs.intent->final_lsn = 0x2FFFF00;
  d = Decide(obs, kCfg);
  EXPECT_TRUE(Promotes(d)) << d.reason;
}

TEST(Intent, OthersWaitForTheSwitchoverTarget) {
  Observation obs = Replica();
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x1000000));
  obs.intent = Intent{Intent::Kind::kSwitchover, "n0", "n2"};
  obs.intent->final_timeline = 2;
  obs.intent->final_lsn = 0x100;
  Decision d = Decide(obs, kCfg);
  EXPECT_FALSE(Promotes(d));
  EXPECT_HAS(d.reason, "switchover to n2 in progress");
}

TEST(Intent, ADeadSwitchoverTargetDoesNotHoldUpAFailover) {
  Observation obs = Replica();  // n2, the target, is not live
  obs.intent = Intent{Intent::Kind::kSwitchover, "n0", "n2"};
  obs.intent->final_timeline = 2;
  obs.intent->final_lsn = 0x100;
  Decision d = Decide(obs, kCfg);
  EXPECT_TRUE(Promotes(d)) << d.reason;  // the automatic rules: n1 is the best replica
}

TEST(Intent, FailoverWithAcceptDataLossPromotesEvenOnAnOlderTimeline) {
  Observation obs = NoLeaderWithSync({"n2"}, 1);
  obs.cluster_timeline = 5;
  obs.intent = Intent{Intent::Kind::kFailover, "", "n1", true};
  EXPECT_TRUE(Promotes(Decide(obs, kCfg)));
  obs.intent->accept_data_loss = false;
  Decision d = Decide(obs, kCfg);
  EXPECT_FALSE(Promotes(d));
  EXPECT_HAS(d.reason, "--accept-data-loss");
}

}  // namespace
}  // namespace tandem::core
