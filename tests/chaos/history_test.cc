// The chaos checker must be able to fail: each rule is shown catching a
// made-up history that breaks it, and passing one that does not.
#include "chaos/history.h"

#include <gtest/gtest.h>

namespace tandem::chaos {
namespace {

Op Ok(int64_t id, int64_t invoke, int64_t complete, uint32_t epoch, const std::string& node) {
  Op op;
  op.id = id;
  op.invoke_ms = invoke;
  op.complete_ms = complete;
  op.outcome = Op::Outcome::kOk;
  op.epoch = epoch;
  op.node = node;
  return op;
}

Op Unknown(int64_t id, int64_t invoke) {
  Op op;
  op.id = id;
  op.invoke_ms = invoke;
  op.complete_ms = invoke + 1000;
  op.outcome = Op::Outcome::kUnknown;
  return op;
}

constexpr int64_t kAll = 1'000'000;  // rows read after every acknowledgement

TEST(ChaosChecker, AFailoverWithEverythingKeptPasses) {
  std::vector<Op> ops = {Ok(1, 0, 5, 1, "a"), Ok(2, 10, 15, 1, "a"), Unknown(3, 20),
                         Ok(4, 2000, 2005, 2, "b")};
  // An unknown write may or may not be there.
  Verdict v = Check(ops, kAll, {{"a", {1, 2, 4}}, {"b", {1, 2, 3, 4}}});
  EXPECT_TRUE(v.ok());
  EXPECT_EQ(v.acknowledged, 3u);
  EXPECT_EQ(v.lost, 0u);
}

TEST(ChaosChecker, CatchesALostAcknowledgedWrite) {
  std::vector<Op> ops = {Ok(1, 0, 5, 1, "a"), Ok(2, 10, 15, 1, "a"), Ok(3, 2000, 2005, 2, "b")};
  Verdict v = Check(ops, kAll, {{"b", {1, 3}}, {"c", {1, 2, 3}}});
  EXPECT_TRUE(v.violations.empty());
  ASSERT_EQ(v.losses.size(), 1u);
  EXPECT_FALSE(v.ok());
  EXPECT_NE(v.losses[0].find("b lacks 1 acknowledged write(s), e.g. id 2"), std::string::npos)
      << v.losses[0];
  EXPECT_EQ(v.lost, 1u);
}

TEST(ChaosChecker, CatchesAnInventedWrite) {
  std::vector<Op> ops = {Ok(1, 0, 5, 1, "a")};
  Verdict v = Check(ops, kAll, {{"a", {1, 99}}});
  ASSERT_EQ(v.violations.size(), 1u);
  EXPECT_NE(v.violations[0].find("that no client ever attempted"), std::string::npos);
}

TEST(ChaosChecker, CatchesAnOldPrimaryAcceptingWritesAfterTheNewOne) {
  // b (epoch 2) acknowledged at 1005; a (epoch 1) then took a write sent at 1100.
  std::vector<Op> ops = {Ok(1, 0, 5, 1, "a"), Ok(2, 1000, 1005, 2, "b"), Ok(3, 1100, 1110, 1, "a")};
  Verdict v = Check(ops, kAll, {{"a", {1, 2, 3}}, {"b", {1, 2, 3}}});
  ASSERT_EQ(v.violations.size(), 1u);
  EXPECT_NE(v.violations[0].find("overlapping primaries"), std::string::npos) << v.violations[0];
}

TEST(ChaosChecker, AnOldEpochWriteSentBeforeTheNewOneAnsweredIsFine) {
  // Sent at 900 to the old primary, answered late: concurrent, not overlapping.
  std::vector<Op> ops = {Ok(1, 900, 1200, 1, "a"), Ok(2, 1000, 1005, 2, "b")};
  Verdict v = Check(ops, kAll, {{"a", {1, 2}}, {"b", {1, 2}}});
  EXPECT_TRUE(v.violations.empty()) << v.violations[0];
}

TEST(ChaosChecker, CatchesTwoNodesWritingOneEpoch) {
  std::vector<Op> ops = {Ok(1, 0, 5, 2, "a"), Ok(2, 10, 15, 2, "b")};
  Verdict v = Check(ops, kAll, {{"a", {1, 2}}});
  ASSERT_EQ(v.violations.size(), 1u);
  EXPECT_NE(v.violations[0].find("two primaries on one timeline"), std::string::npos);
}

TEST(ChaosChecker, OnlyWritesAcknowledgedBeforeTheRowsWereReadMustBeThere) {
  // id 2 was acknowledged after the rows were read (at 100): not required yet,
  // but it was attempted, so finding it is no invention either.
  std::vector<Op> ops = {Ok(1, 0, 5, 1, "a"), Ok(2, 90, 150, 1, "a")};
  EXPECT_TRUE(Check(ops, 100, {{"a", {1}}}).ok());
  EXPECT_TRUE(Check(ops, 100, {{"a", {1, 2}}}).ok());
  EXPECT_EQ(Check(ops, 200, {{"a", {1}}}).lost, 1u);
}

TEST(ChaosChecker, LongestGapSpansTheFault) {
  std::vector<Op> ops = {Ok(1, 0, 100, 1, "a"), Ok(2, 100, 200, 1, "a"), Ok(3, 2000, 2300, 2, "b"),
                         Ok(4, 2300, 2400, 2, "b")};
  EXPECT_EQ(LongestGap(ops, 250, 5000), 5000 - 2400);
  EXPECT_EQ(LongestGap(ops, 250, 2400), 2300 - 200);
  EXPECT_EQ(LongestGap({}, 0, 700), 700);
}

}  // namespace
}  // namespace tandem::chaos
