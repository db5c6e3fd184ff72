// Housekeeping after each HA cycle that read the store: TLS rotation and the
// peer list, pg_hba.conf, the timeline record, the operator request, the
// stalled-replica rewind, the leader's upkeep (replication user, slots,
// synchronous replication, etcd leadership), the registration and the store
// endpoints; and the history record.
//
// Thread: the HA loop only. Touches: mu_ (state_), tls_mu_ (peer_targets_),
// the store, pg_ (queries, slots, config), loop-only fields.
#include <algorithm>

#include "agent/agent.h"
#include "agent/agent_internal.h"
#include "base/clock.h"
#include "base/log.h"
#include "core/timeline.h"

namespace tandem::agent {
using namespace internal;

void Agent::Housekeeping(const ClusterView& view, const core::LocalPostgres& observed,
                         bool gave_up_primary) {
  core::LocalPostgres local = observed;
  if (gave_up_primary) local.running = false;  // stopped or stopping: no leader upkeep
  RefreshTlsCopies();
  UpdatePeerTargets(view);
  if (witness_) {
    // No PostgreSQL: no pg_hba.conf, timeline, intent or leader upkeep.
    RefreshRegistration(view);
    KeepStoreEndpoints(view);
    return;
  }
  // pg_hba.conf follows the membership on every node.
  if (auto st = WriteHbaFor(view); !st.ok()) {
    TLOG(Warn, "pg") << "writing pg_hba.conf: " << st.error().message();
  }
  MaintainTimeline(view, local);
  MaintainIntent(view, local);
  CheckStalledReplica(view, local);
  LeaderUpkeep(view, local);
  RefreshRegistration(view);
  UpdateAlarms(view, local);
  KeepStoreEndpoints(view);
}

void Agent::KeepStoreEndpoints(const ClusterView& view) {
  // Reach every member's etcd, not only ours (ours may be down or cut off).
  auto endpoints = EtcdEndpointsFor(view);
  if (endpoints != store_endpoints_) {
    if (ConnectStore(endpoints).ok()) store_endpoints_ = endpoints;
  }
}

void Agent::CheckStalledReplica(const ClusterView& view, const core::LocalPostgres& local) {
  // A replica that received WAL past the point where the leader's timeline
  // forked cannot stream from it (PostgreSQL refuses): after a while of not
  // streaming from a leader on a newer timeline, rewind it.
  if (view.leader && local.running && local.in_recovery && !streaming_ &&
      local.following == view.leader->holder) {
    auto lm = view.members.find(view.leader->holder);
    const bool newer = lm != view.members.end() && lm->second.timeline > local.timeline;
    stalled_cycles_ = newer ? stalled_cycles_ + 1 : 0;
    // Two TTLs: a dead leader's key has expired by then, so only a live leader
    // that refuses our WAL counts.
    const int64_t threshold = std::max<int64_t>(kStalledCyclesBeforeRewind,
                                                2 * cfg_.ha.ttl_ms / cfg_.ha.loop_interval_ms);
    if (stalled_cycles_ >= threshold) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!state_.needs_rewind) {
        TLOG(Warn, "ha") << "cannot stream from " << view.leader->holder << " (timeline "
                         << lm->second.timeline << ", mine " << local.timeline
                         << "): my WAL may have diverged; rewinding";
        state_.needs_rewind = true;
        (void)SaveState();
      }
      stalled_cycles_ = 0;
    }
  } else {
    stalled_cycles_ = 0;
  }
}

void Agent::LeaderUpkeep(const ClusterView& view, const core::LocalPostgres& local) {
  const bool leading = view.leader && view.leader->holder == cfg_.node_name;
  if (leading && local.running && !local.in_recovery) {
    if (!repl_user_ok_ && secrets_) {
      auto st = pg_->EnsureReplicationUser(kReplicationUser, secrets_->replication_password);
      repl_user_ok_ = st.ok();
    }
    KeepSlots(view);
    MaintainSync(view);
    MaybeMoveEtcdLeader(view);
  } else {
    slots_synced_.reset();  // a new term (or a promoted standby) starts with a full pass
  }
}

// The primary's physical slots, one per other registered node. A pass reads
// pg_replication_slots, so it runs when the wanted set changed since the last
// good pass of this term, after a failed pass, and every kSlotRecheckMs (a
// slot dropped behind our back), not every cycle.
void Agent::KeepSlots(const ClusterView& view) {
  constexpr MonoMs kSlotRecheckMs = 5000;
  std::vector<std::string> slots;
  for (const auto& [name, n] : view.nodes) {
    // A witness never streams: a slot for it would keep WAL forever.
    if (name != cfg_.node_name && !n.witness) slots.push_back(pg::SlotNameFor(name));
  }
  const MonoMs now = clock_.Now();
  if (slots_synced_ && *slots_synced_ == slots && now - slots_synced_at_ < kSlotRecheckMs) return;
  auto st = pg_->SyncSlots(slots);
  if (!st.ok()) {
    TLOG(Warn, "pg") << "replication slots: " << st.error().message();
    slots_synced_.reset();
    return;
  }
  slots_synced_ = std::move(slots);
  slots_synced_at_ = now;
}

void Agent::RefreshRegistration(const ClusterView& view) {
  auto it = view.nodes.find(cfg_.node_name);
  if (it == view.nodes.end() || it->second.mod_revision == 0) return;
  NodeInfo reg = it->second;
  if (reg.proxy_rw_port == cfg_.proxy_rw_port && reg.proxy_ro_port == cfg_.proxy_ro_port) return;
  reg.proxy_rw_port = cfg_.proxy_rw_port;
  reg.proxy_ro_port = cfg_.proxy_ro_port;
  auto store = Store();
  if (!store) return;
  // Only over the registration we read: a node removed meanwhile stays removed.
  auto r = store->Txn({dcs::Compare::ModRevisionIs(keys_.node(cfg_.node_name), reg.mod_revision)},
                      {dcs::Op::Put(keys_.node(cfg_.node_name), EncodeNodeInfo(reg))});
  if (r.ok() && r->succeeded) {
    TLOG(Info, "agent") << "registration updated: proxy ports " << reg.proxy_rw_port << "/"
                        << reg.proxy_ro_port;
    RecordEvent(core::EventKind::kConfigChanged, cfg_.node_name + "'s proxy ports are now " +
                                                     std::to_string(reg.proxy_rw_port) + "/" +
                                                     std::to_string(reg.proxy_ro_port));
  } else if (!r.ok()) {
    TLOG(Debug, "agent") << "updating the registration: " << r.error().message();
  }
}

Status Agent::AnnounceTimeline(const ClusterView& view, uint32_t timeline) {
  // Carries out core/timeline.h's decisions: a compare-and-swap over the
  // record as read, so two announcements can never both land.
  auto store = Store();
  if (!store) return Error(ErrorCode::kFailedPrecondition, "no store");
  const auto cmp = view.timeline.mod_revision == 0
                       ? dcs::Compare::CreateRevisionIs(keys_.timeline(), 0)
                       : dcs::Compare::ModRevisionIs(keys_.timeline(), view.timeline.mod_revision);
  auto r =
      store->Txn({cmp}, {dcs::Op::Put(keys_.timeline(), EncodeTimeline(timeline, cfg_.node_name))});
  if (!r) return r.error().Wrap("recording timeline " + std::to_string(timeline));
  if (!r->succeeded) {
    return Error(ErrorCode::kConflict, "the timeline record changed meanwhile; not promoting");
  }
  return Ok();
}

void Agent::MaintainTimeline(const ClusterView& view, const core::LocalPostgres& local) {
  const bool leading = view.leader && view.leader->holder == cfg_.node_name;
  const core::TimelineUpkeep up = core::MaintainTimelineRecord(
      cfg_.node_name, leading, local, {view.timeline.timeline, view.timeline.member});
  if (up.kind == core::TimelineUpkeep::Kind::kNone) return;
  if (up.kind == core::TimelineUpkeep::Kind::kRetract) TLOG(Warn, "ha") << up.reason;
  auto st = AnnounceTimeline(view, up.timeline);
  if (!st.ok()) TLOG(Warn, "ha") << st.error().message();
}

void Agent::RecordHistory(const std::string& reason, uint32_t timeline) {
  auto store = Store();
  if (!store) return;
  HistoryEntry h;
  h.at_ms = clock_.WallNow();
  h.leader = cfg_.node_name;
  h.timeline = timeline;
  h.reason = reason;
  h.seq = h.at_ms;
  auto r = store->Put(keys_.history(h.seq), EncodeHistory(h));
  if (!r.ok()) TLOG(Warn, "ha") << "recording history: " << r.error().message();
  RecordEvent(
      core::EventKind::kLeaderChange,
      cfg_.node_name + " became primary (timeline " + std::to_string(timeline) + ")",
      {{"leader", cfg_.node_name}, {"timeline", std::to_string(timeline)}, {"reason", reason}});
}

}  // namespace tandem::agent
