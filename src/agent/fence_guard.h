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
// never safety.
#pragma once

#include <string>

#include "agent/config.h"
#include "base/clock.h"
#include "base/result.h"

namespace tandem::agent {

class FenceGuard {
 public:
  FenceGuard() = default;
  FenceGuard(FenceGuard&& o) noexcept : fd_(o.fd_), last_(o.last_) { o.fd_ = -1; }
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
  // changes are sent. Thread-compatible (one caller).
  void Update(MonoMs deadline);
  // Graceful shutdown: the agent stopped PostgreSQL itself; the guard exits.
  void Disarm() { Update(0); }

 private:
  int fd_ = -1;
  MonoMs last_ = -1;
};

}  // namespace tandem::agent
