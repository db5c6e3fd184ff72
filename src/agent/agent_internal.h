// Constants and small helpers shared by the files that implement Agent
// (agent.cc, ha_loop.cc, executor.cc, ...). Not part of the agent's
// interface: include it only from src/agent/*.cc.
#pragma once

#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>

#include "agent/config.h"
#include "base/clock.h"
#include "base/result.h"
#include "core/types.h"

namespace tandem::agent::internal {

inline constexpr const char* kReplicationUser = "replicator";
// Cycles a replica may fail to stream from a leader on a newer timeline before
// it is rewound (pg_rewind is a no-op when nothing diverged).
inline constexpr int kStalledCyclesBeforeRewind = 10;
// A fencing deadline that has always passed.
inline constexpr MonoMs kFenceNow = 1;

inline bool HasAction(const core::Decision& d, core::ActionType type) {
  for (const auto& a : d.actions) {
    if (a.type == type) return true;
  }
  return false;
}

// The user PostgreSQL runs as: run_as_user when the agent runs as root.
inline std::string ServiceUser(const Config& cfg) {
  return ::geteuid() == 0 ? cfg.run_as_user : "";
}

inline Error Fail(ErrorCode code, const std::string& msg) {
  return Error(code, msg);
}

// Polls `cond` every 200 ms (on `clock`) until it holds, `timeout_ms` passed
// or `stopping` is set. Returns whether it held.
inline bool WaitFor(const Clock& clock, const std::function<bool()>& cond, int64_t timeout_ms,
                    const std::atomic<bool>& stopping) {
  const MonoMs start = clock.Now();
  while (!stopping) {
    if (cond()) return true;
    if (clock.Now() - start > timeout_ms) return false;
    clock.SleepFor(200);
  }
  return false;
}

}  // namespace tandem::agent::internal
