// `cluster switchover --at`: +DURATION from now, or a UTC time not in the
// past. "Now" is the caller's (here a fixed instant), so the verdicts do not
// depend on when the test runs.
#include <gtest/gtest.h>

#include "cli/commands.h"

namespace tandem::cli {
namespace {

// 2026-11-22T02:00:00Z in ms.
constexpr int64_t kNowMs = 1'795'312'800'000;

TEST(ParseAt, EmptyMeansNow) {
  int64_t at = -1;
  std::string err;
  ASSERT_TRUE(ParseAt("", kNowMs, &at, &err)) << err;
  EXPECT_EQ(at, 0);
}

TEST(ParseAt, ADurationCountsFromNow) {
  int64_t at = 0;
  std::string err;
  ASSERT_TRUE(ParseAt("+10m", kNowMs, &at, &err)) << err;
  EXPECT_EQ(at, kNowMs + 10 * 60 * 1000);
  ASSERT_TRUE(ParseAt("+90s", kNowMs, &at, &err)) << err;
  EXPECT_EQ(at, kNowMs + 90 * 1000);
  EXPECT_FALSE(ParseAt("+soon", kNowMs, &at, &err));
  EXPECT_NE(err.find("+DURATION"), std::string::npos) << err;
  EXPECT_FALSE(ParseAt("+400d", kNowMs, &at, &err)) << "more than a year ahead";
}

TEST(ParseAt, AUtcTimeIsTakenAsIs) {
  int64_t at = 0;
  std::string err;
  ASSERT_TRUE(ParseAt("2026-11-22T03:00:00Z", kNowMs, &at, &err)) << err;
  EXPECT_EQ(at, kNowMs + 3600 * 1000);
  EXPECT_FALSE(ParseAt("2026-11-22T03:00:00", kNowMs, &at, &err)) << "no Z: not UTC";
  EXPECT_FALSE(ParseAt("2026-13-01T00:00:00Z", kNowMs, &at, &err));
}

// The past is refused; within the second before now is still "now" (a
// command typed at the boundary of a second must not be refused).
TEST(ParseAt, ATimeInThePastIsRefusedWithAOneSecondMargin) {
  int64_t at = 0;
  std::string err;
  EXPECT_FALSE(ParseAt("2026-11-22T01:59:58Z", kNowMs, &at, &err));
  EXPECT_NE(err.find("is in the past"), std::string::npos) << err;
  ASSERT_TRUE(ParseAt("2026-11-22T01:59:59Z", kNowMs, &at, &err)) << err;
  ASSERT_TRUE(ParseAt("2026-11-22T02:00:00Z", kNowMs, &at, &err)) << err;
}

}  // namespace
}  // namespace tandem::cli

namespace tandem::cli {
namespace {

// Both forms have the same horizon (issue 19): a UTC time was not capped, so
// `--at 2099-01-01T00:00:00Z` blocked every later request for decades.
TEST(ParseAt, BothFormsHaveTheSameHorizon) {
  int64_t at = 0;
  std::string err;
  ASSERT_TRUE(ParseAt("+8784h", kNowMs, &at, &err)) << err << " (366 days)";
  ASSERT_TRUE(ParseAt("2027-11-23T02:00:00Z", kNowMs, &at, &err)) << err << " (366 days)";
  EXPECT_FALSE(ParseAt("+8785h", kNowMs, &at, &err));
  EXPECT_NE(err.find("at most 366 days ahead"), std::string::npos) << err;
  err.clear();
  EXPECT_FALSE(ParseAt("2027-11-23T02:00:01Z", kNowMs, &at, &err));
  EXPECT_NE(err.find("at most 366 days ahead"), std::string::npos) << err;
  err.clear();
  EXPECT_FALSE(ParseAt("2099-01-01T00:00:00Z", kNowMs, &at, &err));
  EXPECT_NE(err.find("--at '2099-01-01T00:00:00Z'"), std::string::npos) << err;
}

}  // namespace
}  // namespace tandem::cli
