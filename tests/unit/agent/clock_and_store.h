// The harness's clock and store connection (see agent_harness.h).
//
// StepClock: a Clock the test advances by hand that also tells a parked
// thread from a runnable one (IdleWaiters). ManualClock's Waiters() counts a
// thread Advance() just woke as waiting until it runs, so "everybody is
// parked" cannot be told from "somebody is about to act".
//
// NodeStore: one node's connection to the shared MemoryDcs, which a test can
// partition or freeze, and which records what the node asked (with a global
// sequence number shared with the FakePostgres calls). Its WaitForChange
// waits on the clock, MemoryDcs's own waits in real time.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "dcs/memory_dcs.h"

namespace tandem::agenttest {

// A Clock for tests that can tell parked threads from runnable ones.
class StepClock final : public Clock {
 public:
  explicit StepClock(MonoMs start = 1'000'000, WallMs wall_start = 1'700'000'000'000)
      : now_(start), wall_offset_(wall_start - start) {}
  MonoMs Now() const override { return now_.load(); }
  WallMs WallNow() const override { return now_.load() + wall_offset_.load(); }
  void SleepFor(MonoMs ms) const override;
  bool WaitUntil(std::unique_lock<std::mutex>& lk, std::condition_variable& cv, MonoMs deadline,
                 const std::function<bool()>& done) const override;

  // Moves time forward by ms and wakes every waiter.
  void Advance(MonoMs ms);
  void SetWall(WallMs wall) { wall_offset_ = wall - now_.load(); }
  int Waiters() const;
  // Waiters whose deadline is ahead and whose predicate is false (checked
  // under their mutex when it is free; a busy mutex counts as not idle).
  int IdleWaiters() const;

 private:
  struct Waiter {
    std::mutex* mu;
    std::condition_variable* cv;
    MonoMs deadline;
    const std::function<bool()>* done;
  };
  std::atomic<MonoMs> now_;
  std::atomic<int64_t> wall_offset_;
  mutable std::mutex waiters_mu_;
  mutable std::list<Waiter> waiters_;
  mutable std::mutex sleep_mu_;
  mutable std::condition_variable sleep_cv_;
};

// One node's connection to the shared store: partition it, freeze it, and
// read what it asked. WaitForChange waits on the clock (MemoryDcs's own waits
// in real time).
class NodeStore final : public dcs::Dcs {
 public:
  // Wakes every NodeStore's WaitForChange after a write through any of them.
  struct Bus {
    std::mutex mu;
    std::condition_variable cv;
    void Notify();
  };
  struct Request {
    MonoMs at = 0;
    uint64_t seq = 0;  // the harness's global order (see FakePostgres::Call::seq)
    std::string op;    // "KeepAlive", "Txn", "GetPrefix", ...
    std::string key;
    bool ok = false;
  };

  NodeStore(const Clock& clock, std::shared_ptr<dcs::MemoryDcs> inner, std::shared_ptr<Bus> bus,
            std::atomic<uint64_t>* seq);

  // Cut off (true): every call waits `timeout_ms` on the clock (an etcd
  // request timing out), then fails with kUnavailable.
  void SetPartitioned(bool cut, MonoMs timeout_ms = 0);
  bool partitioned() const { return cut_.load(); }
  // The next call of `op` ("GrantLease", "KeepAlive", ...) fails with
  // kUnavailable at once (once), reaching nothing.
  void FailNext(const std::string& op);
  // Frozen (true): every call blocks (not on the clock) until thawed, but
  // calls of `except` ("" = none) pass.
  void SetFrozen(bool frozen, const std::string& except = "");
  int BlockedCallers() const;
  std::vector<Request> Requests() const;
  // Times of the KeepAlive calls (ok = only those that succeeded).
  std::vector<MonoMs> KeepAliveTimes(bool only_ok) const;

  Result<std::optional<dcs::KeyValue>> Get(const std::string& key) override;
  Result<dcs::RangeResult> GetPrefix(const std::string& prefix) override;
  Result<dcs::Revision> Put(const std::string& key, const std::string& value,
                            dcs::LeaseId lease) override;
  Result<dcs::Revision> Delete(const std::string& key) override;
  Result<dcs::TxnResult> Txn(const std::vector<dcs::Compare>& compares,
                             const std::vector<dcs::Op>& success_ops,
                             const std::vector<dcs::Op>& failure_ops) override;
  Result<dcs::LeaseGrant> GrantLease(int64_t ttl_seconds) override;
  Result<int64_t> KeepAlive(dcs::LeaseId lease) override;
  Status Revoke(dcs::LeaseId lease) override;
  Result<bool> WaitForChange(const std::string& prefix, dcs::Revision after_revision,
                             int64_t timeout_ms) override;
  Result<std::vector<dcs::Member>> MemberList() override;
  Result<dcs::Member> MemberAdd(const std::vector<std::string>& peer_urls,
                                bool as_learner) override;
  Status MemberPromote(uint64_t id) override;
  Status MemberRemove(uint64_t id) override;

 private:
  // Blocks while frozen; fails (after the partition's timeout) while cut.
  Status Enter(const std::string& op, const std::string& key);
  void Record(const std::string& op, const std::string& key, bool ok);

  const Clock& clock_;
  std::shared_ptr<dcs::MemoryDcs> inner_;
  std::shared_ptr<Bus> bus_;
  std::atomic<uint64_t>* seq_;
  std::atomic<bool> cut_{false};
  std::atomic<MonoMs> cut_timeout_ms_{0};
  mutable std::mutex mu_;
  std::condition_variable thaw_cv_;
  bool frozen_ = false;
  std::string frozen_except_;
  std::multiset<std::string> fail_next_;
  int blocked_ = 0;
  std::vector<Request> requests_;
};

}  // namespace tandem::agenttest
