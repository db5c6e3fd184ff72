// One process's /proc entries, its children, the pidfd watch, and reaping
// without a /proc scan.
#include "base/proc_info.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>

#include "base/process.h"

namespace tandem {
namespace {

TEST(ProcInfoTest, ParsesACommWithSpacesAndParentheses) {
  auto st = ParseProcStat(
      "4242 (post gres) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 "
      "10");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->comm, "post gres) x");
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->ppid, 1);
  EXPECT_EQ(st->pgid, 4242);
  EXPECT_EQ(st->start_time, 987654u);
  EXPECT_FALSE(ParseProcStat("").has_value());
  EXPECT_FALSE(ParseProcStat("12 (x) S 1").has_value());
}

TEST(ProcInfoTest, ReadsItsOwnStatAndCwd) {
  auto st = ReadProcStat(::getpid());
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->ppid, ::getppid());
  char buf[4096];
  ASSERT_NE(::getcwd(buf, sizeof buf), nullptr);
  EXPECT_EQ(ProcCwd(::getpid()), std::string(buf));
  EXPECT_FALSE(ReadProcStat(0).has_value());
}

TEST(ProcInfoTest, AWatchSeesAChildExitAndTheZombieIsReaped) {
  auto pid = Spawn({"sleep", "30"}, SpawnOptions{});
  ASSERT_TRUE(pid.ok()) << pid.error().ToString();
  ProcessWatch w(*pid);
  EXPECT_TRUE(w.Running());
  EXPECT_TRUE(IsAlive(*pid));
  auto kids = ChildrenOf(::getpid());
  EXPECT_NE(std::find(kids.begin(), kids.end(), *pid), kids.end());
  ASSERT_EQ(::kill(*pid, SIGKILL), 0);
  // The exit is seen on the watch and by IsAlive while it is a zombie.
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(*pid), &info, WEXITED | WNOWAIT), 0);
  EXPECT_FALSE(w.Running());
  EXPECT_FALSE(IsAlive(*pid));
  EXPECT_EQ(::kill(*pid, 0), 0) << "still an unreaped zombie";
  EXPECT_GE(ReapChildren(), 1);
  EXPECT_NE(::kill(*pid, 0), 0);
  EXPECT_EQ(ReapChildren(), 0);
  EXPECT_FALSE(ProcessWatch().Running());
}

}  // namespace
}  // namespace tandem
