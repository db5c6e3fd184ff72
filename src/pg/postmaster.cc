// The postmaster of a data directory, from its pid (see postmaster.h).
#include "pg/postmaster.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>

#include "base/file.h"
#include "base/process.h"
#include "base/strings.h"
#include "pg/conf.h"

namespace tandem::pg {
namespace {

std::string RealPath(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) return p;
  return buf;
}

}  // namespace

pid_t IdentifyPostmaster(const std::string& data_dir) {
  auto content = ReadFile(data_dir + "/postmaster.pid");
  if (!content) return 0;
  auto pid = ParsePostmasterPid(*content);
  if (!pid || *pid <= 0) return 0;
  auto st = ReadProcStat(static_cast<pid_t>(*pid));
  if (!st || st->state == 'Z' || st->state == 'X') return 0;
  if (st->comm != "postgres" && st->comm != "postmaster") return 0;
  std::string cwd = ProcCwd(static_cast<pid_t>(*pid));
  if (!cwd.empty() && cwd != RealPath(data_dir)) return 0;
  return static_cast<pid_t>(*pid);
}

pid_t PostmasterTracker::Pid() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (watch_.Running()) return watch_.pid();
  pid_t pid = IdentifyPostmaster(data_dir_);
  if (pid == 0) {
    watch_ = ProcessWatch();
    return 0;
  }
  ProcessWatch w(pid);
  // Checked before the watch existed: make sure the process it follows is
  // the one we checked (a pid reused in between would fail the check again).
  if (!w.Running() || IdentifyPostmaster(data_dir_) != pid) return 0;
  watch_ = std::move(w);
  return pid;
}

void KillPostmaster(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGSTOP);
  auto kids = ChildrenOf(pid);
  KillProcessTree(pid, SIGKILL);
  ::kill(pid, SIGKILL);
  for (pid_t k : kids) ::kill(k, SIGKILL);
}

}  // namespace tandem::pg
