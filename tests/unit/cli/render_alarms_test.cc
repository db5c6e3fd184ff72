// The alarms in the text views: status's "Alarms" section and the member's
// clustering state, and `cluster alarms` with and without its history.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace tandem::cli {
namespace {
using nlohmann::json;

json Alarm(int id, const std::string& name, const std::string& node, int64_t raised_ms,
           int64_t cleared_ms = 0) {
  return {{"id", id},
          {"name", name},
          {"node", node},
          {"raised_ms", raised_ms},
          {"cleared_ms", cleared_ms},
          {"detail", "why"}};
}

json Status() {
  return {{"status", "Enabled"},
          {"members",
           {{{"name", "n1"},
             {"connected", true},
             {"role", "primary"},
             {"clustering", "Active"},
             {"certificate", "Valid"}},
            {{"name", "n2"}, {"connected", false}, {"role", "unknown"}, {"clustering", "Failed"}}}},
          {"alarms", {Alarm(1001, "cluster-communication-failure", "n2", 1'796'000'000'000)}}};
}

TEST(RenderAlarms, StatusHasAnAlarmsSectionWithIdNameNodeAndSince) {
  const std::string s = RenderStatus(Status());
  EXPECT_NE(s.find("Alarms\n"), std::string::npos) << s;
  EXPECT_NE(s.find("1001  cluster-communication-failure  n2         2026-11-30T"),
            std::string::npos)
      << s;
  json none = Status();
  none["alarms"] = json::array();
  EXPECT_NE(RenderStatus(none).find("Alarms                : none\n"), std::string::npos);
  none.erase("alarms");  // a node outside a cluster, or an older agent
  EXPECT_EQ(RenderStatus(none).find("Alarms"), std::string::npos);
}

TEST(RenderAlarms, EachMemberShowsItsClusteringStateBesideItsCertificate) {
  const std::string s = RenderStatus(Status());
  EXPECT_NE(s.find("Connected Primary, Clustering: Active, Certificate: Valid\n"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("Not connected, Clustering: Failed\n"), std::string::npos) << s;
}

TEST(RenderAlarms, TheAlarmsCommandListsActiveAndOnRequestTheCleared) {
  json doc = {{"active", {Alarm(1007, "no-synchronous-standby", "", 1'796'000'000'000)}}};
  std::string s = RenderAlarms(doc);
  EXPECT_NE(s.find("Active alarms\n"), std::string::npos) << s;
  EXPECT_NE(s.find("(cluster)"), std::string::npos) << s;
  EXPECT_EQ(s.find("Cleared"), std::string::npos) << s;
  doc["history"] = {Alarm(1002, "replication-failure", "n3", 1'796'000'000'000, 1'796'000'060'000)};
  s = RenderAlarms(doc);
  EXPECT_NE(s.find("Cleared alarms (oldest first)\n"), std::string::npos) << s;
  EXPECT_NE(s.find("2026-11-30T00:53:20Z  2026-11-30T00:54:20Z  why"), std::string::npos) << s;
  EXPECT_EQ(RenderAlarms({{"active", json::array()}}), "No active alarm.\n");
}

}  // namespace
}  // namespace tandem::cli
