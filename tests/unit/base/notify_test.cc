// The systemd readiness datagram (base/notify.h): a path socket and an
// abstract one ('@'), as systemd names them in $NOTIFY_SOCKET.
#include "base/notify.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace tandem {
namespace {

// A bound datagram socket at `name` (a path or "@abstract").
int Listen(const std::string& name) {
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, name.data(), name.size());
  socklen_t len = offsetof(sockaddr_un, sun_path) + name.size();
  if (name[0] == '@') {
    addr.sun_path[0] = '\0';
  } else {
    ++len;
  }
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0) << std::strerror(errno);
  return fd;
}

std::string Receive(int fd) {
  char buf[256];
  ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  return n > 0 ? std::string(buf, n) : "";
}

TEST(Notify, AReadyDatagramReachesAPathSocket) {
  char tmpl[] = "/tmp/tandem-notify-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/notify";
  int fd = Listen(path);
  ASSERT_TRUE(Notify(path, "READY=1").ok());
  EXPECT_EQ(Receive(fd), "READY=1");
  ASSERT_TRUE(Notify(path, "STOPPING=1").ok());
  EXPECT_EQ(Receive(fd), "STOPPING=1");
  ::close(fd);
  ::unlink(path.c_str());
  ::rmdir(tmpl);
}

TEST(Notify, AnAbstractSocketIsNamedWithAnAt) {
  const std::string name = "@tandem-notify-test-" + std::to_string(::getpid());
  int fd = Listen(name);
  ASSERT_TRUE(Notify(name, "READY=1").ok());
  EXPECT_EQ(Receive(fd), "READY=1");
  ::close(fd);
}

TEST(Notify, NoSocketSendsNothingAndAMissingOneIsAnError) {
  EXPECT_TRUE(Notify("", "READY=1").ok());
  auto st = Notify("/nonexistent/notify", "READY=1");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("/nonexistent/notify"), std::string::npos);
  EXPECT_FALSE(Notify("relative", "READY=1").ok());
}

TEST(Notify, TakeNotifySocketClearsTheEnvironment) {
  ::setenv("NOTIFY_SOCKET", "@x", 1);
  EXPECT_EQ(TakeNotifySocket(), "@x");
  EXPECT_EQ(std::getenv("NOTIFY_SOCKET"), nullptr);
  EXPECT_EQ(TakeNotifySocket(), "");
}

}  // namespace
}  // namespace tandem
