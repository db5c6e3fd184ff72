// What the kernel says about one process, known by its pid: its /proc/<pid>/stat
// fields, its working directory, its direct children, and a watch that tells
// whether it is still running without reading /proc at all (a pidfd).
//
// Nothing here scans /proc: every call looks at the one pid it is given.
// Thread safety: free functions may be called from any thread; one
// ProcessWatch may be used by several threads (its methods are const and the
// fd is only closed by the destructor or a move).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace tandem {

// The fields of /proc/<pid>/stat we use.
struct ProcStat {
  std::string comm;  // the name between the parentheses ("postgres")
  char state = '?';  // R, S, D, T, Z, X, ...
  pid_t ppid = 0;
  pid_t pgid = 0;
  unsigned long long start_time = 0;  // clock ticks since boot: with the pid, the identity
};

// One read of /proc/<pid>/stat; nullopt when the process does not exist.
std::optional<ProcStat> ReadProcStat(pid_t pid);
// Parses the content of a /proc/<pid>/stat file (the comm may hold spaces and
// parentheses: the last ')' ends it). nullopt when malformed.
std::optional<ProcStat> ParseProcStat(const std::string& content);

// The target of /proc/<pid>/cwd ("" when unreadable).
std::string ProcCwd(pid_t pid);

// The direct children of pid, from /proc/<pid>/task/<tid>/children (one file
// per thread of pid; a single-threaded process such as the postmaster has one).
// Empty when the process is gone or the kernel lacks CONFIG_PROC_CHILDREN.
std::vector<pid_t> ChildrenOf(pid_t pid);

// A pidfd of pid (close-on-exec; Linux 5.3+), or -1: no such process, or no
// pidfd support. The caller closes it.
int OpenPidfd(pid_t pid);

// A process watched by a pidfd (Linux 5.3+): the fd becomes readable when the
// process exits, zombie or not, so Running() is one poll() with no file
// opened. Without pidfd support it falls back to IsAlive (base/process.h).
// A pid that is reused after the process exits is never mistaken for it.
class ProcessWatch {
 public:
  ProcessWatch() = default;
  // Watches pid (must be > 0). Check Running() afterwards: the process may
  // already have exited.
  explicit ProcessWatch(pid_t pid);
  ~ProcessWatch();
  ProcessWatch(ProcessWatch&& other) noexcept;
  ProcessWatch& operator=(ProcessWatch&& other) noexcept;
  ProcessWatch(const ProcessWatch&) = delete;
  ProcessWatch& operator=(const ProcessWatch&) = delete;

  pid_t pid() const { return pid_; }
  // False for a default-constructed watch, or once the process has exited.
  bool Running() const;

 private:
  pid_t pid_ = 0;
  int fd_ = -1;
  unsigned long long start_time_ = 0;  // the fallback's identity check
};

}  // namespace tandem
