// `cluster history`: each leader change with the time it was recorded (UTC,
// from the record's at_ms), the new primary, the timeline and the reason.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace tandem::cli {
namespace {

TEST(RenderHistory, NoChangeYet) {
  EXPECT_EQ(RenderHistory(nlohmann::json::array()), "No leader change recorded yet.\n");
}

TEST(RenderHistory, ATimeIsTheRecordsOwnInUtc) {
  auto h = nlohmann::json::parse(R"([
    {"at_ms": 1795312800000, "leader": "node1", "timeline": 1, "reason": "initialized"},
    {"at_ms": 1795316400999, "leader": "node2", "timeline": 2,
     "reason": "switchover from node1"}])");
  EXPECT_EQ(RenderHistory(h),
            "TIME (UTC)               PRIMARY    TIMELINE REASON\n"
            "2026-11-22T02:00:00Z     node1      1        initialized\n"
            "2026-11-22T03:00:00Z     node2      2        switchover from node1\n");
}

}  // namespace
}  // namespace tandem::cli
