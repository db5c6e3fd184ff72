// One agent per node: an exclusive flock(2) on <state_dir>/agent.lock, taken
// by Agent::Start before anything else is written and held for the agent's
// life (the kernel drops it when the process dies, however it dies).
//
// The holder writes its pid into the file; a second agent for the same state
// directory is refused with the holder's pid, its command line (from
// /proc/PID/cmdline when readable) and the fix. flock conflicts between two
// open file descriptions, so two NodeLocks in one process conflict too. The
// descriptor is O_CLOEXEC: PostgreSQL, etcd and every other child that execs
// never holds it (a fork that does not exec, like the fence guard, must
// happen before Acquire, as `tandem agent` does).
//
// Thread safety: a NodeLock is a value owned by one thread at a time.
#pragma once

#include <string>

#include "base/result.h"

namespace tandem::agent {

class NodeLock {
 public:
  NodeLock() = default;
  ~NodeLock() { Release(); }
  NodeLock(NodeLock&& o) noexcept;
  NodeLock& operator=(NodeLock&& o) noexcept;
  NodeLock(const NodeLock&) = delete;
  NodeLock& operator=(const NodeLock&) = delete;

  // The lock file's name inside the state directory.
  static constexpr const char* kFileName = "agent.lock";

  // Creates state_dir (0755) and the lock file when missing, takes the lock
  // without waiting and writes this process's pid into it.
  // kFailedPrecondition: another holder (the message names state_dir, the
  // holder's pid and command line, and what to do); kIo: the directory or
  // file cannot be created or opened (the message names the path and errno).
  static Result<NodeLock> Acquire(const std::string& state_dir);

  bool held() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }
  // Unlocks and closes (no-op when not held). The file stays: the next holder
  // overwrites the pid.
  void Release();

 private:
  int fd_ = -1;
  std::string path_;
};

// The text a refused agent shows about the holder: "pid 123 (tandem agent -c
// /etc/tandem/tandem.yaml)", "pid 123" when its command line is unreadable,
// "an unknown process" when the file names no pid (exposed for tests).
std::string DescribeLockHolder(const std::string& lock_file_content);

}  // namespace tandem::agent
