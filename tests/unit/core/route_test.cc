// The routing decision (core/route.h): safety rule 5 and the read-only policy.
#include "core/route.h"

#include <gtest/gtest.h>

#include "unit/core/observation_builder.h"

namespace tandem::core {
namespace {
using testing::Key;
using testing::kLease;
using testing::kNow;
using testing::Member;

const std::map<std::string, Endpoint> kAddresses = {
    {"n1", {"10.0.0.1", 5432}}, {"n2", {"10.0.0.2", 5432}}, {"n3", {"10.0.0.3", 5432}}};

MemberState Streaming(std::string name, std::string from, uint32_t timeline, uint64_t lsn) {
  MemberState m = Member(std::move(name), Role::kReplica, timeline, lsn);
  m.following = std::move(from);
  m.streaming = true;
  return m;
}

// Seen from n1 (a replica): n2 holds the key and is primary at 0/5000000 on
// timeline 2; n1 and n3 stream from it, fully caught up.
Observation ClusterSeenFromAReplica() {
  Observation obs = testing::Replica();
  obs.members.clear();
  obs.members.push_back(Streaming("n1", "n2", 2, 0x5000000));
  obs.members.push_back(Member("n2", Role::kPrimary, 2, 0x5000000));
  obs.members.push_back(Streaming("n3", "n2", 2, 0x5000000));
  obs.leader = Key("n2", 77);
  return obs;
}

Route Compute(const Observation& obs, const RouteConfig& cfg = {}) {
  return ComputeRoute(obs, Decision{}, kAddresses, cfg);
}

std::vector<std::string> ReadMembers(const Route& r) {
  std::vector<std::string> out;
  for (const auto& t : r.read_only) out.push_back(t.member);
  return out;
}

TEST(RouteTest, Rule5_WritesGoOnlyToTheKeyHolderThatReportsPrimary) {
  Route r = Compute(ClusterSeenFromAReplica());
  ASSERT_TRUE(r.read_write.has_value()) << r.reason;
  EXPECT_EQ(r.read_write->member, "n2");
  EXPECT_EQ(r.read_write->endpoint.ToString(), "10.0.0.2:5432");
  EXPECT_NE(r.reason.find("writes to n2"), std::string::npos) << r.reason;
}

TEST(RouteTest, Rule5_WritesGoNowhereWithoutALeader) {
  Observation obs = ClusterSeenFromAReplica();
  obs.leader.reset();
  Route r = Compute(obs);
  EXPECT_FALSE(r.read_write.has_value());
  EXPECT_TRUE(r.read_only.empty());
  EXPECT_NE(r.reason.find("no leader key"), std::string::npos) << r.reason;
}

TEST(RouteTest, Rule5_WritesGoNowhereWhenTheStoreCannotBeRead) {
  Observation obs = ClusterSeenFromAReplica();
  obs.store_ok = false;
  Route r = Compute(obs);
  EXPECT_FALSE(r.read_write.has_value());
  EXPECT_TRUE(r.read_only.empty());
  EXPECT_NE(r.reason.find("fail closed"), std::string::npos) << r.reason;
}

TEST(RouteTest, Rule5_WritesGoNowhereWhenTheKeyHolderIsNotPrimary) {
  Observation obs = ClusterSeenFromAReplica();
  obs.members[1].role = Role::kReplica;  // n2 holds the key but is still a standby
  EXPECT_FALSE(Compute(obs).read_write.has_value());
  obs.members[1].role = Role::kStopped;
  EXPECT_FALSE(Compute(obs).read_write.has_value());
  obs.members.erase(obs.members.begin() + 1);  // n2 published nothing
  EXPECT_FALSE(Compute(obs).read_write.has_value());
}

TEST(RouteTest, Rule5_WritesNeverGoToAPrimaryThatDoesNotHoldTheKey) {
  Observation obs = ClusterSeenFromAReplica();
  obs.members[2].role = Role::kPrimary;  // n3 claims to be primary; n2 holds the key
  Route r = Compute(obs);
  ASSERT_TRUE(r.read_write.has_value());
  EXPECT_EQ(r.read_write->member, "n2");
}

TEST(RouteTest, Rule5_WritesGoNowhereWhenTheLeaderHasNoAddress) {
  Observation obs = ClusterSeenFromAReplica();
  std::map<std::string, Endpoint> addresses = kAddresses;
  addresses.erase("n2");
  EXPECT_FALSE(ComputeRoute(obs, Decision{}, addresses, RouteConfig{}).read_write.has_value());
}

TEST(RouteTest, Rule5_WritesGoToThisNodeOnlyWhileItsLeaseIsValid) {
  Observation obs = testing::Leader();  // n1 holds the key on its lease, running primary
  Route r = Compute(obs);
  ASSERT_TRUE(r.read_write.has_value()) << r.reason;
  EXPECT_EQ(r.read_write->member, "n1");
  EXPECT_LE(r.valid_until, obs.lease_deadline);

  Observation expired = obs;
  expired.lease_deadline = kNow;  // the local deadline has come
  EXPECT_FALSE(Compute(expired).read_write.has_value());

  Observation no_lease = obs;
  no_lease.lease = 0;
  EXPECT_FALSE(Compute(no_lease).read_write.has_value());

  Observation old_lease = obs;
  old_lease.leader = Key("n1", kLease + 1);  // the key is on a lease from before a restart
  EXPECT_FALSE(Compute(old_lease).read_write.has_value());

  Observation standby = obs;
  standby.pg.in_recovery = true;  // our PostgreSQL is not writable (yet)
  EXPECT_FALSE(Compute(standby).read_write.has_value());
}

TEST(RouteTest, Rule5_WritesStopGoingToThisNodeBeforeItGivesUpThePrimaryRole) {
  Observation obs = testing::Leader();
  for (ActionType t : {ActionType::kDemote, ActionType::kStepDown, ActionType::kReleaseLeader}) {
    Decision d;
    d.actions.push_back(Action{t, ""});
    Route r = ComputeRoute(obs, d, kAddresses, RouteConfig{});
    EXPECT_FALSE(r.read_write.has_value()) << ActionName(t);
  }
}

TEST(RouteTest, AnUnreadableStoreKeepsTheLastRouteUntilItExpires) {
  Observation obs = ClusterSeenFromAReplica();
  const Route last = Compute(obs);
  ASSERT_TRUE(last.read_write.has_value());
  Observation blind = obs;
  blind.store_ok = false;
  blind.now = obs.now + 500;
  Route r = RouteForCycle(last, blind, Decision{}, kAddresses, RouteConfig{});
  ASSERT_TRUE(r.read_write.has_value()) << r.reason;
  EXPECT_EQ(r.read_write->member, "n2");
  EXPECT_EQ(r.valid_until, last.valid_until) << "kept, not extended";
  EXPECT_NE(r.reason.find("keeping the last route"), std::string::npos) << r.reason;
  blind.now = last.valid_until;
  EXPECT_FALSE(RouteForCycle(last, blind, Decision{}, kAddresses, RouteConfig{}).read_write);
}

TEST(RouteTest, Rule5_AnUnreadableStoreNeverKeepsARouteToThisNodePastItsLease) {
  Observation obs = testing::Leader();
  const Route last = Compute(obs);
  ASSERT_TRUE(last.read_write.has_value());
  EXPECT_LE(last.valid_until, obs.lease_deadline);
  Observation blind = obs;
  blind.store_ok = false;
  blind.now = obs.lease_deadline;
  EXPECT_FALSE(RouteForCycle(last, blind, Decision{}, kAddresses, RouteConfig{}).read_write);
  // Giving up the role takes the route away at once, store or not.
  blind.now = obs.now + 1;
  Decision demote;
  demote.actions.push_back(Action{ActionType::kDemote, ""});
  EXPECT_FALSE(RouteForCycle(last, blind, demote, kAddresses, RouteConfig{}).read_write);
}

TEST(RouteTest, RouteExpiresAfterItsValidity) {
  RouteConfig cfg;
  cfg.validity_ms = 1234;
  Route r = Compute(ClusterSeenFromAReplica(), cfg);
  EXPECT_EQ(r.valid_until, kNow + 1234);
}

TEST(RouteTest, ReadsGoToStreamingReplicas) {
  Route r = Compute(ClusterSeenFromAReplica());
  EXPECT_EQ(ReadMembers(r), (std::vector<std::string>{"n1", "n3"}));
}

TEST(RouteTest, ReadsSkipLaggingReplicas) {
  Observation obs = ClusterSeenFromAReplica();
  RouteConfig cfg;
  cfg.read_only_max_lag_bytes = 1024;
  obs.members[0].lsn = 0x5000000 - 1024;  // n1 exactly at the limit: qualifies
  obs.members[2].lsn = 0x5000000 - 1025;  // n3 past it
  EXPECT_EQ(ReadMembers(Compute(obs, cfg)), (std::vector<std::string>{"n1"}));
}

TEST(RouteTest, ReadsSkipReplicasThatDoNotStreamFromThePrimary) {
  Observation obs = ClusterSeenFromAReplica();
  obs.members[0].streaming = false;  // n1: WAL receiver down
  obs.members[2].following = "n1";   // n3: cascading from someone else
  Route r = Compute(obs);
  EXPECT_EQ(ReadMembers(r), (std::vector<std::string>{"n2"})) << "fell back to the primary";
  obs = ClusterSeenFromAReplica();
  obs.members[0].timeline = 1;  // n1 still on the old timeline
  EXPECT_EQ(ReadMembers(Compute(obs)), (std::vector<std::string>{"n3"}));
}

TEST(RouteTest, ReadsFallBackToThePrimaryWhenNoReplicaQualifies) {
  Observation obs = ClusterSeenFromAReplica();
  obs.members[0].streaming = false;
  obs.members[2].streaming = false;
  Route r = Compute(obs);
  ASSERT_EQ(r.read_only.size(), 1u);
  EXPECT_EQ(r.read_only[0].member, "n2");
  EXPECT_NE(r.reason.find("reads to the primary"), std::string::npos) << r.reason;
}

TEST(RouteTest, ReadsGoNowhereWithoutAQualifyingReplicaWhenFallbackIsOff) {
  Observation obs = ClusterSeenFromAReplica();
  obs.members[0].streaming = false;
  obs.members[2].streaming = false;
  RouteConfig cfg;
  cfg.read_only_fallback_to_primary = false;
  Route r = Compute(obs, cfg);
  EXPECT_TRUE(r.read_only.empty());
  EXPECT_TRUE(r.read_write.has_value());
}

TEST(RouteTest, EndpointsPrintIpv6InBrackets) {
  EXPECT_EQ((Endpoint{"::1", 5432}).ToString(), "[::1]:5432");
  EXPECT_EQ((Endpoint{"127.0.0.1", 15410}).ToString(), "127.0.0.1:15410");
}

}  // namespace
}  // namespace tandem::core
