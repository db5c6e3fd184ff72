// Child processes: spawn, run to completion, check liveness, reap. What the
// kernel says about one given process (its stat, children, a pidfd watch) is
// in base/proc_info.h.
//
// PID 1 on our machines does not reap orphans, so the agent and the test
// harnesses call BecomeSubreaper() and reap what they start. Never trust a pid
// file: IsAlive() treats a zombie as dead. Nothing here scans /proc.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"

namespace tandem {

struct SpawnOptions {
  std::string run_as_user;                 // empty: keep our uid; else setuid/setgid to it
  std::map<std::string, std::string> env;  // added to (or overriding) our environment
  std::string output_file;                 // stdout+stderr appended here; empty: /dev/null
  std::string cwd;                         // empty: inherit
  bool new_process_group = true;           // so a kill of the group takes its children too
};

// Starts argv[0] (searched in PATH) and returns its pid without waiting.
Result<pid_t> Spawn(const std::vector<std::string>& argv, const SpawnOptions& opts);

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string output;  // stdout+stderr (capped at 1 MiB, the tail kept)
};

// Runs to completion. on_line (optional) gets every output line as it arrives
// (for progress). Kills the process group at timeout_ms (0 = no limit) and
// returns kTimeout. A non-zero exit is NOT an error here; check exit_code.
Result<RunResult> RunCommand(const std::vector<std::string>& argv, const SpawnOptions& opts,
                             int64_t timeout_ms = 0,
                             const std::function<void(const std::string&)>& on_line = {});

// True when the process exists and is not a zombie. For our own children
// (and adopted orphans) one waitid() call, else kill(0) and /proc/<pid>/stat.
bool IsAlive(pid_t pid);
// Non-blocking: reaps every exited child (ours or adopted) except those a
// RunCommand call is waiting for. Returns how many. One waitid() call when
// there is nothing to reap.
int ReapChildren();
// prctl(PR_SET_CHILD_SUBREAPER).
void BecomeSubreaper();
// Sends sig to the process group of pid (or pid itself when it leads no group).
void KillProcessTree(pid_t pid, int sig);
// Waits (polling every 20 ms on `clock`, reaping) until pid is gone or
// timeout_ms passes. True when gone. Code in src/ passes its injected clock;
// the default is for test harnesses that wait on real processes.
bool WaitForExit(pid_t pid, int64_t timeout_ms, const Clock& clock = SystemClock::Get());
// Resolves an executable name in PATH ("" when absent).
std::string FindInPath(const std::string& name);

}  // namespace tandem
