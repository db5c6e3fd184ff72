// The fake controller behaves as the whole-agent tests assume: roles,
// timelines, streaming between fakes, clean and crashed stops, recorded calls,
// injected failures and blocked calls.
#include <gtest/gtest.h>

#include <thread>

#include "unit/agent/fake_postgres.h"

namespace tandem::agenttest {
namespace {

struct Pair {
  ManualClock clock;
  FakePostgres a{clock, pg::Paths{"", "/a", "", "", ""}, Settings(5001)};
  FakePostgres b{clock, pg::Paths{"", "/b", "", "", ""}, Settings(5002)};
  Pair() {
    auto all = [this] { return std::vector<FakePostgres*>{&a, &b}; };
    a.SetCluster(all);
    b.SetCluster(all);
    a.InitDataDir(1, 1000, false);
    b.InitDataDir(1, 1000, true);
  }
  static pg::Settings Settings(int port) {
    pg::Settings s;
    s.port = port;
    return s;
  }
  pg::Source SourceA() {
    pg::Source s;
    s.host = "127.0.0.1";
    s.port = 5001;
    s.application_name = "b";
    return s;
  }
};

TEST(AgentFakePostgres, StandbyStreamsFromItsUpstreamAndFollowsAPromotion) {
  Pair p;
  ASSERT_TRUE(p.a.Start(0).ok());
  ASSERT_TRUE(p.b.WriteConfig(p.SourceA()).ok());
  ASSERT_TRUE(p.b.Start(0).ok());
  EXPECT_EQ(p.a.state(), FakePostgres::State::kPrimary);
  EXPECT_EQ(p.b.state(), FakePostgres::State::kStandby);
  p.a.AdvanceLsn(500);
  auto q = p.b.Query();
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->in_recovery);
  EXPECT_TRUE(q->streaming);
  EXPECT_EQ(q->lsn, 1500u);
  auto rows = p.a.Replication();
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].application_name, "b");

  // The primary crashes: pg_control says it was not shut down cleanly.
  p.a.Crash();
  EXPECT_FALSE(p.a.IsRunning());
  EXPECT_EQ(p.a.ReadControlData()->cluster_state, "in production");
  ASSERT_TRUE(p.b.Promote(0).ok());
  EXPECT_EQ(p.b.timeline(), 2u);
  EXPECT_FALSE(p.b.Query()->in_recovery);
}

TEST(AgentFakePostgres, ADivergedOldPrimaryCannotStreamUntilRewound) {
  Pair p;
  ASSERT_TRUE(p.b.Start(0).ok());
  ASSERT_TRUE(p.b.Promote(0).ok());  // b forks timeline 2 at 1000
  p.a.InitDataDir(1, 1200, false);   // a wrote past the fork on timeline 1
  pg::Source sb;
  sb.host = "127.0.0.1";
  sb.port = 5002;
  ASSERT_TRUE(p.a.WriteConfig(sb).ok());
  ASSERT_TRUE(p.a.Start(0).ok());
  EXPECT_FALSE(p.a.Query()->streaming);
  ASSERT_TRUE(p.a.Stop(pg::StopMode::kFast, 0).ok());
  ASSERT_TRUE(p.a.Rewind(sb, 0).ok());
  ASSERT_TRUE(p.a.Start(0).ok());
  auto q = p.a.Query();
  EXPECT_TRUE(q->streaming);
  EXPECT_EQ(q->timeline, 2u);
}

TEST(AgentFakePostgres, CallsAreRecordedWithTheClockAndFailuresAreInjected) {
  Pair p;
  ASSERT_TRUE(p.a.Start(0).ok());
  p.clock.Advance(40);
  p.a.FailNext("Stop", Error(ErrorCode::kIo, "boom"));
  EXPECT_FALSE(p.a.Stop(pg::StopMode::kImmediate, 0).ok());
  EXPECT_TRUE(p.a.IsRunning());
  EXPECT_TRUE(p.a.Stop(pg::StopMode::kImmediate, 0).ok());
  EXPECT_EQ(p.a.IndexOf("Start"), 0);
  EXPECT_EQ(p.a.IndexOf("Stop(immediate)"), 1);
  EXPECT_EQ(p.a.IndexOf("Stop(immediate)", 2), 2);
  EXPECT_EQ(p.a.TimeOf("Stop(immediate)"), p.clock.Now());
  EXPECT_EQ(p.a.ReadControlData()->cluster_state, "in production");  // immediate: not clean
}

TEST(AgentFakePostgres, ABlockedCallWaitsUntilReleasedAndIsCountedMeanwhile) {
  Pair p;
  ASSERT_TRUE(p.a.Start(0).ok());
  p.a.Block("Sql");
  std::thread t([&] { (void)p.a.Sql("CHECKPOINT"); });
  while (p.a.BlockedCallers() == 0) std::this_thread::yield();
  EXPECT_EQ(p.a.IndexOf("Sql(CHECKPOINT)"), -1);            // recorded when it proceeds
  EXPECT_TRUE(p.a.Stop(pg::StopMode::kImmediate, 0).ok());  // other calls go on
  p.a.Unblock("Sql");
  EXPECT_EQ(p.a.BlockedCallers(), 0);  // released at once, even before it runs
  t.join();
  EXPECT_GT(p.a.IndexOf("Sql(CHECKPOINT)"), p.a.IndexOf("Stop(immediate)"));
}

}  // namespace
}  // namespace tandem::agenttest
