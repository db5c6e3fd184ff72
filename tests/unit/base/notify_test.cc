// The systemd readiness datagram (base/notify.h): a path socket and an
// abstract one ('@'), as systemd names them in $NOTIFY_SOCKET; the watchdog
// and status line of ServiceNotifier, on times the test chooses.
#include "base/notify.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

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

TEST(Notify, TakeWatchdogMsReadsUsecForThisProcessOnly) {
  ::setenv("WATCHDOG_USEC", "180000000", 1);
  ::unsetenv("WATCHDOG_PID");
  EXPECT_EQ(TakeWatchdogMs(), 180'000);
  EXPECT_EQ(std::getenv("WATCHDOG_USEC"), nullptr);
  EXPECT_EQ(TakeWatchdogMs(), 0);
  ::setenv("WATCHDOG_USEC", "5000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);
  EXPECT_EQ(TakeWatchdogMs(), 0) << "meant for another process";
  EXPECT_EQ(std::getenv("WATCHDOG_PID"), nullptr);
  ::setenv("WATCHDOG_USEC", "5000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  EXPECT_EQ(TakeWatchdogMs(), 5'000);
  ::setenv("WATCHDOG_USEC", "soon", 1);
  EXPECT_EQ(TakeWatchdogMs(), 0);
}

// Every datagram waiting on fd, in order.
std::vector<std::string> ReceiveAll(int fd) {
  std::vector<std::string> out;
  for (std::string m = Receive(fd); !m.empty(); m = Receive(fd)) out.push_back(m);
  return out;
}

class ServiceNotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = "@tandem-service-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fd_ = Listen(name_);
    n_.Configure(name_, 4'000);  // WatchdogSec=4s: a ping at most every second
  }
  void TearDown() override { ::close(fd_); }
  std::string name_;
  int fd_ = -1;
  ServiceNotifier n_;
};

using Msgs = std::vector<std::string>;

TEST_F(ServiceNotifierTest, EachCycleFeedsTheWatchdogAtMostEveryQuarterInterval) {
  n_.CycleDone(10'000, "node1: replica");
  EXPECT_EQ(ReceiveAll(fd_), (Msgs{"WATCHDOG=1", "STATUS=node1: replica"}));
  n_.CycleDone(10'250, "node1: replica");
  n_.CycleDone(10'999, "node1: replica");
  EXPECT_EQ(ReceiveAll(fd_), Msgs{}) << "within a second of the last ping, same status";
  n_.CycleDone(11'000, "node1: primary");
  EXPECT_EQ(ReceiveAll(fd_), (Msgs{"WATCHDOG=1", "STATUS=node1: primary"}));
}

TEST_F(ServiceNotifierTest, WhileTheLoopRunsOnlyItsCyclesFeedTheWatchdog) {
  n_.CycleDone(10'000, "node1: primary");
  (void)ReceiveAll(fd_);
  // A stuck loop: the main thread's ticks must not hide it from systemd.
  for (MonoMs t = 11'000; t <= 20'000; t += 1'000) n_.Tick(t);
  EXPECT_EQ(ReceiveAll(fd_), Msgs{});
}

TEST_F(ServiceNotifierTest, WithoutALoopTheMainThreadFeedsTheWatchdog) {
  // Not a member yet: no loop ever ran.
  n_.Tick(1'000);
  n_.Tick(1'500);
  n_.Tick(2'000);
  EXPECT_EQ(ReceiveAll(fd_), (Msgs{"WATCHDOG=1", "WATCHDOG=1"}));
  n_.CycleDone(3'000, "node1: replica");
  n_.LoopStopped("node1: HA loop stopped");
  EXPECT_FALSE(n_.loop_running());
  (void)ReceiveAll(fd_);
  n_.Tick(4'000);
  EXPECT_EQ(ReceiveAll(fd_), Msgs{"WATCHDOG=1"});
}

TEST_F(ServiceNotifierTest, ALongActionKeepsTheWatchdogFedAndShowsItself) {
  n_.CycleDone(1'000, "node3: replica");
  (void)ReceiveAll(fd_);
  {
    ServiceNotifier::LongAction busy(n_, "re-cloning from node1 (pg_basebackup)");
    EXPECT_EQ(n_.long_actions(), 1);
    n_.Tick(2'000);
    n_.Tick(3'000);
    EXPECT_EQ(ReceiveAll(fd_),
              (Msgs{"STATUS=re-cloning from node1 (pg_basebackup)", "WATCHDOG=1", "WATCHDOG=1"}));
  }
  EXPECT_EQ(n_.long_actions(), 0);
  n_.Tick(4'000);
  EXPECT_EQ(ReceiveAll(fd_), Msgs{}) << "the loop feeds it again";
  n_.CycleDone(4'100, "node3: replica");
  EXPECT_EQ(ReceiveAll(fd_), (Msgs{"WATCHDOG=1", "STATUS=node3: replica"}));
}

TEST_F(ServiceNotifierTest, WithoutAWatchdogOnlyStatusAndStatesAreSent) {
  n_.Configure(name_, 0);
  n_.Tick(1'000);
  n_.CycleDone(2'000, "node1: primary");
  n_.Send("STOPPING=1");
  EXPECT_EQ(ReceiveAll(fd_), (Msgs{"STATUS=node1: primary", "STOPPING=1"}));
}

}  // namespace
}  // namespace tandem
