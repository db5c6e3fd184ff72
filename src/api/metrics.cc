// The two metric sets of GET /metrics (metrics.h) built from one snapshot,
// and the route. The families are pure; the handler runs on an API worker.
#include "api/metrics.h"

#include <algorithm>

#include "api/request_schema.h"
#include "api/routes.h"
#include "base/strings.h"

#ifndef TANDEM_VERSION
#define TANDEM_VERSION "0.1.0"
#endif

namespace tandem::api {

namespace {

using prom::Family;
using prom::Type;
using prom::Value;

// Families with the labels every sample of a set carries.
class Families {
 public:
  explicit Families(prom::Labels base) : base_(std::move(base)) {}
  // A family of one sample with the base labels.
  void One(const std::string& name, const std::string& help, Type type, Value v) {
    Add(name, help, type).samples.push_back({base_, v});
  }
  void Gauge(const std::string& name, const std::string& help, Value v) {
    One(name, help, Type::kGauge, v);
  }
  void Flag(const std::string& name, const std::string& help, bool v) {
    Gauge(name, help, uint64_t{v ? 1u : 0u});
  }
  Family& Add(const std::string& name, const std::string& help, Type type) {
    out_.push_back(Family{name, help, type, {}, {}});
    return out_.back();
  }
  // The base labels and one more.
  prom::Labels With(const std::string& name, const std::string& value) const {
    prom::Labels l = base_;
    l.emplace_back(name, value);
    return l;
  }
  const prom::Labels& Base() const { return base_; }
  std::vector<Family> Take() { return std::move(out_); }

 private:
  prom::Labels base_;
  std::vector<Family> out_;
};

prom::HistogramSample Histogram(prom::Labels labels, const agent::DurationHistogram::Snapshot& h) {
  return {std::move(labels), h.upper_bounds_seconds, h.counts, h.sum_seconds};
}

// The replica-side positions, as Patroni reports them (0 on a primary).
void AddXlog(Families& f, const agent::NodeMetrics& m) {
  const bool standby = m.pg_running && m.in_recovery;
  const bool writer = m.pg_running && !m.in_recovery;
  const uint64_t replayed = standby && m.pg_queried ? m.replayed_lsn : 0;
  // Patroni: the received position, or the replayed one when nothing was received.
  const uint64_t received =
      standby && m.pg_queried ? (m.received_lsn != 0 ? m.received_lsn : m.replayed_lsn) : 0;
  f.One("patroni_xlog_location",
        "Current location of the Postgres transaction log, 0 if this node is not the leader.",
        Type::kCounter, uint64_t{writer ? m.lsn : 0});
  f.Flag("patroni_standby_leader", "Value is 1 if this node is the standby_leader, 0 otherwise.",
         false);
  f.Flag("patroni_replica", "Value is 1 if this node is a replica, 0 otherwise.", standby);
  f.Flag("patroni_sync_standby", "Value is 1 if this node is a sync standby, 0 otherwise.",
         m.sync_standby);
  f.One("patroni_xlog_received_location",
        "Current location of the received Postgres transaction log, 0 if this node is not a "
        "replica.",
        Type::kCounter, received);
  f.One("patroni_xlog_replayed_location",
        "Current location of the replayed Postgres transaction log, 0 if this node is not a "
        "replica.",
        Type::kCounter, replayed);
  f.Gauge("patroni_xlog_replayed_timestamp",
          "Current timestamp of the replayed Postgres transaction log, 0 if null.",
          standby ? m.replayed_timestamp : 0.0);
  f.Flag("patroni_xlog_paused", "Value is 1 if the Postgres xlog is paused, 0 otherwise.",
         standby && m.replay_paused);
  f.Flag("patroni_postgres_streaming", "Value is 1 if Postgres is streaming, 0 otherwise.",
         standby && m.streaming);
  f.Flag("patroni_postgres_in_archive_recovery",
         "Value is 1 if Postgres is replicating from archive, 0 otherwise.", false);
}

}  // namespace

uint64_t PaddedVersion(const std::string& version) {
  uint64_t out = 0;
  for (const auto& part : Split(version.substr(0, version.find_first_of("-+~ ")), '.')) {
    auto n = ParseInt(part);
    out = out * 100 + static_cast<uint64_t>(n && *n >= 0 && *n < 100 ? *n : 0);
  }
  return out;
}

std::vector<Family> PatroniFamilies(const agent::NodeMetrics& m, const std::string& version) {
  Families f({{"scope", m.cluster}, {"name", m.node}});
  f.Gauge("patroni_version", "Patroni semver without periods.", PaddedVersion(version));
  f.Flag("patroni_postgres_running", "Value is 1 if Postgres is running, 0 otherwise.",
         m.pg_running);
  f.Gauge("patroni_postmaster_start_time", "Epoch seconds since Postgres started.",
          m.pg_running ? m.postmaster_start_time : 0.0);
  f.Flag("patroni_master", "Value is 1 if this node is the leader, 0 otherwise.", m.primary);
  f.Flag("patroni_primary", "Value is 1 if this node is the leader, 0 otherwise.", m.primary);
  AddXlog(f, m);
  f.Gauge("patroni_postgres_server_version", "Version of Postgres (if running), 0 otherwise.",
          uint64_t(m.pg_running && m.server_version > 0 ? m.server_version : 0));
  f.Flag("patroni_cluster_unlocked", "Value is 1 if the cluster is unlocked, 0 if locked.",
         !m.has_leader);
  f.Flag("patroni_failsafe_mode_is_active", "Value is 1 if failsafe mode is active, 0 if inactive.",
         false);
  f.Flag("patroni_failsafe_mode_enabled", "Value is 1 if failsafe_mode is enabled, 0 otherwise.",
         false);
  f.Gauge("patroni_postgres_timeline", "Postgres timeline of this node (if running), 0 otherwise.",
          uint64_t{m.pg_running ? m.timeline : 0});
  f.Gauge("patroni_dcs_last_seen",
          "Epoch timestamp when DCS was last contacted successfully by Patroni.",
          int64_t{m.counters.store_last_seen_ms / 1000});
  f.Flag("patroni_pending_restart", "Value is 1 if the node needs a restart, 0 otherwise.",
         m.pending_restart > 0);
  f.Flag("patroni_is_paused", "Value is 1 if auto failover is disabled, 0 otherwise.", m.paused);
  return f.Take();
}

namespace {

// The node's role, one-hot over a fixed set (every series always present).
const char* RoleOf(const agent::NodeMetrics& m) {
  if (m.primary) return "primary";
  if (!m.pg_running) return "stopped";
  if (m.in_recovery) return "replica";
  return "unfenced";  // writable without the key (or past its deadline): being demoted
}

void AddRoleAndLease(Families& f, const agent::NodeMetrics& m) {
  Family& role = f.Add("tandem_node_role",
                       "1 for this node's current role: primary (writable, holding the leader key "
                       "within its lease), replica (a running standby), stopped (PostgreSQL not "
                       "running), unfenced (writable without the key: being demoted).",
                       Type::kGauge);
  const std::string current = RoleOf(m);
  for (const char* r : {"primary", "replica", "stopped", "unfenced"}) {
    role.samples.push_back({f.With("role", r), uint64_t{current == r ? 1u : 0u}});
  }
  f.Flag("tandem_member", "1 if this node belongs to a cluster.", m.member);
  f.Flag("tandem_leader_key_held", "1 if the leader key names this node (as last read).",
         m.has_leader && m.leader == m.node);
  f.Flag("tandem_lease_held", "1 if this node holds a session lease in the store.", m.lease_held);
  f.Gauge("tandem_lease_remaining_seconds",
          "Time left until the session lease's local deadline (ttl minus the safety margin from "
          "the last renewal sent); 0 or less: passed.",
          static_cast<double>(m.lease_remaining_ms) / 1000.0);
  f.Flag("tandem_fence_armed", "1 while the fencing watchdog guards a writable primary.",
         m.fence_armed);
  f.One("tandem_leader_changes_total",
        "Times this node saw the leader key name a different holder than before.", Type::kCounter,
        m.counters.leader_changes);
  Family& renewals = f.Add("tandem_lease_renewals_total",
                           "Session lease renewals (and grants) by result.", Type::kCounter);
  renewals.samples.push_back({f.With("result", "ok"), m.counters.lease_renewals_ok});
  renewals.samples.push_back({f.With("result", "failed"), m.counters.lease_renewals_failed});
  f.Add("tandem_lease_renewal_duration_seconds",
        "How long a lease renewal took (the store's round trip).", Type::kHistogram)
      .histograms.push_back(Histogram(f.Base(), m.counters.lease_renewal));
  f.Add("tandem_ha_cycle_duration_seconds",
        "How long one HA cycle took (observe, decide, act, publish, housekeeping).",
        Type::kHistogram)
      .histograms.push_back(Histogram(f.Base(), m.counters.cycle));
  Family& actions =
      f.Add("tandem_ha_actions_total", "Actions of HA decisions carried out, by action and result.",
            Type::kCounter);
  for (size_t i = 0; i < m.counters.actions.size(); ++i) {
    const char* name = core::ActionName(static_cast<core::ActionType>(i));
    prom::Labels l = f.With("action", name);
    l.emplace_back("result", "ok");
    actions.samples.push_back({l, m.counters.actions[i][0]});
    l.back().second = "failed";
    actions.samples.push_back({l, m.counters.actions[i][1]});
  }
  f.One("tandem_fencing_stops_total",
        "Times the watchdog stopped PostgreSQL because the lease deadline passed.", Type::kCounter,
        m.counters.fenced);
}

void AddClusterAndReplication(Families& f, const agent::NodeMetrics& m) {
  f.Flag("tandem_store_reachable", "1 if the last HA cycle could read the store.", m.store_ok);
  f.Gauge("tandem_store_last_seen_timestamp_seconds",
          "When the store last answered a lease renewal (Unix seconds; 0 = never).",
          static_cast<double>(m.counters.store_last_seen_ms) / 1000.0);
  f.Flag("tandem_cluster_paused", "1 while the cluster is paused (maintenance mode).", m.paused);
  f.Gauge("tandem_members_live", "Members with a live state in the store (as last read).",
          uint64_t(m.members));
  f.Gauge("tandem_members_registered", "Nodes registered in the cluster (as last read).",
          uint64_t(m.nodes));
  f.Gauge("tandem_sync_standbys",
          "Standbys in the sync record (the writer excluded): the sync set's size.",
          uint64_t(m.sync_standbys));
  f.Gauge("tandem_sync_quorum", "Acknowledgements the sync record counts on (0: none).",
          uint64_t(m.sync_quorum));
  Family& bytes = f.Add("tandem_replication_lag_bytes",
                        "On the primary, per replica: WAL this primary has flushed that the "
                        "replica has not flushed (pg_stat_replication).",
                        Type::kGauge);
  Family& seconds = f.Add("tandem_replication_lag_seconds",
                          "On the primary, per replica: PostgreSQL's replay_lag (0 when it "
                          "reports none: caught up and idle).",
                          Type::kGauge);
  Family& sync = f.Add("tandem_replication_sync",
                       "On the primary, per replica: 1 if PostgreSQL counts it synchronous "
                       "(sync_state sync or quorum).",
                       Type::kGauge);
  for (const auto& r : m.replicas) {
    bytes.samples.push_back({f.With("replica", r.name), r.lag_bytes});
    seconds.samples.push_back({f.With("replica", r.name), r.lag_seconds});
    sync.samples.push_back({f.With("replica", r.name), uint64_t{r.sync ? 1u : 0u}});
  }
}

void AddOperationsAndCertificates(Families& f, const agent::NodeMetrics& m) {
  Family& ops = f.Add("tandem_operation_in_progress",
                      "1 while an operator command runs on this node or an operator request "
                      "(switchover, failover) is due in the cluster.",
                      Type::kGauge);
  std::vector<std::string> known = {"initialize",  "join",       "remove",
                                    "clear-error", "switchover", "failover"};
  for (const auto& o : m.operations) {
    if (std::find(known.begin(), known.end(), o) == known.end()) known.push_back(o);
  }
  for (const auto& o : known) {
    const bool on = std::find(m.operations.begin(), m.operations.end(), o) != m.operations.end();
    ops.samples.push_back({f.With("operation", o), uint64_t{on ? 1u : 0u}});
  }
  Family& certs = f.Add("tandem_certificate_expiry_timestamp_seconds",
                        "When each of this node's TLS certificates expires (Unix seconds; 0: the "
                        "file does not decode).",
                        Type::kGauge);
  for (const auto& c : m.certificates) {
    prom::Labels l = f.With("certificate", c.name);
    l.emplace_back("file", c.path);
    certs.samples.push_back({l, c.not_after});
  }
  // docs/alarms.md: one sample per alarm this node raised (a node's own, the
  // cluster-wide ones on the steward), so a sum over nodes counts each once.
  Family& alarms = f.Add("tandem_alarm",
                         "1 for each active alarm this node raised (id and name from "
                         "docs/alarms.md; alarm_node: the node it is about, \"\" for the "
                         "whole cluster).",
                         Type::kGauge);
  for (const auto& a : m.alarms) {
    prom::Labels l = f.With("id", std::to_string(a.id));
    l.emplace_back("name", a.name);
    l.emplace_back("alarm_node", a.node);
    alarms.samples.push_back({l, uint64_t{1}});
  }
}

}  // namespace

std::vector<Family> TandemFamilies(const agent::NodeMetrics& m, const std::string& version) {
  Families f({{"cluster", m.cluster}, {"node", m.node}});
  f.Add("tandem_build_info", "Always 1; the version of the agent that answers.", Type::kGauge)
      .samples.push_back({f.With("version", version), uint64_t{1}});
  AddRoleAndLease(f, m);
  AddClusterAndReplication(f, m);
  AddOperationsAndCertificates(f, m);
  return f.Take();
}

std::string RenderMetrics(const agent::NodeMetrics& m, const std::string& version) {
  std::vector<Family> all = PatroniFamilies(m, version);
  for (auto& fam : TandemFamilies(m, version)) all.push_back(std::move(fam));
  return prom::Render(all);
}

void AddMetricsRoute(Routes& routes, agent::Agent& agent) {
  const RequestSchema* schema = nullptr;
  for (const auto& s : ApiRequestSchemas()) {
    if (s.method == "GET" && s.path == "/metrics") schema = &s;
  }
  TANDEM_CHECK(schema != nullptr, "no request schema for GET /metrics");
  routes.Add("GET", "/metrics", [&agent, schema](const HttpRequest& req) {
    if (auto bad = CheckRequest(*schema, req, nullptr)) return *bad;
    HttpAnswer a;
    a.content_type = prom::kContentType;
    a.body = RenderMetrics(agent.MetricsSnapshot(), TANDEM_VERSION);
    return a;
  });
}

}  // namespace tandem::api
