// A scheduled switchover is bounded and visible (issue 19, item 5): the
// agent refuses a time beyond the horizon whatever sent it, shows the
// scheduled one in its status, refuses later requests naming it and how to
// cancel it, and cancels it until it is due. The clock is the harness's
// ManualClock: "days ahead" are wall-clock instants, never waited for.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/switchover_time.h"
#include "unit/agent/agent_harness.h"

namespace tandem::agenttest {
namespace {

constexpr int64_t kDay = 24 * 3600 * 1000;

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(AgentScheduledSwitchover, ATimeBeyondTheHorizonIsRefusedAndRecordsNothing) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  const int64_t now = h.clock().WallNow();
  auto r = h.agent(1).RequestSwitchover("n2", now + core::kSwitchoverHorizonMs + 1000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Has(r.error().message(), "at most 366 days ahead")) << r.error().message();
  r = h.agent(1).RequestSwitchover("n2", now - 5000);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Has(r.error().message(), "in the past")) << r.error().message();
  EXPECT_FALSE(h.Key("intent").has_value()) << "nothing recorded";
  EXPECT_TRUE(h.agent(1).StatusJson()["intent"].is_null());
}

TEST(AgentScheduledSwitchover, AScheduledOneIsShownBlocksOthersTrulyAndCanBeCancelled) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  const int64_t at = h.clock().WallNow() + 30 * kDay;
  auto r = h.agent(1).RequestSwitchover("n2", at);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(Has(*r, "scheduled for " + core::FormatUtc(at))) << *r;

  // Shown in the status (every node reads it from the store).
  const auto intent = h.agent(0).StatusJson()["intent"];
  ASSERT_TRUE(intent.is_object());
  EXPECT_EQ(intent["kind"], "switchover");
  EXPECT_EQ(intent["to"], "n2");
  EXPECT_EQ(intent["scheduled"], true);
  EXPECT_EQ(intent["at"], core::FormatUtc(at));
  EXPECT_EQ(intent["requested_on"], "n2");

  // A later switchover, or a failover (a switchover while n1 leads), is
  // refused naming the scheduled one and the way out.
  for (auto later :
       {h.agent(0).RequestSwitchover("", 0), h.agent(0).RequestFailover("n2", false)}) {
    ASSERT_FALSE(later.ok());
    const std::string msg = later.error().message();
    EXPECT_TRUE(Has(msg, "a switchover from n1 to n2 is scheduled for " + core::FormatUtc(at)))
        << msg;
    EXPECT_TRUE(Has(msg, "tandem cluster switchover --cancel")) << msg;
    EXPECT_FALSE(Has(msg, "under way")) << msg;
  }
  ASSERT_TRUE(h.Step(1000));
  EXPECT_EQ(h.LeaderHolder(), "n1") << "not due: nothing happens";

  auto cancelled = h.agent(0).CancelSwitchover();
  ASSERT_TRUE(cancelled.ok()) << cancelled.error().message();
  EXPECT_TRUE(Has(*cancelled, "cancelled")) << *cancelled;
  EXPECT_FALSE(h.Key("intent").has_value());
  EXPECT_TRUE(h.agent(0).StatusJson()["intent"].is_null());
  auto again = h.agent(0).CancelSwitchover();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(Has(again.error().message(), "no switchover is scheduled"));

  // Now a switchover runs at once.
  ASSERT_TRUE(h.agent(0).RequestSwitchover("n2", 0).ok());
  ASSERT_TRUE(h.AdvanceUntil([&] { return h.LeaderHolder() == "n2"; }, 3'000)) << h.Describe();
}

TEST(AgentScheduledSwitchover, OnceDueItCanNoLongerBeCancelledAndRuns) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  const int64_t at = h.clock().WallNow() + 3600 * 1000;
  ASSERT_TRUE(h.agent(1).RequestSwitchover("n2", at).ok());
  ASSERT_TRUE(h.Settle());
  // The wall clock reaches the scheduled time (the monotonic one does not
  // move, so no loop has acted on it yet).
  h.clock().SetWall(at);
  auto cancel = h.agent(0).CancelSwitchover();
  ASSERT_FALSE(cancel.ok());
  EXPECT_EQ(cancel.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(Has(cancel.error().message(), "can no longer be cancelled"))
      << cancel.error().message();
  ASSERT_TRUE(h.AdvanceUntil([&] { return h.LeaderHolder() == "n2"; }, 3'000)) << h.Describe();
}

}  // namespace
}  // namespace tandem::agenttest
