// The cluster event log's pure part: kinds' names, order by seq, the cap,
// the selections after a seq / since a time / of one node, the text line and
// the --since parse (durations, RFC 3339 with offsets, refusals).
#include "core/events.h"

#include <gtest/gtest.h>

namespace tandem::core {
namespace {

Event Ev(int64_t seq, int64_t time_ms, const std::string& node) {
  Event e;
  e.seq = seq;
  e.time_ms = time_ms;
  e.node = node;
  e.kind = "leader-change";
  e.message = node + " became primary (timeline 2)";
  return e;
}

TEST(EventKind, NamesAreTheApiWords) {
  EXPECT_STREQ(EventKindName(EventKind::kLeaderChange), "leader-change");
  EXPECT_STREQ(EventKindName(EventKind::kAlarmRaised), "alarm-raised");
  EXPECT_STREQ(EventKindName(EventKind::kAlarmCleared), "alarm-cleared");
  EXPECT_STREQ(EventKindName(EventKind::kOperationStarted), "operation-started");
  EXPECT_STREQ(EventKindName(EventKind::kOperationFinished), "operation-finished");
  EXPECT_STREQ(EventKindName(EventKind::kOperationFailed), "operation-failed");
  EXPECT_STREQ(EventKindName(EventKind::kConfigChanged), "config-changed");
  EXPECT_STREQ(EventKindName(EventKind::kNodeJoined), "node-joined");
  EXPECT_STREQ(EventKindName(EventKind::kNodeRemoved), "node-removed");
}

TEST(Events, SortBySeqNotByTimeOrNode) {
  // Two nodes' clocks disagree: the store's order wins.
  std::vector<Event> v = {Ev(30, 1000, "a"), Ev(10, 5000, "b"), Ev(20, 2000, "a")};
  SortEvents(&v);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].seq, 10);
  EXPECT_EQ(v[1].seq, 20);
  EXPECT_EQ(v[2].seq, 30);
}

TEST(Events, BeyondCapAreTheOldest) {
  std::vector<Event> v;
  for (int i = 1; i <= 5; ++i) v.push_back(Ev(i * 10, i, "a"));
  EXPECT_TRUE(EventsBeyondCap(v, 5).empty());
  EXPECT_EQ(EventsBeyondCap(v, 3), (std::vector<int64_t>{10, 20}));
  EXPECT_EQ(EventsBeyondCap(v, 0).size(), 5u);
}

TEST(Events, SelectAfterSeqWithLimitAndNext) {
  std::vector<Event> v;
  for (int i = 1; i <= 5; ++i) v.push_back(Ev(i, i * 1000, i % 2 ? "a" : "b"));
  EventFilter f;
  f.since_seq = 2;
  f.limit = 2;
  EventPage p = SelectEvents(v, f);
  ASSERT_EQ(p.events.size(), 2u);
  EXPECT_EQ(p.events[0].seq, 3);
  EXPECT_EQ(p.events[1].seq, 4);
  EXPECT_EQ(p.next, 4);
  f.since_seq = p.next;
  p = SelectEvents(v, f);
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.next, 5);
  f.since_seq = 5;
  p = SelectEvents(v, f);
  EXPECT_TRUE(p.events.empty());
  EXPECT_EQ(p.next, 5);  // nothing new: ask after the same seq again
}

TEST(Events, SelectByNodeAndTimeStillMovesNext) {
  std::vector<Event> v = {Ev(1, 1000, "a"), Ev(2, 2000, "b"), Ev(3, 3000, "a")};
  EventFilter f;
  f.node = "b";
  EventPage p = SelectEvents(v, f);
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0].node, "b");
  EXPECT_EQ(p.next, 3);
  f.node.clear();
  f.since_ms = 2000;
  p = SelectEvents(v, f);
  ASSERT_EQ(p.events.size(), 2u);
  EXPECT_EQ(p.events[0].seq, 2);
}

TEST(Events, TimeAndLine) {
  EXPECT_EQ(FormatEventTime(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatEventTime(1796328000123), "2026-12-03T20:00:00.123Z");
  const std::string line = RenderEvent(Ev(7, 1796328000123, "node1"));
  EXPECT_EQ(line.rfind("2026-12-03T20:00:00.123Z  node1", 0), 0u) << line;
  EXPECT_NE(line.find("leader-change"), std::string::npos);
  EXPECT_NE(line.find("node1 became primary (timeline 2)"), std::string::npos);
}

TEST(ParseSince, Durations) {
  const int64_t now = 1796328000000;
  EXPECT_EQ(*ParseSince("10m", now), now - 600'000);
  EXPECT_EQ(*ParseSince("90s", now), now - 90'000);
  EXPECT_EQ(*ParseSince("2h", now), now - 7'200'000);
  EXPECT_EQ(*ParseSince("1d", now), now - 86'400'000);
}

TEST(ParseSince, Rfc3339Times) {
  EXPECT_EQ(*ParseSince("2026-12-03T20:00:00Z", 0), 1796328000000);
  EXPECT_EQ(*ParseSince("2026-12-03T20:00:00.5Z", 0), 1796328000500);
  EXPECT_EQ(*ParseSince("2026-12-03T21:30:00+01:30", 0), 1796328000000);
  EXPECT_EQ(*ParseSince("2026-12-03T18:00:00-02:00", 0), 1796328000000);
  // Round trip with the time the API prints.
  EXPECT_EQ(*ParseSince(FormatEventTime(1796328000123), 0), 1796328000123);
}

TEST(ParseSince, RefusesWhatIsNeither) {
  for (const char* bad :
       {"", "10", "ten minutes", "-5m", "2026-12-03", "2026-12-03T20:00:00", "2026-13-03T20:00:00Z",
        "2026-12-03T25:00:00Z", "10m ago", "2026-12-03T20:00:00Zjunk"}) {
    auto r = ParseSince(bad, 1796328000000);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find("--since"), std::string::npos);
    EXPECT_NE(r.error().message().find("10m"), std::string::npos);  // names the forms
  }
}

}  // namespace
}  // namespace tandem::core
