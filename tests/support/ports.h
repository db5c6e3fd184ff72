// Loopback ports and connections for tests that run side by side (ctest -j):
// the kernel picks the ports, so two test processes never compute the same number the way
// "base + pid % N" did, and a port meant to have nothing listening is held
// bound (not listening) so no other test can take it meanwhile.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace tandem::test_ports {

// A socket bound to 127.0.0.1 on a kernel-chosen port, or -1.
inline int BindLoopbackAnyPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline int LocalPortOf(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
  return ntohs(a.sin_port);
}

// A port nothing listens on right now: the kernel's pick, released for the
// caller to bind (the kernel does not hand it out again soon).
inline int FreeLoopbackPort() {
  const int fd = BindLoopbackAnyPort();
  if (fd < 0) return 0;
  const int port = LocalPortOf(fd);
  ::close(fd);
  return port;
}

// A port where a connect is refused for as long as this object lives: it is
// bound without SO_REUSEADDR and never listens, so nobody else can bind it.
class RefusingPort {
 public:
  RefusingPort() : fd_(BindLoopbackAnyPort()), port_(LocalPortOf(fd_)) {}
  ~RefusingPort() {
    if (fd_ >= 0) ::close(fd_);
  }
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;
  int port() const { return port_; }

 private:
  int fd_;
  int port_;
};

// A blocking TCP connection to 127.0.0.1:port from the loopback address
// `from` (all of 127/8 is local, so a test can be many client addresses);
// -1 when it cannot connect.
inline int ConnectFrom(const std::string& from, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in src{};
  src.sin_family = AF_INET;
  inet_pton(AF_INET, from.c_str(), &src.sin_addr);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<uint16_t>(port));
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace tandem::test_ports
