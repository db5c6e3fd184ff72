// The fence guard's two halves: FenceGuard::Start forks the guard process and
// Update (any agent thread) writes the fencing deadline down its pipe;
// GuardMain runs in the forked child only (no threads, nothing of the agent's
// state), waits for deadlines, and fences (floating IP first, then SIGQUIT to
// the postmaster named by postmaster.pid) when one passes without a newer one,
// or exits at SIGUSR1 (a successor's guard took over: FenceGuard::StandDown).
#include "agent/fence_guard.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "agent/vip.h"
#include "base/file.h"
#include "base/proc_info.h"
#include "base/process.h"
#include "base/strings.h"

namespace tandem::agent {
namespace {

// SIGQUIT (immediate shutdown) to the postmaster of data_dir, if one runs.
void FencePostgres(const std::string& data_dir, const char* why) {
  auto text = ReadFile(data_dir + "/postmaster.pid");
  if (!text) return;
  auto pid = ParseInt(Trim(Split(*text, '\n')[0]));
  if (!pid || !IsAlive(static_cast<pid_t>(*pid))) return;
  std::fprintf(stderr,
               "level=error module=fence msg=\"%s while PostgreSQL (pid %lld) could be a "
               "primary; its lease deadline passed: immediate shutdown\"\n",
               why, static_cast<long long>(*pid));
  ::kill(static_cast<pid_t>(*pid), SIGQUIT);
}

// Drops the floating IP, if one is configured: first, so clients stop
// reaching this node before its PostgreSQL goes.
void FenceVip(const VipConfig& vip) {
  if (!vip.enabled()) return;
  auto held = HasVip(vip);
  if (held.ok() && !*held) return;
  auto st = DeleteVip(vip);
  if (st.ok()) {
    std::fprintf(stderr,
                 "level=error module=fence msg=\"removed the floating IP %s: the lease deadline "
                 "passed\"\n",
                 vip.cidr().c_str());
  } else {
    std::fprintf(stderr, "level=error module=fence msg=\"%s\"\n", st.error().message().c_str());
  }
}

[[noreturn]] void GuardMain(const Clock& clock, int fd, const std::string& data_dir,
                            const VipConfig& vip) {
  ::prctl(PR_SET_NAME, "tandem-fence", 0, 0, 0);
  ::signal(SIGTERM, SIG_IGN);  // only the pipe tells it to act
  ::signal(SIGINT, SIG_IGN);
  // SIGUSR1: the next agent's guard holds a deadline for this PostgreSQL
  // (StandDown): this one's deadline is no one's any more; exit (the
  // default action).
  ::signal(SIGUSR1, SIG_DFL);
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  ::sigprocmask(SIG_UNBLOCK, &usr1, nullptr);
  MonoMs deadline = 0;
  bool open = true;
  while (true) {
    // Wait for a newer deadline, at most until the current one.
    int timeout = -1;
    if (deadline != 0) {
      const MonoMs left = deadline - clock.Now();
      timeout = static_cast<int>(std::clamp<MonoMs>(left, 0, 1000));
    }
    if (!open) {
      if (deadline == 0) _exit(0);
      if (timeout > 0) {
        clock.SleepFor(timeout);
        continue;
      }
    } else {
      struct pollfd p {
        fd, POLLIN, 0
      };
      int n = ::poll(&p, 1, timeout);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) {
        int64_t v = 0;
        ssize_t r = ::read(fd, &v, sizeof v);
        if (r < 0 && errno == EINTR) continue;
        if (r == static_cast<ssize_t>(sizeof v)) {
          deadline = v;
          continue;
        }
        open = false;  // EOF or error: the agent is gone; act on the last deadline
        continue;
      }
    }
    if (deadline != 0 && clock.Now() >= deadline) {
      // The agent did not extend the deadline in time: it is dead, frozen
      // (SIGSTOP) or stuck. Either way the lease may expire: fence.
      FencePostgres(data_dir, open ? "the agent did not renew its deadline (frozen or stuck)"
                                   : "the agent died");
      FenceVip(vip);  // after PostgreSQL: nothing may delay the fence
      if (!open) _exit(0);
      deadline = 0;  // armed again by the agent's next deadline
    }
  }
}

}  // namespace

FenceGuard& FenceGuard::operator=(FenceGuard&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    last_ = o.last_;
    identity_ = o.identity_;
    o.fd_ = -1;
    o.identity_ = {};
  }
  return *this;
}

FenceGuard::~FenceGuard() {
  if (fd_ >= 0) ::close(fd_);
}

Result<FenceGuard> FenceGuard::Start(const Clock& clock, const std::string& pg_data_dir,
                                     const VipConfig& vip) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    return Error(ErrorCode::kIo, std::string("pipe: ") + std::strerror(errno));
  }
  pid_t pid = ::fork();
  if (pid < 0) return Error(ErrorCode::kIo, std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::close(p[1]);
    GuardMain(clock, p[0], pg_data_dir, vip);
  }
  ::close(p[0]);
  FenceGuard g;
  g.fd_ = p[1];
  g.identity_.pid = pid;
  if (auto st = ReadProcStat(pid)) g.identity_.start_time = st->start_time;
  return g;
}

bool FenceGuard::Update(MonoMs deadline) {
  if (fd_ < 0) return false;
  if (deadline == last_) return true;
  int64_t v = deadline;
  if (::write(fd_, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) return false;
  last_ = deadline;
  return true;
}

bool FenceGuard::Running(const Identity& id) {
  if (id.pid <= 0 || id.start_time == 0) return false;
  auto st = ReadProcStat(static_cast<pid_t>(id.pid));
  return st && st->state != 'Z' && st->state != 'X' && st->start_time == id.start_time &&
         st->comm == "tandem-fence";
}

bool FenceGuard::StandDown(const Identity& id) {
  if (!Running(id)) return false;
  return ::kill(static_cast<pid_t>(id.pid), SIGUSR1) == 0;
}

}  // namespace tandem::agent
