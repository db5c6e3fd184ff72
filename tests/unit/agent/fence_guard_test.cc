// The fence guard's identity and its stand-down (what a restarted agent does
// to the previous agent's guard): only the guard a pid and start time name is
// ended, and only while it runs. The guard process is real (forked); it is
// never armed here, so no deadline and no clock matter, and nothing is fenced.
#include "agent/fence_guard.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/process.h"

namespace tandem::agent {
namespace {

TEST(FenceGuardTest, StandDownEndsOnlyTheGuardItsPidAndStartTimeName) {
  auto guard = FenceGuard::Start(SystemClock::Get(), "/nonexistent-data-dir");
  ASSERT_TRUE(guard.ok()) << guard.error().message();
  const FenceGuard::Identity id = guard->identity();
  ASSERT_GT(id.pid, 0);
  ASSERT_NE(id.start_time, 0u);
  // Its name is set by the child itself: wait until it shows.
  const MonoMs until = SystemClock::Get().Now() + 10'000;
  while (!FenceGuard::Running(id) && SystemClock::Get().Now() < until) {
    SystemClock::Get().SleepFor(5);
  }
  ASSERT_TRUE(FenceGuard::Running(id));
  EXPECT_TRUE(guard->Update(0)) << "an unarmed deadline is held";
  // A pid reused by another process (another start time) is not the guard.
  const FenceGuard::Identity other{id.pid, id.start_time + 1};
  EXPECT_FALSE(FenceGuard::Running(other));
  EXPECT_FALSE(FenceGuard::StandDown(other));
  EXPECT_TRUE(FenceGuard::Running(id)) << "a stand-down for another identity ended the guard";
  // This process is not a guard either.
  EXPECT_FALSE(FenceGuard::Running({static_cast<int64_t>(::getpid()), id.start_time}));
  EXPECT_TRUE(FenceGuard::StandDown(id));
  EXPECT_TRUE(WaitForExit(static_cast<pid_t>(id.pid), 10'000));
  EXPECT_FALSE(FenceGuard::Running(id));
  EXPECT_FALSE(FenceGuard::StandDown(id)) << "a guard that is gone is not signalled";
}

}  // namespace
}  // namespace tandem::agent
