// ExitNotifier (exit_notifier.h): a pidfd and an eventfd in one poll().
#include "base/exit_notifier.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <utility>

#include "base/proc_info.h"

namespace tandem {
namespace {

void Signal(int fd) {
  const uint64_t one = 1;
  ssize_t n;
  do {
    n = ::write(fd, &one, sizeof one);
  } while (n < 0 && errno == EINTR);
}

void Drain(int fd) {
  uint64_t count;
  ssize_t n;
  do {
    n = ::read(fd, &count, sizeof count);
  } while (n < 0 && errno == EINTR);
}

}  // namespace

bool ExitNotifier::Supported() {
  static const bool supported = [] {
    const int fd = OpenPidfd(::getpid());
    if (fd < 0) return false;
    ::close(fd);
    return true;
  }();
  return supported;
}

ExitNotifier::ExitNotifier(std::function<void(pid_t)> on_exit) : on_exit_(std::move(on_exit)) {}

ExitNotifier::~ExitNotifier() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  if (wake_fd_ >= 0) Signal(wake_fd_);
  if (thread_.joinable()) thread_.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void ExitNotifier::Watch(pid_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pid == pid_ || stop_) return;
  pid_ = pid;
  ++gen_;
  if (!thread_.joinable()) {
    if (pid <= 0 || !Supported()) return;
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) return;
    thread_ = std::thread([this] { Main(); });
    return;
  }
  Signal(wake_fd_);
}

void ExitNotifier::Main() {
  int pidfd = -1;
  pid_t watched = 0;
  unsigned long long watched_gen = 0;
  while (true) {
    pid_t pid;
    unsigned long long gen;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
      pid = pid_;
      gen = gen_;
    }
    if (gen != watched_gen) {
      if (pidfd >= 0) ::close(pidfd);
      pidfd = pid > 0 ? OpenPidfd(pid) : -1;
      watched = pid;
      watched_gen = gen;
      if (pid > 0 && pidfd < 0) {
        // No such process (any more): it has exited.
        on_exit_(pid);
        watched = 0;
      }
    }
    struct pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {pidfd, POLLIN, 0}};
    const nfds_t n = (pidfd >= 0 && watched > 0) ? 2 : 1;
    const int r = ::poll(fds, n, -1);
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    if (fds[0].revents != 0) Drain(wake_fd_);
    if (n == 2 && fds[1].revents != 0) {
      bool still = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        still = gen_ == watched_gen;
      }
      if (still) on_exit_(watched);
      ::close(pidfd);
      pidfd = -1;
      watched = 0;
    }
  }
  if (pidfd >= 0) ::close(pidfd);
}

}  // namespace tandem
