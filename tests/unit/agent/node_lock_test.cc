// One agent per node (issue 19, item 3): the state directory's flock
// (agent/node_lock.h) refuses a second holder, names the first one's pid,
// and is gone when its holder stops or is destroyed.
#include "agent/node_lock.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "base/file.h"
#include "unit/agent/agent_harness.h"

namespace tandem::agenttest {
namespace {

std::string TempDir() {
  char tmpl[] = "/tmp/tandem-lock-XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  EXPECT_NE(d, nullptr);
  return d ? d : "/tmp";
}

const std::string kPid = "pid " + std::to_string(::getpid());

TEST(NodeLock, ASecondHolderIsRefusedNamingTheFirstOnesPid) {
  const std::string dir = TempDir() + "/state";  // created by Acquire
  auto first = agent::NodeLock::Acquire(dir);
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_TRUE(first->held());
  auto content = ReadFile(dir + "/agent.lock");
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content, std::to_string(::getpid()) + "\n");

  auto second = agent::NodeLock::Acquire(dir);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code(), ErrorCode::kFailedPrecondition);
  const std::string msg = second.error().message();
  EXPECT_NE(msg.find(dir), std::string::npos) << msg;
  EXPECT_NE(msg.find(kPid), std::string::npos) << msg;
  EXPECT_NE(msg.find("stop that agent"), std::string::npos) << msg;

  first->Release();
  auto third = agent::NodeLock::Acquire(dir);
  EXPECT_TRUE(third.ok()) << "released: " << (third.ok() ? "" : third.error().message());
  (void)RemoveAll(DirName(dir));
}

TEST(NodeLock, TheLockGoesWithItsHolderAndItsFdIsCloseOnExec) {
  const std::string dir = TempDir();
  {
    auto lock = agent::NodeLock::Acquire(dir);
    ASSERT_TRUE(lock.ok());
    agent::NodeLock moved = std::move(*lock);
    EXPECT_TRUE(moved.held());
    EXPECT_FALSE(lock->held());
    EXPECT_FALSE(agent::NodeLock::Acquire(dir).ok());
    // Every descriptor on the lock file is close-on-exec: PostgreSQL and
    // etcd (fork + exec) never inherit it.
    for (int fd = 3; fd < 1024; ++fd) {
      char link[64], target[4096];
      std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
      ssize_t n = ::readlink(link, target, sizeof target - 1);
      if (n <= 0) continue;
      target[n] = 0;
      if (std::string(target) == dir + "/agent.lock") {
        EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC) << "fd " << fd;
      }
    }
  }
  EXPECT_TRUE(agent::NodeLock::Acquire(dir).ok()) << "destroyed: released";
  (void)RemoveAll(dir);
}

TEST(NodeLock, TheHolderIsDescribedByPidAndCommandLine) {
  EXPECT_NE(agent::DescribeLockHolder("").find("unknown"), std::string::npos);
  EXPECT_NE(agent::DescribeLockHolder("junk\n").find("unknown"), std::string::npos);
  EXPECT_EQ(agent::DescribeLockHolder(std::to_string(::getpid()) + "\n"), kPid + " (this process)");
  // Another live process: its command line from /proc (pid 1 always exists;
  // its cmdline may be unreadable in a sandbox, then just the pid).
  EXPECT_EQ(agent::DescribeLockHolder("1\n").rfind("pid 1", 0), 0u);
}

// Two Agents on one state directory: the second's Start is refused before
// it touches anything, and its Shutdown leaves the first one's PostgreSQL
// alone; the lock is free once the first agent shut down.
TEST(NodeLock, ASecondAgentForTheSameNodeIsRefusedAndTouchesNothing) {
  HarnessOptions o;
  o.nodes = 1;
  AgentHarness h(o);
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  ASSERT_EQ(h.pg(0).state(), FakePostgres::State::kPrimary);

  pg::Paths paths;
  paths.data_dir = h.node(0).cfg.pg_data_dir;
  auto fake = std::make_unique<FakePostgres>(h.clock(), paths, pg::Settings{});
  FakePostgres* second_pg = fake.get();
  agent::AgentDeps deps;
  deps.clock = &h.clock();
  deps.pg = std::move(fake);
  {
    agent::Agent second(h.node(0).cfg, std::move(deps));
    auto st = second.Start();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(st.error().message().find(h.node(0).dir), std::string::npos) << st.error().message();
    EXPECT_NE(st.error().message().find(kPid), std::string::npos) << st.error().message();
    second.Shutdown();
    EXPECT_TRUE(second_pg->Calls().empty()) << "the refused agent touched PostgreSQL";
  }
  ASSERT_TRUE(h.Step(500));
  EXPECT_EQ(h.LeaderHolder(), "n1");
  EXPECT_EQ(h.pg(0).state(), FakePostgres::State::kPrimary);
  EXPECT_FALSE(agent::NodeLock::Acquire(h.node(0).dir).ok()) << "still held by n1's agent";
  h.ShutdownAgent(0);
  EXPECT_TRUE(agent::NodeLock::Acquire(h.node(0).dir).ok()) << "released by Shutdown";
}

}  // namespace
}  // namespace tandem::agenttest
