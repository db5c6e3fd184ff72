// The witness rules (docs/design/witness.md): a witness never acts (Decide's
// row X1), is never a failover candidate (ranked or under a sync record),
// never counts as a synchronous standby (PlanSync) and is never a route target.
#include <gtest/gtest.h>

#include "core/candidates.h"
#include "core/decide.h"
#include "core/route.h"
#include "core/sync.h"
#include "unit/core/observation_builder.h"

namespace tandem::core {
namespace {

using testing::Key;
using testing::Member;
using testing::Replica;
using Names = std::vector<std::string>;

#define EXPECT_HAS(haystack, needle) EXPECT_PRED_FORMAT2(::testing::IsSubstring, needle, haystack)

const HaConfig kCfg;

// "w" is this node, a witness: no PostgreSQL, a valid lease, the store readable.
Observation WitnessSelf() {
  Observation obs;
  obs.now = testing::kNow;
  obs.self = "w";
  obs.witness = true;
  obs.store_ok = true;
  obs.lease = testing::kLease;
  obs.lease_deadline = testing::kNow + 5000;
  obs.members.push_back(Member("w", Role::kWitness, 0, 0, /*nofailover=*/true));
  return obs;
}

TEST(WitnessX1, AWitnessNeverActsWithNoLeader) {
  Observation obs = WitnessSelf();
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x3000000));
  Decision d = Decide(obs, kCfg);
  EXPECT_TRUE(d.actions.empty()) << d.reason;
  EXPECT_HAS(d.reason, "witness");
  EXPECT_HAS(d.reason, "no member holds the leader key");
}

TEST(WitnessX1, AWitnessNeverActsEvenIfItsLocalPostgresLooksLikeAPrimary) {
  // A pre-existing database on the witness's machine is not Tandem's: even
  // when it runs as a primary with no lease, the witness does not fence it.
  Observation obs = WitnessSelf();
  obs.pg.running = true;
  obs.pg.in_recovery = false;
  obs.lease = 0;
  obs.leader = Key("n1", 9);
  EXPECT_TRUE(Decide(obs, kCfg).actions.empty());
  obs.store_ok = false;
  Decision d = Decide(obs, kCfg);
  EXPECT_TRUE(d.actions.empty()) << d.reason;
  EXPECT_HAS(d.reason, "the store cannot be read");
}

TEST(WitnessX1, AWitnessNeverActsOnAFailoverOrSwitchoverNamingIt) {
  Observation obs = WitnessSelf();
  obs.intent = Intent{Intent::Kind::kFailover, "", "w", /*accept_data_loss=*/true};
  EXPECT_TRUE(Decide(obs, kCfg).actions.empty());
  obs.intent = Intent{Intent::Kind::kSwitchover, "n1", "w", false, true, 0x5000000, 2};
  EXPECT_TRUE(Decide(obs, kCfg).actions.empty());
}

TEST(WitnessX1, AWitnessHoldingTheKeyByCorruptionStillDoesNothing) {
  Observation obs = WitnessSelf();
  obs.leader = Key("w", testing::kLease);
  Decision d = Decide(obs, kCfg);
  EXPECT_TRUE(d.actions.empty()) << d.reason;
}

TEST(WitnessCandidates, AWitnessIsNeverACandidate) {
  Observation obs = Replica();  // n1, a standby
  // Published as a replica far ahead (a corrupt or forged entry) but registered
  // as a witness by its role: still not a candidate.
  obs.members.push_back(Member("w", Role::kWitness, 9, 0x9000000));
  EXPECT_EQ(RankCandidates(obs, kCfg), (Names{"n1"}));
}

TEST(WitnessCandidates, AWitnessSelfIsNeverACandidateWhateverItsLocalPostgres) {
  Observation obs = WitnessSelf();
  obs.pg.running = true;
  obs.pg.in_recovery = true;
  obs.pg.timeline = 9;
  obs.pg.lsn = 0x9000000;
  obs.members[0].role = Role::kReplica;
  obs.members[0].nofailover = false;
  obs.members.push_back(Member("n2", Role::kReplica, 2, 0x3000000));
  EXPECT_EQ(RankCandidates(obs, kCfg), (Names{"n2"}));
}

TEST(WitnessCandidates, OtherReplicasDoNotWaitForAWitness) {
  // n1 is the only data node left: the witness ahead of it (by a forged
  // position) does not make n1 defer.
  Observation obs = Replica();
  obs.members.push_back(Member("w", Role::kWitness, 9, 0x9000000));
  Decision d = Decide(obs, kCfg);
  ASSERT_FALSE(d.actions.empty()) << d.reason;
  EXPECT_EQ(d.actions.back().type, ActionType::kPromote);
}

TEST(WitnessSyncRule3, AWitnessListedInTheSyncRecordIsNeverAHolder) {
  // A record that (wrongly) lists the witness: the witness cannot vouch for
  // any write, so with the writer gone n1 alone is not enough for ANY 1 (n1, w).
  Observation obs = Replica();
  obs.sync = SyncRecord{"p", SyncMode::kQuorum, {"n1", "w"}, 1};
  obs.members.push_back(Member("w", Role::kWitness, 9, 0x9000000));
  SyncVerdict v = SyncCandidates(obs);
  ASSERT_TRUE(v.applies);
  EXPECT_FALSE(v.ok) << v.why;
  // The usual record for two data nodes and a witness names only n1: promoted.
  obs.sync = SyncRecord{"p", SyncMode::kQuorum, {"n1"}, 1};
  v = SyncCandidates(obs);
  EXPECT_TRUE(v.ok) << v.why;
  ASSERT_EQ(v.eligible.size(), 1u);
  EXPECT_EQ(v.eligible[0].name, "n1");
}

TEST(WitnessPlanSync, AWitnessIsNeverCountedAsASyncStandby) {
  SyncInput in;
  in.self = "p";
  in.mode = SyncMode::kQuorum;
  in.count = 1;
  in.primary_flush_lsn = 1000;
  SyncStandby w{"w", true, 1000, true};
  w.witness = true;
  in.standbys = {w, {"r1", true, 1000, true}};
  for (int i = 0; i < 10; ++i) {
    SyncStep s = PlanSync(in);
    if (s.kind == SyncStep::Kind::kNone) break;
    if (s.kind == SyncStep::Kind::kWriteRecord) in.record = s.record;
    if (s.kind == SyncStep::Kind::kSetPg) in.pg = s.pg;
  }
  ASSERT_TRUE(in.record);
  EXPECT_EQ(in.record->members, (Names{"r1"}));
  EXPECT_EQ(in.pg, (PgSyncSet{{"r1"}, 1}));
}

TEST(WitnessPlanSync, WithOnlyAWitnessStreamingQuorumModeRunsAlone) {
  SyncInput in;
  in.self = "p";
  in.mode = SyncMode::kQuorum;
  in.count = 1;
  in.primary_flush_lsn = 1000;
  in.record = SyncRecord{"p", SyncMode::kQuorum, {"w"}, 1};
  in.pg = PgSyncSet{{"w"}, 1};
  SyncStandby w{"w", true, 1000, true};
  w.witness = true;
  in.standbys = {w};
  // The record's claim goes first (quorum lowered), then PostgreSQL stops
  // waiting for the witness.
  SyncStep s = PlanSync(in);
  ASSERT_EQ(s.kind, SyncStep::Kind::kWriteRecord) << s.reason;
  EXPECT_EQ(s.record.quorum, 0);
  in.record = s.record;
  s = PlanSync(in);
  ASSERT_EQ(s.kind, SyncStep::Kind::kSetPg) << s.reason;
  EXPECT_EQ(s.pg, PgSyncSet{});
}

TEST(WitnessRoute, AWitnessIsNeverARouteTarget) {
  Observation obs = WitnessSelf();
  obs.leader = Key("n1", 9);
  MemberState p = Member("n1", Role::kPrimary, 2, 0x3000000);
  obs.members.push_back(p);
  MemberState r = Member("n2", Role::kReplica, 2, 0x3000000);
  r.following = "n1";
  r.streaming = true;
  obs.members.push_back(r);
  const std::map<std::string, Endpoint> addrs = {
      {"n1", {"10.0.0.1", 5432}}, {"n2", {"10.0.0.2", 5432}}, {"w", {"10.0.0.3", 5432}}};
  Route route = ComputeRoute(obs, Decide(obs, kCfg), addrs, RouteConfig{});
  ASSERT_TRUE(route.read_write) << route.reason;
  EXPECT_EQ(route.read_write->member, "n1");
  for (const RouteTarget& t : route.read_only) EXPECT_NE(t.member, "w");
}

}  // namespace
}  // namespace tandem::core
