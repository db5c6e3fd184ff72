// StepClock and NodeStore (see clock_and_store.h).
#include "unit/agent/clock_and_store.h"

#include <algorithm>

namespace tandem::agenttest {

// ---------------------------------------------------------------- StepClock

void StepClock::SleepFor(MonoMs ms) const {
  std::unique_lock<std::mutex> lk(sleep_mu_);
  WaitUntil(lk, sleep_cv_, Now() + ms, [] { return false; });
}

bool StepClock::WaitUntil(std::unique_lock<std::mutex>& lk, std::condition_variable& cv,
                          MonoMs deadline, const std::function<bool()>& done) const {
  // Lock order as ManualClock: waiters_mu_ before a waiter's mutex.
  std::list<Waiter>::iterator me;
  lk.unlock();
  {
    std::lock_guard<std::mutex> g(waiters_mu_);
    me = waiters_.insert(waiters_.end(), Waiter{lk.mutex(), &cv, deadline, &done});
  }
  lk.lock();
  bool result = false;
  for (;;) {
    if (done()) {
      result = true;
      break;
    }
    if (Now() >= deadline) break;
    cv.wait(lk);
  }
  lk.unlock();
  {
    std::lock_guard<std::mutex> g(waiters_mu_);
    waiters_.erase(me);
  }
  lk.lock();
  return result;
}

void StepClock::Advance(MonoMs ms) {
  now_ += ms;
  std::lock_guard<std::mutex> g(waiters_mu_);
  for (const Waiter& w : waiters_) {
    std::lock_guard<std::mutex> wl(*w.mu);
    w.cv->notify_all();
  }
}

int StepClock::Waiters() const {
  std::lock_guard<std::mutex> g(waiters_mu_);
  return static_cast<int>(waiters_.size());
}

int StepClock::IdleWaiters() const {
  std::lock_guard<std::mutex> g(waiters_mu_);
  const MonoMs now = Now();
  int idle = 0;
  for (const Waiter& w : waiters_) {
    if (w.deadline <= now) continue;
    // try_lock: the waiter's mutex may be held by a thread that is about to
    // register (it takes waiters_mu_ after releasing it) - never wait here.
    std::unique_lock<std::mutex> wl(*w.mu, std::try_to_lock);
    if (!wl.owns_lock()) continue;
    if (!(*w.done)()) ++idle;
  }
  return idle;
}

// ---------------------------------------------------------------- NodeStore

void NodeStore::Bus::Notify() {
  { std::lock_guard<std::mutex> g(mu); }
  cv.notify_all();
}

NodeStore::NodeStore(const Clock& clock, std::shared_ptr<dcs::MemoryDcs> inner,
                     std::shared_ptr<Bus> bus, std::atomic<uint64_t>* seq)
    : clock_(clock), inner_(std::move(inner)), bus_(std::move(bus)), seq_(seq) {}

void NodeStore::SetPartitioned(bool cut, MonoMs timeout_ms) {
  cut_timeout_ms_ = timeout_ms;
  cut_ = cut;
  bus_->Notify();  // watches and partition waits re-check
}

void NodeStore::FailNext(const std::string& op) {
  std::lock_guard<std::mutex> g(mu_);
  fail_next_.insert(op);
}

void NodeStore::SetFrozen(bool frozen, const std::string& except) {
  {
    std::lock_guard<std::mutex> g(mu_);
    frozen_ = frozen;
    frozen_except_ = except;
  }
  thaw_cv_.notify_all();
}

int NodeStore::BlockedCallers() const {
  std::lock_guard<std::mutex> g(mu_);
  return frozen_ ? blocked_ : 0;
}

std::vector<NodeStore::Request> NodeStore::Requests() const {
  std::lock_guard<std::mutex> g(mu_);
  return requests_;
}

std::vector<MonoMs> NodeStore::KeepAliveTimes(bool only_ok) const {
  std::vector<MonoMs> out;
  for (const auto& r : Requests()) {
    if (r.op == "KeepAlive" && (r.ok || !only_ok)) out.push_back(r.at);
  }
  return out;
}

void NodeStore::Record(const std::string& op, const std::string& key, bool ok) {
  std::lock_guard<std::mutex> g(mu_);
  requests_.push_back(Request{clock_.Now(), ++*seq_, op, key, ok});
}

Status NodeStore::Enter(const std::string& op, const std::string& key) {
  {
    std::unique_lock<std::mutex> lk(mu_);
    if (frozen_ && op != frozen_except_) {
      ++blocked_;
      thaw_cv_.wait(lk, [&] { return !frozen_ || op == frozen_except_; });
      --blocked_;
    }
    if (auto it = fail_next_.find(op); it != fail_next_.end()) {
      fail_next_.erase(it);
      requests_.push_back(Request{clock_.Now(), ++*seq_, op, key, false});
      return Error(ErrorCode::kUnavailable, "injected failure (test)");
    }
  }
  if (!cut_) return Ok();
  const MonoMs sent = clock_.Now();
  const MonoMs timeout = cut_timeout_ms_.load();
  if (timeout > 0) {
    // The request times out on the clock unless the partition heals first
    // (the answer is still lost: this call fails either way).
    std::unique_lock<std::mutex> lk(bus_->mu);
    clock_.WaitUntil(lk, bus_->cv, sent + timeout, [&] { return !cut_; });
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    requests_.push_back(Request{sent, ++*seq_, op, key, false});
  }
  return Error(ErrorCode::kUnavailable, "partitioned from the store (test)");
}

Result<std::optional<dcs::KeyValue>> NodeStore::Get(const std::string& key) {
  TANDEM_TRY(Enter("Get", key));
  auto r = inner_->Get(key);
  Record("Get", key, r.ok());
  return r;
}

Result<dcs::RangeResult> NodeStore::GetPrefix(const std::string& prefix) {
  TANDEM_TRY(Enter("GetPrefix", prefix));
  auto r = inner_->GetPrefix(prefix);
  Record("GetPrefix", prefix, r.ok());
  return r;
}

Result<dcs::Revision> NodeStore::Put(const std::string& key, const std::string& value,
                                     dcs::LeaseId lease) {
  TANDEM_TRY(Enter("Put", key));
  auto r = inner_->Put(key, value, lease);
  Record("Put", key, r.ok());
  bus_->Notify();
  return r;
}

Result<dcs::Revision> NodeStore::Delete(const std::string& key) {
  TANDEM_TRY(Enter("Delete", key));
  auto r = inner_->Delete(key);
  Record("Delete", key, r.ok());
  bus_->Notify();
  return r;
}

Result<dcs::TxnResult> NodeStore::Txn(const std::vector<dcs::Compare>& compares,
                                      const std::vector<dcs::Op>& success_ops,
                                      const std::vector<dcs::Op>& failure_ops) {
  const std::string key = success_ops.empty() ? "" : success_ops.front().key;
  TANDEM_TRY(Enter("Txn", key));
  auto r = inner_->Txn(compares, success_ops, failure_ops);
  Record("Txn", key, r.ok() && r->succeeded);
  bus_->Notify();
  return r;
}

Result<dcs::LeaseGrant> NodeStore::GrantLease(int64_t ttl_seconds) {
  TANDEM_TRY(Enter("GrantLease", ""));
  auto r = inner_->GrantLease(ttl_seconds);
  Record("GrantLease", "", r.ok());
  return r;
}

Result<int64_t> NodeStore::KeepAlive(dcs::LeaseId lease) {
  TANDEM_TRY(Enter("KeepAlive", ""));
  auto r = inner_->KeepAlive(lease);
  Record("KeepAlive", "", r.ok());
  bus_->Notify();  // an expired lease's keys went with it
  return r;
}

Status NodeStore::Revoke(dcs::LeaseId lease) {
  TANDEM_TRY(Enter("Revoke", ""));
  auto r = inner_->Revoke(lease);
  Record("Revoke", "", r.ok());
  bus_->Notify();
  return r;
}

Result<bool> NodeStore::WaitForChange(const std::string& prefix, dcs::Revision after_revision,
                                      int64_t timeout_ms) {
  TANDEM_TRY(Enter("WaitForChange", prefix));
  std::unique_lock<std::mutex> lk(bus_->mu);
  bool changed = false;
  // Every write through a NodeStore notifies the bus; a lease expiring on the
  // clock is seen when the clock's advance wakes this wait (the inner call
  // expires leases first).
  clock_.WaitUntil(lk, bus_->cv, clock_.Now() + std::max<int64_t>(timeout_ms, 0), [&] {
    if (cut_) return true;
    auto r = inner_->WaitForChange(prefix, after_revision, 0);
    changed = r.ok() && *r;
    return changed;
  });
  if (cut_) return Error(ErrorCode::kUnavailable, "partitioned from the store (test)");
  return changed;
}

Result<std::vector<dcs::Member>> NodeStore::MemberList() {
  return inner_->MemberList();
}
Result<dcs::Member> NodeStore::MemberAdd(const std::vector<std::string>& peer_urls,
                                         bool as_learner) {
  return inner_->MemberAdd(peer_urls, as_learner);
}
Status NodeStore::MemberPromote(uint64_t id) {
  return inner_->MemberPromote(id);
}
Status NodeStore::MemberRemove(uint64_t id) {
  return inner_->MemberRemove(id);
}

}  // namespace tandem::agenttest
