// The systemd readiness datagram (notify.h).
#include "base/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "base/log.h"

namespace tandem {

std::string TakeNotifySocket() {
  const char* v = std::getenv("NOTIFY_SOCKET");
  std::string socket = v != nullptr ? v : "";
  ::unsetenv("NOTIFY_SOCKET");
  return socket;
}

Status Notify(const std::string& socket, const std::string& state) {
  if (socket.empty()) return Ok();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.size() >= sizeof addr.sun_path || (socket[0] != '/' && socket[0] != '@')) {
    return Error(
        ErrorCode::kInvalidArgument,
        "NOTIFY_SOCKET '" + socket + "' is neither an absolute path nor an @abstract name");
  }
  std::memcpy(addr.sun_path, socket.data(), socket.size());
  if (socket[0] == '@') addr.sun_path[0] = '\0';  // abstract: no terminating NUL counted
  const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket.size() +
                                               (socket[0] == '@' ? 0 : 1));
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(ErrorCode::kIo, std::string("socket: ") + std::strerror(errno));
  const ssize_t n = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                             reinterpret_cast<const sockaddr*>(&addr), len);
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(state.size())) {
    return Error(ErrorCode::kIo,
                 "cannot notify systemd at " + socket + " (" + state + "): " + std::strerror(err));
  }
  return Ok();
}

int64_t TakeWatchdogMs() {
  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  int64_t ms = 0;
  if (usec != nullptr) {
    char* end = nullptr;
    const long long v = std::strtoll(usec, &end, 10);
    if (end != usec && *end == '\0' && v > 0) ms = std::max<int64_t>(v / 1000, 1);
  }
  if (pid != nullptr && std::strtoll(pid, nullptr, 10) != static_cast<long long>(::getpid())) {
    ms = 0;
  }
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  return ms;
}

void ServiceNotifier::ExportForExec() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!socket_.empty()) ::setenv("NOTIFY_SOCKET", socket_.c_str(), 1);
  if (watchdog_ms_ > 0) {
    ::setenv("WATCHDOG_USEC", std::to_string(watchdog_ms_ * 1000).c_str(), 1);
    ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  }
}

ServiceNotifier& ServiceNotifier::Process() {
  static ServiceNotifier n;
  return n;
}

void ServiceNotifier::Configure(const std::string& socket, int64_t watchdog_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  socket_ = socket;
  watchdog_ms_ = watchdog_ms;
  pinged_ = false;
}

void ServiceNotifier::SendLocked(const std::string& state) {
  auto st = Notify(socket_, state);
  if (!st.ok() && !send_failed_) {
    send_failed_ = true;  // once: systemd going away must not flood the log
    TLOG(Warn, "agent") << st.error().message();
  }
}

void ServiceNotifier::Send(const std::string& state) {
  std::lock_guard<std::mutex> lock(mu_);
  SendLocked(state);
}

void ServiceNotifier::SetStatus(const std::string& status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (status == status_) return;
  status_ = status;
  SendLocked("STATUS=" + status);
}

void ServiceNotifier::PingIfDue(MonoMs now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (watchdog_ms_ <= 0) return;
  if (pinged_ && now - last_ping_ < watchdog_ms_ / 4) return;
  pinged_ = true;
  last_ping_ = now;
  SendLocked("WATCHDOG=1");
}

void ServiceNotifier::CycleDone(MonoMs now, const std::string& status) {
  loop_running_ = true;
  PingIfDue(now);
  SetStatus(status);
}

void ServiceNotifier::LoopStopped(const std::string& status) {
  loop_running_ = false;
  SetStatus(status);
}

void ServiceNotifier::Tick(MonoMs now) {
  if (loop_running_ && long_actions_ == 0) return;  // the loop's own cycles feed it
  PingIfDue(now);
}

ServiceNotifier::LongAction::LongAction(ServiceNotifier& n, const std::string& status) : n_(n) {
  ++n_.long_actions_;
  n_.SetStatus(status);
}

ServiceNotifier::LongAction::~LongAction() {
  --n_.long_actions_;
}

}  // namespace tandem
