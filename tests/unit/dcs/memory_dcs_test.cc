// MemoryDcs: the Dcs conformance suite, plus leases expiring and waits ending
// on the ManualClock, partitions, and one test on the real clock (a lease's
// expiry wakes a waiter).
#include "dcs/memory_dcs.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "base/clock.h"
#include "unit/dcs/dcs_conformance.h"

namespace tandem::dcs {
namespace {

class MemoryDcsTest : public ::testing::Test {
 protected:
  // Returns once n threads wait on the clock (they are blocked in the store).
  void AwaitWaiters(int n = 1) {
    while (clock_.Waiters() < n) std::this_thread::yield();
  }
  ManualClock clock_;
  MemoryDcs dcs_{clock_};
};

TEST_F(MemoryDcsTest, GetPutDelete) {
  conformance::GetPutDelete(dcs_, "/t/");
}
TEST_F(MemoryDcsTest, Prefix) {
  conformance::Prefix(dcs_, "/t/");
}
TEST_F(MemoryDcsTest, TxnCreateRace) {
  conformance::TxnCreateRace(dcs_, "/t/");
}
TEST_F(MemoryDcsTest, TxnModRevisionCas) {
  conformance::TxnModRevisionCas(dcs_, "/t/");
}
TEST_F(MemoryDcsTest, Leases) {
  conformance::Leases(dcs_, "/t/");
}
TEST_F(MemoryDcsTest, WaitForChange) {
  conformance::WaitForChange(dcs_, "/t/", [&] { AwaitWaiters(); });
}

TEST_F(MemoryDcsTest, AWaitWithoutAChangeEndsWhenTheClockPassesItsTimeout) {
  auto r = dcs_.Put("/w/a", "1");
  ASSERT_TRUE(r.ok());
  auto waiting = std::async(std::launch::async, [&] { return dcs_.WaitForChange("/w/", *r, 300); });
  AwaitWaiters();
  clock_.Advance(299);
  AwaitWaiters();  // woken by the advance, and waiting again
  EXPECT_EQ(waiting.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  clock_.Advance(1);
  auto w = waiting.get();
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  EXPECT_FALSE(*w);
}

TEST_F(MemoryDcsTest, ALeaseExpiringOnTheClockWakesAWaiter) {
  auto l = dcs_.GrantLease(1);
  ASSERT_TRUE(l.ok());
  auto r = dcs_.Put("/svc/leader", "me", l->id);
  ASSERT_TRUE(r.ok());
  auto waiting =
      std::async(std::launch::async, [&] { return dcs_.WaitForChange("/svc/", *r, 600'000); });
  AwaitWaiters();
  clock_.Advance(1'000);
  auto w = waiting.get();
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  EXPECT_TRUE(*w);
  EXPECT_FALSE(dcs_.Get("/svc/leader")->has_value());
}

TEST_F(MemoryDcsTest, AllChecksShareOneStore) {
  conformance::GetPutDelete(dcs_, "/a/");
  conformance::Prefix(dcs_, "/b/");
  conformance::TxnCreateRace(dcs_, "/c/");
  conformance::TxnModRevisionCas(dcs_, "/d/");
  conformance::Leases(dcs_, "/e/");
}

TEST_F(MemoryDcsTest, RevisionsStartAtOneAndCountWrites) {
  EXPECT_EQ(dcs_.CurrentRevision(), 1);
  EXPECT_EQ(*dcs_.Put("k", "v"), 2);
  EXPECT_EQ(*dcs_.Put("k", "v"), 3);
  // One txn with several ops is one revision.
  auto t = dcs_.Txn({}, {Op::Put("a", "1"), Op::Put("b", "2"), Op::Delete("k")});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->revision, 4);
  EXPECT_EQ(dcs_.Get("a")->value().mod_revision, 4);
  EXPECT_EQ(dcs_.Get("b")->value().create_revision, 4);
  // Deleting nothing is not a write.
  EXPECT_EQ(*dcs_.Delete("nothing"), 4);
  auto empty_prefix = dcs_.GetPrefix("");
  ASSERT_TRUE(empty_prefix.ok());
  EXPECT_EQ(empty_prefix->kvs.size(), 2u);
}

TEST_F(MemoryDcsTest, LeaseExpiresOnTheClockAndDeletesItsKeys) {
  auto l = dcs_.GrantLease(10);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->ttl_seconds, 10);
  ASSERT_TRUE(dcs_.Put("/leader", "me", l->id).ok());
  ASSERT_TRUE(dcs_.Put("/member/me", "x", l->id).ok());
  ASSERT_TRUE(dcs_.Put("/other", "stays").ok());
  const Revision before = dcs_.CurrentRevision();

  clock_.Advance(9'000);
  EXPECT_TRUE(dcs_.Get("/leader")->has_value());
  auto ka = dcs_.KeepAlive(l->id);
  ASSERT_TRUE(ka.ok());
  EXPECT_EQ(*ka, 10);
  clock_.Advance(9'999);  // 9.999 s after the renewal: still alive
  EXPECT_TRUE(dcs_.Get("/leader")->has_value());
  clock_.Advance(1);  // exactly TTL after the renewal: expired
  auto g = dcs_.Get("/leader");
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(g->has_value());
  EXPECT_FALSE(dcs_.Get("/member/me")->has_value());
  EXPECT_TRUE(dcs_.Get("/other")->has_value());
  // Both keys went in one revision, like etcd's lease revoke.
  EXPECT_EQ(dcs_.CurrentRevision(), before + 1);

  auto ka2 = dcs_.KeepAlive(l->id);
  ASSERT_FALSE(ka2.ok());
  EXPECT_EQ(ka2.error().code(), ErrorCode::kNotFound);
  // The leader key is free again for a create_revision==0 txn.
  auto l2 = dcs_.GrantLease(10);
  ASSERT_TRUE(l2.ok());
  EXPECT_NE(l2->id, l->id);
  auto t = dcs_.Txn({Compare::CreateRevisionIs("/leader", 0)}, {Op::Put("/leader", "you", l2->id)});
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->succeeded);
}

TEST_F(MemoryDcsTest, ExpiryIsAChangeForWaiters) {
  auto l = dcs_.GrantLease(5);
  ASSERT_TRUE(l.ok());
  auto r = dcs_.Put("/svc/leader", "me", l->id);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*dcs_.WaitForChange("/svc/", *r, 0));
  clock_.Advance(5'000);
  // timeout 0: checks (expiring the lease) and returns at once.
  auto w = dcs_.WaitForChange("/svc/", *r, 0);
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(*w);
}

TEST_F(MemoryDcsTest, TinyTtlIsRaisedToOneSecond) {
  auto l = dcs_.GrantLease(0);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->ttl_seconds, 1);
}

TEST_F(MemoryDcsTest, UnavailableFailsEveryCall) {
  ASSERT_TRUE(dcs_.Put("k", "v").ok());
  auto l = dcs_.GrantLease(10);
  ASSERT_TRUE(l.ok());
  dcs_.SetUnavailable(true);
  EXPECT_TRUE(dcs_.unavailable());
  EXPECT_EQ(dcs_.Get("k").error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(dcs_.GetPrefix("").error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(dcs_.Put("k", "v2").error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(dcs_.Delete("k").error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(dcs_.Txn({}, {Op::Put("x", "y")}).error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(dcs_.GrantLease(5).error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(dcs_.KeepAlive(l->id).error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(dcs_.Revoke(l->id).error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(dcs_.WaitForChange("", 0, 0).error().code(), ErrorCode::kUnavailable);
  // Leases keep running on the store's clock during the partition.
  clock_.Advance(10'000);
  dcs_.SetUnavailable(false);
  auto g = dcs_.Get("k");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ((*g)->value, "v");
  EXPECT_EQ(dcs_.KeepAlive(l->id).error().code(), ErrorCode::kNotFound);
}

TEST_F(MemoryDcsTest, PartitionWakesWaiters) {
  auto r = dcs_.Put("/x", "1");
  ASSERT_TRUE(r.ok());
  std::thread cutter([&] {
    AwaitWaiters();
    dcs_.SetUnavailable(true);
  });
  auto w = dcs_.WaitForChange("/", *r, 600'000);  // the clock never reaches it
  cutter.join();
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code(), ErrorCode::kUnavailable);
}

TEST_F(MemoryDcsTest, MembershipIsNotSupported) {
  EXPECT_EQ(dcs_.MemberList().error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(dcs_.MemberAdd({"http://127.0.0.1:1"}, true).error().code(),
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ(dcs_.MemberPromote(1).error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(dcs_.MemberRemove(1).error().code(), ErrorCode::kFailedPrecondition);
}

TEST(MemoryDcsSystemClock, LeaseExpiryWakesAWaiterOnARealClock) {
  MemoryDcs dcs(SystemClock::Get());
  auto l = dcs.GrantLease(1);
  ASSERT_TRUE(l.ok());
  auto r = dcs.Put("/svc/leader", "me", l->id);
  ASSERT_TRUE(r.ok());
  auto t0 = std::chrono::steady_clock::now();
  auto w = dcs.WaitForChange("/svc/", *r, 20'000);
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(*w);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  EXPECT_FALSE(dcs.Get("/svc/leader")->has_value());
}

}  // namespace
}  // namespace tandem::dcs
