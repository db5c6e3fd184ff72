// The status document behind `tandem cluster status` and GET /v1/status.
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/agent.h"
#include "agent/schema_op.h"
#include "agent/tls_files.h"
#include "base/clock.h"
#include "base/reexec.h"
#include "base/strings.h"
#include "core/candidates.h"
#include "core/switchover_time.h"
#include "core/sync.h"

namespace tandem::agent {
using nlohmann::json;

namespace {

// What every member's entry is judged against.
struct MemberStatusInput {
  const Config& cfg;
  const ClusterView& v;
  const std::string& leader;
  uint64_t leader_lsn = 0;
  uint32_t leader_tl = 0;
  const std::vector<CertificateState>& cert_states;
  const std::map<std::string, net::PeerCertificate>& peer_certs;
  // Members with an active communication-failure alarm (alarm 1001).
  const std::set<std::string>& unreachable;
};

// Seed 2's clustering state of a member: "This system", "Active" (its agent
// publishes a running PostgreSQL), "Failed" (its database is not running, or
// it is unreachable long enough to be alarmed), "Unknown" (no state yet).
std::string ClusteringState(const MemberStatusInput& in, const std::string& name,
                            const core::MemberState* published) {
  if (name == in.cfg.node_name) return "This system";
  if (published == nullptr) return in.unreachable.count(name) != 0 ? "Failed" : "Unknown";
  const bool runs =
      published->role == core::Role::kPrimary || published->role == core::Role::kReplica;
  return runs ? "Active" : "Failed";
}

// A member's role as this node sees it, and how far it is from the leader.
struct MemberRole {
  std::string role = "unknown";
  bool in_sync = false;
  uint64_t lag = 0;
  uint32_t timeline = 0;
};

// Judges the member's published state against the leader's; adds its
// warnings and, for a live replica, its name.
MemberRole JudgeMemberRole(const MemberStatusInput& in, const std::string& name,
                           const core::MemberState& s, json& warnings,
                           std::vector<std::string>& live_replicas) {
  MemberRole r;
  r.timeline = s.timeline;
  if (name == in.leader && s.role == core::Role::kPrimary) {
    r.role = "primary";
    r.in_sync = true;
  } else if (s.role == core::Role::kReplica) {
    r.role = "replica";
    live_replicas.push_back(name);
    r.lag = in.leader_lsn > s.lsn ? in.leader_lsn - s.lsn : 0;
    r.in_sync = s.streaming && s.following == in.leader && s.timeline == in.leader_tl &&
                r.lag <= in.cfg.ha.max_lag_bytes;
  } else if (s.role == core::Role::kPrimary) {
    r.role = "primary";  // a primary without the key: shown, and warned about below
    warnings.push_back(name + " runs as a primary without holding the leader key");
  } else if (s.role == core::Role::kStopped) {
    r.role = "unknown";
  } else if (s.role == core::Role::kWitness) {
    r.role = "witness";  // votes in the store; no PostgreSQL
  }
  return r;
}

// The member's certificate state: this node's as checked now; a peer's as it
// published it, unless this node's own check of the server certificate the
// peer presents (as enforce judges it) found a problem.
void AddMemberCertificate(const MemberStatusInput& in, const std::string& name,
                          const core::MemberState* published, json& m, json& warnings) {
  if (name == in.cfg.node_name && in.cfg.tls_enabled()) {
    m["certificate"] = NodeCertificateSummary(in.cert_states);
  } else if (published != nullptr && !published->certificate.empty()) {
    m["certificate"] = published->certificate;
  } else {
    m["certificate"] = published != nullptr ? "no TLS" : "Unknown";
  }
  // What the member says of its own files, whatever this node's check says
  // (`cluster tls-mode` reads this, so a failure here is not counted twice).
  m["certificate_reported"] = m["certificate"];
  if (auto pc = in.peer_certs.find(name); pc != in.peer_certs.end()) {
    const auto& c = pc->second;
    m["certificate_checked_here"] = {{"text", c.summary.text},
                                     {"reached", c.reached},
                                     {"serial", c.serial},
                                     {"detail", c.detail}};
    if (c.reached && c.summary.state == pki::CertState::kInvalid) {
      m["certificate"] = c.summary.text;
      warnings.push_back("peer " + name + ": " + c.detail);
    }
  }
}

// One entry of "members"; adds its warnings and, for a live replica, its name.
json MemberStatus(const MemberStatusInput& in, const std::string& name, const NodeInfo& n,
                  json& warnings, std::vector<std::string>& live_replicas) {
  json m;
  m["name"] = name;
  m["host"] = n.host;
  m["port"] = n.pg_port;
  m["api_url"] = n.api_url;
  m["proxy_read_write_port"] = n.proxy_rw_port;
  m["proxy_read_only_port"] = n.proxy_ro_port;
  m["me"] = name == in.cfg.node_name;
  m["witness"] = n.witness;
  m["voter"] = n.etcd_member_id != 0 || !in.cfg.embedded_etcd();
  auto ms = in.v.members.find(name);
  const core::MemberState* published = ms != in.v.members.end() ? &ms->second : nullptr;
  m["connected"] = published != nullptr;
  const MemberRole r = published != nullptr
                           ? JudgeMemberRole(in, name, *published, warnings, live_replicas)
                           : MemberRole{};
  m["role"] = r.role;
  m["clustering"] = ClusteringState(in, name, published);
  AddMemberCertificate(in, name, published, m, warnings);
  m["in_sync"] = r.in_sync;
  m["sync_standby"] = in.v.sync && in.v.sync->quorum > 0 && name != in.leader &&
                      std::find(in.v.sync->members.begin(), in.v.sync->members.end(), name) !=
                          in.v.sync->members.end();
  m["lag_bytes"] = r.lag;
  m["timeline"] = r.timeline;
  return m;
}

// "tls": this node's certificates as checked now (null without TLS).
json TlsStatus(const Config& cfg, const std::vector<CertificateState>& cert_states,
               const std::string& restart_required) {
  if (!cfg.tls_enabled()) return nullptr;
  json states = json::object();
  for (const auto& c : cert_states) {
    states[c.name] = {{"path", c.path},
                      {"state", c.summary.state == pki::CertState::kValid      ? "valid"
                                : c.summary.state == pki::CertState::kExpiring ? "expiring"
                                                                               : "invalid"},
                      {"text", c.summary.text},
                      {"days_left", c.days_left},
                      {"not_after", c.not_after ? json(pki::FormatUtc(c.not_after)) : json()}};
  }
  return {{"mode", TlsModeName(cfg.tls_mode)},
          {"verify_hostname", cfg.tls_verify_hostname},
          {"certificate", NodeCertificateSummary(cert_states)},
          {"certificates", states},
          {"restart_required", restart_required}};
}

// "proxy": where this node's proxy sends connections now (null when off).
json ProxyStatus(const Config& cfg, const core::Route& route) {
  if (!cfg.proxy_enabled()) return nullptr;
  json ro = json::array();
  for (const auto& t : route.read_only) ro.push_back(t.member);
  return {{"listen", cfg.proxy_listen_address()},
          {"read_write_port", cfg.proxy_rw_port},
          {"read_only_port", cfg.proxy_ro_port},
          {"read_write_target", route.read_write ? json(route.read_write->member) : json(nullptr)},
          {"read_only_targets", ro},
          {"reason", route.reason}};
}

// "paused", "sync", "intent", "history" and the cluster-wide warnings.
void AddClusterStatus(const ClusterView& v, const std::string& leader, int voting,
                      const std::vector<std::string>& live_replicas, WallMs now, json& out,
                      json& warnings) {
  out["paused"] = v.paused;
  if (v.paused) {
    warnings.push_back(
        "the cluster is paused (maintenance mode): no automatic failover or restart; run "
        "`tandem cluster resume` when done");
  }
  if (v.sync) {
    out["sync"] = {{"mode", core::SyncModeName(v.sync->mode)},
                   {"recorded_by", v.sync->leader},
                   {"standbys", v.sync->members},
                   {"quorum", v.sync->quorum},
                   {"description", core::DescribeSync(v.sync->members, v.sync->quorum)},
                   {"failover_ready", core::SyncSurvivesWriterLoss(*v.sync, live_replicas)}};
  } else {
    out["sync"] = nullptr;
  }
  if (auto intent = ToCoreIntent(v.intent, now)) {
    // "scheduled": a switchover whose time has not come (cancellable);
    // "at" is its time in UTC (null for "now").
    const IntentRecord& rec = *v.intent;
    const bool scheduled =
        intent->kind == core::Intent::Kind::kSwitchover && !intent->due && intent->final_lsn == 0;
    out["intent"] = {
        {"kind", intent->kind == core::Intent::Kind::kSwitchover ? "switchover" : "failover"},
        {"from", intent->from},
        {"to", intent->to},
        {"due", intent->due},
        {"scheduled", scheduled},
        {"at_ms", rec.at_ms},
        {"at", rec.at_ms != 0 ? json(core::FormatUtc(rec.at_ms)) : json(nullptr)},
        {"expires_ms", rec.expires_ms},
        {"requested_on", rec.requested_on}};
  } else {
    out["intent"] = nullptr;
  }
  // No replica that may be promoted without a decision is alarm 1008
  // (data-loss-failover-pending), not a warning.
  if (leader.empty()) {
    warnings.push_back(
        "there is no primary: no member holds the leader key (a failover may be "
        "in progress; if this lasts, check that the replicas are running and "
        "streaming)");
  }
  if (voting > 0 && voting % 2 == 0) {
    warnings.push_back(
        std::to_string(voting) + " voting members: an even count tolerates no more failures than " +
        std::to_string(voting - 1) + " (a majority of " + std::to_string(voting / 2 + 1) +
        " is needed); add or remove a node to make the count odd");
  }
  if (voting > 0 && voting < 3) {
    warnings.push_back(
        "fewer than 3 voting members: losing one node stops automatic failover; "
        "3 or 5 are recommended");
  }
  out["history"] = json::array();
  for (const auto& h : v.history) {
    out["history"].push_back(
        {{"at_ms", h.at_ms}, {"leader", h.leader}, {"timeline", h.timeline}, {"reason", h.reason}});
  }
}

}  // namespace

json Agent::VipStatus(const core::Route& route, json& warnings) {
  // The floating IP: whether it is on this node's interface now, and which
  // node should hold it as far as this node can tell (the write route's target).
  if (!vip_) return nullptr;
  auto here = HasVip(cfg_.vip);
  std::string vip_reason;
  {
    std::lock_guard<std::mutex> lock(mu_);
    vip_reason = vip_reason_;
  }
  std::string error = vip_->error();
  if (!here.ok() && error.empty()) error = here.error().message();
  const json j = {{"address", cfg_.vip.cidr()},
                  {"interface", cfg_.vip.interface},
                  {"here", here.ok() && *here},
                  {"holder", route.read_write ? json(route.read_write->member) : json(nullptr)},
                  {"reason", vip_reason},
                  {"error", error}};
  if (!error.empty()) warnings.push_back("floating IP: " + error);
  return j;
}

namespace {

// Who this node is, and the TLS files the config names now.
json NodeIdentity(const Config& cfg, const Config& tc) {
  json out;
  out["cluster"] = cfg.cluster;
  out["node"] = cfg.node_name;
  // Which process answers (`sandbox start` waits for its own agent's).
  out["agent_pid"] = static_cast<int64_t>(::getpid());
  // Which image of that process, and which build (`tandem agent reload`
  // waits for a new image; a rolling upgrade shows each node's version).
  out["agent_image"] = ImageToken();
  out["agent_version"] = BuildVersion();
  out["agent_reload"] = {{"refused", ReloadRefusals()}, {"error", LastReloadRefusal()}};
  out["interface"] = cfg.node_interface.empty()
                         ? cfg.node_address
                         : cfg.node_interface + " (" + cfg.node_address + ")";
  out["certificates"] = {{"server_key", tc.tls_server_key},
                         {"server_cert", tc.tls_server_cert},
                         {"client_key", tc.tls_client_key},
                         {"client_cert", tc.tls_client_cert},
                         {"ca_cert", tc.tls_ca_cert}};
  return out;
}

// What the loop last recorded about this node, copied under the agent's lock.
struct LocalStatusInput {
  LocalState st;
  std::string reason, postgres_error;
  std::vector<std::string> start_warnings;
};

// This node's own part: its membership, last command and errors (a
// certificate, a restart required and PostgreSQL not starting are alarms,
// docs/alarms.md, not warnings).
void AddLocalStatus(const LocalStatusInput& in, json& out) {
  const LocalState& st = in.st;
  out["member"] = st.member;
  out["last_command"] = {{"command", st.last_command.command},
                         {"result", st.last_command.result},
                         {"error", st.last_command.error},
                         {"progress", st.last_command.progress},
                         {"at_ms", st.last_command.at_ms}};
  out["reason"] = in.reason;
  // The error an operator has not cleared yet ("" when none).
  out["error"] = st.error ? st.last_command.error : "";
  out["primary"] = nullptr;
  out["node_in_use"] = nullptr;
  out["members"] = json::array();
  // Why this node's PostgreSQL could not be configured or started ("" when
  // it runs or was not tried).
  out["postgres_error"] = in.postgres_error;
}

// The cluster as one snapshot shows it: the primary, every member, and the
// cluster-wide part. Returns the leader's name ("" when none).
std::string AddClusterView(const Config& cfg, const ClusterView& v,
                           const std::vector<CertificateState>& cert_states,
                           const std::map<std::string, net::PeerCertificate>& peer_certs,
                           WallMs now, json& out, json& warnings) {
  std::set<std::string> unreachable;
  for (const auto& a : out.value("alarms", json::array())) {
    if (a.value("id", 0) == static_cast<int>(core::AlarmId::kCommunicationFailure)) {
      unreachable.insert(a.value("node", ""));
    }
  }
  std::string leader = v.leader ? v.leader->holder : "";
  uint64_t leader_lsn = 0;
  uint32_t leader_tl = 0;
  if (!leader.empty()) {
    out["primary"] = leader;
    auto n = v.nodes.find(leader);
    if (n != v.nodes.end()) out["node_in_use"] = n->second.host;
    auto m = v.members.find(leader);
    if (m != v.members.end()) {
      leader_lsn = m->second.lsn;
      leader_tl = m->second.timeline;
    }
  }
  int voting = 0;
  std::vector<std::string> live_replicas, voters_down;
  const MemberStatusInput in{cfg,       v,           leader,     leader_lsn,
                             leader_tl, cert_states, peer_certs, unreachable};
  for (const auto& [name, n] : v.nodes) {
    if (n.etcd_member_id != 0 || !cfg.embedded_etcd()) {
      ++voting;
      if (v.members.count(name) == 0)
        voters_down.push_back(n.witness ? "the witness " + name : name);
    }
    out["members"].push_back(MemberStatus(in, name, n, warnings, live_replicas));
  }
  // A majority is left, but only just: say so (the witness's loss, or a data node's).
  if (voting >= 3 && !voters_down.empty() &&
      voting - static_cast<int>(voters_down.size()) == voting / 2 + 1) {
    warnings.push_back(Join(voters_down, ", ") + " not connected: " +
                       std::to_string(voting - static_cast<int>(voters_down.size())) + " of " +
                       std::to_string(voting) +
                       " voting members are up, so the cluster is one failure from stopping (no "
                       "majority for the store: no writes, no failover); bring " +
                       Join(voters_down, ", ") + " back");
  }
  AddClusterStatus(v, leader, voting, live_replicas, now, out, warnings);
  return leader;
}

json Finished(json out, const std::string& status, const std::string& store, const json& warnings) {
  out["status"] = status;
  out["store"] = store;
  out["warnings"] = warnings;
  return out;
}

}  // namespace

json Agent::StatusJson() {
  // The files the config names now (a rotation may have changed them).
  const Config tc = TlsConfig();
  json out = NodeIdentity(cfg_, tc);
  std::string restart_required;
  std::map<std::string, net::PeerCertificate> peer_certs;
  {
    std::lock_guard<std::mutex> lock(tls_mu_);
    restart_required = restart_required_;
    peer_certs = peer_certs_;
  }
  // Each certificate's state, checked as the agent's start-up checks it.
  const auto cert_states = CertificateStates(tc, clock_.WallNow() / 1000);
  out["tls"] = TlsStatus(cfg_, cert_states, restart_required);
  LocalStatusInput local;
  core::Route route;
  {
    std::lock_guard<std::mutex> lock(mu_);
    local = {state_, last_reason_, postgres_error_, start_warnings_};
  }
  {
    std::lock_guard<std::mutex> lock(route_mu_);
    route = last_route_;
  }
  json warnings = json::array();
  for (const auto& w : local.start_warnings) warnings.push_back(w);
  out["proxy"] = ProxyStatus(cfg_, route);
  out["vip"] = VipStatus(route, warnings);
  AddLocalStatus(local, out);
  out["alarms"] = json::array();
  const LocalState& st = local.st;
  if (!st.member)
    return Finished(std::move(out), st.error ? "Error" : "Disabled", "none", warnings);
  auto view = ReadView();
  if (!view.ok()) {
    warnings.push_back("the consensus store cannot be reached from this node: " +
                       view.error().message());
    out["alarms"] = nullptr;  // unknown: they are kept in the store
    return Finished(std::move(out), "Error", "unreachable", warnings);
  }
  const ClusterView& v = *view;
  auto alarms = AlarmsJson(false);
  out["alarms"] = alarms.ok() ? (*alarms)["active"] : json(nullptr);
  // A schema upgrade running or failed (the store's record, the same on
  // every node; docs/schema-upgrades.md): what it does now, and who runs it.
  if (auto op = ReadSchemaOperation(); op.ok() && op->has_value() && (**op).state != "done") {
    const SchemaOperation& o = **op;
    out["schema_upgrade"] = {{"command", o.command},
                             {"state", o.state},
                             {"runner", o.runner},
                             {"progress", o.progress.empty() ? "" : o.progress.back()},
                             {"error", o.error}};
  }
  const std::string leader =
      AddClusterView(cfg_, v, cert_states, peer_certs, clock_.WallNow(), out, warnings);
  return Finished(
      std::move(out),
      st.error ? "Error" : (leader.empty() ? "No primary" : (v.paused ? "Paused" : "Enabled")),
      "ok", warnings);
}

}  // namespace tandem::agent
