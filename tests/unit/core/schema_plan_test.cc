// The schema plan and the settle check (core/schema_plan.h): each test names
// the rule: a changed checksum and a missing applied file are refused, a
// failed non-transactional version runs again, --target bounds the plan, a
// replica that is not streaming or in sync keeps the cluster unsettled.
#include "core/schema_plan.h"

#include <gtest/gtest.h>

namespace tandem::core {
namespace {

std::vector<Migration> Dir(int n) {
  std::vector<MigrationFile> files;
  for (int i = 1; i <= n; ++i) {
    files.push_back({"V" + std::to_string(i) + "__m" + std::to_string(i) + ".sql", "SELECT 1;",
                     "sum" + std::to_string(i)});
  }
  auto r = CheckMigrationSet(files);
  EXPECT_TRUE(r.ok());
  return *r;
}

HistoryRow Row(uint64_t v, const std::string& sum, bool success = true) {
  HistoryRow h;
  h.version = v;
  h.description = "m" + std::to_string(v);
  h.sha256 = sum;
  h.success = success;
  return h;
}

bool Has(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

TEST(SchemaPlan, PendingAreTheVersionsNotAppliedInOrder) {
  auto p = PlanSchemaUpgrade(Dir(3), {Row(1, "sum1")}, 0);
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(p->applied, std::vector<uint64_t>{1});
  ASSERT_EQ(p->pending.size(), 2u);
  EXPECT_EQ(p->pending[0].version, 2u);
  EXPECT_EQ(p->pending[1].version, 3u);
}

TEST(SchemaPlan, AnAppliedFileWhoseChecksumChangedIsRefusedNamingIt) {
  auto p = PlanSchemaUpgrade(Dir(2), {Row(1, "other")}, 0);
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(Has(p.error().message(), "V1__m1.sql' changed after it was applied"))
      << p.error().message();
}

TEST(SchemaPlan, AnAppliedVersionMissingFromTheDirectoryIsRefused) {
  auto p = PlanSchemaUpgrade(Dir(2), {Row(1, "sum1"), Row(2, "sum2"), Row(3, "sum3")}, 0);
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(Has(p.error().message(), "version 3 (m3) is applied but the directory has no file"))
      << p.error().message();
}

TEST(SchemaPlan, AFailedNonTransactionalVersionIsPendingAgainAndListedAsFailed) {
  auto p = PlanSchemaUpgrade(Dir(2), {Row(1, "sum1"), Row(2, "old", false)}, 0);
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(p->failed, std::vector<uint64_t>{2});
  ASSERT_EQ(p->pending.size(), 1u);
  EXPECT_EQ(p->pending[0].version, 2u);
}

TEST(SchemaPlan, TargetBoundsThePlan) {
  auto p = PlanSchemaUpgrade(Dir(4), {}, 2);
  ASSERT_TRUE(p.ok()) << p.error().message();
  ASSERT_EQ(p->pending.size(), 2u);
  EXPECT_EQ(p->beyond_target, (std::vector<uint64_t>{3, 4}));
}

TEST(SchemaPlan, ATargetNotInTheDirectoryOrBelowTheAppliedIsRefused) {
  EXPECT_FALSE(PlanSchemaUpgrade(Dir(2), {}, 5).ok());
  auto below = PlanSchemaUpgrade(Dir(3), {Row(1, "sum1"), Row(2, "sum2")}, 1);
  ASSERT_FALSE(below.ok());
  EXPECT_TRUE(Has(below.error().message(), "never undoes")) << below.error().message();
}

TEST(SchemaPlan, TargetParsesWithOrWithoutTheV) {
  EXPECT_EQ(*ParseTargetVersion("7"), 7u);
  EXPECT_EQ(*ParseTargetVersion("V0007"), 7u);
  EXPECT_FALSE(ParseTargetVersion("seven").ok());
  EXPECT_FALSE(ParseTargetVersion("0").ok());
  EXPECT_FALSE(ParseTargetVersion("").ok());
}

MemberState Replica(const std::string& name, bool streaming, const std::string& from,
                    uint64_t lsn = 100) {
  MemberState m;
  m.name = name;
  m.role = Role::kReplica;
  m.streaming = streaming;
  m.following = from;
  m.timeline = 1;
  m.lsn = lsn;
  return m;
}

SettleInput Settled() {
  SettleInput in;
  in.primary = "node1";
  in.primary_timeline = 1;
  in.primary_lsn = 100;
  in.max_lag_bytes = 10;
  in.replicas = {"node2", "node3"};
  in.members = {{"node2", Replica("node2", true, "node1")},
                {"node3", Replica("node3", true, "node1")}};
  return in;
}

TEST(SchemaSettle, EveryReplicaStreamingAndInSyncIsSettled) {
  EXPECT_EQ(SettleProblem(Settled()), "");
}

TEST(SchemaSettle, AReplicaNotStreamingIsNamed) {
  auto in = Settled();
  in.members["node3"] = Replica("node3", false, "node1");
  EXPECT_EQ(SettleProblem(in), "node3 is not streaming from node1");
}

TEST(SchemaSettle, AReplicaTooFarBehindIsNotInSync) {
  auto in = Settled();
  in.members["node2"] = Replica("node2", true, "node1", 50);
  EXPECT_TRUE(Has(SettleProblem(in), "node2 is 50 bytes behind node1")) << SettleProblem(in);
}

TEST(SchemaSettle, AReplicaThatIsDownCountsUnlessTheRunResumes) {
  auto in = Settled();
  in.members.erase("node3");
  EXPECT_TRUE(Has(SettleProblem(in), "node3 is not running")) << SettleProblem(in);
  in.only_live = true;
  EXPECT_EQ(SettleProblem(in), "");
}

TEST(SchemaSettle, PausedOrAnotherOperationIsNotSettled) {
  auto in = Settled();
  in.paused = true;
  EXPECT_TRUE(Has(SettleProblem(in), "paused"));
  in.paused = false;
  in.other_operation = true;
  EXPECT_TRUE(Has(SettleProblem(in), "switchover"));
}

}  // namespace
}  // namespace tandem::core
