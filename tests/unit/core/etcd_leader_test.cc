// The etcd leadership handoff (core/etcd_leader.h): the primary does not
// lead etcd, so a crash of its node costs no etcd election.
#include "core/etcd_leader.h"

#include <gtest/gtest.h>

namespace tandem::core {
namespace {

// n1 is the primary and its member (id 1) leads etcd; n2 and n3 are replicas
// with members 2 and 3.
EtcdLeadership PrimaryLeadingEtcd() {
  EtcdLeadership in;
  in.self = "n1";
  in.embedded = true;
  in.primary = true;
  in.self_member_id = 1;
  in.leader_member_id = 1;
  in.peers = {{"n1", 1, Role::kPrimary}, {"n2", 2, Role::kReplica}, {"n3", 3, Role::kReplica}};
  return in;
}

std::vector<std::string> Names(const EtcdLeaderHandoff& h) {
  std::vector<std::string> out;
  for (const auto& t : h.targets) out.push_back(t.name);
  return out;
}

TEST(HandOffEtcdLeadership, ThePrimaryLeadingEtcdHandsItToAReplicaMember) {
  auto h = HandOffEtcdLeadership(PrimaryLeadingEtcd());
  EXPECT_EQ(Names(h), (std::vector<std::string>{"n2", "n3"}));
  EXPECT_EQ(h.targets.front().member_id, 2u);
  EXPECT_NE(h.reason.find("n2"), std::string::npos) << h.reason;
}

TEST(HandOffEtcdLeadership, CandidatesAreTriedInNameOrder) {
  auto in = PrimaryLeadingEtcd();
  in.peers = {{"n3", 3, Role::kReplica}, {"n1", 1, Role::kPrimary}, {"n2", 2, Role::kReplica}};
  EXPECT_EQ(Names(HandOffEtcdLeadership(in)), (std::vector<std::string>{"n2", "n3"}));
}

TEST(HandOffEtcdLeadership, AnExternalEtcdIsLeftAlone) {
  auto in = PrimaryLeadingEtcd();
  in.embedded = false;
  EXPECT_TRUE(HandOffEtcdLeadership(in).targets.empty());
}

TEST(HandOffEtcdLeadership, OnlyThePrimaryHandsItAway) {
  auto in = PrimaryLeadingEtcd();
  in.primary = false;
  EXPECT_TRUE(HandOffEtcdLeadership(in).targets.empty());
}

TEST(HandOffEtcdLeadership, APrimaryWhoseMemberDoesNotLeadKeepsThingsAsTheyAre) {
  auto in = PrimaryLeadingEtcd();
  in.leader_member_id = 2;
  EXPECT_TRUE(HandOffEtcdLeadership(in).targets.empty());
  in.leader_member_id = 0;  // no leader known
  EXPECT_TRUE(HandOffEtcdLeadership(in).targets.empty());
  in.self_member_id = 0;  // unknown member id
  EXPECT_TRUE(HandOffEtcdLeadership(in).targets.empty());
}

TEST(HandOffEtcdLeadership, NeverToANodeWithoutAnEtcdMember) {
  auto in = PrimaryLeadingEtcd();
  in.peers[1].member_id = 0;  // n2 is an etcd client only
  EXPECT_EQ(Names(HandOffEtcdLeadership(in)), (std::vector<std::string>{"n3"}));
}

TEST(HandOffEtcdLeadership, OnlyToAReplicaThatPublishesItsState) {
  auto in = PrimaryLeadingEtcd();
  in.peers[1].role = Role::kStopped;
  in.peers[2].role = Role::kUnknown;  // published nothing: may be down
  auto h = HandOffEtcdLeadership(in);
  EXPECT_TRUE(h.targets.empty());
  EXPECT_NE(h.reason.find("no replica"), std::string::npos) << h.reason;
}

TEST(HandOffEtcdLeadership, NeverToItself) {
  auto in = PrimaryLeadingEtcd();
  in.peers = {{"n1", 1, Role::kReplica}, {"n2", 1, Role::kReplica}};  // self, and its member id
  EXPECT_TRUE(HandOffEtcdLeadership(in).targets.empty());
}

}  // namespace
}  // namespace tandem::core
