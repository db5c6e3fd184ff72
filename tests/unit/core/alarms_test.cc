// The alarm rules (core/alarms.h): each test names the rule it protects; the
// catalogue's own invariants (unique ids and names, a cause and a fix each).
#include "core/alarms.h"

#include <gtest/gtest.h>

#include <set>

namespace tandem::core {
namespace {

MemberState Live(const std::string& name, Role role, uint64_t lsn,
                 const std::string& following = "", bool streaming = false) {
  MemberState m;
  m.name = name;
  m.role = role;
  m.lsn = lsn;
  m.following = following;
  m.streaming = streaming;
  return m;
}

// n1 leads a healthy 3-node cluster with a sync standby; seen from `self`.
AlarmObservation Healthy(const std::string& self) {
  AlarmObservation o;
  o.self = self;
  o.member = true;
  o.leader = LeaderKey{"n1", 5, 9};
  o.members["n1"] = Live("n1", Role::kPrimary, 1000);
  o.members["n2"] = Live("n2", Role::kReplica, 1000, "n1", true);
  o.members["n3"] = Live("n3", Role::kReplica, 1000, "n1", true);
  o.nodes = {{"n1", true}, {"n2", true}, {"n3", true}};
  o.sync = SyncRecord{"n1", SyncMode::kQuorum, {"n1", "n2", "n3"}, 2};
  o.pg.running = true;
  o.pg.in_recovery = self != "n1";
  o.pg.following = self != "n1" ? "n1" : "";
  o.streaming = self != "n1";
  return o;
}

std::set<std::string> Keys(const std::vector<AlarmCondition>& v) {
  std::set<std::string> out;
  for (const auto& c : v) out.insert(AlarmKey(c.id, c.node));
  return out;
}

TEST(AlarmCatalogue, IdsAndNamesAreUniqueAndEveryAlarmHasACauseAndAFix) {
  std::set<int> ids;
  std::set<std::string> names;
  for (const auto& d : AlarmCatalogue()) {
    EXPECT_TRUE(ids.insert(static_cast<int>(d.id)).second) << d.name;
    EXPECT_TRUE(names.insert(d.name).second) << d.name;
    EXPECT_NE(std::string(d.cause), "") << d.name;
    EXPECT_NE(std::string(d.fix), "") << d.name;
    EXPECT_EQ(FindAlarm(static_cast<int>(d.id)), &d);
  }
  EXPECT_GE(AlarmCatalogue().size(), 10u);
  EXPECT_EQ(FindAlarm(42), nullptr);
}

TEST(AlarmRules, AHealthyClusterHasNoAlarmOnAnyNode) {
  for (const char* n : {"n1", "n2", "n3"}) EXPECT_TRUE(EvaluateAlarms(Healthy(n)).empty()) << n;
}

TEST(AlarmRules, ANodeOutsideAClusterHasNoAlarms) {
  AlarmObservation o = Healthy("n2");
  o.member = false;
  o.pg.running = false;
  EXPECT_TRUE(EvaluateAlarms(o).empty());
}

TEST(AlarmSteward, TheLiveLeaderElseTheFirstLiveMemberByName) {
  AlarmObservation o = Healthy("n2");
  EXPECT_EQ(AlarmSteward(o.leader, o.members), "n1");
  o.members.erase("n1");  // the holder's state is gone: it is not live
  EXPECT_EQ(AlarmSteward(o.leader, o.members), "n2");
  o.leader.reset();
  EXPECT_EQ(AlarmSteward(o.leader, o.members), "n2");
  o.members.clear();
  EXPECT_EQ(AlarmSteward(o.leader, o.members), "");
}

TEST(AlarmRules, AMemberWithNoLiveStateIsACommunicationFailureRaisedByTheStewardOnly) {
  AlarmObservation leader = Healthy("n1");
  leader.members.erase("n3");
  EXPECT_EQ(Keys(EvaluateAlarms(leader)), (std::set<std::string>{"1001/n3", "1009/cluster"}));
  AlarmObservation other = Healthy("n2");
  other.members.erase("n3");
  EXPECT_TRUE(EvaluateAlarms(other).empty()) << "only the steward raises cluster alarms";
}

TEST(AlarmRules, AReplicaNotStreamingFromTheLivePrimaryHasAReplicationFailure) {
  AlarmObservation o = Healthy("n2");
  o.streaming = false;
  auto a = EvaluateAlarms(o);
  ASSERT_EQ(Keys(a), (std::set<std::string>{"1002/n2"}));
  EXPECT_NE(a[0].detail.find("not streaming from n1"), std::string::npos) << a[0].detail;
  o = Healthy("n2");
  o.pg.running = false;
  EXPECT_EQ(Keys(EvaluateAlarms(o)), (std::set<std::string>{"1002/n2"}));
}

TEST(AlarmRules, AReplicaPastTheLagLimitHasAReplicationFailure) {
  AlarmObservation o = Healthy("n2");
  o.max_lag_bytes = 100;
  o.members["n1"].lsn = 1101;
  EXPECT_EQ(Keys(EvaluateAlarms(o)), (std::set<std::string>{"1002/n2"}));
  o.members["n1"].lsn = 1100;  // at the limit: fine
  EXPECT_TRUE(EvaluateAlarms(o).empty());
}

TEST(AlarmRules, NoReplicationFailureWithoutALivePrimaryToStreamFrom) {
  AlarmObservation o = Healthy("n2");
  o.streaming = false;
  o.members["n1"].role = Role::kStopped;
  EXPECT_EQ(Keys(EvaluateAlarms(o)).count("1002/n2"), 0u);
}

TEST(AlarmRules, TheErrorStateNeedsAManualResync) {
  AlarmObservation o = Healthy("n3");
  o.error_state = true;
  o.error_text = "join failed";
  auto a = EvaluateAlarms(o);
  ASSERT_EQ(Keys(a), (std::set<std::string>{"1003/n3"}));
  EXPECT_EQ(a[0].detail, "join failed");
}

TEST(AlarmRules, PendingParametersOrAnAgentRestartNeedRaiseRestartRequired) {
  AlarmObservation o = Healthy("n2");
  o.pending_restart = {"shared_buffers", "max_connections"};
  auto a = EvaluateAlarms(o);
  ASSERT_EQ(Keys(a), (std::set<std::string>{"1004/n2"}));
  EXPECT_NE(a[0].detail.find("shared_buffers, max_connections"), std::string::npos);
  o.pending_restart.clear();
  o.restart_required = "tls.mode changed";
  EXPECT_EQ(Keys(EvaluateAlarms(o)), (std::set<std::string>{"1004/n2"}));
}

TEST(AlarmRules, CertificatesExpiringAndInvalidAreTwoAlarms) {
  AlarmObservation o = Healthy("n2");
  o.certificates = {{"server", "/s.crt", false, true, 12, "Expiring in 12 days"},
                    {"client", "/c.crt", true, false, 0, "Invalid (expired)"},
                    {"ca", "/ca.crt", false, false, 900, "Valid"}};
  auto a = EvaluateAlarms(o);
  ASSERT_EQ(Keys(a), (std::set<std::string>{"1005/n2", "1006/n2"}));
  EXPECT_NE(a[0].detail.find("/s.crt"), std::string::npos);
  EXPECT_NE(a[1].detail.find("/c.crt"), std::string::npos);
}

TEST(AlarmRules, SyncModeWithAStandbyToWaitForButNoneCountedIsNoSyncStandby) {
  AlarmObservation o = Healthy("n1");
  o.sync = SyncRecord{"n1", SyncMode::kQuorum, {"n1"}, 1};
  EXPECT_EQ(Keys(EvaluateAlarms(o)), (std::set<std::string>{"1007/cluster"}));
  o.sync.reset();
  EXPECT_EQ(Keys(EvaluateAlarms(o)), (std::set<std::string>{"1007/cluster"}));
  o.sync_mode = SyncMode::kOff;
  EXPECT_TRUE(EvaluateAlarms(o).empty()) << "asynchronous by choice";
}

TEST(AlarmRules, ASingleNodeClusterHasNoSyncStandbyToMiss) {
  AlarmObservation o = Healthy("n1");
  o.members = {{"n1", o.members["n1"]}};
  o.nodes = {{"n1", true}};
  o.sync.reset();
  EXPECT_TRUE(EvaluateAlarms(o).empty());
}

TEST(AlarmRules, NoLeaderAndNoSafeCandidateIsADataLossFailoverPending) {
  AlarmObservation o = Healthy("n2");
  o.leader.reset();
  o.members.erase("n1");
  o.nodes = {{"n2", true}, {"n3", true}};  // n1 removed: keeps the other rules out of it
  o.failover_needs_decision = true;
  o.decide_reason = "no leader and no automatic failover: ...";
  auto a = EvaluateAlarms(o);
  ASSERT_EQ(Keys(a), (std::set<std::string>{"1008/cluster"}));
  EXPECT_EQ(a[0].detail, o.decide_reason);
  o.self = "n3";  // n2 is the steward
  EXPECT_TRUE(EvaluateAlarms(o).empty());
}

TEST(AlarmRules, ABareMajorityOfStoreVotersIsQuorumAtRisk) {
  AlarmObservation o = Healthy("n1");
  o.members.erase("n3");
  o.nodes = {{"n1", true}, {"n2", true}, {"n3", false}};  // n3 does not vote
  EXPECT_EQ(Keys(EvaluateAlarms(o)), (std::set<std::string>{"1001/n3"}));
  o.nodes = {{"n1", true}, {"n2", true}, {"n3", true}};
  auto a = EvaluateAlarms(o);
  EXPECT_EQ(Keys(a), (std::set<std::string>{"1001/n3", "1009/cluster"}));
  EXPECT_NE(a.back().detail.find("2 of 3"), std::string::npos) << a.back().detail;
  o.embedded_store = false;  // an external etcd: its quorum is not ours to see
  EXPECT_EQ(Keys(EvaluateAlarms(o)), (std::set<std::string>{"1001/n3"}));
}

TEST(AlarmRules, FourOfFiveVotersStillTolerateAFailure) {
  AlarmObservation o = Healthy("n1");
  o.nodes = {{"n1", true}, {"n2", true}, {"n3", true}, {"n4", true}, {"n5", true}};
  o.members["n4"] = Live("n4", Role::kReplica, 1000, "n1", true);
  EXPECT_EQ(Keys(EvaluateAlarms(o)), (std::set<std::string>{"1001/n5"}));
  o.members.erase("n4");
  EXPECT_EQ(Keys(EvaluateAlarms(o)).count("1009/cluster"), 1u);
}

TEST(AlarmRules, StrictModeWithOnlyTheStandbysItWaitsForIsQuorumAtRisk) {
  AlarmObservation o = Healthy("n1");
  o.sync_mode = SyncMode::kStrict;
  o.sync = SyncRecord{"n1", SyncMode::kStrict, {"n1", "n2", "n3"}, 1};
  EXPECT_TRUE(EvaluateAlarms(o).empty());
  o.members["n3"].streaming = false;
  EXPECT_EQ(Keys(EvaluateAlarms(o)), (std::set<std::string>{"1009/cluster"}));
}

TEST(AlarmRules, AnEmbeddedEtcdMemberNotRunningIsStoreMemberUnhealthy) {
  AlarmObservation o = Healthy("n2");
  o.store_member_running = false;
  EXPECT_EQ(Keys(EvaluateAlarms(o)), (std::set<std::string>{"1010/n2"}));
  o.embedded_store = false;
  EXPECT_TRUE(EvaluateAlarms(o).empty());
}

TEST(AlarmRules, DiskSpaceIsLowUnderTenPercentAndUnderOneGiBFree) {
  AlarmObservation o = Healthy("n2");
  o.data_disk = DiskSpace{500ull << 20, 10ull << 30};  // 500 MiB of 10 GiB
  EXPECT_EQ(Keys(EvaluateAlarms(o)), (std::set<std::string>{"1011/n2"}));
  o.data_disk = DiskSpace{500ull << 20, 2ull << 30};  // 25 % free of a small disk
  EXPECT_TRUE(EvaluateAlarms(o).empty());
  o.data_disk = DiskSpace{5ull << 30, 100ull << 30};  // 5 % but 5 GiB free
  EXPECT_TRUE(EvaluateAlarms(o).empty());
}

TEST(AlarmRules, PostgresThatCannotStartIsAnAlarm) {
  AlarmObservation o = Healthy("n1");
  o.postgres_error = "bad parameter";
  EXPECT_EQ(Keys(EvaluateAlarms(o)), (std::set<std::string>{"1012/n1"}));
}

TEST(AlarmHoldDown, AConditionCountsOnlyAfterItsRaiseDelayAndIsForgottenWhenItGoes) {
  std::map<std::string, MonoMs> seen;
  const std::vector<AlarmCondition> repl = {{AlarmId::kReplicationFailure, "n2", "x"}};
  const std::vector<AlarmCondition> cert = {{AlarmId::kCertificateInvalid, "n2", "y"}};
  EXPECT_TRUE(AlarmsHeldLongEnough(repl, 1'000, &seen).empty());
  EXPECT_TRUE(AlarmsHeldLongEnough(repl, 10'999, &seen).empty());
  EXPECT_EQ(AlarmsHeldLongEnough(repl, 11'000, &seen).size(), 1u);
  EXPECT_TRUE(AlarmsHeldLongEnough({}, 11'250, &seen).empty());
  EXPECT_TRUE(seen.empty());
  EXPECT_TRUE(AlarmsHeldLongEnough(repl, 11'500, &seen).empty()) << "the delay starts again";
  EXPECT_EQ(AlarmsHeldLongEnough(cert, 11'500, &seen).size(), 1u) << "no delay for certificates";
}

}  // namespace
}  // namespace tandem::core
