// The harness's clock tells parked threads from runnable ones, and its store
// connection partitions, freezes and watches on the clock (clock_and_store.h).
#include <gtest/gtest.h>

#include <thread>

#include "unit/agent/clock_and_store.h"

namespace tandem::agenttest {
namespace {

// Spins (bounded) until cond holds.
bool Eventually(const std::function<bool()>& cond) {
  for (int i = 0; i < 2'000'000; ++i) {
    if (cond()) return true;
    std::this_thread::yield();
  }
  return false;
}

TEST(AgentStepClock, AWaiterIsIdleOnlyWhileItsDeadlineIsAheadAndItsPredicateFalse) {
  StepClock clock;
  std::mutex mu;
  std::condition_variable cv;
  bool go = false;
  std::atomic<int> woke{0};
  std::thread t([&] {
    std::unique_lock<std::mutex> lk(mu);
    clock.WaitUntil(lk, cv, clock.Now() + 100, [&] { return go; });
    ++woke;
  });
  ASSERT_TRUE(Eventually([&] { return clock.IdleWaiters() == 1; }));
  clock.Advance(50);
  EXPECT_TRUE(Eventually([&] { return clock.IdleWaiters() == 1; }));
  {
    std::lock_guard<std::mutex> g(mu);
    go = true;  // not notified: still registered, but no longer idle
  }
  EXPECT_EQ(clock.IdleWaiters(), 0);
  cv.notify_all();
  t.join();
  EXPECT_EQ(woke.load(), 1);
  EXPECT_EQ(clock.Waiters(), 0);
}

TEST(AgentStepClock, APartitionedRequestTimesOutOnTheClock) {
  StepClock clock;
  std::atomic<uint64_t> seq{0};
  auto inner = std::make_shared<dcs::MemoryDcs>(clock);
  NodeStore s(clock, inner, std::make_shared<NodeStore::Bus>(), &seq);
  ASSERT_TRUE(s.Put("/k", "v", 0).ok());
  s.SetPartitioned(true, 250);
  std::atomic<bool> done{false};
  std::thread t([&] {
    auto r = s.Get("/k");
    EXPECT_FALSE(r.ok());
    done = true;
  });
  ASSERT_TRUE(Eventually([&] { return clock.IdleWaiters() == 1; }));
  clock.Advance(249);
  ASSERT_TRUE(Eventually([&] { return clock.IdleWaiters() == 1; }));
  EXPECT_FALSE(done.load());
  clock.Advance(1);
  t.join();
  EXPECT_TRUE(done.load());
  auto reqs = s.Requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].op, "Get");
  EXPECT_FALSE(reqs[1].ok);
  EXPECT_EQ(reqs[1].at, clock.Now() - 250);  // stamped when sent
}

TEST(AgentStepClock, AWatchWakesOnAWriteAndOnALeaseExpiringOnTheClock) {
  StepClock clock;
  std::atomic<uint64_t> seq{0};
  auto inner = std::make_shared<dcs::MemoryDcs>(clock);
  auto bus = std::make_shared<NodeStore::Bus>();
  NodeStore a(clock, inner, bus, &seq), b(clock, inner, bus, &seq);
  auto lease = a.GrantLease(2);
  ASSERT_TRUE(lease.ok());
  auto rev = a.Put("/p/leader", "a", lease->id);
  ASSERT_TRUE(rev.ok());
  std::atomic<int> changes{0};
  std::thread t([&] {
    for (dcs::Revision after = *rev; changes < 2;) {
      auto c = b.WaitForChange("/p/", after, 10'000);
      ASSERT_TRUE(c.ok());
      if (*c) {
        ++changes;
        after = inner->CurrentRevision();
      }
    }
  });
  ASSERT_TRUE(Eventually([&] { return clock.IdleWaiters() == 1; }));
  ASSERT_TRUE(a.Put("/p/other", "x", 0).ok());  // a write through another connection
  ASSERT_TRUE(Eventually([&] { return changes.load() == 1 && clock.IdleWaiters() == 1; }));
  clock.Advance(1'999);
  ASSERT_TRUE(Eventually([&] { return clock.IdleWaiters() == 1; }));
  EXPECT_EQ(changes.load(), 1);
  clock.Advance(1);  // the lease expires: its key is deleted
  t.join();
  EXPECT_EQ(changes.load(), 2);
}

}  // namespace
}  // namespace tandem::agenttest
