// AgentMetrics (metrics_registry.h): relaxed atomics, read by API workers.
// Runs on whichever thread records; never blocks but in ObserveLeader (and
// in QueryPostgres, on the scrape's worker, for its own query).
#include "agent/metrics_registry.h"

#include <algorithm>

namespace tandem::agent {

void DurationHistogram::Observe(MonoMs ms) {
  if (ms < 0) ms = 0;
  const auto it = std::lower_bound(kBoundsMs.begin(), kBoundsMs.end(), ms);
  buckets_[static_cast<size_t>(it - kBoundsMs.begin())].fetch_add(1, std::memory_order_relaxed);
  sum_ms_.fetch_add(static_cast<uint64_t>(ms), std::memory_order_relaxed);
}

DurationHistogram::Snapshot DurationHistogram::Read() const {
  Snapshot s;
  s.upper_bounds_seconds.reserve(kBoundsMs.size());
  for (int64_t b : kBoundsMs) s.upper_bounds_seconds.push_back(static_cast<double>(b) / 1000.0);
  s.counts.reserve(buckets_.size());
  for (const auto& b : buckets_) s.counts.push_back(b.load(std::memory_order_relaxed));
  s.sum_seconds = static_cast<double>(sum_ms_.load(std::memory_order_relaxed)) / 1000.0;
  return s;
}

void AgentMetrics::LeaseRenewal(bool ok, MonoMs took_ms, WallMs wall_now) {
  (ok ? lease_ok_ : lease_failed_).fetch_add(1, std::memory_order_relaxed);
  lease_renewal_.Observe(took_ms);
  if (ok) store_last_seen_ms_.store(wall_now, std::memory_order_relaxed);
}

void AgentMetrics::ObserveLeader(const std::optional<core::LeaderKey>& leader) {
  if (!leader || leader->holder.empty()) return;
  std::lock_guard<std::mutex> lock(leader_mu_);
  if (leader->holder == last_leader_) return;
  if (!last_leader_.empty()) leader_changes_.fetch_add(1, std::memory_order_relaxed);
  last_leader_ = leader->holder;
}

void AgentMetrics::ActionDone(core::ActionType type, bool ok) {
  const auto i = static_cast<size_t>(type);
  if (i >= kActionTypes) return;
  actions_[i][ok ? 0 : 1].fetch_add(1, std::memory_order_relaxed);
}

std::optional<std::vector<CertificateExpiry>> AgentMetrics::Certificates(MonoMs now) const {
  std::lock_guard<std::mutex> lock(cert_mu_);
  if (certs_at_ < 0 || now - certs_at_ >= kCertificateRecheckMs || now < certs_at_) {
    return std::nullopt;
  }
  return certs_;
}

void AgentMetrics::SetCertificates(MonoMs now, std::vector<CertificateExpiry> certs) {
  std::lock_guard<std::mutex> lock(cert_mu_);
  certs_at_ = now;
  certs_ = std::move(certs);
}

bool AgentMetrics::QueryPostgres(const PgQuery& query, std::vector<std::string>* rows) {
  std::unique_lock<std::mutex> running(query_mu_, std::try_to_lock);
  if (running.owns_lock()) {
    auto answer = query();
    std::lock_guard<std::mutex> lock(answer_mu_);
    if (answer.ok()) {
      last_answer_ = std::move(*answer);
    } else {
      last_answer_.reset();  // down or refusing: no stale values
    }
  }
  std::lock_guard<std::mutex> lock(answer_mu_);
  if (!last_answer_) return false;
  *rows = *last_answer_;
  return true;
}

AgentMetrics::Snapshot AgentMetrics::Read() const {
  Snapshot s;
  s.lease_renewals_ok = lease_ok_.load(std::memory_order_relaxed);
  s.lease_renewals_failed = lease_failed_.load(std::memory_order_relaxed);
  s.lease_renewal = lease_renewal_.Read();
  s.cycle = cycle_.Read();
  s.leader_changes = leader_changes_.load(std::memory_order_relaxed);
  s.actions.resize(kActionTypes);
  for (size_t i = 0; i < kActionTypes; ++i) {
    s.actions[i] = {actions_[i][0].load(std::memory_order_relaxed),
                    actions_[i][1].load(std::memory_order_relaxed)};
  }
  s.fenced = fenced_.load(std::memory_order_relaxed);
  s.store_last_seen_ms = store_last_seen_ms_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace tandem::agent
