// The agent's own counters and histograms (GET /metrics, docs/design/metrics.md):
// what the HA loop, the lease thread, the watchdog and the executor count as
// they go, kept here because no other state of the agent remembers it. Every
// gauge (role, lag, lease state, ...) is read from the agent's own snapshot
// instead (Agent::MetricsSnapshot, metrics_snapshot.cc).
//
// Threads: any thread records (each record is one line at its call site, a
// few relaxed atomic adds, no lock and no allocation; ObserveLeader takes a
// mutex and allocates only when the leader changed); API workers read
// (Snapshot). Reads are not a consistent cut across metrics: each counter is
// exact, and a histogram's count is the sum of its buckets as read. It also
// keeps what scrapes share: the last answer of PostgreSQL's query (one query
// at a time) and the certificates' expiry (checked once a minute).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "core/types.h"

namespace tandem::agent {

// A histogram of durations observed in milliseconds, exported in seconds.
// Its buckets are fixed (kBoundsMs); the last one (+Inf) catches the rest.
class DurationHistogram {
 public:
  // Upper bounds in ms: 1 ms to 10 s, roughly x2.5 apart (a lease renewal on
  // a LAN is a few ms; a slow HA cycle is seconds).
  static constexpr std::array<int64_t, 12> kBoundsMs = {1,   2,   5,   10,   25,   50,
                                                        100, 250, 500, 1000, 2500, 10000};
  void Observe(MonoMs ms);
  struct Snapshot {
    std::vector<double> upper_bounds_seconds;  // kBoundsMs / 1000
    std::vector<uint64_t> counts;              // per bucket (not cumulative), +Inf last
    double sum_seconds = 0;
  };
  Snapshot Read() const;

 private:
  std::array<std::atomic<uint64_t>, kBoundsMs.size() + 1> buckets_{};
  std::atomic<uint64_t> sum_ms_{0};
};

// One of this node's certificate files and when it expires.
struct CertificateExpiry {
  std::string name;       // "server", "client", "ca"
  std::string path;       // the configured file
  int64_t not_after = 0;  // Unix seconds, 0 = did not decode
};

// Everything the agent counts, by the thread that counts it.
class AgentMetrics {
 public:
  // The certificates' expiry as last checked, when checked less than
  // kCertificateRecheckMs before now (checking the files costs more than the
  // rest of a scrape; a rotation shows within that time).
  static constexpr MonoMs kCertificateRecheckMs = 60'000;
  std::optional<std::vector<CertificateExpiry>> Certificates(MonoMs now) const;
  void SetCertificates(MonoMs now, std::vector<CertificateExpiry> certs);
  // Scrapes query PostgreSQL one at a time: `query` runs unless another
  // scrape's is running, which this one does not wait for (a server that does
  // not answer holds one API worker, not all of them); then *rows is the last
  // answer. False when there is no answer to give.
  using PgQuery = std::function<Result<std::vector<std::string>>()>;
  bool QueryPostgres(const PgQuery& query, std::vector<std::string>* rows);

  // Lease thread, after each renewal or grant attempt: its outcome and how
  // long the store took; a success is also the store's "last seen" (wall ms).
  void LeaseRenewal(bool ok, MonoMs took_ms, WallMs wall_now);
  // HA loop, after each cycle: how long it took.
  void CycleDone(MonoMs took_ms) { cycle_.Observe(took_ms); }
  // HA loop, for every view read: a holder different from the last holder
  // seen is a leader change (the first one seen since start is not; a key
  // that vanished and came back to the same holder is not).
  void ObserveLeader(const std::optional<core::LeaderKey>& leader);
  // Executor, after each action: its type and whether it worked.
  void ActionDone(core::ActionType type, bool ok);
  // Watchdog: PostgreSQL stopped because the lease deadline passed.
  void Fenced() { fenced_.fetch_add(1, std::memory_order_relaxed); }

  struct Snapshot {
    uint64_t lease_renewals_ok = 0, lease_renewals_failed = 0;
    DurationHistogram::Snapshot lease_renewal;
    DurationHistogram::Snapshot cycle;
    uint64_t leader_changes = 0;
    // [action type][0 = ok, 1 = failed], indexed by core::ActionType.
    std::vector<std::array<uint64_t, 2>> actions;
    uint64_t fenced = 0;
    WallMs store_last_seen_ms = 0;  // 0 = never
  };
  Snapshot Read() const;

  // The number of core::ActionType values (kStepDown is the last).
  static constexpr size_t kActionTypes = static_cast<size_t>(core::ActionType::kStepDown) + 1;

 private:
  std::atomic<uint64_t> lease_ok_{0}, lease_failed_{0};
  DurationHistogram lease_renewal_;
  DurationHistogram cycle_;
  std::atomic<uint64_t> leader_changes_{0};
  std::array<std::array<std::atomic<uint64_t>, 2>, kActionTypes> actions_{};
  std::atomic<uint64_t> fenced_{0};
  std::atomic<WallMs> store_last_seen_ms_{0};
  std::mutex query_mu_;           // held while a scrape's query runs
  mutable std::mutex answer_mu_;  // guards last_answer_
  std::optional<std::vector<std::string>> last_answer_;
  mutable std::mutex cert_mu_;
  MonoMs certs_at_ = -1;  // under cert_mu_; -1 = never checked
  std::vector<CertificateExpiry> certs_;
  std::mutex leader_mu_;
  std::string last_leader_;  // under leader_mu_: the last holder seen ("" = none yet)
};

}  // namespace tandem::agent
