// The node agent: owns the local etcd member, PostgreSQL and the HA loop.
//
// Threads: the HA loop (one), the API server's workers (calling the public
// methods below), and one worker for a long-running operator command (join).
// Operator commands are serialised by op_mu_; the loop and the commands share
// state under mu_. Only the loop changes PostgreSQL's role while the node is a
// member; operator commands that must (remove) stop the loop first.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <thread>

#include "agent/agent_deps.h"
#include "agent/alarms.h"
#include "agent/cluster_view.h"
#include "agent/config.h"
#include "agent/etcd_member.h"
#include "agent/fence_guard.h"
#include "agent/local_state.h"
#include "agent/metrics_snapshot.h"
#include "agent/node_lock.h"
#include "agent/vip.h"
#include "base/clock.h"
#include "base/exit_notifier.h"
#include "base/result.h"
#include "core/events.h"
#include "core/route.h"
#include "core/types.h"
#include "dcs/dcs.h"
#include "net/peer_certs.h"
#include "pg/controller.h"

namespace tandem::core {
struct SyncInput;
}

namespace tandem::agent {

struct SchemaOperation;  // agent/schema_op.h
class SchemaWorker;      // agent/schema_worker.h

// What a member grants a node that asks to join (sent back over the API).
struct JoinGrant {
  std::string cluster;
  std::string initial_cluster;              // etcd --initial-cluster, the new member included
  std::vector<std::string> etcd_endpoints;  // client URLs of the existing members
  uint64_t etcd_member_id = 0;
  Secrets secrets;
};

class Agent {
 public:
  // deps.clock is required (see agent_deps.h for how a test builds one).
  Agent(Config cfg, AgentDeps deps);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Takes the node's lock (node_lock.h: one agent per state directory)
  // before anything is written, unless AdoptNodeLock gave it one; loads the
  // local state; when this node is a member, resumes etcd and the loop.
  // Another agent holding the state directory: kFailedPrecondition naming
  // its pid, and nothing was touched.
  Status Start();
  // The lock `tandem agent` took itself before starting anything else (the
  // proxy's listeners); Start then keeps it instead of taking its own.
  void AdoptNodeLock(NodeLock lock) { node_lock_ = std::move(lock); }
  // Graceful stop: ends the loop; stops PostgreSQL (releasing the leader key
  // first when held) and the etcd member; then releases the node's lock. An
  // agent that never took the lock (another agent holds the state
  // directory) touches neither PostgreSQL nor etcd.
  void Shutdown();
  // Stop for a restart (restart.cc; docs/design/agent-restart.md): ends the
  // loop, renews the lease once more and leaves PostgreSQL, the etcd member
  // and the fence guard (armed with the deadline of that renewal while this
  // node is the primary) running; records the lease and the guard in
  // state.json for the next agent, which adopts them; releases the lock.
  void ShutdownForRestart();
  // Stop the node (an operator's `tandem agent stop`): on the primary, a
  // switchover to a healthy replica first when there is one (waits at most
  // `switchover_wait_ms` for the key to move), then Shutdown().
  void StopNode(int64_t switchover_wait_ms = 60'000);

  const Config& config() const { return cfg_; }
  // The clock the agent was built with (AgentDeps::clock).
  const Clock& clock() const { return clock_; }
  // The process that fences PostgreSQL if this agent dies (see fence_guard.h).
  void SetFenceGuard(FenceGuard guard) { guard_ = std::move(guard); }
  // Receives the client endpoint's route (core/route.h), called from the loop
  // thread: every HA cycle, from the view Decide saw, before its actions run
  // (a cycle that acted is followed by another within 50 ms), and a route to
  // nowhere when the loop stops. Set before Start(). The proxy is wired to it
  // by `tandem agent`; the agent does not depend on the proxy.
  using RouteSink = std::function<void(const core::Route&)>;
  void SetRouteSink(RouteSink sink) { route_sink_ = std::move(sink); }
  // Called (from the loop thread) after a certificate rotation reached the
  // private copies, so the API server loads them. Set before Start().
  void SetTlsReloadHook(std::function<void()> hook) { tls_reload_hook_ = std::move(hook); }
  // cfg_ with the tls section the config file has now: the paths follow a
  // rotation (`tandem cluster certs` rewrites them) without a restart.
  Config TlsConfig() const;

  // ---- operator commands (each records the node's "last command") ----
  Status Initialize();
  // Validates, then joins in the background; progress shows in Status().
  // witness: join as a witness (an etcd voter with no PostgreSQL,
  // docs/design/witness.md); refused, nothing changed, when it would make the
  // voter count even.
  Status StartJoin(const std::string& address, bool witness = false);
  // Removes `node` (empty = this node) from the cluster.
  Status Remove(const std::string& node, bool force);
  Status ClearError();
  // Operator intents (see docs/design/state-machine.md, "Operator control").
  // Each validates against the current view and returns what it started.
  // at_ms: wall ms (0 = now), within core::CheckSwitchoverTime's horizon
  // (kInvalidArgument otherwise). While another request is recorded, a new
  // one is refused naming it (a scheduled one: when, and how to cancel it).
  Result<std::string> RequestSwitchover(const std::string& to, int64_t at_ms);
  // Deletes a scheduled switchover that is not due yet. kNotFound when none
  // is recorded; kFailedPrecondition once it is due (the hand-over may have
  // begun: it completes or expires) or when the request is a failover.
  Result<std::string> CancelSwitchover();
  Result<std::string> RequestFailover(const std::string& to, bool accept_data_loss);
  Result<std::string> SetPaused(bool paused);
  // Every leader change recorded in the store, oldest first.
  Result<nlohmann::json> HistoryJson();
  // The cluster event log (events.cc): appends one event written by this
  // node (nothing when it is in no cluster; a store that refuses is logged
  // at debug level, never an error of the caller), and GET /v1/events's page.
  void RecordEvent(core::EventKind kind, const std::string& message,
                   std::map<std::string, std::string> fields = {});
  Result<nlohmann::json> EventsJson(const core::EventFilter& filter);
  // This node's PostgreSQL position, read now (asked by a failover candidate).
  nlohmann::json PositionJson();

  // ---- schema upgrades (schema_upgrade.cc, schema_run.cc; docs/schema-upgrades.md) ----
  // body: POST /v1/schema/upgrade's document. Checks the files and plans
  // against the local history; a dry run (or nothing pending) answers the
  // plan, otherwise the run is recorded for the primary's agent.
  Result<nlohmann::json> StartSchemaUpgrade(const nlohmann::json& body);
  // {"operation": the record without its SQL, or null}.
  Result<nlohmann::json> SchemaOperationJson();
  // The local copy of `database`'s tandem.schema_history, and the operation.
  Result<nlohmann::json> SchemaJson(const std::string& database);

  // ---- requests from other agents ----
  Result<JoinGrant> GrantJoin(const NodeInfo& joiner);

  // The status document (see README: `tandem cluster status --json`).
  nlohmann::json StatusJson();
  // The alarms in the store (docs/alarms.md): {"active": [...], "history": [...]}
  // (history only when asked); kUnavailable when the store cannot be read.
  Result<nlohmann::json> AlarmsJson(bool with_history);

  // Health (for the Patroni-compatible endpoints).
  struct Health {
    bool running = false;  // PostgreSQL is up
    bool primary = false;  // writable primary holding the leader key
    bool replica = false;  // streaming standby
    // A replica the sync record counts as holding every acknowledged write
    // (Patroni's /sync); a replica that is not, /async.
    bool sync_standby = false;
    uint64_t lag_bytes = 0;
  };
  Health GetHealth();
  // What GET /metrics reports (metrics_snapshot.h); one query of the local
  // PostgreSQL when it runs, nothing of the store.
  NodeMetrics MetricsSnapshot();

 private:
  Status StartMember();
  // Shutdown's part for a member (under op_mu_): PostgreSQL, the key, etcd.
  void ShutdownMember();
  // ShutdownForRestart's part for a member (under op_mu_; restart.cc).
  void KeepMemberForRestart();
  // At start (restart.cc): what the previous agent left in `loaded` (its
  // lease to re-attach to, its fence guard to stand down) and this agent's
  // own guard recorded in state_ (under mu_).
  void AdoptPredecessor(const LocalState& loaded);
  // FenceMain, once its guard holds a live deadline: stands the previous
  // agent's guard down; forgets it once it no longer runs.
  void StandDownPredecessorGuard(bool own_guard_armed);
  // The lease thread, after a grant: the lease id in state.json.
  void RememberLease(dcs::LeaseId id);
  // HA loop (ha_loop.cc)
  void LoopMain();
  void RunCycle();
  void StartLoop();
  void StopLoop();
  // After a cycle: leave when this node's registration is gone (kLeft), or
  // wait a loop interval when an operator command holds op_mu_ (kRetry).
  enum class AfterCycle { kWait, kRetry, kLeft };
  AfterCycle LeaveIfRemoved();
  core::Observation MakeObservation(const ClusterView& v, bool store_ok,
                                    const core::LocalPostgres& local);
  // Decide; before a promotion with no leader, asks the members for their
  // positions and decides again.
  core::Decision DecideCycle(core::Observation* obs, const ClusterView& v);
  // Logs an action failure once, then every 30 s with its count.
  void LogActionFailure(const std::string& msg);
  // Arms/disarms the fencing watchdog after the actions (view: null when
  // the store could not be read).
  void ArmWatchdog(const core::Decision& d, bool acted_ok, const core::LocalPostgres& local,
                   const ClusterView* view);
  Status RenewLease();
  core::LocalPostgres ObserveLocal(const ClusterView& view);
  // Executor (executor.cc): one handler per action type, sharing a context
  // built once per cycle.
  struct ActionContext;
  ActionContext MakeActionContext(const core::Observation& obs, const ClusterView& view);
  Status Execute(const core::Decision& d, const core::Observation& obs, const ClusterView& view);
  Status ExecuteOne(const core::Action& a, const ActionContext& ctx);
  Status ActAcquireLeader(const ActionContext& ctx);
  Status ActTakeOverLeader(const ActionContext& ctx);
  Status ActReleaseLeader(const ActionContext& ctx);
  Status ActPromote(const ActionContext& ctx);
  // Stops PostgreSQL fast only while this node verifiably still holds the
  // leader key on a lease whose local deadline has not passed; otherwise
  // immediately (another node may already be primary: no open session may
  // commit one more transaction).
  Status ActDemote(const ActionContext& ctx);
  Status ActStartPrimary(const ActionContext& ctx);
  Status NoteStart(Status st);            // postgres_error_ from a configure/start outcome
  void CheckStartLeftovers(bool member);  // start_warnings_ (agent.cc)
  Status ActFollow(const ActionContext& ctx, const std::string& target);
  Status ActRewind(const ActionContext& ctx, const std::string& target);
  Status ActReclone(const ActionContext& ctx, const std::string& target);
  // Housekeeping (housekeeping.cc)
  // `gave_up_primary`: this cycle's actions stopped or demoted the primary,
  // so `local` (observed before them) no longer describes the server and the
  // leader's upkeep is skipped until the next cycle observes again.
  void Housekeeping(const ClusterView& view, const core::LocalPostgres& local,
                    bool gave_up_primary);
  // Raises and clears this node's alarms in the store (alarms.cc).
  void UpdateAlarms(const ClusterView& view, const core::LocalPostgres& local);
  core::AlarmObservation ObserveForAlarms(const ClusterView& view,
                                          const core::LocalPostgres& local);
  // Rewinds a replica that cannot stream from a leader on a newer timeline.
  void CheckStalledReplica(const ClusterView& view, const core::LocalPostgres& local);
  // The leader's upkeep: replication user, slots, sync, etcd leadership.
  void LeaderUpkeep(const ClusterView& view, const core::LocalPostgres& local);
  // Restarts a dead embedded etcd member (back-off) (etcd_upkeep.cc).
  void KeepEtcdMember();
  // The peers PeerCertMain checks, from the view (tls_rotation.cc).
  void UpdatePeerTargets(const ClusterView& view);
  // Writes this member's state when it differs from `stored` (what the view
  // read this cycle holds for it; nullptr = absent) or the lease changed.
  void PublishMember(const core::LocalPostgres& local, const core::MemberState* stored);
  // Computes the route from this cycle's observation and decision and hands
  // it to the sink.
  void PublishRoute(const core::Observation& obs, const core::Decision& d, const ClusterView& view);
  void PublishNoRoute(const std::string& reason);
  // Synchronous replication on the primary: one PlanSync step per cycle.
  void MaintainSync(const ClusterView& view);
  void KeepSlots(const ClusterView& view);
  void MarkReconnecting(const ClusterView& view, core::SyncInput* in);
  Result<std::string> RecordSwitchover(const ClusterView& view, const std::string& from,
                                       const std::string& to, int64_t at_ms, int64_t now);
  // Deletes an intent that is done, moot or expired (the leader does it).
  void MaintainIntent(const ClusterView& view, const core::LocalPostgres& local);
  // Writes tandem.conf for PostgreSQL's current role (standby: keeps its
  // upstream and standby.signal) with the current settings, and reloads.
  Status RewriteConfigKeepingRole(const ClusterView& view, bool in_recovery);
  Status ApplySyncStandbyNames(const ClusterView& view, const core::PgSyncSet& set,
                               bool in_recovery);
  // Stops cleanly and hands the key over; `target` (the replica Decide chose)
  // is written into the request when the operator named none, so every
  // replica waits for the same one.
  Status StepDown(const core::Observation& obs, const ClusterView& view, const std::string& target);
  // Before promoting: the other members' positions asked directly (published
  // ones may be a cycle old). Under a sync record an unreachable member is
  // dropped (it cannot vouch for its position); otherwise its published
  // position stays.
  void RefreshPositions(core::Observation* obs, const ClusterView& view);
  // Returns the record's new mod_revision.
  Result<dcs::Revision> WriteSyncRecord(const ClusterView& view, const core::SyncRecord& rec,
                                        bool need_leader);

  // The status document's "vip" (null when off); adds its warning (status.cc).
  nlohmann::json VipStatus(const core::Route& route, nlohmann::json& warnings);
  // helpers
  std::shared_ptr<dcs::Dcs> Store();
  // The store for granting a join: the same connection settings with a 5 s
  // request timeout. It is not on the failover path, and on a loaded machine
  // etcd can take longer than the loop's short timeout right after the last
  // membership change; giving up then refuses a join that would have worked.
  std::shared_ptr<dcs::Dcs> JoinStore();
  Result<ClusterView> ReadViewFrom(const std::shared_ptr<dcs::Dcs>& store);
  Status ConnectStore(const std::vector<std::string>& endpoints);
  // A linearizable read of the whole cluster (operator commands, status).
  Result<ClusterView> ReadView();
  // The HA loop's view: the store's watched copy while it is known complete
  // (Dcs::ReadPrefix, confirmed by a read at least every ttl / 2), else a read.
  Result<ClusterView> ReadLoopView();
  // ReadLoopView's last parse, reused while the snapshot's revision is the
  // same (loop thread only).
  dcs::Revision parsed_revision_ = 0;
  std::shared_ptr<dcs::Dcs> parsed_store_;
  ClusterView parsed_view_;
  MonoMs etcd_pid_file_due_ = 0;  // KeepEtcdMember looks at etcd.pid once a second
  Result<pg::Source> SourceFor(const ClusterView& view, const std::string& member, bool superuser);
  Status WriteHbaFor(const ClusterView& view);
  // Writes pg_hba.conf (and reloads) unless `signature` is what was written.
  Status WriteHba(const std::vector<pg::HbaPeer>& peers, const std::string& signature);
  // The tls files changed since the private copies were made: checked, copied
  // and PostgreSQL reloaded; a bad change is warned about (once) and ignored.
  void RefreshTlsCopies();
  Status StartReplicaOf(const ActionContext& ctx, const std::string& member);
  void SetLastCommand(const std::string& command, const std::string& result,
                      const std::string& error);
  void SetProgress(const std::string& line);
  Status SaveState();
  void RecordJoined(bool witness);  // join.cc: member (replica or witness), saved
  NodeInfo SelfInfo() const;
  std::vector<std::string> EtcdEndpointsFor(const ClusterView& view) const;
  // Operator command helpers: the "busy" refusal, the outcome of an error, and
  // the refusal of a data directory that is not PostgreSQL's. CommandFailed
  // records "Failed" (and the node's Error status) only for a command that
  // started (its "Running" recorded); an error before that is a refusal:
  // logged and returned, the status and last command left as they were.
  static Error Busy();
  Error CommandFailed(const std::string& command, Error e);
  Error ForeignDataDir() const;
  core::MemberState SelfState(const core::LocalPostgres& local) const;
  void JoinWorker(std::string address, std::string command, bool witness);
  Status DoJoin(const std::string& address, bool witness);
  Status JoinWithGrant(const JoinGrant& grant);
  // A witness's join: the etcd member and the loop, no database (join.cc).
  Status JoinWitnessWithGrant(const JoinGrant& grant);
  // The joining node's etcd member started as a learner and promoted (join.cc).
  Status JoinEtcd(const JoinGrant& grant);
  // GrantJoin's etcd part: the learner added (a stale one at the same peer
  // address removed first), its id and the --initial-cluster in *g and *reg.
  Status AddEtcdLearner(const NodeInfo& joiner, const ClusterView& view,
                        const std::shared_ptr<dcs::Dcs>& store, JoinGrant* g, NodeInfo* reg);
  // Initialize's steps (operations.cc): the embedded etcd member started
  // (*started once it was), the store empty, PostgreSQL made the primary
  // with new secrets, the cluster and this node registered.
  Status InitStartEtcd(bool* started);
  Status InitCheckStore(const std::shared_ptr<dcs::Dcs>& store);
  Status InitPostgres(pg::DataDirState dd);
  Status InitRegister(const std::shared_ptr<dcs::Dcs>& store, const Result<pg::ControlData>& cd);
  Status LeaveLocally();
  // Remove's two cases (operations.cc): another node deregistered; this node
  // deregistered, its lease revoked, then LeaveLocally.
  Status RemoveOther(const std::string& target, const NodeInfo& info);
  Status RemoveSelf(const std::string& target, const ClusterView& view, const NodeInfo& info,
                    bool is_leader);
  // MemberRemove, retried while etcd calls the cluster unhealthy.
  Status RemoveEtcdMember(uint64_t id);
  // The timeline record: announce before promoting, keep current as leader,
  // retract an announcement that never happened.
  Status AnnounceTimeline(const ClusterView& view, uint32_t timeline);
  void MaintainTimeline(const ClusterView& view, const core::LocalPostgres& local);
  void MaybeMoveEtcdLeader(const ClusterView& view);
  // Keeps this node's registration's proxy ports equal to the config (they
  // change when an operator turns the proxy on after joining).
  void RefreshRegistration(const ClusterView& view);
  // Connects to every member's etcd the view names when that set changed.
  void KeepStoreEndpoints(const ClusterView& view);
  MonoMs next_etcd_leader_check_ = 0;
  void RecordHistory(const std::string& reason, uint32_t timeline);

  Config cfg_;
  // Declared early: released after every thread below has been joined.
  NodeLock node_lock_;
  const Clock& clock_;  // every time read and wait of the agent
  Keys keys_;
  // This node is a witness (LocalState::witness, docs/design/witness.md): no
  // PostgreSQL. Set before the loop starts (StartMember, a witness join),
  // cleared when the node leaves; pg_ sees no PostgreSQL while it is set.
  std::atomic<bool> witness_{false};
  std::unique_ptr<pg::Controller> pg_;
  EtcdMember etcd_;
  AgentDeps::ConnectStore connect_store_;  // null: EtcdDcs
  AgentDeps::Http http_;                   // null: net::HttpCall
  // An HTTP call to another agent (through deps.http when set).
  Result<net::HttpResponse> Http(const std::string& method, const std::string& url,
                                 const std::string& body, int64_t timeout_ms);

  std::mutex op_mu_;  // one operator command at a time
  std::mutex mu_;     // guards everything below
  LocalState state_;
  std::optional<Secrets> secrets_;
  std::shared_ptr<dcs::Dcs> store_;
  std::shared_ptr<dcs::Dcs> join_store_;  // JoinStore(); reset with store_
  std::vector<std::string> store_endpoints_;
  // Our session lease and its local deadline, renewed by the lease thread
  // (LeaseMain) independently of the HA loop, so a slow cycle (a checkpoint,
  // a slow store write) never delays a renewal. After the store says the
  // lease is gone, lease_ is 0 and lease_deadline_ kFenceNow (passed).
  std::atomic<dcs::LeaseId> lease_{0};
  std::atomic<MonoMs> lease_deadline_{0};
  // The lease the previous agent held (state.json): the first renewal tries
  // it (KeepAlive) before granting a new one. 0 = none (or tried).
  std::atomic<dcs::LeaseId> reattach_lease_{0};
  // The previous agent's fence guard while it may still run (under mu_;
  // predecessor_guard_pending_ says whether to look).
  FenceGuard::Identity predecessor_guard_;
  std::atomic<bool> predecessor_guard_pending_{false};
  int start_failures_ = 0;
  // Why PostgreSQL could not be configured or started (the error, with the
  // first lines of its log); "" once it runs. Shown in status (postgres_error).
  std::string postgres_error_;
  // What the start found wrong but could run with (a missing state file, a
  // missing tls section): logged once, shown in status warnings.
  std::vector<std::string> start_warnings_;
  std::string last_reason_;
  std::string tls_refresh_warned_;  // the last refused TLS change (warned once)
  // This node's certificate state as published in its member state (loop
  // thread only), recomputed once a minute and when the files change.
  std::string cert_summary_;
  MonoMs cert_summary_at_ = 0;
  // Loop thread: the member state last written and the lease it was written
  // on (PublishMember writes only changes), and the stat signature of the TLS
  // files when their copies were last found current (RefreshTlsCopies).
  std::string published_member_;
  dcs::LeaseId published_lease_ = 0;
  std::string tls_stat_signature_;
  MonoMs tls_checked_at_ = 0;  // when RefreshTlsCopies last looked (at most 1/s)
  std::optional<ClusterView> last_view_;
  core::LocalPostgres last_local_;
  bool store_ok_ = false;
  std::string hba_signature_;
  // The member this node's PostgreSQL is configured to stream from (what the
  // last WriteConfig wrote), "" when unknown or none. Decide compares it with
  // the leader; whether the stream is up right now is reported separately.
  std::string configured_upstream_;
  int stalled_cycles_ = 0;  // cycles configured to follow the leader without streaming
  bool streaming_ = false;
  bool repl_user_ok_ = false;
  // The slot set of the last good SyncSlots pass in this term as primary, and
  // when (KeepSlots; none: the next pass runs). HA loop only.
  std::optional<std::vector<std::string>> slots_synced_;
  MonoMs slots_synced_at_ = 0;
  std::string sync_reason_;  // the last PlanSync reason logged
  // Standbys PostgreSQL waits for that are not streaming: since when (the
  // reconnect grace, HaConfig::sync_reconnect_grace_ms). HA loop only.
  std::map<std::string, MonoMs> sync_missing_since_;
  RouteSink route_sink_;  // set before Start; called under route_mu_
  // The route and its publication to the sink, under route_mu_ (never held
  // across I/O): the loop and the lease thread both publish, and one must not
  // overtake the other (a demotion's empty route overwritten by an extension).
  // Restarts of the embedded etcd member (loop thread only).
  MonoMs etcd_started_at_ = 0;
  MonoMs etcd_restart_not_before_ = 0;
  MonoMs etcd_restart_backoff_ms_ = 0;
  // The last action failure logged at warn level (loop thread only).
  std::string repeated_error_;
  MonoMs repeated_error_at_ = 0;
  int repeated_error_count_ = 0;
  std::mutex route_mu_;
  core::Route last_route_;
  MonoMs last_route_at_ = 0;  // when the HA loop computed it
  // After a renewal: a route to this node, which the loop capped at the lease
  // deadline it knew, lives on to the new deadline (never past one TTL after
  // the loop computed it), so a cycle a little late does not cut clients.
  void ExtendSelfRoute(MonoMs lease_deadline);

  // The floating IP (docs/design/vip.md; null when off). The loop releases it
  // before any action that gives up the primary role and acquires it while
  // core::DecideVip says so; FenceMain releases it when the lease deadline
  // passes, before PostgreSQL is stopped; the fence guard when the agent dies.
  std::unique_ptr<FloatingIp> vip_;
  std::string vip_reason_;  // the last DecideVip reason (under mu_)
  // Releases before the cycle's actions (returns) and acquires after them.
  void ReleaseVipIfNeeded(const core::Observation& obs, const core::Decision& d);
  void AcquireVipIfNeeded(const core::Observation& obs, const core::Decision& d);
  bool VipAllowed() const;  // a live lease, the loop running

  // Fencing watchdog (safety rule 2, independent of the loop, which can block
  // on the store, a checkpoint or a stop): while this node is the writable
  // primary, fence_deadline_ is its lease deadline; past it, PostgreSQL is
  // stopped immediately whatever the loop is doing. 0 = not a primary.
  void FenceMain();
  // When FenceMain must look again at the latest (the fence deadline, the
  // lease deadline while the floating IP is held, a watched postmaster).
  MonoMs NextFenceCheck() const;
  void StopFence();  // wakes FenceMain (stopping_ set) and joins it
  std::atomic<MonoMs> fence_deadline_{0};
  // Ends FenceMain's wait: notified by Shutdown and after every store to
  // fence_deadline_ (a deadline brought closer must be seen at once).
  Event fence_wake_{clock_};
  FenceGuard guard_;  // told fence_deadline_ by the watchdog thread
  // fence_deadline_ also bounds /primary: a node past it is not a healthy primary.
  std::thread fence_thread_;

  // Threads that cut the loop's wait short: the lease thread, and the watch
  // thread (a change of the leader key). FenceMain also wakes the loop when
  // the postmaster of a primary dies (pg_pid_to_watch_), and an operator's
  // request recorded by this node wakes it (RecordSwitchover).
  void LeaseMain();
  void WatchMain(const std::string& key);
  void WakeLoop();
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  bool wake_ = false;
  std::atomic<dcs::Revision> watch_revision_{0};  // the revision of the loop's last view
  // The watch thread waits on watch_cv_ (with watch_mu_) for the loop to read
  // a newer view, or for the loop to stop; the lease thread on lease_wake_.
  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  Event lease_wake_{clock_};
  // Set by the lease thread after each renewal attempt: the loop's first
  // cycle waits (bounded by ttl - margin) until a lease is held, so it never
  // decides "no lease" about one not granted yet (a running primary would be
  // demoted for nothing). StopLoop notifies it too.
  Event lease_attempted_{clock_};
  Event watch_retry_{clock_};  // the watch thread's pause after an error
  std::atomic<int> pg_pid_to_watch_{0};
  // Set by the loop while the store shows this node surely not the primary:
  // the lease thread then renews at the slower cadence (core/lease_cadence.h).
  std::atomic<bool> renew_as_replica_{false};
  // Wakes FenceMain the moment the watched postmaster exits (a pidfd, no
  // polling); set with pg_pid_to_watch_ by ArmWatchdog.
  ExitNotifier pg_exit_{[this](pid_t) { fence_wake_.Notify(); }};
  bool acted_ = false;  // the last cycle carried out actions (loop thread only)
  std::thread lease_thread_;
  std::thread watch_thread_;  // the leader key

  // Certificate rotation (docs/design/tls.md, "Rotation"). The loop thread
  // re-reads the config file's tls section when the file changes
  // (ReadTlsSection) and applies a valid change of the files to PostgreSQL,
  // etcd, the API and the agent's own clients; anything it cannot apply
  // live (tls.mode, a new CA for etcd) is named in restart_required_.
  void ReadTlsSection();
  mutable std::mutex tls_mu_;
  Config tls_cfg_;                // under tls_mu_
  std::string restart_required_;  // under tls_mu_; "" = nothing pending
  int64_t config_mtime_ns_ = 0;   // loop thread: the config file's mtime last read
  std::string config_warned_;     // loop thread: the last config read error warned about
  std::function<void()> tls_reload_hook_;
  // This node's check of every peer's server certificate (seed 2's per-peer
  // "Certificate:"), once a minute and when the membership changes, in its
  // own thread so a peer that does not answer never slows the loop.
  void PeerCertMain();
  void WakePeerCerts();
  void StopPeerCerts();
  std::vector<NodeInfo> peer_targets_;                      // under tls_mu_, from the loop
  std::map<std::string, net::PeerCertificate> peer_certs_;  // under tls_mu_, by node name
  std::condition_variable peer_cv_;                         // with tls_mu_
  bool peer_wake_ = false;                                  // under tls_mu_
  std::thread peer_cert_thread_;

  AgentMetrics metrics_;  // counters and histograms, any thread (metrics_registry.h)
  // Alarms (alarms.cc; loop thread, but alarms_ answers RaisedHere on any).
  AlarmKeeper alarms_{"/tandem/" + cfg_.cluster + "/"};
  std::map<std::string, MonoMs> alarm_first_seen_;
  AlarmSlowInputs alarm_inputs_;
  std::atomic<bool> loop_running_{false};
  std::atomic<bool> stopping_{false};
  std::thread loop_thread_;
  std::thread op_thread_;

  // Schema upgrades: the worker on the primary (schema_run.cc), started by
  // SchemaUpkeep from the loop; clear-error's part. Declared last: stopped
  // and joined before any other member goes.
  friend class SchemaRun;
  Result<std::optional<SchemaOperation>> ReadSchemaOperation();
  void ClearFailedSchemaUpgrade();
  void SchemaUpkeep(const ClusterView& view, const core::LocalPostgres& local);
  void SchemaMain(SchemaWorker& w);
  std::shared_ptr<SchemaWorker> schema_;
};

}  // namespace tandem::agent
