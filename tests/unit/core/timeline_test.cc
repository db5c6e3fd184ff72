// The timeline record decisions (core/timeline.h), one test per rule.
#include "core/timeline.h"

#include <gtest/gtest.h>

namespace tandem::core {
namespace {

LocalPostgres Primary(uint32_t timeline) {
  LocalPostgres l;
  l.running = true;
  l.in_recovery = false;
  l.timeline = timeline;
  return l;
}

LocalPostgres Standby(uint32_t timeline) {
  LocalPostgres l = Primary(timeline);
  l.in_recovery = true;
  return l;
}

using Kind = TimelineUpkeep::Kind;

TEST(TimelineBeforePromotion, APromotionAnnouncesTheNextTimeline) {
  EXPECT_EQ(TimelineBeforePromotion(1), 2u);
  EXPECT_EQ(TimelineBeforePromotion(7), 8u);
}

TEST(MaintainTimelineRecord, TheLeaderRecordsTheTimelinePostgresChose) {
  auto up = MaintainTimelineRecord("n1", true, Primary(3), {2, "n1"});
  EXPECT_EQ(up.kind, Kind::kKeepCurrent);
  EXPECT_EQ(up.timeline, 3u);
  // No record yet.
  up = MaintainTimelineRecord("n1", true, Primary(1), {0, ""});
  EXPECT_EQ(up.kind, Kind::kKeepCurrent);
  EXPECT_EQ(up.timeline, 1u);
}

TEST(MaintainTimelineRecord, ACurrentRecordIsLeftAlone) {
  EXPECT_EQ(MaintainTimelineRecord("n1", true, Primary(3), {3, "n1"}).kind, Kind::kNone);
  // A newer record (another member announced its promotion) is never lowered.
  EXPECT_EQ(MaintainTimelineRecord("n1", true, Primary(3), {4, "n2"}).kind, Kind::kNone);
}

TEST(MaintainTimelineRecord, OnlyTheLeaderWithAWritablePrimaryKeepsItCurrent) {
  EXPECT_EQ(MaintainTimelineRecord("n1", false, Primary(3), {2, "n1"}).kind, Kind::kNone);
  EXPECT_EQ(MaintainTimelineRecord("n1", true, Standby(3), {2, "n1"}).kind, Kind::kNone);
  LocalPostgres stopped = Primary(3);
  stopped.running = false;
  EXPECT_EQ(MaintainTimelineRecord("n1", true, stopped, {2, "n1"}).kind, Kind::kNone);
}

TEST(MaintainTimelineRecord, AnAnnouncedPromotionThatNeverHappenedIsRetracted) {
  auto up = MaintainTimelineRecord("n2", false, Standby(2), {3, "n2"});
  EXPECT_EQ(up.kind, Kind::kRetract);
  EXPECT_EQ(up.timeline, 2u);
  EXPECT_NE(up.reason.find("never reached"), std::string::npos) << up.reason;
}

TEST(MaintainTimelineRecord, OnlyItsOwnAnnouncementIsRetracted) {
  EXPECT_EQ(MaintainTimelineRecord("n3", false, Standby(2), {3, "n2"}).kind, Kind::kNone);
}

TEST(MaintainTimelineRecord, OnlyARunningStandbysTimelineIsTrustedForARetraction) {
  // A stopped server's pg_control may still name the old timeline after a
  // real promotion.
  LocalPostgres stopped = Standby(2);
  stopped.running = false;
  EXPECT_EQ(MaintainTimelineRecord("n2", false, stopped, {3, "n2"}).kind, Kind::kNone);
  // A running primary was promoted: nothing to retract.
  EXPECT_EQ(MaintainTimelineRecord("n2", false, Primary(2), {3, "n2"}).kind, Kind::kNone);
  // An unknown timeline (0) is no evidence.
  EXPECT_EQ(MaintainTimelineRecord("n2", false, Standby(0), {1, "n2"}).kind, Kind::kNone);
}

TEST(MaintainTimelineRecord, AStandbyMoreThanOneTimelineBehindRetractsNothing) {
  EXPECT_EQ(MaintainTimelineRecord("n2", false, Standby(1), {3, "n2"}).kind, Kind::kNone);
}

}  // namespace
}  // namespace tandem::core
