// One horizon for a scheduled switchover, whichever way it is asked
// (core/switchover_time.h; issue 19, item 5).
#include "core/switchover_time.h"

#include <gtest/gtest.h>

namespace tandem::core {
namespace {

constexpr int64_t kNow = 1'795'000'000'000;  // 2026-11-18T...Z
constexpr int64_t kDay = 24 * 3600 * 1000;

TEST(SwitchoverTime, NowAndAnyTimeUpTo366DaysAheadAreAccepted) {
  EXPECT_TRUE(CheckSwitchoverTime(0, kNow).ok());
  EXPECT_TRUE(CheckSwitchoverTime(kNow, kNow).ok());
  EXPECT_TRUE(CheckSwitchoverTime(kNow + 10 * 60 * 1000, kNow).ok());
  EXPECT_TRUE(CheckSwitchoverTime(kNow + kSwitchoverHorizonMs, kNow).ok());
}

TEST(SwitchoverTime, BeyondTheHorizonIsRefusedNamingTheLimit) {
  auto st = CheckSwitchoverTime(kNow + kSwitchoverHorizonMs + 1, kNow);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(st.error().message().find("at most 366 days ahead"), std::string::npos)
      << st.error().message();
  // The probe: 2099 instead of a near date.
  st = CheckSwitchoverTime(4'070'908'800'000 /* 2099-01-01T00:00:00Z */, kNow);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("2099-01-01T00:00:00Z"), std::string::npos)
      << st.error().message();
}

TEST(SwitchoverTime, ThePastIsRefusedWithAOneSecondMargin) {
  EXPECT_TRUE(CheckSwitchoverTime(kNow - 1000, kNow).ok());
  auto st = CheckSwitchoverTime(kNow - 1001, kNow);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("in the past"), std::string::npos);
  EXPECT_FALSE(CheckSwitchoverTime(kNow - 2 * kDay, kNow).ok());
}

TEST(SwitchoverTime, FormatUtcIsIso8601InUtc) {
  EXPECT_EQ(FormatUtc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatUtc(4'070'908'800'999), "2099-01-01T00:00:00Z");
}

}  // namespace
}  // namespace tandem::core
