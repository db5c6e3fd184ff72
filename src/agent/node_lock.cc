// NodeLock: the state directory's flock (see node_lock.h).
#include "agent/node_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/file.h"
#include "base/strings.h"

namespace tandem::agent {

NodeLock::NodeLock(NodeLock&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) {
  o.fd_ = -1;
}

NodeLock& NodeLock::operator=(NodeLock&& o) noexcept {
  if (this != &o) {
    Release();
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}

void NodeLock::Release() {
  if (fd_ < 0) return;
  (void)::flock(fd_, LOCK_UN);
  ::close(fd_);
  fd_ = -1;
}

std::string DescribeLockHolder(const std::string& content) {
  auto pid = ParseInt(Trim(Split(content, '\n')[0]));
  if (!pid || *pid <= 0) return "an unknown process (the lock file names no pid yet)";
  std::string out = "pid " + std::to_string(*pid);
  if (*pid == ::getpid()) return out + " (this process)";
  auto cmdline = ReadFile("/proc/" + std::to_string(*pid) + "/cmdline");
  if (!cmdline || cmdline->empty()) return out;
  std::string text = *cmdline;
  for (char& c : text) {
    if (c == '\0') c = ' ';
  }
  text = Trim(text);
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  return out + " (" + text + ")";
}

Result<NodeLock> NodeLock::Acquire(const std::string& state_dir) {
  TANDEM_TRY(MakeDirs(state_dir, 0755));
  NodeLock lock;
  lock.path_ = state_dir + "/" + kFileName;
  lock.fd_ = ::open(lock.path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (lock.fd_ < 0) {
    return Error(ErrorCode::kIo, "cannot open the node's lock file " + lock.path_ + ": " +
                                     std::strerror(errno) + "; check node.state_dir");
  }
  if (::flock(lock.fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err != EWOULDBLOCK) {
      return Error(ErrorCode::kIo, "cannot lock " + lock.path_ + ": " + std::strerror(err));
    }
    auto content = ReadFile(lock.path_);
    return Error(ErrorCode::kFailedPrecondition,
                 "another agent already runs for the state directory " + state_dir + ": " +
                     DescribeLockHolder(content ? *content : "") + " holds " + lock.path_ +
                     ". One agent per node: stop that agent first (e.g. `systemctl stop tandem`), "
                     "or give this one its own node.state_dir; nothing was started");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock.fd_, 0) != 0 ||
      ::pwrite(lock.fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return Error(ErrorCode::kIo,
                 "cannot write this agent's pid into " + lock.path_ + ": " + std::strerror(errno));
  }
  return lock;
}

}  // namespace tandem::agent
