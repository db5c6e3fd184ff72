// Upkeep of the embedded etcd member from the HA loop: restarting it when it
// died (with a back-off) and handing etcd leadership away from the primary's
// node.
//
// Thread: the HA loop only. Touches: etcd_, the loop-only fields
// etcd_started_at_, etcd_restart_*, next_etcd_leader_check_.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/http_client.h"
#include "base/clock.h"
#include "base/log.h"

namespace tandem::agent {

void Agent::KeepEtcdMember() {
  if (cfg_.embedded_etcd() && state_.member && !etcd_.Running() && !stopping_) {
    // At once the first time; a member that keeps dying (a full disk, a bad
    // data directory) is restarted with a doubling pause of up to 8 s.
    const MonoMs now = clock_.Now();
    if (now >= etcd_restart_not_before_) {
      TLOG(Warn, "etcd") << "the etcd member is not running; restarting it"
                         << (etcd_restart_backoff_ms_ > 0
                                 ? " (it died again within 30 s of its last start)"
                                 : "");
      auto st = etcd_.Resume();
      if (!st.ok()) TLOG(Error, "etcd") << st.error().message();
      if (now - etcd_started_at_ < 30'000) {
        etcd_restart_backoff_ms_ =
            std::min<MonoMs>(8'000, std::max<MonoMs>(250, 2 * etcd_restart_backoff_ms_));
      } else {
        etcd_restart_backoff_ms_ = 0;
      }
      etcd_started_at_ = now;
      etcd_restart_not_before_ = now + etcd_restart_backoff_ms_;
    }
  } else if (cfg_.embedded_etcd() && state_.member) {
    etcd_.KeepPidFile();
  }
}

void Agent::MaybeMoveEtcdLeader(const ClusterView& view) {
  // A crash of the primary's node should cost one lease TTL. If that node
  // also led etcd, it would cost an etcd election plus the lease extension a
  // new etcd leader grants on top: so the primary hands etcd leadership to
  // another live voting member.
  if (!cfg_.embedded_etcd()) return;
  const MonoMs now = SystemClock::Get().Now();
  if (now < next_etcd_leader_check_) return;
  next_etcd_leader_check_ = now + 5'000;
  const std::string url = cfg_.etcd_client_url();
  auto st = HttpCall("POST", url + "/v3/maintenance/status", "{}", 1'000);
  if (!st || st->status != 200) return;
  std::string self_id, leader_id;
  try {
    auto j = nlohmann::json::parse(st->body);
    self_id = j.at("header").at("member_id").get<std::string>();
    leader_id = j.at("leader").get<std::string>();
  } catch (const std::exception&) {
    return;
  }
  if (self_id != leader_id) return;
  for (const auto& [name, n] : view.nodes) {
    if (name == cfg_.node_name || n.etcd_member_id == 0) continue;
    auto m = view.members.find(name);
    if (m == view.members.end() || m->second.role != core::Role::kReplica) continue;
    nlohmann::json req{{"targetID", std::to_string(n.etcd_member_id)}};
    auto r = HttpCall("POST", url + "/v3/maintenance/transfer-leadership", req.dump(), 3'000);
    if (r && r->status == 200) {
      TLOG(Info, "etcd") << "moved etcd leadership to " << name
                         << " (a crash of the primary's node then needs no etcd election)";
      return;
    }
  }
}

}  // namespace tandem::agent
