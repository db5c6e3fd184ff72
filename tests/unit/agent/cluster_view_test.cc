// Parsing one snapshot of the store: garbage is skipped, never trusted.
#include "agent/cluster_view.h"

#include <gtest/gtest.h>

namespace tandem::agent {
namespace {

dcs::KeyValue KV(const std::string& key, const std::string& value, int64_t rev = 5,
                 int64_t lease = 0) {
  return dcs::KeyValue{key, value, rev, rev, lease};
}

TEST(ClusterView, ParsesEveryKind) {
  Keys k("c1");
  core::MemberState m;
  m.name = "n2";
  m.role = core::Role::kReplica;
  m.timeline = 3;
  m.lsn = 0x100000010;
  m.following = "n1";
  m.streaming = true;
  NodeInfo n{"n2", "10.0.0.2", 5432, "http://10.0.0.2:8008", "", "", 77};
  dcs::RangeResult r;
  r.revision = 42;
  r.kvs = {KV(k.initialize(), R"({"system_identifier":"123"})"), KV(k.leader(), "n1", 9, 1234),
           KV(k.member("n2"), EncodeMemberState(m)), KV(k.node("n2"), EncodeNodeInfo(n)),
           KV(k.timeline(), EncodeTimeline(3, "n1"), 11)};
  auto v = ParseClusterView(k, r);
  EXPECT_EQ(v.revision, 42);
  EXPECT_TRUE(v.initialized);
  EXPECT_EQ(v.system_identifier, "123");
  ASSERT_TRUE(v.leader.has_value());
  EXPECT_EQ(v.leader->holder, "n1");
  EXPECT_EQ(v.leader->mod_revision, 9);
  EXPECT_EQ(v.leader->lease, 1234);
  ASSERT_EQ(v.members.count("n2"), 1u);
  EXPECT_EQ(v.members["n2"].lsn, 0x100000010u);
  EXPECT_EQ(v.members["n2"].role, core::Role::kReplica);
  EXPECT_TRUE(v.members["n2"].streaming);
  ASSERT_EQ(v.nodes.count("n2"), 1u);
  EXPECT_EQ(v.nodes["n2"].etcd_member_id, 77u);
  EXPECT_EQ(v.timeline.timeline, 3u);
  EXPECT_EQ(v.timeline.member, "n1");
  EXPECT_EQ(v.timeline.mod_revision, 11);
}

TEST(ClusterView, GarbageMemberEntriesAreSkipped) {
  Keys k("c1");
  dcs::RangeResult r;
  core::MemberState other;
  other.name = "someone-else";
  r.kvs = {KV(k.member("n2"), "{not json"), KV(k.node("n3"), "[]"),
           KV(k.member("n4"), EncodeMemberState(other))};  // name does not match its key
  auto v = ParseClusterView(k, r);
  EXPECT_TRUE(v.members.empty());
  EXPECT_TRUE(v.nodes.empty());
}

TEST(ClusterView, Rule1_GarbageInTheLeaderKeyCountsAsHeld) {
  Keys k("c1");
  dcs::RangeResult r;
  r.kvs = {KV(k.leader(), "../../etc")};
  auto v = ParseClusterView(k, r);
  ASSERT_TRUE(v.leader.has_value()) << "nobody may promote over an unreadable leader key";
  EXPECT_EQ(v.leader->holder, "<invalid>");
}

TEST(ClusterView, MalformedTimelineRecordKeepsItsRevision) {
  Keys k("c1");
  dcs::RangeResult r;
  r.kvs = {KV(k.timeline(), "banana", 17)};
  auto v = ParseClusterView(k, r);
  EXPECT_EQ(v.timeline.timeline, 0u);
  EXPECT_EQ(v.timeline.mod_revision, 17);
}

TEST(ClusterView, OtherClustersAreInvisible) {
  Keys a("a"), b("b");
  EXPECT_NE(a.leader(), b.leader());
  EXPECT_EQ(a.leader(), "/tandem/a/leader");
}

}  // namespace
}  // namespace tandem::agent
