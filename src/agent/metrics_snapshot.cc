// Agent::MetricsSnapshot (agent.h): what GET /metrics reports (metrics_snapshot.h),
// from the state the status and the health endpoints read, the registry's
// counters, the certificate files (checked at most once a minute), and one query of the local
// PostgreSQL for what the loop does not keep (ParsePgMetricRows). Runs on an API worker; takes mu_,
// route_mu_ and tls_mu_ briefly, one at a time, never across I/O.
#include <cstdlib>

#include "agent/agent.h"
#include "agent/tls_files.h"
#include "base/strings.h"

namespace tandem::agent {

namespace {

// One column, one "key value" row per fact: Controller::Sql returns the first
// column. The CASEs keep the functions that fail on the other role unevaluated.
constexpr const char* kPgMetricsQuery =
    "SELECT 'start ' || coalesce(extract(epoch FROM pg_postmaster_start_time()), 0)"
    " UNION ALL SELECT 'version ' || current_setting('server_version_num')"
    " UNION ALL SELECT 'pending ' || count(*) FROM pg_settings WHERE pending_restart"
    " UNION ALL SELECT 'received ' || coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0'), "
    "0)"
    " UNION ALL SELECT 'replayed ' || coalesce(pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0'), 0)"
    " UNION ALL SELECT 'replay_ts ' ||"
    " coalesce(extract(epoch FROM pg_last_xact_replay_timestamp()), 0)"
    " UNION ALL SELECT 'paused ' ||"
    " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused()::int ELSE 0 END"
    " UNION ALL SELECT 'replica ' || CASE WHEN pg_is_in_recovery() THEN 0 ELSE"
    " coalesce(pg_wal_lsn_diff(pg_current_wal_flush_lsn(), flush_lsn), 0) END"
    " || ' ' || coalesce(extract(epoch FROM replay_lag), 0) || ' ' || coalesce(sync_state, '')"
    " || ' ' || coalesce(application_name, '') FROM pg_stat_replication";

double ToDouble(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  return end != s.c_str() ? v : 0;
}

uint64_t ToLsn(const std::string& s) {
  const double v = ToDouble(s);
  return v > 0 ? static_cast<uint64_t>(std::strtoull(s.c_str(), nullptr, 10)) : 0;
}

// The word after "tandem cluster " in a last command ("tandem cluster join
// 10.0.0.1:8008" -> "join").
std::string OperationOf(const std::string& command) {
  constexpr std::string_view kPrefix = "tandem cluster ";
  if (!StartsWith(command, kPrefix)) return command.substr(0, command.find(' '));
  const std::string rest = command.substr(kPrefix.size());
  return rest.substr(0, rest.find(' '));
}

}  // namespace

void ParsePgMetricRows(const std::vector<std::string>& rows, NodeMetrics* m) {
  for (const auto& row : rows) {
    const auto sp = row.find(' ');
    if (sp == std::string::npos) continue;
    const std::string key = row.substr(0, sp), value = row.substr(sp + 1);
    if (key == "start") {
      m->postmaster_start_time = ToDouble(value);
    } else if (key == "version") {
      m->server_version = static_cast<int>(ToDouble(value));
    } else if (key == "pending") {
      m->pending_restart = static_cast<int>(ToDouble(value));
    } else if (key == "received") {
      m->received_lsn = ToLsn(value);
    } else if (key == "replayed") {
      m->replayed_lsn = ToLsn(value);
    } else if (key == "replay_ts") {
      m->replayed_timestamp = ToDouble(value);
    } else if (key == "paused") {
      m->replay_paused = value == "1";
    } else if (key == "replica") {
      // "<lag bytes> <lag seconds> <sync_state> <application_name>"
      const auto parts = Split(value, ' ');
      if (parts.size() < 4 || parts[3].empty()) continue;
      NodeMetrics::Replica r;
      r.lag_bytes = ToLsn(parts[0]);
      r.lag_seconds = ToDouble(parts[1]);
      r.sync = parts[2] == "sync" || parts[2] == "quorum";
      r.name = value.substr(parts[0].size() + parts[1].size() + parts[2].size() + 3);
      m->replicas.push_back(std::move(r));
    }
  }
}

NodeMetrics Agent::MetricsSnapshot() {
  NodeMetrics m;
  m.cluster = cfg_.cluster;
  m.node = cfg_.node_name;
  m.wall_now_ms = clock_.WallNow();
  const Health h = GetHealth();
  m.primary = h.primary;
  m.replica = h.replica;
  m.sync_standby = h.sync_standby;
  {
    std::lock_guard<std::mutex> lock(mu_);
    m.member = state_.member;
    m.pg_running = last_local_.running;
    m.in_recovery = last_local_.in_recovery;
    m.timeline = last_local_.timeline;
    m.lsn = last_local_.lsn;
    m.store_ok = store_ok_;
    if (state_.last_command.result == "Running") {
      m.operations.push_back(OperationOf(state_.last_command.command));
    }
    if (last_view_) {
      const ClusterView& v = *last_view_;
      m.has_leader = v.leader.has_value() && !v.leader->holder.empty();
      if (m.has_leader) m.leader = v.leader->holder;
      m.paused = v.paused;
      m.members = static_cast<int>(v.members.size());
      m.nodes = static_cast<int>(v.nodes.size());
      // The loop's own state as of that cycle (RunCycle puts it in the view).
      if (auto self = v.members.find(cfg_.node_name); self != v.members.end()) {
        m.streaming = self->second.streaming;
      }
      if (v.sync) {
        for (const auto& s : v.sync->members) m.sync_standbys += s != v.sync->leader ? 1 : 0;
        m.sync_quorum = v.sync->quorum;
        m.sync_mode = core::SyncModeName(v.sync->mode);
      }
      if (auto intent = ToCoreIntent(v.intent, m.wall_now_ms); intent && intent->due) {
        m.operations.push_back(intent->kind == core::Intent::Kind::kSwitchover ? "switchover"
                                                                               : "failover");
      }
    }
  }
  m.lease_held = lease_.load() != 0;
  m.lease_remaining_ms = m.lease_held ? lease_deadline_.load() - clock_.Now() : 0;
  m.fence_armed = fence_deadline_.load() != 0;
  if (m.pg_running) {
    std::vector<std::string> rows;
    if (metrics_.QueryPostgres([this] { return pg_->Sql(kPgMetricsQuery); }, &rows)) {
      m.pg_queried = true;
      ParsePgMetricRows(rows, &m);
    }
  }
  const MonoMs now = clock_.Now();
  if (auto certs = metrics_.Certificates(now)) {
    m.certificates = std::move(*certs);
  } else {
    for (const auto& c : CertificateStates(TlsConfig(), m.wall_now_ms / 1000)) {
      m.certificates.push_back({c.name, c.path, c.not_after});
    }
    metrics_.SetCertificates(now, m.certificates);
  }
  for (const auto& a : alarms_.RaisedHere()) m.alarms.push_back({a.id, a.name, a.node});
  m.counters = metrics_.Read();
  return m;
}

}  // namespace tandem::agent
