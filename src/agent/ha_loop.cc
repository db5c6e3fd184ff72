// The HA loop: one pass observes the local PostgreSQL, reads one snapshot of
// the cluster from the store, runs core::Decide and hands the decision to the
// executor (executor.cc), then publishes, arms the watchdog and does the
// housekeeping (housekeeping.cc); on a witness (no PostgreSQL) the same pass
// without observing or acting on PostgreSQL. Also the loop's wake-ups: the watch thread
// (a change of the leader key) and WakeLoop (the lease and fence threads, an
// operator request).
//
// Threads: LoopMain runs on loop_thread_, WatchMain on watch_thread_; both
// started by StartLoop and joined by StopLoop (any thread but the loop's).
// Touches: mu_ (last_view_, last_local_, last_reason_, store_ok_, state_),
// wake_mu_, watch_mu_, the atomics fence_deadline_/pg_pid_to_watch_ and the
// loop-only fields (streaming_, acted_, repeated_error_*).
#include <algorithm>

#include "agent/agent.h"
#include "agent/agent_internal.h"
#include "agent/service_status.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/notify.h"
#include "base/process.h"
#include "base/thread_name.h"
#include "core/decide.h"

namespace tandem::agent {
using namespace internal;

void Agent::StartLoop() {
  if (loop_running_.exchange(true)) return;
  // The loop may have ended by itself (this node was removed): reap its threads.
  for (std::thread* t : {&loop_thread_, &lease_thread_, &watch_thread_}) {
    if (t->joinable()) t->join();
  }
  lease_attempted_.Reset();   // a flag left by an earlier loop must not end the first wait
  renew_as_replica_ = false;  // the primary's cadence until a cycle shows otherwise
  lease_thread_ = std::thread([this] {
    NameThisThread("lease");
    LeaseMain();
  });
  watch_thread_ = std::thread([this] {
    NameThisThread("leader-watch");
    WatchMain(keys_.leader());
  });
  loop_thread_ = std::thread([this] {
    NameThisThread("ha-loop");
    LoopMain();
  });
}

void Agent::StopLoop() {
  loop_running_ = false;
  WakeLoop();
  lease_wake_.Notify();
  lease_attempted_.Notify();
  { std::lock_guard<std::mutex> lock(watch_mu_); }
  watch_cv_.notify_all();
  watch_retry_.Notify();
  for (std::thread* t : {&loop_thread_, &lease_thread_, &watch_thread_}) {
    if (t->joinable() && t->get_id() != std::this_thread::get_id()) t->join();
  }
}

void Agent::WakeLoop() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    wake_ = true;
  }
  wake_cv_.notify_all();
}

void Agent::WatchMain(const std::string& key) {
  while (loop_running_ && !stopping_) {
    const dcs::Revision rev = watch_revision_.load();
    auto store = Store();
    if (!store || rev == 0) {
      watch_retry_.WaitFor(50);
      continue;
    }
    // Answered from the kept watch stream (no request per wait); the bound is
    // how long a stop or a reload waits for this thread (it was 1 s: 0.7 s
    // of a reload's 1 s, while the proxy refuses).
    auto changed = store->WaitForChange(key, rev, 250);
    if (!changed.ok()) {
      watch_retry_.WaitFor(100);
      continue;
    }
    if (!*changed) continue;
    WakeLoop();
    // Until the loop has read a newer view, the same change would fire again
    // (at most 500 ms: then the watch looks again).
    std::unique_lock<std::mutex> lock(watch_mu_);
    clock_.WaitUntil(lock, watch_cv_, clock_.Now() + 500,
                     [&] { return watch_revision_.load() != rev || !loop_running_ || stopping_; });
  }
}

void Agent::LoopMain() {
  TLOG_EVENT(Info, "ha", "loop-started")
      << "HA loop started (ttl=" << cfg_.ha.ttl_ms << "ms loop=" << cfg_.ha.loop_interval_ms
      << "ms margin=" << cfg_.ha.safety_margin_ms << "ms)";
  // The first lease grant is under way: decide once a lease is held, or once
  // a lease could no longer be valid anyway (ttl - margin; the store is down
  // or refuses). A first cycle without a lease would demote a running primary
  // for nothing (core: "no leader key and no valid lease while primary").
  const MonoMs lease_wait_until = clock_.Now() + cfg_.ha.ttl_ms - cfg_.ha.safety_margin_ms;
  while (lease_.load() == 0 && loop_running_ && !stopping_ && clock_.Now() < lease_wait_until) {
    (void)lease_attempted_.WaitUntil(lease_wait_until);
  }
  MonoMs due = 0;  // when the previous pass meant to run this one
  while (loop_running_ && !stopping_) {
    const MonoMs start = clock_.Now();
    // Late passes explain a lost lease or an expired route better than
    // anything else: a machine that was paused, or too loaded to run us.
    if (due != 0 && start - due > cfg_.ha.ttl_ms / 2) {
      TLOG(Warn, "ha") << "the HA loop ran " << (start - due)
                       << " ms late (the machine was paused or overloaded): the lease and the "
                          "proxy routes may have expired meanwhile";
    }
    RunCycle();
    metrics_.CycleDone(clock_.Now() - start);
    ServiceNotifier::Process().CycleDone(clock_.Now(),
                                         ServiceStatusLine(cfg_.node_name, GetHealth()));
    ReapChildren();
    if (const MonoMs took = clock_.Now() - start; took > cfg_.ha.ttl_ms / 2) {
      TLOG(Warn, "ha") << "an HA cycle took " << took
                       << " ms, over half the lease TTL: the store or PostgreSQL answers slowly, "
                          "or the machine is overloaded";
    }
    const AfterCycle next = LeaveIfRemoved();
    if (next == AfterCycle::kRetry) continue;
    if (next == AfterCycle::kLeft) break;
    // Acted this cycle (started, stopped, promoted...): look again soon
    // rather than a whole interval later.
    const MonoMs interval =
        acted_ ? std::min<MonoMs>(cfg_.ha.loop_interval_ms, 50) : cfg_.ha.loop_interval_ms;
    const MonoMs left = interval - (clock_.Now() - start);
    due = clock_.Now() + std::max<MonoMs>(left, 0);
    std::unique_lock<std::mutex> lock(wake_mu_);
    if (left > 0) {
      clock_.WaitUntil(lock, wake_cv_, due,
                       [this] { return wake_ || !loop_running_ || stopping_; });
    }
    wake_ = false;
  }
  PublishNoRoute("the HA loop stopped");
  if (vip_) (void)vip_->Release("the HA loop stopped");
  TLOG_EVENT(Info, "ha", "loop-stopped") << "HA loop stopped";
  ServiceNotifier::Process().LoopStopped(ServiceStatusLoopStopped(cfg_.node_name));
}

Agent::AfterCycle Agent::LeaveIfRemoved() {
  bool removed = false;
  dcs::Revision rev = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (last_view_ && store_ok_) {
      rev = last_view_->revision;
      removed =
          last_view_->initialized && last_view_->nodes.count(cfg_.node_name) == 0 && state_.member;
    }
  }
  if (removed) {
    TLOG_EVENT(Warn, "ha", "removed")
        << "this node's registration is gone: it was removed from the cluster; "
           "leaving";
    // An operator command may hold op_mu_ and be waiting for this loop to
    // stop (remove): never block on it here; try again next cycle.
    std::unique_lock<std::mutex> op_lock(op_mu_, std::try_to_lock);
    if (!op_lock.owns_lock()) {
      std::unique_lock<std::mutex> lock(wake_mu_);
      clock_.WaitUntil(lock, wake_cv_, clock_.Now() + cfg_.ha.loop_interval_ms,
                       [this] { return !loop_running_ || stopping_; });
      return AfterCycle::kRetry;
    }
    fence_deadline_ = 0;
    fence_wake_.Notify();
    loop_running_ = false;
    auto s = LeaveLocally();
    if (!s.ok()) TLOG(Error, "ha") << "leaving the cluster: " << s.error().message();
    return AfterCycle::kLeft;
  }
  if (rev > 0 && watch_revision_.exchange(rev) != rev) {
    { std::lock_guard<std::mutex> lock(watch_mu_); }
    watch_cv_.notify_all();
  }
  return AfterCycle::kWait;
}

core::LocalPostgres Agent::ObserveLocal(const ClusterView& view) {
  core::LocalPostgres lp;
  lp.running = pg_->IsRunning();
  if (lp.running) {
    auto q = pg_->Query();
    if (q.ok()) {
      lp.in_recovery = q->in_recovery;
      lp.timeline = q->timeline;
      lp.lsn = q->lsn;
      if (q->in_recovery) lp.following = configured_upstream_;
      streaming_ = q->in_recovery && q->streaming;
    } else if (!PathExists(cfg_.pg_data_dir + "/standby.signal")) {
      // Alive, not answering, and not configured as a standby: it may be a
      // primary serving open sessions. Fail safe: report it as a primary, so
      // Decide fences it unless we hold a valid lease on the leader key.
      TLOG(Warn, "ha") << "PostgreSQL does not answer and is not a standby: "
                       << q.error().message();
      lp.in_recovery = false;
    } else {
      // A standby that does not answer (starting, recovering): report it as not
      // running; start actions check IsRunning() again.
      TLOG(Debug, "ha") << "PostgreSQL does not answer: " << q.error().message();
      lp.running = false;
    }
  }
  if (!lp.running) {
    streaming_ = false;
    auto cd = pg_->ReadControlData();
    if (cd.ok()) {
      lp.timeline = cd->timeline;
      lp.lsn = cd->checkpoint_lsn;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (lp.running && !lp.in_recovery &&
      (!state_.was_primary ||
       (state_.needs_rewind && view.leader && view.leader->holder == cfg_.node_name))) {
    // A writable primary holding the key: its history is the reference now.
    state_.was_primary = true;
    if (view.leader && view.leader->holder == cfg_.node_name) state_.needs_rewind = false;
    (void)SaveState();
  }
  // A former primary that is down while someone else leads may have written
  // WAL the new leader never saw: it must be rewound before following.
  if (!lp.running && state_.was_primary && view.leader && view.leader->holder != cfg_.node_name &&
      !state_.needs_rewind) {
    state_.needs_rewind = true;
    (void)SaveState();
  }
  lp.needs_rewind = state_.needs_rewind;
  lp.needs_reclone = state_.needs_reclone;
  lp.start_failures = start_failures_;
  return lp;
}

core::MemberState Agent::SelfState(const core::LocalPostgres& local) const {
  core::MemberState m;
  m.name = cfg_.node_name;
  if (witness_) {
    // No PostgreSQL: a voter only, never a candidate (docs/design/witness.md).
    m.role = core::Role::kWitness;
    m.nofailover = true;
    m.certificate = cert_summary_;
    return m;
  }
  m.role = !local.running ? core::Role::kStopped
                          : (local.in_recovery ? core::Role::kReplica : core::Role::kPrimary);
  m.timeline = local.timeline;
  m.lsn = local.lsn;
  m.replay_lsn = local.lsn;
  m.following = local.following;
  m.streaming = streaming_;
  // Data that needs a re-clone must not be waited for as a failover candidate.
  m.nofailover = local.needs_reclone;
  m.certificate = cert_summary_;
  return m;
}

void Agent::PublishMember(const core::LocalPostgres& local, const core::MemberState* stored) {
  auto store = Store();
  const dcs::LeaseId lease = lease_.load();
  if (!store || lease == 0) return;
  // Only a change is written: the key lives on the lease (liveness needs no
  // rewrite) and no reader judges a member by how recently it was written
  // (the state has no timestamp; the mod_revision of members/ is not read;
  // a promotion asks the members for their positions directly). Each write
  // costs every etcd member a raft round and an fsync. Written again when the
  // store does not show what we wrote (deleted, lost, a failed write) or the
  // lease is new.
  const std::string text = EncodeMemberState(SelfState(local));
  if (lease == published_lease_ && text == published_member_ && stored &&
      EncodeMemberState(*stored) == text) {
    return;
  }
  auto r = store->Put(keys_.member(cfg_.node_name), text, lease);
  if (!r.ok()) {
    TLOG(Debug, "ha") << "publishing member state: " << r.error().message();
    published_member_.clear();
    return;
  }
  published_member_ = text;
  published_lease_ = lease;
}

void Agent::RunCycle() {
  // Keep the embedded etcd member alive, whether or not the store answers.
  KeepEtcdMember();
  auto view = ReadLoopView();
  ClusterView v = view.ok() ? *view : ClusterView{};
  // A witness has no PostgreSQL to observe: it decides (nothing, row X1),
  // publishes its member state and the route, and keeps its lease.
  core::LocalPostgres local = witness_ ? core::LocalPostgres{} : ObserveLocal(v);
  if (view.ok()) metrics_.ObserveLeader(v.leader);
  // What the store holds for us, before our current state replaces it.
  std::optional<core::MemberState> stored;
  if (auto it = v.members.find(cfg_.node_name); it != v.members.end()) stored = it->second;
  // Our own state as of now, not as last read; published after acting (a
  // store write here would delay a failover decision).
  if (view.ok()) v.members[cfg_.node_name] = SelfState(local);
  core::Observation obs = MakeObservation(v, view.ok(), local);
  const core::Decision d = DecideCycle(&obs, v);
  {
    std::lock_guard<std::mutex> lock(mu_);
    store_ok_ = view.ok();
    if (view.ok()) last_view_ = v;
    last_local_ = local;
    if (d.reason != last_reason_) {
      TLOG(Info, "ha") << d.reason;
      last_reason_ = d.reason;
    }
  }
  // Before acting: a node about to give up the primary role takes the write
  // route away first (safety rule 5).
  PublishRoute(obs, d, v);
  // The floating IP likewise: gone before a demotion or step-down starts.
  ReleaseVipIfNeeded(obs, d);
  auto st = Execute(d, obs, v);
  if (!st.ok()) {
    LogActionFailure(st.error().message());
  } else if (!d.actions.empty()) {
    repeated_error_.clear();
  }
  if (view.ok()) PublishMember(local, stored ? &*stored : nullptr);
  ArmWatchdog(d, st.ok(), local, view.ok() ? &v : nullptr);
  const bool vip_held = vip_ && vip_->held();
  AcquireVipIfNeeded(obs, d);
  // The watchdog drops a held floating IP at the lease deadline: wake it to
  // wait for that deadline.
  if (vip_ && vip_->held() != vip_held) fence_wake_.Notify();
  // Only after actions that worked: a failing one must not spin the loop.
  acted_ = !d.actions.empty() && st.ok();
  if (view.ok()) Housekeeping(v, local, core::GivesUpPrimary(d));
  if (view.ok()) SchemaUpkeep(v, local);  // schema_upgrade.cc: starts the worker, never blocks
}

core::Observation Agent::MakeObservation(const ClusterView& v, bool store_ok,
                                         const core::LocalPostgres& local) {
  core::Observation obs;
  obs.now = clock_.Now();
  obs.self = cfg_.node_name;
  obs.witness = witness_;
  obs.store_ok = store_ok;
  if (store_ok) {
    obs.leader = v.leader;
    for (const auto& [name, m] : v.members) obs.members.push_back(m);
  }
  obs.pg = local;
  obs.lease = lease_;
  obs.lease_deadline = lease_deadline_;
  obs.cluster_timeline = v.timeline.timeline;
  if (store_ok) {
    obs.sync = v.sync;
    obs.intent = ToCoreIntent(v.intent, clock_.WallNow());
    obs.paused = v.paused;
  }
  return obs;
}

core::Decision Agent::DecideCycle(core::Observation* obs, const ClusterView& v) {
  core::Decision d = core::Decide(*obs, cfg_.ha);
  if (!obs->leader && HasAction(d, core::ActionType::kPromote)) {
    // About to promote on positions published up to a cycle ago: ask again.
    RefreshPositions(obs, v);
    core::Decision again = core::Decide(*obs, cfg_.ha);
    if (again.actions != d.actions) {
      TLOG(Info, "ha") << "after asking the members for their positions: " << again.reason;
    }
    d = std::move(again);
  }
  return d;
}

void Agent::LogActionFailure(const std::string& msg) {
  // The same failure every cycle (a full disk, a peer down) is said once,
  // then again every 30 s with how often it recurred, not four times a second.
  const MonoMs now = clock_.Now();
  if (msg != repeated_error_ || now - repeated_error_at_ >= 30'000) {
    if (msg == repeated_error_ && repeated_error_count_ > 0) {
      TLOG(Warn, "ha") << msg << " (again " << repeated_error_count_ << " times in "
                       << (now - repeated_error_at_) / 1000 << " s)";
    } else {
      TLOG(Warn, "ha") << msg;
    }
    repeated_error_ = msg;
    repeated_error_at_ = now;
    repeated_error_count_ = 0;
  } else {
    ++repeated_error_count_;
    TLOG(Debug, "ha") << msg;
  }
}

void Agent::ArmWatchdog(const core::Decision& d, bool acted_ok, const core::LocalPostgres& local,
                        const ClusterView* view) {
  // Arm the watchdog while we are the writable primary holding the key. When
  // the store cannot be read we cannot tell, and that is exactly when fencing
  // matters: keep it armed with the deadline of the last successful renewal.
  const bool promoted = HasAction(d, core::ActionType::kPromote);
  const bool writable =
      pg_->IsRunning() && ((acted_ok && promoted) || (local.running && !local.in_recovery));
  // Read the lease once: the lease thread may change it meanwhile.
  const MonoMs lease_deadline = lease_.load() != 0 ? lease_deadline_.load() : kFenceNow;
  const MonoMs armed_before = fence_deadline_.load();
  const int pid_before = pg_pid_to_watch_.load();
  if (!writable) {
    fence_deadline_ = 0;
    pg_pid_to_watch_ = 0;
  } else if (view) {
    const bool holding = view->leader && view->leader->holder == cfg_.node_name;
    // Not holding: Decide demoted it this cycle (or will next); holding with
    // no live lease: fence at once.
    fence_deadline_ = holding ? std::max<MonoMs>(lease_deadline, kFenceNow) : 0;
    pg_pid_to_watch_ = holding ? pg_->Pid() : 0;
  } else if (fence_deadline_.load() == 0) {
    // Writable, store unreadable: fence at our deadline.
    fence_deadline_ = std::max<MonoMs>(lease_deadline, kFenceNow);
  }
  if (pg_pid_to_watch_.load() != pid_before) pg_exit_.Watch(pg_pid_to_watch_.load());
  // The lease is renewed at the primary's cadence unless this node is surely
  // not the primary: the store shows someone else's key (or none), no
  // watchdog is armed, PostgreSQL was seen read-only or stopped, and this
  // cycle took no step towards the primary role. Moving to the fast cadence
  // wakes the lease thread now.
  using core::ActionType;
  const bool towards_primary =
      HasAction(d, ActionType::kAcquireLeader) || HasAction(d, ActionType::kTakeOverLeader) ||
      HasAction(d, ActionType::kPromote) || HasAction(d, ActionType::kStartPrimary);
  const bool replica_cadence = view != nullptr && fence_deadline_.load() == 0 &&
                               !(view->leader && view->leader->holder == cfg_.node_name) &&
                               !(local.running && !local.in_recovery) && !towards_primary;
  if (renew_as_replica_.exchange(replica_cadence) && !replica_cadence) lease_wake_.Notify();
  // The watchdog sleeps until the deadline it last read: tell it of a change.
  if (fence_deadline_.load() != armed_before || pg_pid_to_watch_.load() != pid_before) {
    fence_wake_.Notify();
  }
}

}  // namespace tandem::agent
