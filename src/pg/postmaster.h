// Which process is the postmaster of one data directory, known from its pid
// alone: postmaster.pid is read and its one pid checked (alive, not a
// zombie, a postgres process, working in this data directory); from then on
// the process is followed by a pidfd (base/proc_info.h) until it exits, so
// asking "is it running?" costs one poll() and no file read. /proc is never
// scanned.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <sys/types.h>

#include <mutex>
#include <string>

#include "base/proc_info.h"

namespace tandem::pg {

// The postmaster named by <data_dir>/postmaster.pid when it is alive, not a
// zombie, a postgres process, and working in data_dir; else 0. Reads
// postmaster.pid, /proc/<pid>/stat and /proc/<pid>/cwd once each.
pid_t IdentifyPostmaster(const std::string& data_dir);

class PostmasterTracker {
 public:
  explicit PostmasterTracker(std::string data_dir) : data_dir_(std::move(data_dir)) {}

  // The live postmaster's pid, 0 when none runs: the watched one while it
  // runs, else IdentifyPostmaster (and that one is watched from then on).
  pid_t Pid() const;

 private:
  const std::string data_dir_;
  mutable std::mutex mu_;
  mutable ProcessWatch watch_;
};

// SIGKILLs a postmaster and its children. PostgreSQL's children each lead a
// process group of their own (they call setsid()), so the postmaster's group
// does not hold them: the postmaster is stopped (SIGSTOP: it forks no more),
// its children are read from /proc/<pid>/task/<pid>/children, then all are
// killed.
void KillPostmaster(pid_t pid);

}  // namespace tandem::pg
