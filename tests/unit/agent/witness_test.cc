// The agent's witness pieces: WitnessGatedPostgres (on a witness no call
// reaches PostgreSQL; otherwise every call does), the join refusal (an even
// voter count), the removal that needs --force, and the registration's flag.
#include "agent/witness.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>

#include "agent/cluster_view.h"
#include "agent/witness_postgres.h"
#include "unit/agent/fake_postgres.h"

namespace tandem::agent {
namespace {

#define EXPECT_HAS(haystack, needle) EXPECT_PRED_FORMAT2(::testing::IsSubstring, needle, haystack)

struct Gated {
  ManualClock clock;
  std::atomic<bool> witness{false};
  agenttest::FakePostgres* fake = nullptr;
  std::unique_ptr<pg::Controller> pg;  // used as the agent does, through the interface
  Gated() {
    pg::Settings s;
    s.port = 5001;
    auto f = std::make_unique<agenttest::FakePostgres>(clock, pg::Paths{"", "/a", "", "", ""}, s);
    fake = f.get();
    fake->InitDataDir(1, 0x3000000, /*standby=*/false);
    pg = std::make_unique<WitnessGatedPostgres>(std::move(f), witness);
  }
};

TEST(WitnessGatedPostgres, OnAWitnessNoCallReachesPostgres) {
  Gated g;
  ASSERT_TRUE(g.pg->Start().ok());  // a database that runs on the machine
  ASSERT_TRUE(g.fake->running());
  g.witness = true;
  g.fake->ClearCalls();
  EXPECT_FALSE(g.pg->IsRunning());
  EXPECT_EQ(g.pg->Pid(), 0);
  EXPECT_EQ(g.pg->InspectDataDir(), pg::DataDirState::kMissing);
  EXPECT_FALSE(g.pg->ReadControlData().ok());
  EXPECT_FALSE(g.pg->Query().ok());
  EXPECT_FALSE(g.pg->Sql("SELECT 1").ok());
  EXPECT_TRUE(g.pg->Stop(pg::StopMode::kImmediate).ok());  // nothing to stop
  EXPECT_TRUE(g.pg->Reload().ok());
  EXPECT_FALSE(g.pg->Promote().ok());
  EXPECT_FALSE(g.pg->WriteConfig(std::nullopt).ok());
  EXPECT_FALSE(g.pg->WriteHba({}).ok());
  EXPECT_FALSE(g.pg->Start().ok());
  EXPECT_FALSE(g.pg->InitDb("x").ok());
  EXPECT_FALSE(g.pg->SyncSlots({}).ok());
  const auto refused = g.pg->Promote();
  EXPECT_HAS(refused.error().message(), "witness");
  EXPECT_EQ(g.fake->CallCount(), 0u);
  EXPECT_TRUE(g.fake->running()) << "the local database was stopped";
}

TEST(WitnessGatedPostgres, OnADataNodeEveryCallGoesThrough) {
  Gated g;
  EXPECT_EQ(g.pg->InspectDataDir(), pg::DataDirState::kValid);
  ASSERT_TRUE(g.pg->Start().ok());
  EXPECT_TRUE(g.pg->IsRunning());
  ASSERT_TRUE(g.pg->Stop(pg::StopMode::kFast).ok());
  EXPECT_FALSE(g.fake->running());
  EXPECT_GE(g.fake->IndexOf("Stop(fast)"), 0);
}

TEST(WitnessJoin, AWitnessMakingTheVoterCountEvenIsRefusedNamingTheFix) {
  EXPECT_EQ(WitnessJoinRefusal(2, {}, false), "");  // two data nodes: the third vote
  EXPECT_EQ(WitnessJoinRefusal(4, {}, false), "");
  const std::string second = WitnessJoinRefusal(3, {"w"}, false);
  EXPECT_HAS(second, "already has 3 voting members (witness w)");
  EXPECT_HAS(second, "would make 4");
  EXPECT_HAS(second, "nothing was changed");
  EXPECT_HAS(second, "`tandem cluster remove w`");
  const std::string alone = WitnessJoinRefusal(1, {}, false);
  EXPECT_HAS(alone, "Join a second data node first");
  EXPECT_HAS(WitnessJoinRefusal(3, {}, false), "needs none");
  EXPECT_HAS(WitnessJoinRefusal(2, {}, true), "external etcd");
}

ClusterView TwoDataNodesAndAWitness() {
  ClusterView v;
  for (const char* n : {"n1", "n2", "w"}) {
    NodeInfo info;
    info.name = n;
    info.etcd_member_id = 7;
    info.witness = std::string(n) == "w";
    v.nodes[n] = info;
  }
  return v;
}

TEST(WitnessRemove, TheWitnessOfTwoDataNodesNeedsForce) {
  ClusterView v = TwoDataNodesAndAWitness();
  EXPECT_EQ(VotingMembers(v), 3);
  EXPECT_EQ(Witnesses(v), std::vector<std::string>{"w"});
  EXPECT_HAS(WitnessRemovalRefusal(v, "w", false), "--force");
  EXPECT_EQ(WitnessRemovalRefusal(v, "w", true), "");
  EXPECT_EQ(WitnessRemovalRefusal(v, "n2", false), "");  // a data node: the usual rules
  NodeInfo n3;
  n3.name = "n3";
  v.nodes["n3"] = n3;
  EXPECT_EQ(WitnessRemovalRefusal(v, "w", false), "");  // three data nodes
}

TEST(WitnessRegistration, TheFlagRoundTripsAndADataNodeReadsAsBefore) {
  NodeInfo w;
  w.name = "w";
  w.host = "10.0.0.3";
  w.witness = true;
  auto back = DecodeNodeInfo(EncodeNodeInfo(w));
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->witness);
  NodeInfo d = w;
  d.witness = false;
  EXPECT_EQ(EncodeNodeInfo(d).find("witness"), std::string::npos);
  core::MemberState m;
  m.name = "w";
  m.role = core::Role::kWitness;
  auto ms = DecodeMemberState(EncodeMemberState(m));
  ASSERT_TRUE(ms.ok());
  EXPECT_EQ(ms->role, core::Role::kWitness);
}

}  // namespace
}  // namespace tandem::agent
