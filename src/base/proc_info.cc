// One process's /proc entries and a pidfd watch (see proc_info.h).
#include "base/proc_info.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "base/process.h"
#include "base/strings.h"

namespace tandem {
namespace {

// A small /proc file with plain syscalls: the process may vanish while we
// read, and libstdc++'s filebuf throws on such read errors. "" when unreadable.
std::string ReadSmall(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1u << 20)) break;
  }
  ::close(fd);
  return out;
}

}  // namespace

int OpenPidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) {
    (void)::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    return static_cast<int>(fd);
  }
#endif
  return -1;
}

std::optional<ProcStat> ParseProcStat(const std::string& content) {
  auto lp = content.find('(');
  auto rp = content.rfind(')');
  if (lp == std::string::npos || rp == std::string::npos || rp < lp) return std::nullopt;
  // After ") ": state ppid pgrp session tty_nr tpgid flags minflt cminflt
  // majflt cmajflt utime stime cutime cstime priority nice num_threads
  // itrealvalue starttime ...
  auto fields = Split(Trim(content.substr(rp + 1)), ' ');
  if (fields.size() < 20 || fields[0].size() != 1) return std::nullopt;
  auto ppid = ParseInt(fields[1]);
  auto pgid = ParseInt(fields[2]);
  if (!ppid || !pgid) return std::nullopt;
  ProcStat st;
  st.comm = content.substr(lp + 1, rp - lp - 1);
  st.state = fields[0][0];
  st.ppid = static_cast<pid_t>(*ppid);
  st.pgid = static_cast<pid_t>(*pgid);
  st.start_time = std::strtoull(fields[19].c_str(), nullptr, 10);
  return st;
}

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  return ParseProcStat(ReadSmall("/proc/" + std::to_string(pid) + "/stat"));
}

std::string ProcCwd(pid_t pid) {
  char buf[PATH_MAX];
  std::string link = "/proc/" + std::to_string(pid) + "/cwd";
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::vector<pid_t> out;
  if (pid <= 0) return out;
  const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(task_dir.c_str());
  if (d == nullptr) return out;
  std::vector<std::string> tids;
  while (struct dirent* e = ::readdir(d)) {
    if (ParseInt(e->d_name)) tids.push_back(e->d_name);
  }
  ::closedir(d);
  for (const auto& tid : tids) {
    for (const auto& word : Split(Trim(ReadSmall(task_dir + "/" + tid + "/children")), ' ')) {
      if (auto c = ParseInt(word); c && *c > 0) out.push_back(static_cast<pid_t>(*c));
    }
  }
  return out;
}

ProcessWatch::ProcessWatch(pid_t pid) : pid_(pid) {
  if (pid_ <= 0) return;
  fd_ = OpenPidfd(pid_);
  if (fd_ < 0) {
    auto st = ReadProcStat(pid_);
    start_time_ = st ? st->start_time : 0;
  }
}

ProcessWatch::~ProcessWatch() {
  if (fd_ >= 0) ::close(fd_);
}

ProcessWatch::ProcessWatch(ProcessWatch&& o) noexcept
    : pid_(o.pid_), fd_(o.fd_), start_time_(o.start_time_) {
  o.pid_ = 0;
  o.fd_ = -1;
}

ProcessWatch& ProcessWatch::operator=(ProcessWatch&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    pid_ = o.pid_;
    fd_ = o.fd_;
    start_time_ = o.start_time_;
    o.pid_ = 0;
    o.fd_ = -1;
  }
  return *this;
}

bool ProcessWatch::Running() const {
  if (pid_ <= 0) return false;
  if (fd_ >= 0) {
    struct pollfd p {
      fd_, POLLIN, 0
    };
    int n;
    do {
      n = ::poll(&p, 1, 0);
    } while (n < 0 && errno == EINTR);
    return n == 0;  // readable (or an error): it exited
  }
  if (!IsAlive(pid_)) return false;
  auto st = ReadProcStat(pid_);
  return st && st->start_time == start_time_;
}

}  // namespace tandem
