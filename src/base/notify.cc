// The systemd readiness datagram (notify.h).
#include "base/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

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

}  // namespace tandem
