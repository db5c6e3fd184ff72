// The session lease and the fencing watchdog (safety rules 1 and 2).
//
// LeaseMain (lease_thread_, started with the HA loop) renews the lease every
// loop interval on the primary and every third of the demotion window
// elsewhere (LeaseRenewalInterval), independently of the loop, and extends an armed watchdog and
// a route to this node after each renewal. FenceMain (fence_thread_, from
// Start to Shutdown) stops PostgreSQL immediately when fence_deadline_ passes,
// tells the fence guard process the deadline, drops the floating IP outside a
// live lease and wakes the loop when a primary's postmaster dies (pg_exit_
// wakes it at once), and stands the previous agent's fence guard down once
// its own guard holds a live deadline (restart.cc). It sleeps
// until the next of those can be due (NextFenceCheck); every change of
// fence_deadline_ wakes it (fence_wake_).
// Touches: lease_/lease_deadline_/fence_deadline_/pg_pid_to_watch_ (atomics),
// mu_ (state_ when fencing), route_mu_ (ExtendSelfRoute), the store, pg_->Stop.
#include <algorithm>

#include "agent/agent.h"
#include "agent/agent_internal.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/process.h"
#include "core/lease_cadence.h"

namespace tandem::agent {
using namespace internal;

void Agent::LeaseMain() {
  while (loop_running_ && !stopping_) {
    const MonoMs start = clock_.Now();
    const bool had = lease_.load() != 0;
    auto st = RenewLease();
    metrics_.LeaseRenewal(st.ok(), clock_.Now() - start, clock_.WallNow());
    if (!st.ok()) TLOG(Debug, "ha") << "lease renewal: " << st.error().message();
    lease_attempted_.Notify();
    // A lease lost or granted changes what the loop decides: run it now.
    if (had != (lease_.load() != 0)) WakeLoop();
    // Until the next renewal is due. The loop sets renew_as_replica_ only for
    // a node that is surely not the primary (ArmWatchdog) and wakes this wait
    // when it clears it (StopLoop too), so a new primary's next renewal is at
    // most one loop interval away.
    const bool primary = !renew_as_replica_.load();
    const MonoMs due =
        start + core::LeaseRenewalInterval(cfg_.ha, primary, st.ok() && lease_.load() != 0);
    while (loop_running_ && !stopping_ && clock_.Now() < due) {
      lease_wake_.WaitUntil(due);
      if (!primary && !renew_as_replica_.load()) break;  // may have become the primary
    }
  }
}

Status Agent::RenewLease() {
  auto store = Store();
  if (!store) return Error(ErrorCode::kFailedPrecondition, "no store");
  const MonoMs sent = clock_.Now();
  if (lease_ != 0) {
    auto r = store->KeepAlive(lease_);
    if (r.ok()) {
      const int64_t ttl_ms = std::min<int64_t>(cfg_.ha.ttl_ms, *r * 1000);
      const MonoMs deadline = sent + ttl_ms - cfg_.ha.safety_margin_ms;
      lease_deadline_ = deadline;
      // Extend an armed watchdog; never re-arm one the loop disarmed.
      MonoMs armed = fence_deadline_.load();
      while (armed > kFenceNow && armed < deadline &&
             !fence_deadline_.compare_exchange_weak(armed, deadline)) {
      }
      // The watchdog tells the fence guard the later deadline (and waits for it).
      if (armed > kFenceNow) fence_wake_.Notify();
      ExtendSelfRoute(deadline);
      return Ok();
    }
    if (r.error().code() != ErrorCode::kNotFound) return r.error();
    // Decide this cycle with no lease (a primary is fenced first); a new lease
    // is granted at the start of the next cycle.
    TLOG_EVENT(Warn, "ha", "lease-lost") << "our lease expired in the store; taking a new one";
    lease_ = 0;
    lease_deadline_ = kFenceNow;
    // A primary is fenced now: any deadline in the past makes the watchdog act.
    if (fence_deadline_.load() != 0) fence_deadline_ = kFenceNow;
    fence_wake_.Notify();  // the fence (and the floating IP's check) act now
    return Ok();
  }
  // After an agent restart: the previous agent's lease, while the store
  // still has it, so the leader key (and the member key) stay on it.
  if (const dcs::LeaseId old = reattach_lease_.load(); old != 0) {
    auto r = store->KeepAlive(old);
    if (r.ok()) {
      const int64_t ttl_ms = std::min<int64_t>(cfg_.ha.ttl_ms, *r * 1000);
      lease_deadline_ = sent + ttl_ms - cfg_.ha.safety_margin_ms;
      lease_ = old;
      reattach_lease_ = 0;
      TLOG(Info, "ha") << "renewed the previous agent's lease " << old
                       << ": the keys on it stay this node's";
      return Ok();
    }
    if (r.error().code() != ErrorCode::kNotFound) return r.error();
    reattach_lease_ = 0;
    TLOG(Info, "ha") << "the previous agent's lease " << old
                     << " expired in the store; taking a new one";
  }
  const MonoMs grant_sent = clock_.Now();
  auto g = store->GrantLease((cfg_.ha.ttl_ms + 999) / 1000);
  if (!g) return g.error();
  const int64_t ttl_ms = std::min<int64_t>(cfg_.ha.ttl_ms, g->ttl_seconds * 1000);
  lease_deadline_ = grant_sent + ttl_ms - cfg_.ha.safety_margin_ms;
  lease_ = g->id;
  RememberLease(g->id);
  return Ok();
}

void Agent::FenceMain() {
  while (!stopping_) {
    const MonoMs deadline = fence_deadline_.load();
    const bool guard_holds = guard_.Update(deadline);
    if (deadline != 0 && clock_.Now() >= deadline) {
      fence_deadline_ = 0;
      TLOG_EVENT(Error, "ha", "fence")
          << "lease deadline passed while primary and the HA loop did not demote "
             "in time: stopping PostgreSQL immediately (fencing)";
      metrics_.Fenced();
      {
        std::lock_guard<std::mutex> lock(mu_);
        state_.needs_rewind = true;
        (void)SaveState();
      }
      auto st = pg_->Stop(pg::StopMode::kImmediate);
      if (!st.ok()) TLOG(Error, "ha") << "fencing stop failed: " << st.error().message();
      // After PostgreSQL, never before: removing the address may wait for
      // the loop's netlink call, and nothing may delay the fence.
      if (vip_) (void)vip_->Release("fencing", /*force=*/true);
    }
    // The floating IP never outlives the lease, whatever the loop is doing.
    if (vip_ && vip_->held() && !VipAllowed()) {
      (void)vip_->Release("the lease deadline passed (fencing)");
    }
    // A primary's postmaster died: the loop restarts it (or hands over) now,
    // not at its next tick.
    if (const int pid = pg_pid_to_watch_.load(); pid != 0 && !IsAlive(pid)) {
      pg_pid_to_watch_ = 0;
      TLOG_EVENT(Warn, "ha", "postgres-died") << "PostgreSQL (pid " << pid << ") died";
      WakeLoop();
    }
    // After a restart: the previous agent's guard goes once ours holds a
    // live deadline (after the fence above: nothing delays it).
    StandDownPredecessorGuard(guard_holds && deadline > clock_.Now());
    fence_wake_.WaitUntil(NextFenceCheck());
  }
}

MonoMs Agent::NextFenceCheck() const {
  // Event-driven: every store to fence_deadline_ that can bring it closer (or
  // arm, disarm or extend it) notifies fence_wake_, and the flag is kept until
  // this thread waits, so the wait ends at the deadline read here or earlier
  // (safety rule 2): a deadline already passed ends it at once, and is then
  // cleared (fired). The floating IP is dropped at the lease deadline. A
  // watched postmaster's (a primary's) exit wakes this thread through
  // pg_exit_ (a pidfd) the moment it happens: its death is on the
  // postmaster-crash failover path (bench/failover). Without pidfds it is
  // looked at (waitid) every 20 ms instead; at most 1 s passes anyway.
  const MonoMs now = clock_.Now();
  MonoMs until = now + 1'000;
  if (const MonoMs d = fence_deadline_.load(); d != 0) until = std::min(until, d);
  // Past the lease deadline with the IP still held (a release that failed):
  // try again in 20 ms, no sooner (no spin).
  if (vip_ && vip_->held()) until = std::min(until, std::max(lease_deadline_.load(), now + 20));
  if (pg_pid_to_watch_.load() != 0 && !ExitNotifier::Supported()) {
    until = std::min<MonoMs>(until, now + 20);
  }
  return until;
}

void Agent::StopFence() {
  fence_wake_.Notify();
  if (fence_thread_.joinable()) fence_thread_.join();
}

}  // namespace tandem::agent
