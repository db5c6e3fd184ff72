// Upkeep of the embedded etcd member from the HA loop: restarting it when it
// died (with a back-off) and handing etcd leadership away from the primary's
// node.
//
// Thread: the HA loop only. Touches: etcd_, the loop-only fields
// etcd_started_at_, etcd_restart_*, next_etcd_leader_check_.
#include <algorithm>

#include "agent/agent.h"
#include "base/clock.h"
#include "base/log.h"
#include "core/etcd_leader.h"

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
  } else if (cfg_.embedded_etcd() && state_.member && clock_.Now() >= etcd_pid_file_due_) {
    // Rewritten when it went missing or wrong; a second late at most.
    etcd_.KeepPidFile();
    etcd_pid_file_due_ = clock_.Now() + 1'000;
  }
}

void Agent::MaybeMoveEtcdLeader(const ClusterView& view) {
  // core::HandOffEtcdLeadership says why and to whom; asked every 5 s.
  if (!cfg_.embedded_etcd()) return;
  const MonoMs now = clock_.Now();
  if (now < next_etcd_leader_check_) return;
  next_etcd_leader_check_ = now + 5'000;
  auto store = Store();
  if (!store) return;
  // The first endpoint is this node's own member (EtcdEndpointsFor).
  auto status = store->FirstMemberStatus();
  if (!status) return;
  core::EtcdLeadership in;
  in.self = cfg_.node_name;
  in.embedded = true;
  // RunCycle calls this only while this node serves as the primary.
  in.primary = view.leader && view.leader->holder == cfg_.node_name;
  in.self_member_id = status->member_id;
  in.leader_member_id = status->leader_id;
  for (const auto& [name, n] : view.nodes) {
    core::EtcdPeer p{name, n.etcd_member_id, core::Role::kUnknown};
    if (auto m = view.members.find(name); m != view.members.end()) p.role = m->second.role;
    in.peers.push_back(p);
  }
  for (const auto& target : core::HandOffEtcdLeadership(in).targets) {
    if (store->MoveLeader(target.member_id).ok()) {
      TLOG(Info, "etcd") << "moved etcd leadership to " << target.name
                         << " (a crash of the primary's node then needs no etcd election)";
      return;
    }
  }
}

}  // namespace tandem::agent
