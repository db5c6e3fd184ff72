// GET /metrics (api/metrics.h): the two sets built from a snapshot, each
// Patroni metric with Patroni's name, labels and meaning for the role it
// describes, and the route through the real Routes table on an idle agent
// (idle_agent_routes.h): its content type, no query parameter, no POST.
#include "api/metrics.h"

#include <gtest/gtest.h>

#include <set>

#include "base/strings.h"
#include "unit/api/idle_agent_routes.h"

namespace tandem::api {
namespace {
using routes_testing::ExpectJsonError;
using routes_testing::RoutesTest;

// The value of `name{<labels>}` in a rendered text (nullopt when absent).
std::optional<std::string> Value(const std::string& text, const std::string& series) {
  for (const auto& line : Split(text, '\n')) {
    if (StartsWith(line, series + " ")) return line.substr(series.size() + 1);
  }
  return std::nullopt;
}

const char* kPatroni = R"({scope="c1",name="n1"})";

agent::NodeMetrics Primary() {
  agent::NodeMetrics m;
  m.cluster = "c1";
  m.node = "n1";
  m.member = true;
  m.pg_running = true;
  m.in_recovery = false;
  m.timeline = 3;
  m.lsn = 0xFFFFFFFFFFFFFF00ull;  // exact in the output, not rounded through a double
  m.pg_queried = true;
  m.postmaster_start_time = 1733234567.5;
  m.server_version = 150004;
  m.replicas = {{"n2", 4096, 0.25, true}, {"n\"3", 0, 0, false}};
  m.primary = true;
  m.store_ok = true;
  m.has_leader = true;
  m.leader = "n1";
  m.sync_standbys = 1;
  m.sync_quorum = 1;
  m.lease_held = true;
  m.lease_remaining_ms = 1500;
  m.fence_armed = true;
  m.certificates = {{"server", "/etc/tandem/server.crt", 1859379191}};
  m.counters.store_last_seen_ms = 1733234999'123;
  m.counters.leader_changes = 2;
  m.counters.actions.resize(agent::AgentMetrics::kActionTypes);
  m.counters.actions[static_cast<size_t>(core::ActionType::kPromote)] = {1, 0};
  m.counters.lease_renewal = {{0.001, 0.01}, {5, 2, 1}, 0.05};
  m.counters.cycle = {{0.1}, {7, 0}, 0.3};
  return m;
}

agent::NodeMetrics Replica() {
  agent::NodeMetrics m = Primary();
  m.in_recovery = true;
  m.primary = false;
  m.replica = true;
  m.sync_standby = true;
  m.leader = "n2";
  m.lsn = 5000;
  m.received_lsn = 5000;
  m.replayed_lsn = 4000;
  m.replayed_timestamp = 1733234500.25;
  m.replay_paused = true;
  m.streaming = true;
  m.replicas.clear();
  m.lease_remaining_ms = 0;
  m.fence_armed = false;
  return m;
}

std::string P(const std::string& name) {
  return name + kPatroni;
}

TEST(MetricsSets, PatroniOnAPrimary) {
  const std::string t = RenderMetrics(Primary(), "3.0.2");
  EXPECT_EQ(Value(t, P("patroni_version")), "30002") << "Patroni's padding: 3.0.2 -> 030002";
  EXPECT_EQ(Value(t, P("patroni_postgres_running")), "1");
  EXPECT_EQ(Value(t, P("patroni_postmaster_start_time")), "1733234567.5");
  EXPECT_EQ(Value(t, P("patroni_primary")), "1");
  EXPECT_EQ(Value(t, P("patroni_master")), "1");
  EXPECT_EQ(Value(t, P("patroni_replica")), "0");
  EXPECT_EQ(Value(t, P("patroni_standby_leader")), "0");
  EXPECT_EQ(Value(t, P("patroni_xlog_location")), "18446744073709551360");
  EXPECT_EQ(Value(t, P("patroni_xlog_received_location")), "0");
  EXPECT_EQ(Value(t, P("patroni_xlog_replayed_location")), "0");
  EXPECT_EQ(Value(t, P("patroni_xlog_replayed_timestamp")), "0");
  EXPECT_EQ(Value(t, P("patroni_xlog_paused")), "0");
  EXPECT_EQ(Value(t, P("patroni_postgres_timeline")), "3");
  EXPECT_EQ(Value(t, P("patroni_postgres_server_version")), "150004");
  EXPECT_EQ(Value(t, P("patroni_cluster_unlocked")), "0");
  EXPECT_EQ(Value(t, P("patroni_failsafe_mode_is_active")), "0");
  EXPECT_EQ(Value(t, P("patroni_dcs_last_seen")), "1733234999") << "whole seconds, as Patroni";
  EXPECT_EQ(Value(t, P("patroni_pending_restart")), "0");
  EXPECT_EQ(Value(t, P("patroni_is_paused")), "0");
  // Patroni's types: the positions are counters, the rest gauges.
  EXPECT_NE(t.find("# TYPE patroni_xlog_location counter\n"), std::string::npos);
  EXPECT_NE(t.find("# TYPE patroni_primary gauge\n"), std::string::npos);
}

TEST(MetricsSets, PatroniOnAReplica) {
  const std::string t = RenderMetrics(Replica(), "3.0.2");
  EXPECT_EQ(Value(t, P("patroni_primary")), "0");
  EXPECT_EQ(Value(t, P("patroni_replica")), "1");
  EXPECT_EQ(Value(t, P("patroni_sync_standby")), "1");
  EXPECT_EQ(Value(t, P("patroni_xlog_location")), "0") << "0 if this node is not the leader";
  EXPECT_EQ(Value(t, P("patroni_xlog_received_location")), "5000");
  EXPECT_EQ(Value(t, P("patroni_xlog_replayed_location")), "4000");
  EXPECT_EQ(Value(t, P("patroni_xlog_replayed_timestamp")), "1733234500.25");
  EXPECT_EQ(Value(t, P("patroni_xlog_paused")), "1");
  EXPECT_EQ(Value(t, P("patroni_postgres_streaming")), "1");
}

TEST(MetricsSets, ReceivedFallsBackToReplayedAsPatroniDoes) {
  agent::NodeMetrics m = Replica();
  m.received_lsn = 0;  // nothing streamed since the start (archive or local WAL)
  EXPECT_EQ(Value(RenderMetrics(m, "1"), P("patroni_xlog_received_location")), "4000");
}

TEST(MetricsSets, StoppedAndUnlockedAndPaused) {
  agent::NodeMetrics m = Primary();
  m.pg_running = false;
  m.primary = false;
  m.has_leader = false;
  m.paused = true;
  m.pending_restart = 2;
  const std::string t = RenderMetrics(m, "1");
  EXPECT_EQ(Value(t, P("patroni_postgres_running")), "0");
  EXPECT_EQ(Value(t, P("patroni_postmaster_start_time")), "0");
  EXPECT_EQ(Value(t, P("patroni_postgres_timeline")), "0") << "0 if not running";
  EXPECT_EQ(Value(t, P("patroni_postgres_server_version")), "0");
  EXPECT_EQ(Value(t, P("patroni_xlog_location")), "0");
  EXPECT_EQ(Value(t, P("patroni_cluster_unlocked")), "1");
  EXPECT_EQ(Value(t, P("patroni_is_paused")), "1");
  EXPECT_EQ(Value(t, P("patroni_pending_restart")), "1");
  EXPECT_EQ(Value(t, R"(tandem_node_role{cluster="c1",node="n1",role="stopped"})"), "1");
  EXPECT_EQ(Value(t, R"(tandem_node_role{cluster="c1",node="n1",role="primary"})"), "0");
}

TEST(MetricsSets, TandemOwn) {
  const std::string t = RenderMetrics(Primary(), "0.1.0");
  const std::string l = R"(cluster="c1",node="n1")";
  EXPECT_EQ(Value(t, "tandem_build_info{" + l + R"(,version="0.1.0"})"), "1");
  EXPECT_EQ(Value(t, "tandem_node_role{" + l + R"(,role="primary"})"), "1");
  EXPECT_EQ(Value(t, "tandem_node_role{" + l + R"(,role="replica"})"), "0");
  EXPECT_EQ(Value(t, "tandem_lease_remaining_seconds{" + l + "}"), "1.5");
  EXPECT_EQ(Value(t, "tandem_leader_changes_total{" + l + "}"), "2");
  EXPECT_EQ(Value(t, "tandem_ha_actions_total{" + l + R"(,action="promote",result="ok"})"), "1");
  EXPECT_EQ(Value(t, "tandem_lease_renewal_duration_seconds_bucket{" + l + R"(,le="0.01"})"), "7");
  EXPECT_EQ(Value(t, "tandem_lease_renewal_duration_seconds_count{" + l + "}"), "8");
  EXPECT_EQ(Value(t, "tandem_ha_cycle_duration_seconds_sum{" + l + "}"), "0.3");
  EXPECT_EQ(Value(t, "tandem_replication_lag_bytes{" + l + R"(,replica="n2"})"), "4096");
  EXPECT_EQ(Value(t, "tandem_replication_lag_seconds{" + l + R"(,replica="n2"})"), "0.25");
  EXPECT_EQ(Value(t, "tandem_replication_sync{" + l + R"(,replica="n\"3"})"), "0")
      << "a label value is escaped";
  EXPECT_EQ(Value(t, "tandem_sync_standbys{" + l + "}"), "1");
  EXPECT_EQ(Value(t, "tandem_certificate_expiry_timestamp_seconds{" + l +
                         R"(,certificate="server",file="/etc/tandem/server.crt"})"),
            "1859379191");
  EXPECT_EQ(Value(t, "tandem_operation_in_progress{" + l + R"(,operation="switchover"})"), "0");
  EXPECT_EQ(Value(t, "tandem_store_last_seen_timestamp_seconds{" + l + "}"), "1733234999.123");
}

TEST(MetricsSets, OperationsInProgressAreOneHotOverAStableSet) {
  agent::NodeMetrics m = Primary();
  m.operations = {"join", "switchover"};
  const std::string t = RenderMetrics(m, "1");
  const std::string l = R"(tandem_operation_in_progress{cluster="c1",node="n1",operation=")";
  EXPECT_EQ(Value(t, l + R"(join"})"), "1");
  EXPECT_EQ(Value(t, l + R"(switchover"})"), "1");
  EXPECT_EQ(Value(t, l + R"(remove"})"), "0");
}

TEST(MetricsSets, EachAlarmThisNodeRaisedIsAGaugeOfOne) {
  agent::NodeMetrics m = Primary();
  EXPECT_EQ(RenderMetrics(m, "1").find("tandem_alarm{"), std::string::npos) << "none: no sample";
  m.alarms = {{1001, "cluster-communication-failure", "n3"}, {1007, "no-synchronous-standby", ""}};
  const std::string t = RenderMetrics(m, "1");
  const std::string l = R"(tandem_alarm{cluster="c1",node="n1",id=")";
  EXPECT_EQ(Value(t, l + R"(1001",name="cluster-communication-failure",alarm_node="n3"})"), "1")
      << t;
  EXPECT_EQ(Value(t, l + R"(1007",name="no-synchronous-standby",alarm_node=""})"), "1") << t;
}

TEST(MetricsSets, EveryFamilyHasHelpTypeAndTheSetsPrefix) {
  std::set<std::string> names;
  for (const auto& f : PatroniFamilies(Primary(), "1")) {
    EXPECT_TRUE(StartsWith(f.name, "patroni_")) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
    EXPECT_TRUE(names.insert(f.name).second) << f.name;
  }
  for (const auto& f : TandemFamilies(Primary(), "1")) {
    EXPECT_TRUE(StartsWith(f.name, "tandem_")) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
    EXPECT_TRUE(names.insert(f.name).second) << f.name;
    // Conventions: counters end in _total, durations are seconds.
    if (f.type == prom::Type::kCounter) {
      EXPECT_TRUE(f.name.ends_with("_total")) << f.name;
    }
    if (f.type == prom::Type::kHistogram) {
      EXPECT_TRUE(f.name.ends_with("_seconds")) << f.name;
    }
  }
  // The ones the issue names, at least.
  for (const char* n :
       {"patroni_version", "patroni_postgres_running", "patroni_postmaster_start_time",
        "patroni_primary", "patroni_replica", "patroni_standby_leader", "patroni_sync_standby",
        "patroni_xlog_location", "patroni_xlog_received_location", "patroni_xlog_replayed_location",
        "patroni_xlog_replayed_timestamp", "patroni_xlog_paused", "patroni_postgres_timeline",
        "patroni_cluster_unlocked", "patroni_failsafe_mode_is_active", "patroni_dcs_last_seen",
        "patroni_pending_restart", "patroni_is_paused"}) {
    EXPECT_EQ(names.count(n), 1u) << n;
  }
}

TEST(MetricsSets, PaddedVersion) {
  EXPECT_EQ(PaddedVersion("3.0.2"), 30002u);
  EXPECT_EQ(PaddedVersion("0.1.0"), 100u);
  EXPECT_EQ(PaddedVersion("1.2.3-rc1"), 10203u);
  EXPECT_EQ(PaddedVersion("junk"), 0u);
}

// ---- the route, through the real Routes table on an idle agent ----

TEST_F(RoutesTest, MetricsAnswersPrometheusText) {
  const HttpAnswer a = Call("GET", "/metrics");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.content_type, "text/plain; version=0.0.4; charset=utf-8");
  // An idle agent (not a member): PostgreSQL not running, no leader.
  EXPECT_EQ(Value(a.body, R"(patroni_postgres_running{scope="tandem",name="n1"})"), "0");
  EXPECT_EQ(Value(a.body, R"(patroni_cluster_unlocked{scope="tandem",name="n1"})"), "1");
  EXPECT_EQ(Value(a.body, R"(tandem_member{cluster="tandem",node="n1"})"), "0");
}

TEST_F(RoutesTest, MetricsRefusesAnyQueryParameter) {
  const std::string before = Snapshot();
  const HttpAnswer a = Call("GET", "/metrics?name[]=up");
  EXPECT_EQ(a.status, 400);
  ExpectJsonError(a, "unknown query parameter");
  EXPECT_NE(a.body.find("name[]"), std::string::npos) << a.body;
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(RoutesTest, MetricsHasNoPostButGetAndHead) {
  const auto m = routes_.Find("POST", "/metrics");
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_TRUE(m.path_known) << "a 405, not a 404";
  EXPECT_EQ(m.allow, "GET, HEAD");
  EXPECT_NE(routes_.Find("HEAD", "/metrics").handler, nullptr);
}

}  // namespace
}  // namespace tandem::api
