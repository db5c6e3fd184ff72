#include "agent/fence_guard.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "base/file.h"
#include "base/process.h"
#include "base/strings.h"

namespace tandem::agent {
namespace {

[[noreturn]] void GuardMain(int fd, const std::string& data_dir) {
  ::prctl(PR_SET_NAME, "tandem-fence", 0, 0, 0);
  ::signal(SIGTERM, SIG_IGN);  // only the pipe tells it to act
  ::signal(SIGINT, SIG_IGN);
  MonoMs deadline = 0;
  while (true) {
    int64_t v = 0;
    ssize_t n = ::read(fd, &v, sizeof v);
    if (n < 0 && errno == EINTR) continue;
    if (n == static_cast<ssize_t>(sizeof v)) {
      deadline = v;
      continue;
    }
    break;  // EOF or error: the agent is gone
  }
  if (deadline == 0) _exit(0);
  while (SystemClock::Get().Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto text = ReadFile(data_dir + "/postmaster.pid");
  if (!text) _exit(0);
  auto pid = ParseInt(Trim(Split(*text, '\n')[0]));
  if (!pid || !IsAlive(static_cast<pid_t>(*pid))) _exit(0);
  std::fprintf(stderr,
               "level=error module=fence msg=\"the agent died while PostgreSQL (pid %lld) could "
               "be a primary; its lease deadline passed: immediate shutdown\"\n",
               static_cast<long long>(*pid));
  ::kill(static_cast<pid_t>(*pid), SIGQUIT);
  _exit(0);
}

}  // namespace

FenceGuard& FenceGuard::operator=(FenceGuard&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    last_ = o.last_;
    o.fd_ = -1;
  }
  return *this;
}

FenceGuard::~FenceGuard() {
  if (fd_ >= 0) ::close(fd_);
}

Result<FenceGuard> FenceGuard::Start(const std::string& pg_data_dir) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    return Error(ErrorCode::kIo, std::string("pipe: ") + std::strerror(errno));
  }
  pid_t pid = ::fork();
  if (pid < 0) return Error(ErrorCode::kIo, std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::close(p[1]);
    GuardMain(p[0], pg_data_dir);
  }
  ::close(p[0]);
  FenceGuard g;
  g.fd_ = p[1];
  return g;
}

void FenceGuard::Update(MonoMs deadline) {
  if (fd_ < 0 || deadline == last_) return;
  int64_t v = deadline;
  if (::write(fd_, &v, sizeof v) == static_cast<ssize_t>(sizeof v)) last_ = deadline;
}

}  // namespace tandem::agent
