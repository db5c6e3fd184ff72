// The test clock: waits end when the test advances time, never by real time.
#include "base/clock.h"

#include <gtest/gtest.h>

#include <thread>

namespace tandem {
namespace {

// Spins (real time, bounded) until `n` threads wait on the clock.
void AwaitWaiters(const ManualClock& clock, int n) {
  for (int i = 0; i < 200000 && clock.Waiters() < n; ++i) std::this_thread::yield();
  ASSERT_EQ(clock.Waiters(), n);
}

TEST(ManualClockTest, SleepEndsOnlyWhenTheClockPassesTheDeadline) {
  ManualClock clock;
  std::atomic<bool> woke{false};
  std::thread t([&] {
    clock.SleepFor(100);
    woke = true;
  });
  AwaitWaiters(clock, 1);
  clock.Advance(99);
  AwaitWaiters(clock, 1);  // still parked after the wake-up it got
  EXPECT_FALSE(woke.load());
  clock.Advance(1);
  t.join();
  EXPECT_TRUE(woke.load());
}

TEST(ManualClockTest, EventWaitReturnsOnNotifyBeforeTheDeadline) {
  ManualClock clock;
  Event ev(clock);
  bool notified = false;
  std::thread t([&] { notified = ev.WaitFor(1000); });
  AwaitWaiters(clock, 1);
  ev.Notify();
  t.join();
  EXPECT_TRUE(notified);
}

TEST(ManualClockTest, EventWaitTimesOutOnTheClock) {
  ManualClock clock;
  Event ev(clock);
  bool notified = true;
  std::thread t([&] { notified = ev.WaitFor(50); });
  AwaitWaiters(clock, 1);
  clock.Advance(50);
  t.join();
  EXPECT_FALSE(notified);
}

TEST(ManualClockTest, ANotifyBeforeTheWaitIsNotLost) {
  ManualClock clock;
  Event ev(clock);
  ev.Notify();
  EXPECT_TRUE(ev.WaitFor(10));
  EXPECT_FALSE(ev.WaitUntil(clock.Now()));  // cleared, and the deadline is now
}

TEST(ManualClockTest, WallClockJumpsWithoutMovingMonotonicTime) {
  ManualClock clock(5000, 1'800'000'000'000);
  EXPECT_EQ(clock.WallNow(), 1'800'000'000'000);
  clock.SetWall(1'000);
  EXPECT_EQ(clock.Now(), 5000);
  EXPECT_EQ(clock.WallNow(), 1'000);
  clock.Advance(10);
  EXPECT_EQ(clock.WallNow(), 1'010);
  EXPECT_EQ(clock.WallSeconds(), 1);
}

TEST(SystemClockTest, WaitUntilAPassedDeadlineReturnsAtOnce) {
  const Clock& clock = SystemClock::Get();
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lk(mu);
  EXPECT_FALSE(clock.WaitUntil(lk, cv, clock.Now() - 1, [] { return false; }));
  EXPECT_TRUE(clock.WaitUntil(lk, cv, clock.Now() + 60'000, [] { return true; }));
}

}  // namespace
}  // namespace tandem
