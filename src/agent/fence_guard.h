// The fence guard: a small process forked by the agent at start-up that stops
// the local PostgreSQL if the agent dies while PostgreSQL may be a primary.
//
// The agent, not PostgreSQL, enforces the lease (ARCHITECTURE.md rule 1/2): a
// SIGKILLed or crashed agent would otherwise leave a writable primary behind,
// and another node takes the key when the lease expires. The agent sends the
// guard its fencing deadline (monotonic ms; 0 = not a primary) whenever it
// changes. When the last deadline passes without a newer one, the agent is
// dead, frozen (SIGSTOP) or stuck, and the guard sends the postmaster SIGQUIT
// (immediate shutdown), after removing the floating IP when one is configured
// (docs/design/vip.md); after the pipe closes it then exits. An agent
// restarted (or thawed) before that deadline loses one PostgreSQL restart,
// never safety, unless it takes over first: a new agent whose own guard
// holds a deadline from a renewal of the same lease stands the old guard
// down (StandDown: SIGUSR1, after checking the pid's name and start time), so
// an agent restart costs no PostgreSQL restart (docs/design/agent-restart.md).
#pragma once

#include <cstdint>
#include <string>

#include "agent/config.h"
#include "base/clock.h"
#include "base/result.h"

namespace tandem::agent {

class FenceGuard {
 public:
  FenceGuard() = default;
  FenceGuard(FenceGuard&& o) noexcept : fd_(o.fd_), last_(o.last_), identity_(o.identity_) {
    o.fd_ = -1;
    o.identity_ = {};
  }
  FenceGuard& operator=(FenceGuard&& o) noexcept;
  ~FenceGuard();

  // Forks the guard. Must be called before the process starts any thread.
  // `vip` (may be off) is removed from its interface when the guard fences.
  // The guard process reads `clock` (it compares the agent's deadlines with
  // it, so it must be the agent's clock): in practice the SystemClock, since
  // a ManualClock cannot be advanced in another process. Agent tests leave
  // the guard out (a default FenceGuard ignores Update).
  static Result<FenceGuard> Start(const Clock& clock, const std::string& pg_data_dir,
                                  const VipConfig& vip = {});
  // Tells the guard the current deadline (0 = not a primary). Cheap; only
  // changes are sent. Thread-compatible (one caller). True when the guard
  // holds `deadline` (written down its pipe now or before): it reads what is
  // in the pipe before it sees the pipe close.
  bool Update(MonoMs deadline);
  // Graceful shutdown: the agent stopped PostgreSQL itself; the guard exits.
  void Disarm() { Update(0); }
  // Whether a guard process runs for this object (a default one: no).
  bool active() const { return fd_ >= 0; }

  // A guard process, known by its pid and its start time (/proc/<pid>/stat),
  // so a reused pid is never taken for it.
  struct Identity {
    int64_t pid = 0;
    uint64_t start_time = 0;
  };
  Identity identity() const { return identity_; }
  // Whether the guard `id` still runs (its pid has its start time and the
  // guard's name).
  static bool Running(const Identity& id);
  // Ends the guard `id` (SIGUSR1) if it still runs; its deadline is then no
  // one's. The caller's own guard must hold a deadline that is safe for the
  // same PostgreSQL. True when it was running and was told.
  static bool StandDown(const Identity& id);

 private:
  int fd_ = -1;
  MonoMs last_ = -1;
  Identity identity_;
};

}  // namespace tandem::agent
