// AgentHarness: whole Agents (src/agent/agent.h) on a clock the test moves.
// The agent is built with injected dependencies (agent/agent_deps.h): this
// clock, a FakePostgres, a NodeStore as its store, and HTTP between agents
// answered in-process (GET /v1/position; a paused or stopped node refuses).
//
// N agents share one in-memory store (dcs::MemoryDcs) and one StepClock; each
// has its own FakePostgres (fake_postgres.h) and its own NodeStore, a view of
// the shared store that can be partitioned from it or frozen. The test moves
// time with Step / AdvanceUntil; before every step the harness waits until
// every agent thread is parked on the clock with nothing to do (Settle), so
// what has happened by each clock instant does not depend on the machine's
// speed. (Threads that act at the same instant may still interleave either
// way - the watchdog and the loop both stopping a server, say: tests assert
// what must hold in every order.) A real-time limit (a few seconds) turns a
// thread that never parks into a test failure, not a hang. One harness at a
// time per process (the thread count is the process's).
//
// Settling: StepClock (clock_and_store.h) calls a waiter idle only when its
// deadline is ahead and its predicate false; Settle compares that count with
// the process's thread count (/proc/self/task, less the threads that existed
// before the harness) less the threads held in a fake's blocked call. So no
// thread count per agent is assumed.
//
// Threads: the test's thread drives; the agents' threads run freely between
// steps. Not for concurrent use by several test threads.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "base/clock.h"
#include "core/route.h"
#include "dcs/memory_dcs.h"
#include "unit/agent/clock_and_store.h"
#include "unit/agent/fake_postgres.h"

namespace tandem::agenttest {

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

  // Starts the others' PostgreSQL as running standbys of n1 (n1's stays
  // stopped), then the agents, n1 first until it holds the leader key (its
  // agent starts it as a standby, finds no leader and promotes it: timeline
  // 2). Returns once n1 is the primary holding the key and every standby
  // streams from it (false after max_ms of clock time).
  bool StartCluster(MonoMs max_ms = 5'000);
  // Starts agent i's threads (Agent::Start).
  Status StartAgent(int i);
  // Agent::Shutdown, with the clock moving (10 ms steps, settled) until it
  // returns: it joins threads that wait on the clock.
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
  // The first request of node i with this op whose key ends with key_suffix
  // ("" = any), after sequence number after_seq; nullopt when none.
  std::optional<NodeStore::Request> FirstRequest(int i, const std::string& op,
                                                 const std::string& key_suffix, bool only_ok,
                                                 uint64_t after_seq = 0) const;
  // The global sequence number given out last.
  uint64_t Seq() const { return seq_.load(); }
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
  Result<net::HttpResponse> Http(const std::string& method, const std::string& url);

  HarnessOptions opts_;
  std::string cluster_ = "t";
  agent::Keys keys_{"t"};
  StepClock clock_;
  std::atomic<uint64_t> seq_{0};
  std::shared_ptr<dcs::MemoryDcs> store_;
  std::shared_ptr<NodeStore::Bus> bus_;
  std::vector<std::unique_ptr<Node>> nodes_;
  int baseline_threads_ = 0;
  // Harness threads blocked in an agent call (ShutdownAgent's): not parked
  // on the clock, counted as blocked.
  std::atomic<int> helper_threads_{0};
  std::string root_;  // the temp dir holding every node's state_dir
};

}  // namespace tandem::agenttest
