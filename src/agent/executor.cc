// The executor: carries out a Decision's actions in order, one small handler
// per action type, with the context (replication sources, HBA peers) built
// once per cycle from the view.
//
// Thread: the HA loop only. Touches: pg_ (the only place that changes
// PostgreSQL's role while the node is a member), the store (leader key
// transactions), mu_ (state_, postgres_error_), and the loop-only fields configured_upstream_,
// start_failures_, hba_signature_.
#include <map>
#include <set>
#include <vector>

#include "agent/agent.h"
#include "agent/agent_internal.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/notify.h"
#include "core/sync.h"
#include "core/timeline.h"

namespace tandem::agent {
using namespace internal;

namespace {

// Every peer's address once (this node's too), and the signature that tells
// whether pg_hba.conf needs writing.
std::vector<pg::HbaPeer> HbaPeersFor(const Config& cfg, const ClusterView& view,
                                     std::string* signature) {
  std::vector<pg::HbaPeer> peers;
  std::set<std::string> seen;
  for (const auto& [name, n] : view.nodes) {
    if (seen.insert(n.host).second) peers.push_back({name, n.host});
  }
  if (seen.insert(cfg.node_address).second) peers.push_back({cfg.node_name, cfg.node_address});
  signature->clear();
  for (const auto& p : peers) *signature += p.address + ",";
  return peers;
}

}  // namespace

// What the handlers of one cycle share, built once from the view: the store,
// the replication sources of every registered member and the HBA input.
struct Agent::ActionContext {
  const core::Observation& obs;
  const ClusterView& view;
  std::shared_ptr<dcs::Dcs> store;
  std::map<std::string, pg::Source> replication;  // by member: the replication user
  std::map<std::string, pg::Source> superuser;    // by member: the superuser (pg_rewind)
  std::vector<pg::HbaPeer> hba_peers;
  std::string hba_signature;
  Result<pg::Source> Source(const std::string& member, bool as_superuser) const;
};

Result<pg::Source> Agent::ActionContext::Source(const std::string& member,
                                                bool as_superuser) const {
  const auto& sources = as_superuser ? superuser : replication;
  auto it = sources.find(member);
  if (it != sources.end()) return it->second;
  if (view.nodes.count(member) == 0) {
    return Error(ErrorCode::kNotFound, "no registration for member " + member);
  }
  return Error(ErrorCode::kFailedPrecondition, "no secrets on this node");
}

Agent::ActionContext Agent::MakeActionContext(const core::Observation& obs,
                                              const ClusterView& view) {
  ActionContext ctx{obs, view, Store(), {}, {}, {}, {}};
  for (const auto& [name, n] : view.nodes) {
    auto repl = SourceFor(view, name, false);
    if (!repl) break;  // no secrets: Source() says so
    ctx.replication[name] = *repl;
    ctx.superuser[name] = *SourceFor(view, name, true);
  }
  ctx.hba_peers = HbaPeersFor(cfg_, view, &ctx.hba_signature);
  return ctx;
}

Status Agent::Execute(const core::Decision& d, const core::Observation& obs,
                      const ClusterView& view) {
  if (d.actions.empty()) return Ok();
  const ActionContext ctx = MakeActionContext(obs, view);
  for (const auto& a : d.actions) {
    TLOG_EVENT(Info, "ha", core::ActionName(a.type))
        << "action " << core::ActionName(a.type) << (a.target.empty() ? "" : " " + a.target);
    auto st = ExecuteOne(a, ctx);
    metrics_.ActionDone(a.type, st.ok());
    if (!st.ok()) return st.error().Wrap(core::ActionName(a.type));
  }
  return Ok();
}

Status Agent::ExecuteOne(const core::Action& a, const ActionContext& ctx) {
  using core::ActionType;
  switch (a.type) {
    case ActionType::kAcquireLeader:
      return ActAcquireLeader(ctx);
    case ActionType::kTakeOverLeader:
      return ActTakeOverLeader(ctx);
    case ActionType::kReleaseLeader:
      return ActReleaseLeader(ctx);
    case ActionType::kPromote:
      return ActPromote(ctx);
    case ActionType::kStepDown:
      return StepDown(ctx.obs, ctx.view, a.target);
    case ActionType::kDemote:
      return ActDemote(ctx);
    case ActionType::kStartPrimary:
      return ActStartPrimary(ctx);
    case ActionType::kStartReplica:
      return StartReplicaOf(ctx, a.target);
    case ActionType::kFollow:
      return ActFollow(ctx, a.target);
    case ActionType::kRewind:
      return ActRewind(ctx, a.target);
    case ActionType::kReclone:
      return ActReclone(ctx, a.target);
  }
  return Ok();
}

Result<pg::Source> Agent::SourceFor(const ClusterView& view, const std::string& member,
                                    bool superuser) {
  auto it = view.nodes.find(member);
  if (it == view.nodes.end()) {
    return Error(ErrorCode::kNotFound, "no registration for member " + member);
  }
  if (!secrets_) return Error(ErrorCode::kFailedPrecondition, "no secrets on this node");
  pg::Source s;
  s.host = it->second.host;
  s.port = it->second.pg_port;
  s.user = superuser ? "postgres" : kReplicationUser;
  s.password = superuser ? secrets_->superuser_password : secrets_->replication_password;
  s.application_name = cfg_.node_name;
  s.slot_name = pg::SlotNameFor(cfg_.node_name);
  return s;
}

Status Agent::ActAcquireLeader(const ActionContext& ctx) {
  if (!ctx.store || lease_ == 0) return Error(ErrorCode::kFailedPrecondition, "no lease");
  auto r = ctx.store->Txn({dcs::Compare::CreateRevisionIs(keys_.leader(), 0)},
                          {dcs::Op::Put(keys_.leader(), cfg_.node_name, lease_)});
  if (!r) return r.error();
  if (!r->succeeded) return Error(ErrorCode::kConflict, "another member took the leader key");
  TLOG(Info, "ha") << "acquired the leader key (revision " << r->revision << ")";
  return Ok();
}

Status Agent::ActTakeOverLeader(const ActionContext& ctx) {
  if (!ctx.store || !ctx.obs.leader || lease_ == 0) {
    return Error(ErrorCode::kFailedPrecondition, "no leader key or lease");
  }
  auto r =
      ctx.store->Txn({dcs::Compare::ModRevisionIs(keys_.leader(), ctx.obs.leader->mod_revision),
                      dcs::Compare::ValueIs(keys_.leader(), cfg_.node_name)},
                     {dcs::Op::Put(keys_.leader(), cfg_.node_name, lease_)});
  if (!r) return r.error();
  if (!r->succeeded) return Error(ErrorCode::kConflict, "the leader key changed meanwhile");
  return Ok();
}

Status Agent::ActReleaseLeader(const ActionContext& ctx) {
  if (!ctx.store || !ctx.obs.leader) return Ok();
  auto r =
      ctx.store->Txn({dcs::Compare::ModRevisionIs(keys_.leader(), ctx.obs.leader->mod_revision)},
                     {dcs::Op::Delete(keys_.leader())});
  if (!r) return r.error();
  return Ok();
}

Status Agent::ActPromote(const ActionContext& ctx) {
  const ClusterView& view = ctx.view;
  // The sync record must stay true for every write we acknowledge as
  // primary: record first (if needed), then PostgreSQL's standby set.
  const core::PromotionSync ps =
      core::SyncForPromotion(view.sync, cfg_.node_name, cfg_.ha.sync_mode, cfg_.ha.sync_count);
  if (ps.record) {
    auto w = WriteSyncRecord(view, *ps.record, /*need_leader=*/true);
    if (!w) return w.error();
  }
  TANDEM_TRY(ApplySyncStandbyNames(view, ps.pg, /*in_recovery=*/true));
  // Announce the new timeline first: if that fails, no promotion.
  TANDEM_TRY(AnnounceTimeline(view, core::TimelineBeforePromotion(ctx.obs.pg.timeline)));
  TANDEM_TRY(pg_->Promote());
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_.was_primary = true;
    state_.needs_rewind = false;
    (void)SaveState();
  }
  auto q = pg_->Query();
  RecordHistory(last_reason_, q.ok() ? q->timeline : 0);
  return Ok();
}

Status Agent::ActDemote(const ActionContext& ctx) {
  const core::Observation& obs = ctx.obs;
  const bool holds_key = obs.store_ok && obs.leader && obs.leader->holder == cfg_.node_name &&
                         obs.lease != 0 && obs.leader->lease == obs.lease;
  const bool no_time = !holds_key || clock_.Now() >= lease_deadline_;
  TLOG(Warn, "ha") << "demoting: stopping PostgreSQL " << (no_time ? "immediately" : "fast");
  auto st = pg_->Stop(no_time ? pg::StopMode::kImmediate : pg::StopMode::kFast);
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_.needs_rewind = true;
    (void)SaveState();
  }
  return st;
}

// Records the outcome of configuring and starting PostgreSQL for status
// (postgres_error): the error when it failed, "" when it runs.
Status Agent::NoteStart(Status st) {
  std::lock_guard<std::mutex> lock(mu_);
  if (st.ok()) {
    postgres_error_.clear();
  } else {
    postgres_error_ = st.error().message().substr(0, 2000);
  }
  return st;
}

Status Agent::ActStartPrimary(const ActionContext& ctx) {
  if (pg_->IsRunning()) return NoteStart(Ok());
  TANDEM_TRY(NoteStart(pg_->WriteConfig(std::nullopt)));
  configured_upstream_.clear();
  TANDEM_TRY(WriteHba(ctx.hba_peers, ctx.hba_signature));
  auto st = pg_->Start();
  start_failures_ = st.ok() ? 0 : start_failures_ + 1;
  return NoteStart(std::move(st));
}

Status Agent::StartReplicaOf(const ActionContext& ctx, const std::string& member) {
  if (pg_->IsRunning()) return NoteStart(Ok());
  if (member.empty()) {
    // Start as a standby with no source, so we can read our own position.
    TANDEM_TRY(NoteStart(pg_->WriteStandbyConfigWithoutSource()));
  } else {
    auto src = ctx.Source(member, false);
    if (!src) return src.error();
    TANDEM_TRY(NoteStart(pg_->WriteConfig(*src)));
  }
  configured_upstream_ = member;
  TANDEM_TRY(WriteHba(ctx.hba_peers, ctx.hba_signature));
  auto st = pg_->Start();
  start_failures_ = st.ok() ? 0 : start_failures_ + 1;
  return NoteStart(std::move(st));
}

Status Agent::ActFollow(const ActionContext& ctx, const std::string& target) {
  auto src = ctx.Source(target, false);
  if (!src) return src.error();
  TANDEM_TRY(pg_->WriteConfig(*src));
  configured_upstream_ = target;
  return pg_->Reload();
}

Status Agent::ActRewind(const ActionContext& ctx, const std::string& target) {
  if (pg_->IsRunning()) TANDEM_TRY(pg_->Stop(pg::StopMode::kFast));
  auto src = ctx.Source(target, true);
  if (!src) return src.error();
  ServiceNotifier::LongAction busy(ServiceNotifier::Process(), "pg_rewind from " + target);
  auto st = pg_->Rewind(*src);
  std::lock_guard<std::mutex> lock(mu_);
  if (!st.ok()) {
    if (st.error().code() == ErrorCode::kUnavailable || st.error().code() == ErrorCode::kTimeout) {
      // The source could not be reached: nothing is wrong with our data.
      return st.error().Wrap("pg_rewind could not reach " + target + "; retrying later");
    }
    TLOG(Error, "ha") << "pg_rewind failed; the node will be re-cloned: " << st.error().message();
    state_.needs_reclone = true;
    (void)SaveState();
    return st;
  }
  state_.needs_rewind = false;
  state_.was_primary = false;
  (void)SaveState();
  hba_signature_.clear();  // pg_rewind copied the source's pg_hba.conf
  TLOG(Info, "ha") << "rewound onto " << target << "'s timeline";
  return Ok();  // the next cycle starts it as a standby
}

Status Agent::ActReclone(const ActionContext& ctx, const std::string& target) {
  if (pg_->IsRunning()) TANDEM_TRY(pg_->Stop(pg::StopMode::kFast));
  if (pg_->InspectDataDir() == pg::DataDirState::kValid) {
    // Never overwrite an earlier copy: it may hold the only commits of a former primary.
    const std::string aside =
        cfg_.pg_data_dir + ".before-reclone-" + std::to_string(clock_.WallNow() / 1000);
    TANDEM_TRY(RenamePath(cfg_.pg_data_dir, aside));
    TLOG(Warn, "ha") << "kept the old data directory aside as " << aside;
  }
  auto src = ctx.Source(target, false);
  if (!src) return src.error();
  ServiceNotifier::LongAction busy(ServiceNotifier::Process(),
                                   "re-cloning from " + target + " (pg_basebackup)");
  TANDEM_TRY(pg_->BaseBackup(*src, [](const std::string& line) { TLOG(Info, "pg") << line; }));
  hba_signature_.clear();  // pg_basebackup copied the source's pg_hba.conf
  std::lock_guard<std::mutex> lock(mu_);
  state_.needs_rewind = false;
  state_.needs_reclone = false;
  state_.was_primary = false;
  (void)SaveState();
  return Ok();
}

Status Agent::WriteHbaFor(const ClusterView& view) {
  std::string sig;
  const auto peers = HbaPeersFor(cfg_, view, &sig);
  return WriteHba(peers, sig);
}

Status Agent::WriteHba(const std::vector<pg::HbaPeer>& peers, const std::string& signature) {
  // Only on change; code that replaces the data directory's files
  // (pg_basebackup, pg_rewind) clears hba_signature_ so ours is written again.
  if (signature == hba_signature_) return Ok();
  TANDEM_TRY(pg_->WriteHba(peers));
  hba_signature_ = signature;
  if (pg_->IsRunning()) TANDEM_TRY(pg_->Reload());
  return Ok();
}

}  // namespace tandem::agent
