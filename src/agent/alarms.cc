// The agent's side of the alarms (docs/alarms.md): what this node observes
// for the rules (ObserveForAlarms), asking core::EvaluateAlarms once a cycle
// and handing what held long enough to the AlarmKeeper (UpdateAlarms, one
// call from Housekeeping), and the alarms document of the API and status
// (AlarmsJson).
//
// Thread: UpdateAlarms on the HA loop only (touches alarms_, alarm_first_seen_,
// alarm_inputs_; reads state_ and last_reason_ under mu_, restart_required_
// under tls_mu_; one PostgreSQL query, a statvfs and the certificate checks at
// most every kAlarmSlowInputsMs). AlarmsJson on API workers (two store reads).
#include <sys/statvfs.h>

#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/tls_files.h"
#include "base/clock.h"
#include "base/log.h"
#include "core/switchover_time.h"

namespace tandem::agent {
using nlohmann::json;

namespace {

std::optional<core::DiskSpace> DiskOf(const std::string& dir) {
  struct statvfs st {};
  if (dir.empty() || ::statvfs(dir.c_str(), &st) != 0) return std::nullopt;
  core::DiskSpace d;
  d.free_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  d.total_bytes = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
  return d;
}

std::vector<core::CertificateCheck> CertificateChecks(const std::vector<CertificateState>& states) {
  std::vector<core::CertificateCheck> out;
  for (const auto& s : states) {
    out.push_back(core::CertificateCheck{
        s.name, s.path, s.summary.state == pki::CertState::kInvalid,
        s.summary.state == pki::CertState::kExpiring, s.days_left, s.summary.text});
  }
  return out;
}

json AlarmJson(const AlarmRecord& r) {
  const core::AlarmDef* def = core::FindAlarm(r.id);
  return {{"id", r.id},
          {"name", r.name},
          {"severity", r.severity},
          {"node", r.node},
          {"detail", r.detail},
          {"raised_ms", r.raised_ms},
          {"raised", core::FormatUtc(r.raised_ms)},
          {"raised_by", r.raised_by},
          {"cleared_ms", r.cleared_ms},
          {"cleared", r.cleared_ms != 0 ? json(core::FormatUtc(r.cleared_ms)) : json(nullptr)},
          {"cause", def != nullptr ? def->cause : ""},
          {"fix", def != nullptr ? def->fix : ""}};
}

}  // namespace

core::AlarmObservation Agent::ObserveForAlarms(const ClusterView& view,
                                               const core::LocalPostgres& local) {
  core::AlarmObservation o;
  o.self = cfg_.node_name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    o.member = state_.member;
    o.error_state = state_.error;
    o.error_text = state_.last_command.error;
    o.postgres_error = postgres_error_;
    o.decide_reason = last_reason_;
  }
  o.failover_needs_decision = o.decide_reason.find("no automatic failover") != std::string::npos;
  {
    std::lock_guard<std::mutex> lock(tls_mu_);
    o.restart_required = restart_required_;
  }
  o.leader = view.leader;
  o.members = view.members;
  for (const auto& [name, n] : view.nodes) o.nodes.push_back({name, n.etcd_member_id != 0});
  o.embedded_store = cfg_.embedded_etcd();
  o.sync = view.sync;
  o.sync_mode = cfg_.ha.sync_mode;
  o.max_lag_bytes = cfg_.ha.max_lag_bytes;
  o.pg = local;
  o.streaming = streaming_;
  o.store_member_running = !o.embedded_store || etcd_.Running();
  const MonoMs now = clock_.Now();
  if (now >= alarm_inputs_.due) {
    alarm_inputs_.due = now + kAlarmSlowInputsMs;
    alarm_inputs_.pending_restart.clear();
    if (local.running) {
      auto p = pg_->PendingRestart();
      if (p.ok()) alarm_inputs_.pending_restart = *p;
    }
    alarm_inputs_.certificates =
        CertificateChecks(CertificateStates(TlsConfig(), clock_.WallNow() / 1000));
    alarm_inputs_.data_disk = DiskOf(cfg_.pg_data_dir);
  }
  o.pending_restart = alarm_inputs_.pending_restart;
  o.certificates = alarm_inputs_.certificates;
  o.data_disk = alarm_inputs_.data_disk;
  return o;
}

void Agent::UpdateAlarms(const ClusterView& view, const core::LocalPostgres& local) {
  auto store = Store();
  if (!store) return;
  const core::AlarmObservation o = ObserveForAlarms(view, local);
  const auto wanted =
      core::AlarmsHeldLongEnough(core::EvaluateAlarms(o), clock_.Now(), &alarm_first_seen_);
  AlarmOwnership own;
  own.self = cfg_.node_name;
  own.steward = o.member && core::AlarmSteward(view.leader, view.members) == cfg_.node_name;
  for (const auto& [name, n] : view.nodes) own.registered.insert(name);
  alarms_.Update(*store, wanted, own, clock_.WallNow(), clock_.Now());
}

Result<json> Agent::AlarmsJson(bool with_history) {
  auto store = Store();
  if (!store) {
    return Error(ErrorCode::kUnavailable,
                 "this node has no store connection (not a member of a cluster?)");
  }
  auto read = ReadAlarms(*store, alarms_.keys(), with_history);
  if (!read) return read.error();
  json out{{"active", json::array()}};
  for (const auto& r : read->active) out["active"].push_back(AlarmJson(r));
  if (with_history) {
    out["history"] = json::array();
    for (const auto& r : read->history) out["history"].push_back(AlarmJson(r));
  }
  return out;
}

}  // namespace tandem::agent
