// The human status view has seed 1's shape.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace tandem::cli {
namespace {
using nlohmann::json;

json Sample() {
  return json::parse(R"JSON({
    "cluster": "c", "status": "Enabled", "member": true, "primary": "n1",
    "node_in_use": "10.48.36.61", "interface": "a (10.48.36.182)",
    "certificates": {"server_key": "dbclusterserver.key", "server_cert": "", "client_key": "",
                     "client_cert": "", "ca_cert": "rootca.cer"},
    "last_command": {"command": "tandem cluster join 10.48.36.61:8008", "result": "Success",
                     "error": "", "progress": ""},
    "members": [
      {"name": "n1", "host": "10.48.36.61", "port": 5432, "me": false, "connected": true,
       "role": "primary", "in_sync": true, "lag_bytes": 0},
      {"name": "n2", "host": "10.48.36.118", "port": 5432, "me": false, "connected": true,
       "role": "replica", "in_sync": false, "lag_bytes": 4096},
      {"name": "n3", "host": "10.48.36.182", "port": 5432, "me": true, "connected": true,
       "role": "replica", "in_sync": true, "lag_bytes": 0},
      {"name": "n4", "host": "10.48.36.200", "port": 5432, "me": false, "connected": false,
       "role": "unknown", "in_sync": false, "lag_bytes": 0}],
    "warnings": ["4 voting members: an even count"]})JSON");
}

TEST(RenderStatus, ShowsWhereTheProxySendsConnections) {
  json s = Sample();
  s["proxy"] = {
      {"listen", "10.48.36.182"},  {"read_write_port", 6432},           {"read_only_port", 6433},
      {"read_write_target", "n1"}, {"read_only_targets", {"n2", "n3"}}, {"reason", "writes to n1"}};
  std::string out = RenderStatus(s);
  EXPECT_NE(out.find("  Read-write          : 10.48.36.182:6432 -> n1\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("  Read-only           : 10.48.36.182:6433 -> n2, n3\n"), std::string::npos)
      << out;
  s["proxy"]["read_write_target"] = nullptr;
  s["proxy"]["reason"] = "no leader key: no route (fail closed)";
  out = RenderStatus(s);
  EXPECT_NE(out.find("-> none (refusing: no leader key: no route (fail closed))"),
            std::string::npos)
      << out;
  EXPECT_EQ(RenderStatus(Sample()).find("Proxy"), std::string::npos);
}

TEST(RenderStatus, HasTheSeedShape) {
  std::string s = RenderStatus(Sample());
  EXPECT_NE(s.find("Status                : Enabled\n"), std::string::npos) << s;
  EXPECT_NE(s.find("Nodes:\n"), std::string::npos);
  EXPECT_NE(s.find(": Connected Primary\n"), std::string::npos) << s;
  EXPECT_NE(s.find("10.48.36.182:5432 (me)"), std::string::npos) << s;
  EXPECT_NE(s.find("Connected Replica ( In Sync )"), std::string::npos) << s;
  EXPECT_NE(s.find("Connected Replica ( Not In Sync, lag 4096 bytes )"), std::string::npos) << s;
  EXPECT_NE(s.find(": Not connected"), std::string::npos) << s;
  EXPECT_NE(s.find("Node in use           : 10.48.36.61 (n1)"), std::string::npos) << s;
  EXPECT_NE(s.find("Interface             : a (10.48.36.182)"), std::string::npos) << s;
  EXPECT_NE(s.find("  Server Key          : dbclusterserver.key"), std::string::npos) << s;
  EXPECT_NE(s.find("  Server Certificate  : (none)"), std::string::npos) << s;
  EXPECT_NE(s.find("Last command          : 'tandem cluster join 10.48.36.61:8008' (Success)"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("WARNING : 4 voting members"), std::string::npos) << s;
  EXPECT_EQ(s.find("ERROR"), std::string::npos);
}

TEST(RenderStatus, AWitnessShowsAsWitnessWithoutAPostgresPort) {
  json s = Sample();
  s["members"][3] = {{"name", "w"},     {"host", "10.48.36.200"}, {"port", 0},
                     {"me", false},     {"connected", true},      {"role", "witness"},
                     {"witness", true}, {"in_sync", false},       {"lag_bytes", 0}};
  std::string out = RenderStatus(s);
  EXPECT_NE(out.find("  w  10.48.36.200 "), std::string::npos) << out;
  EXPECT_EQ(out.find("10.48.36.200:0"), std::string::npos) << out;
  EXPECT_NE(out.find(": Connected Witness\n"), std::string::npos) << out;
  s["members"][3]["connected"] = false;
  out = RenderStatus(s);
  EXPECT_NE(out.find(": Not connected Witness\n"), std::string::npos) << out;
}

TEST(RenderStatus, ClearedErrorIsNotShownAgain) {
  json j = Sample();
  j["status"] = "Error";  // e.g. the store is unreachable
  j["error"] = "";
  j["last_command"]["result"] = "Failed";
  j["last_command"]["error"] = "an old failure";
  EXPECT_EQ(RenderStatus(j).find("an old failure"), std::string::npos);
}

TEST(RenderStatus, ErrorStateLeadsWithTheError) {
  json j = Sample();
  j["status"] = "Error";
  j["error"] = "Couldn't reach the member";
  j["last_command"] = {{"command", "tandem cluster join 10.0.0.1"},
                       {"result", "Failed"},
                       {"error", "Couldn't reach the member"},
                       {"progress", ""}};
  std::string s = RenderStatus(j);
  EXPECT_EQ(s.rfind("ERROR : Couldn't reach the member\n", 0), 0u) << s;
  EXPECT_NE(s.find("Status                : Error"), std::string::npos);
  EXPECT_NE(s.find("(Failed)"), std::string::npos);
}

TEST(RenderStatus, NoPrimarySaysSo) {
  json j = Sample();
  j["primary"] = nullptr;
  j["node_in_use"] = nullptr;
  std::string s = RenderStatus(j);
  EXPECT_NE(s.find("Node in use           : none (no primary)"), std::string::npos) << s;
}

TEST(RenderStatus, RunningCommandShowsProgress) {
  json j = Sample();
  j["last_command"]["result"] = "Running";
  j["last_command"]["progress"] = "pg_basebackup: 1024/2048 kB (50%)";
  std::string s = RenderStatus(j);
  EXPECT_NE(s.find("(Running) - pg_basebackup: 1024/2048 kB (50%)"), std::string::npos) << s;
}

}  // namespace
}  // namespace tandem::cli

namespace tandem::cli {
namespace {

TEST(RenderStatus, ShowsAScheduledSwitchoverAndHowToCancelIt) {
  json s = Sample();
  s["intent"] = {{"kind", "switchover"}, {"from", "n1"},      {"to", "n2"},
                 {"due", false},         {"scheduled", true}, {"at", "2027-01-01T03:00:00Z"}};
  std::string out = RenderStatus(s);
  EXPECT_NE(out.find("Operator request      : switchover from n1 to n2, scheduled for "
                     "2027-01-01T03:00:00Z (cancel: tandem cluster switchover --cancel)\n"),
            std::string::npos)
      << out;
  s["intent"]["scheduled"] = false;
  s["intent"]["due"] = true;
  out = RenderStatus(s);
  EXPECT_NE(out.find("Operator request      : switchover from n1 to n2, under way\n"),
            std::string::npos)
      << out;
  s["intent"] = nullptr;
  EXPECT_EQ(RenderStatus(s).find("Operator request"), std::string::npos);
}

}  // namespace
}  // namespace tandem::cli

namespace tandem::cli {
namespace {

TEST(RenderStatus, ARunningOrFailedSchemaUpgradeAndTheAgentsBuildShow) {
  json s = Sample();
  s["agent_pid"] = 4321;
  s["agent_version"] = "0.2.0 (commit abc1234)";
  s["schema_upgrade"] = {{"command", "tandem cluster upgrade-schema /srv/m"},
                         {"state", "running"},
                         {"runner", "n1"},
                         {"progress", "applying V3__add_index.sql"},
                         {"error", ""}};
  std::string out = RenderStatus(s);
  EXPECT_NE(out.find("Schema upgrade        : 'tandem cluster upgrade-schema /srv/m' running on "
                     "n1: applying V3__add_index.sql\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("Agent                 : pid 4321, tandem 0.2.0 (commit abc1234)\n"),
            std::string::npos)
      << out;
  s["schema_upgrade"]["state"] = "failed";
  s["schema_upgrade"]["error"] = "V3__add_index.sql line 2: relation \"x\" does not exist";
  out = RenderStatus(s);
  EXPECT_NE(out.find("' failed: V3__add_index.sql line 2"), std::string::npos) << out;
}

}  // namespace
}  // namespace tandem::cli
