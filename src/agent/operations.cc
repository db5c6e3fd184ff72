// Operator commands that change membership: initialize, remove (and leaving
// locally), clear-error, and their shared refusals. Joining is in join.cc.
//
// Threads: an API worker, under op_mu_ (one command at a time). Remove of this
// node stops the loop first (StopLoop) before it touches PostgreSQL.
// Touches: etcd_, the store, pg_, mu_ (state_), secrets_.
#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/agent_internal.h"
#include "agent/witness.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/strings.h"

namespace tandem::agent {
using namespace internal;
using nlohmann::json;

Error Agent::Busy() {
  return Fail(ErrorCode::kFailedPrecondition,
              "another command is running on this node; wait for it (see `tandem cluster status`)");
}

Error Agent::CommandFailed(const std::string& command, Error e) {
  // Only a command that started (recorded "Running": it may have changed
  // something) fails; before that it was refused and nothing changed, so the
  // node's status and last command stay as they were.
  bool started = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    started = state_.last_command.command == command && state_.last_command.result == "Running";
  }
  if (!started) {
    TLOG(Warn, "agent") << "command '" << command << "' refused: " << e.message();
    return e;
  }
  SetLastCommand(command, "Failed", e.message());
  RecordEvent(core::EventKind::kOperationFailed, "'" + command + "' failed: " + e.message(),
              {{"operation", command}});
  return e;
}

Error Agent::ForeignDataDir() const {
  return Fail(ErrorCode::kFailedPrecondition,
              "postgresql.data_dir " + cfg_.pg_data_dir +
                  " is not empty and is not a PostgreSQL data directory; nothing was changed "
                  "(move its contents away or point postgresql.data_dir elsewhere)");
}

Status Agent::ClearError() {
  ClearFailedSchemaUpgrade();  // schema_upgrade.cc: a failed run, so it may run again
  Status st = Ok();
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_.error = false;
    st = SaveState();
  }
  if (st.ok()) {
    RecordEvent(core::EventKind::kOperationFinished, cfg_.node_name + "'s error state cleared",
                {{"operation", "clear-error"}});
  }
  return st;
}

// ------------------------------------------------------------ initialize

namespace {

// Where the store is: this node's own etcd member, or the configured one.
std::vector<std::string> StoreEndpoints(const Config& cfg) {
  return cfg.embedded_etcd() ? std::vector<std::string>{cfg.etcd_client_url()} : cfg.dcs_endpoints;
}

// What state.json says once this node is a member with a data directory it
// may use as is.
void BecomeMember(LocalState& st, const std::string& cluster, bool was_primary) {
  st.member = true;
  st.cluster = cluster;
  st.was_primary = was_primary;
  st.needs_rewind = false;
  st.needs_reclone = false;
}

// Whether `node` holds the leader key within `timeout_ms`.
bool WaitForLeaderKey(dcs::Dcs& store, const std::string& key, const std::string& node,
                      int64_t timeout_ms, const Clock& clock, const std::atomic<bool>& stopping) {
  return WaitFor(
      clock,
      [&] {
        auto v = store.Get(key);
        return v.ok() && v->has_value() && (*v)->value == node;
      },
      timeout_ms, stopping);
}

}  // namespace

Status Agent::Initialize() {
  std::unique_lock<std::mutex> op(op_mu_, std::try_to_lock);
  const std::string command = "tandem cluster initialize";
  if (!op.owns_lock()) return Busy();
  auto fail = [&](Error e) -> Status { return CommandFailed(command, std::move(e)); };
  if (state_.member) {
    return fail(
        Fail(ErrorCode::kFailedPrecondition,
             "this node is already a member of cluster '" + state_.cluster +
                 "'; nothing was changed (run `tandem cluster remove` first to start over)"));
  }
  const auto dd = pg_->InspectDataDir();
  if (dd == pg::DataDirState::kNotPostgres) {
    return fail(ForeignDataDir());
  }
  SetLastCommand(command, "Running", "");

  // 1. The store.
  bool started_etcd = false;
  if (auto s = InitStartEtcd(&started_etcd); !s.ok()) return fail(s.error());
  auto undo_etcd = [&] {
    if (started_etcd) {
      etcd_.Stop();
      (void)RemoveAll(cfg_.etcd_data_dir());
    }
  };
  if (auto s = ConnectStore(StoreEndpoints(cfg_)); !s.ok()) {
    undo_etcd();
    return fail(s.error());  // started: recorded, never left "Running"
  }
  auto store = Store();
  // 2. PostgreSQL: the local database becomes the primary, or a new one is made.
  Status st = InitCheckStore(store);
  if (st.ok()) st = InitPostgres(dd);
  // 3. Register the cluster and this node.
  Result<pg::ControlData> cd = Error(ErrorCode::kUnavailable, "not read");
  if (st.ok()) {
    cd = pg_->ReadControlData();
    st = InitRegister(store, cd);
  }
  if (!st.ok()) {
    undo_etcd();
    return fail(st.error());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    BecomeMember(state_, cfg_.cluster, /*was_primary=*/true);
    (void)SaveState();
  }
  StartLoop();
  SetProgress("waiting for this node to take the leader key");
  if (!WaitForLeaderKey(*store, keys_.leader(), cfg_.node_name, 30'000, clock_, stopping_)) {
    return fail(Fail(ErrorCode::kTimeout,
                     "the cluster was created but this node did not become primary within 30 s; "
                     "see the agent log"));
  }
  RecordHistory("cluster initialized", cd.ok() ? cd->timeline : 1);
  SetLastCommand(command, "Success", "");
  return Ok();
}

Status Agent::InitStartEtcd(bool* started) {
  if (!cfg_.embedded_etcd()) return Ok();
  if (etcd_.HasData()) {
    TLOG(Warn, "agent") << "removing stale etcd data in " << cfg_.etcd_data_dir()
                        << " (this node is not a member)";
    etcd_.Stop();
    TANDEM_TRY(RemoveAll(cfg_.etcd_data_dir()));
  }
  TANDEM_TRY(etcd_.Start(cfg_.node_name + "=" + cfg_.etcd_peer_url(), true));
  *started = true;
  if (auto s = etcd_.WaitReachable(30'000); !s.ok()) {
    etcd_.Stop();
    return s;
  }
  return Ok();
}

Status Agent::InitCheckStore(const std::shared_ptr<dcs::Dcs>& store) {
  // Wait until the store answers writes (a fresh member elects itself first).
  Result<std::optional<dcs::KeyValue>> existing = Error(ErrorCode::kUnavailable, "not tried");
  WaitFor(
      clock_,
      [&] {
        existing = store->Get(keys_.initialize());
        return existing.ok();
      },
      30'000, stopping_);
  if (!existing.ok()) return existing.error().Wrap("the store does not answer");
  if (existing->has_value()) {
    return Fail(ErrorCode::kFailedPrecondition,
                "the store already holds cluster '" + cfg_.cluster +
                    "'; nothing was changed (use `tandem cluster join` to add this node)");
  }
  return Ok();
}

Status Agent::InitPostgres(pg::DataDirState dd) {
  Secrets secrets{RandomToken(32), RandomToken(32)};
  if (dd == pg::DataDirState::kValid) {
    TLOG(Info, "agent") << "using the existing database in " << cfg_.pg_data_dir;
    if (pg_->IsRunning()) TANDEM_TRY(pg_->Stop(pg::StopMode::kFast));
  } else {
    SetProgress("creating the database (initdb)");
    TANDEM_TRY(pg_->InitDb(secrets.superuser_password));
  }
  Status st = pg_->WriteConfig(std::nullopt);
  if (st.ok()) st = pg_->WriteHba({{cfg_.node_name, cfg_.node_address}});
  if (st.ok()) st = pg_->Start();
  if (st.ok()) {
    // Parameters cannot be bound in utility statements; the token is [A-Za-z0-9] only.
    auto r = pg_->Sql("ALTER ROLE postgres WITH PASSWORD '" + secrets.superuser_password + "'");
    if (!r.ok()) st = Fail(r.error().code(), "setting the superuser password failed");
  }
  if (st.ok()) st = pg_->EnsureReplicationUser("replicator", secrets.replication_password);
  if (!st.ok()) {
    if (pg_->IsRunning()) (void)pg_->Stop(pg::StopMode::kFast);
    return st;
  }
  TANDEM_TRY(SaveSecrets(cfg_.secrets_path(), secrets));
  secrets_ = secrets;
  return Ok();
}

Status Agent::InitRegister(const std::shared_ptr<dcs::Dcs>& store,
                           const Result<pg::ControlData>& cd) {
  NodeInfo self = SelfInfo();
  if (cfg_.embedded_etcd()) {
    auto members = store->MemberList();
    if (members.ok()) {
      for (const auto& m : *members) {
        if (m.name == cfg_.node_name) self.etcd_member_id = m.id;
      }
    }
  }
  json init{{"system_identifier", cd.ok() ? std::to_string(cd->system_identifier) : ""},
            {"created_by", cfg_.node_name},
            {"created_at", clock_.WallNow()}};
  auto txn = store->Txn({dcs::Compare::CreateRevisionIs(keys_.initialize(), 0)},
                        {dcs::Op::Put(keys_.initialize(), init.dump()),
                         dcs::Op::Put(keys_.node(cfg_.node_name), EncodeNodeInfo(self))});
  if (!txn.ok() || !txn->succeeded) {
    (void)pg_->Stop(pg::StopMode::kFast);
    return txn.ok() ? Fail(ErrorCode::kConflict, "another node initialized the cluster first")
                    : txn.error();
  }
  return Ok();
}

// ------------------------------------------------------------ remove

namespace {

// The registration of the node to remove, or the refusal that lists the
// members there are.
Result<NodeInfo> NodeToRemove(const ClusterView& view, const std::string& target,
                              const std::string& cluster) {
  auto it = view.nodes.find(target);
  if (it != view.nodes.end()) return it->second;
  std::vector<std::string> names;
  for (const auto& [n, _] : view.nodes) names.push_back(n);
  return Fail(ErrorCode::kNotFound, "no node named '" + target + "' in cluster '" + cluster +
                                        "' (members: " + Join(names, ", ") +
                                        "); nothing was changed");
}

void WarnIfEtcdMemberStays(const Status& removed) {
  if (!removed.ok()) TLOG(Warn, "agent") << "removing etcd member: " << removed.error().message();
}

}  // namespace

Status Agent::Remove(const std::string& node, bool force) {
  std::unique_lock<std::mutex> op(op_mu_, std::try_to_lock);
  const std::string target = node.empty() ? cfg_.node_name : node;
  const std::string command = "tandem cluster remove" + (node.empty() ? "" : " " + node);
  if (!op.owns_lock()) return Busy();
  auto fail = [&](Error e) -> Status { return CommandFailed(command, std::move(e)); };
  if (!state_.member) {
    return fail(Fail(ErrorCode::kFailedPrecondition, "this node is not a cluster member"));
  }
  auto view = ReadView();
  if (!view) return fail(view.error().Wrap("reading the cluster"));
  auto info = NodeToRemove(*view, target, cfg_.cluster);
  if (!info) return fail(info.error());
  const bool is_leader = view->leader && view->leader->holder == target;
  if (is_leader && !force && view->nodes.size() > 1) {
    return fail(Fail(ErrorCode::kFailedPrecondition,
                     "'" + target +
                         "' is the primary; move the primary first (stop its agent to "
                         "fail over) or pass --force to remove it and let a replica take over"));
  }
  if (auto refusal = WitnessRemovalRefusal(*view, target, force); !refusal.empty()) {
    return fail(Fail(ErrorCode::kFailedPrecondition, refusal));
  }
  SetLastCommand(command, "Running", "");
  const Status st = target != cfg_.node_name ? RemoveOther(target, *info)
                                             : RemoveSelf(target, *view, *info, is_leader);
  if (!st.ok()) return fail(st.error());
  SetLastCommand(command, "Success", "");
  if (target != cfg_.node_name) {  // a node that removed itself has no store any more
    RecordEvent(core::EventKind::kNodeRemoved, target + " was removed from the cluster",
                {{"target", target}});
  }
  return Ok();
}

Status Agent::RemoveOther(const std::string& target, const NodeInfo& info) {
  auto store = Store();
  if (auto r = store->Delete(keys_.node(target)); !r.ok()) return r.error();
  (void)store->Delete(keys_.member(target));
  if (info.etcd_member_id != 0) WarnIfEtcdMemberStays(RemoveEtcdMember(info.etcd_member_id));
  return Ok();
}

Status Agent::RemoveSelf(const std::string& target, const ClusterView& view, const NodeInfo& info,
                         bool is_leader) {
  auto store = Store();
  StopLoop();
  if (pg_->IsRunning()) (void)pg_->Stop(pg::StopMode::kFast);
  if (is_leader) {
    (void)store->Txn({dcs::Compare::ModRevisionIs(keys_.leader(), view.leader->mod_revision)},
                     {dcs::Op::Delete(keys_.leader())});
  }
  if (auto r = store->Delete(keys_.node(target)); !r.ok()) {
    // The cluster would keep counting us: stay a member and say so.
    StartLoop();
    return r.error().Wrap(
        "cannot reach the store to deregister this node; nothing was "
        "removed, try again when `tandem cluster status` shows the store");
  }
  (void)store->Delete(keys_.member(target));
  if (lease_ != 0) (void)store->Revoke(lease_);
  lease_ = 0;
  if (info.etcd_member_id != 0 && view.nodes.size() > 1) {
    WarnIfEtcdMemberStays(RemoveEtcdMember(info.etcd_member_id));
  }
  return LeaveLocally();
}

Status Agent::RemoveEtcdMember(uint64_t id) {
  auto store = Store();
  Status st = Error(ErrorCode::kUnavailable, "not tried");
  WaitFor(
      clock_,
      [&] {
        st = store->MemberRemove(id);
        return st.ok() || st.error().code() != ErrorCode::kUnavailable;
      },
      60'000, stopping_);
  return st;
}

Status Agent::LeaveLocally() {
  if (pg_->IsRunning()) (void)pg_->Stop(pg::StopMode::kFast);
  etcd_.Stop();
  (void)RemoveAll(cfg_.etcd_data_dir());
  // The cluster's copy is kept aside (the other members hold the data). A
  // witness has none: whatever is at postgresql.data_dir is not Tandem's.
  if (!witness_ && PathExists(cfg_.pg_data_dir)) {
    const std::string aside = cfg_.pg_data_dir + ".removed";
    TANDEM_TRY(RemoveAll(aside));
    TANDEM_TRY(RenamePath(cfg_.pg_data_dir, aside));
    TLOG(Info, "agent") << "kept this node's copy of the cluster database in " << aside;
  }
  std::string restored;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!state_.kept_aside_dir.empty() && PathExists(state_.kept_aside_dir)) {
      TANDEM_TRY(RenamePath(state_.kept_aside_dir, cfg_.pg_data_dir));
      restored = state_.kept_aside_dir;
    }
    state_.member = false;
    state_.kept_aside_dir.clear();
    state_.was_primary = false;
    state_.needs_rewind = false;
    state_.needs_reclone = false;
    state_.witness = false;
    last_view_.reset();
    store_.reset();
    join_store_.reset();
    TANDEM_TRY(SaveState());
  }
  witness_ = false;
  (void)RemoveAll(cfg_.secrets_path());
  secrets_.reset();
  hba_signature_.clear();
  repl_user_ok_ = false;
  if (!restored.empty()) {
    TLOG(Info, "agent") << "restored the local database that existed before the join from "
                        << restored;
    auto st = pg_->Start();
    if (!st.ok()) {
      TLOG(Warn, "agent") << "the restored local database did not start: " << st.error().message();
    }
  }
  return Ok();
}

}  // namespace tandem::agent
