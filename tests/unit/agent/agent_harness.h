// AgentHarness: whole Agents (src/agent/agent.h) on a clock the test moves.
//
// N agents share one in-memory store (dcs::MemoryDcs) and one StepClock; each
// has its own FakePostgres (fake_postgres.h) and its own NodeStore, a view of
// the shared store that can be partitioned from it or frozen. The test moves
// time with Step / AdvanceUntil; before every step the harness waits until
// every agent thread is parked on the clock with nothing to do (Settle), so a
// run is the same whatever the machine's speed. A real-time limit (a few
// seconds) turns a thread that never parks into a test failure, not a hang.
//
// Why not ManualClock: its Waiters() counts a thread that Advance() just woke
// as still waiting until it runs, so "everybody is parked" cannot be told
// from "somebody is about to act". StepClock records each waiter's deadline
// and predicate and calls a waiter idle only when its deadline is ahead and
// its predicate false; Settle compares that count with the process's thread
// count (/proc/self/task) less the threads held in a fake's blocked call.
//
// Threads: the test's thread drives; the agents' threads run freely between
// steps. Not for concurrent use by several test threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "base/clock.h"
#include "core/route.h"
#include "dcs/memory_dcs.h"
#include "unit/agent/fake_postgres.h"

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
  // The earliest deadline of a waiter (kNone when nobody waits).
  static constexpr MonoMs kNone = INT64_MAX;
  MonoMs NextDeadline() const;

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
    std::string op;  // "KeepAlive", "Txn", "GetPrefix", ...
    std::string key;
    bool ok = false;
  };

  NodeStore(const Clock& clock, std::shared_ptr<dcs::MemoryDcs> inner, std::shared_ptr<Bus> bus);

  // Cut off (true): every call waits `timeout_ms` on the clock (an etcd
  // request timing out), then fails with kUnavailable.
  void SetPartitioned(bool cut, MonoMs timeout_ms = 0);
  bool partitioned() const { return cut_.load(); }
  // Frozen (true): every call blocks (not on the clock) until thawed.
  void SetFrozen(bool frozen);
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
  std::atomic<bool> cut_{false};
  std::atomic<MonoMs> cut_timeout_ms_{0};
  mutable std::mutex mu_;
  std::condition_variable thaw_cv_;
  bool frozen_ = false;
  int blocked_ = 0;
  std::vector<Request> requests_;
};

struct HarnessOptions {
  int nodes = 2;
  int64_t ttl_ms = 2'000;
  int64_t loop_interval_ms = 250;
  int64_t safety_margin_ms = 500;
  std::string sync_mode = "off";
  // Appended to every node's config file (YAML), e.g. a tls section.
  std::string extra_yaml;
  // How long Settle waits in real time for the threads to park.
  int64_t settle_limit_real_ms = 5'000;
};

class AgentHarness {
 public:
  struct RouteEvent {
    MonoMs at = 0;
    core::Route route;
  };
  struct Node {
    std::string name;
    std::string dir;  // state_dir (a temp dir, removed by the destructor)
    agent::Config cfg;
    FakePostgres* pg = nullptr;  // owned by the agent
    std::shared_ptr<NodeStore> store;
    std::unique_ptr<agent::Agent> agent;
    std::atomic<bool> started{false};
    mutable std::mutex routes_mu;
    std::vector<RouteEvent> routes;
  };

  // Builds the nodes (n1..nN) and seeds the store: the cluster initialized,
  // every node registered; n1's data a primary on timeline 1, the others'
  // standbys of it. Nothing runs yet.
  explicit AgentHarness(HarnessOptions opts = {});
  ~AgentHarness();  // shuts every agent down and removes the temp dirs

  StepClock& clock() { return clock_; }
  dcs::MemoryDcs& store() { return *store_; }
  int size() const { return static_cast<int>(nodes_.size()); }
  Node& node(int i) { return *nodes_.at(i); }
  FakePostgres& pg(int i) { return *nodes_.at(i)->pg; }
  agent::Agent& agent(int i) { return *nodes_.at(i)->agent; }

  // Starts n1's PostgreSQL as a running primary and the others' as running
  // standbys of it, then every agent; returns once n1 holds the leader key and
  // every standby streams from it (false after max_ms of clock time).
  bool StartCluster(MonoMs max_ms = 5'000);
  // Starts agent i's threads (Agent::Start).
  Status StartAgent(int i);
  void ShutdownAgent(int i);

  // Waits (real time, bounded) until every agent thread is parked on the
  // clock with nothing to do, or held in a blocked fake call. False on the
  // limit (the failure message says who did not park).
  bool Settle();
  // Settles, then moves the clock by ms in steps of at most step_ms,
  // settling after each.
  bool Step(MonoMs ms, MonoMs step_ms = 10);
  // Settles and checks pred; advances step_ms and repeats until pred holds
  // (true) or max_ms of clock time passed (false).
  bool AdvanceUntil(const std::function<bool()>& pred, MonoMs max_ms, MonoMs step_ms = 10);

  // ---- faults ----
  void Partition(int i, bool cut, MonoMs request_timeout_ms = 0) {
    node(i).store->SetPartitioned(cut, request_timeout_ms);
  }
  // A paused node: its store calls and PostgreSQL calls block until Resume
  // (the agent's threads stop where they next touch either). With
  // pg_too = false, PostgreSQL keeps answering (only the agent is stopped).
  void Pause(int i, bool pg_too = true);
  void Resume(int i);

  // ---- reading the cluster ----
  std::string LeaderHolder();                                   // "" = no leader key
  std::optional<dcs::KeyValue> Key(const std::string& suffix);  // under /tandem/<cluster>/
  std::vector<RouteEvent> Routes(int i) const;
  // The write target of the last route node i published ("" = none), and
  // whether it is still valid now.
  std::string RouteWriteTarget(int i, bool* valid = nullptr) const;
  // A one-screen account of every node (for failure messages).
  std::string Describe();
  const std::string& cluster() const { return cluster_; }
  const agent::Keys& keys() const { return keys_; }

 private:
  void BuildNode(int i);
  void SeedStore();
  int ThreadCount() const;
  int BlockedThreads() const;
  Result<agent::HttpResponse> Http(const std::string& method, const std::string& url);

  HarnessOptions opts_;
  std::string cluster_ = "t";
  agent::Keys keys_{"t"};
  StepClock clock_;
  std::shared_ptr<dcs::MemoryDcs> store_;
  std::shared_ptr<NodeStore::Bus> bus_;
  std::vector<std::unique_ptr<Node>> nodes_;
  int baseline_threads_ = 0;
  std::string root_;  // the temp dir holding every node's state_dir
};

}  // namespace tandem::agenttest
