// Agent restart without a failover (docs/design/agent-restart.md): the stop
// for a restart (ShutdownForRestart: PostgreSQL, the etcd member and the
// armed fence guard left running, the lease and the guard recorded in
// state.json), the start that adopts them (AdoptPredecessor: the lease to
// re-attach to, the old guard to stand down once this agent's guard holds a
// deadline), and the operator's stop of the node (StopNode: a switchover
// first on the primary).
//
// Threads: ShutdownForRestart and StopNode from `tandem agent`'s main thread;
// AdoptPredecessor from Start (main thread); StandDownPredecessorGuard from
// the fence thread; RememberLease from the lease thread. State under mu_.
#include <string>

#include "agent/agent.h"
#include "agent/agent_internal.h"
#include "base/log.h"

namespace tandem::agent {
using namespace internal;

void Agent::AdoptPredecessor(const LocalState& loaded) {
  const FenceGuard::Identity own = guard_.identity();
  const FenceGuard::Identity old{loaded.guard_pid, loaded.guard_start_time};
  std::lock_guard<std::mutex> lock(mu_);
  if (old.pid != 0 && old.pid != own.pid && FenceGuard::Running(old)) {
    predecessor_guard_ = old;
    predecessor_guard_pending_ = true;
    TLOG(Info, "agent") << "the previous agent's fence guard (pid " << old.pid
                        << ") still runs: it is stood down once this agent's guard holds a "
                           "deadline for PostgreSQL (else it fences at its own)";
  }
  // Kept in memory for every node (initialize and join save it with the
  // membership); written now only for a member: a new node's state
  // directory gets no state.json from a mere start.
  state_.guard_pid = own.pid;
  state_.guard_start_time = own.start_time;
  if (!loaded.member) return;
  if (loaded.lease_id != 0) reattach_lease_ = loaded.lease_id;
  if (auto st = SaveState(); !st.ok()) {
    TLOG(Warn, "agent") << "cannot save local state: " << st.error().message();
  }
}

void Agent::StandDownPredecessorGuard(bool own_guard_armed) {
  if (!predecessor_guard_pending_.load()) return;
  FenceGuard::Identity old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    old = predecessor_guard_;
  }
  if (!FenceGuard::Running(old)) {
    predecessor_guard_pending_ = false;  // exited (a replica's guard does at once) or fenced
    return;
  }
  if (!own_guard_armed) return;
  // This agent's guard holds a deadline from this agent's own renewal of the
  // lease PostgreSQL serves under: the old deadline is no one's any more.
  if (FenceGuard::StandDown(old)) {
    TLOG(Info, "agent") << "took over from the previous agent: its fence guard (pid " << old.pid
                        << ") stood down; this agent's guard holds the deadline";
  }
  predecessor_guard_pending_ = false;
}

void Agent::RememberLease(dcs::LeaseId id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_.lease_id == id) return;
  state_.lease_id = id;
  if (auto st = SaveState(); !st.ok()) {
    TLOG(Warn, "agent") << "cannot save the lease id in local state (a restarted agent takes "
                           "a new lease): "
                        << st.error().message();
  }
}

void Agent::ShutdownForRestart() {
  stopping_ = true;
  if (op_thread_.joinable()) op_thread_.join();
  StopLoop();
  StopFence();
  std::unique_lock<std::mutex> op_lock(op_mu_);
  if (!node_lock_.held()) return;  // refused at Start: nothing here is ours
  KeepMemberForRestart();
  node_lock_.Release();
}

void Agent::KeepMemberForRestart() {
  if (!state_.member) return;
  // One renewal more: the next agent has the whole ttl - margin from now to
  // take over before the guard fences. It extends an armed watchdog only
  // (RenewLease never arms one).
  if (lease_.load() != 0) {
    if (auto st = RenewLease(); !st.ok()) {
      TLOG(Warn, "agent") << "last lease renewal before the restart: " << st.error().message();
    }
  }
  const MonoMs deadline = fence_deadline_.load();
  const bool told = guard_.Update(deadline);
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_.lease_id = lease_.load();
    const FenceGuard::Identity own = guard_.identity();
    state_.guard_pid = own.pid;
    state_.guard_start_time = own.start_time;
    if (auto st = SaveState(); !st.ok()) {
      TLOG(Warn, "agent") << "cannot save local state for the next agent (it takes a new lease "
                             "and PostgreSQL restarts once): "
                          << st.error().message();
    }
  }
  const int pg_pid = pg_->Pid();
  std::string left = "stopped for a restart: PostgreSQL (pid " + std::to_string(pg_pid) + ")";
  if (cfg_.embedded_etcd())
    left += " and the etcd member (pid " + std::to_string(etcd_.pid()) + ")";
  left += " keep running";
  if (deadline > kFenceNow && told) {
    left += "; the fence guard (pid " + std::to_string(guard_.identity().pid) +
            ") stops PostgreSQL in " + std::to_string(deadline - clock_.Now()) +
            " ms unless the next agent takes over first";
  } else if (deadline != 0) {
    left += "; the fence guard stops PostgreSQL now (the lease deadline passed)";
  }
  TLOG(Info, "agent") << left;
}

void Agent::StopNode(int64_t switchover_wait_ms) {
  if (GetHealth().primary) {
    auto started = RequestSwitchover("", 0);
    if (!started) {
      TLOG(Warn, "agent") << "stopping the node without a switchover first ("
                          << started.error().message() << ")";
    } else {
      TLOG(Info, "agent") << "stopping the node: switchover first (" << *started << ")";
      const MonoMs until = clock_.Now() + switchover_wait_ms;
      auto store = Store();
      while (store && clock_.Now() < until) {
        auto leader = store->Get(keys_.leader());
        if (leader.ok() && leader->has_value() && (*leader)->value != cfg_.node_name) {
          TLOG(Info, "agent") << "the leader key moved to " << (*leader)->value;
          break;
        }
        clock_.SleepFor(100);
      }
    }
  }
  Shutdown();
}

}  // namespace tandem::agent
