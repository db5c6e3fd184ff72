// MemoryDcs: the in-process store (contract in memory_dcs.h). Any thread; one
// mutex; time and waits only through the injected Clock.
#include "dcs/memory_dcs.h"

#include <algorithm>
#include <utility>

#include "base/strings.h"

namespace tandem::dcs {
namespace {

constexpr size_t kMaxHistory = 100000;

bool UnderPrefix(const std::string& key, const std::string& prefix) {
  return StartsWith(key, prefix);
}

Error EmptyKey() {
  return Error(ErrorCode::kInvalidArgument, "key is not provided");
}

}  // namespace

MemoryDcs::MemoryDcs(const Clock& clock) : clock_(clock) {}

MemoryDcs::~MemoryDcs() = default;

void MemoryDcs::SetUnavailable(bool unavailable) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    unavailable_ = unavailable;
  }
  cv_.notify_all();
}

bool MemoryDcs::unavailable() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unavailable_;
}

Revision MemoryDcs::CurrentRevision() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rev_;
}

Status MemoryDcs::CheckAvailableLocked() const {
  if (unavailable_) return Error(ErrorCode::kUnavailable, "memory store is partitioned");
  return Ok();
}

void MemoryDcs::RecordLocked(Revision rev, const std::string& key) {
  history_.push_back({rev, key});
  while (history_.size() > kMaxHistory) {
    history_floor_ = history_.front().revision;
    history_.pop_front();
  }
}

bool MemoryDcs::ChangedSinceLocked(const std::string& prefix, Revision after) const {
  if (after < history_floor_) return true;  // "compacted": assume a change
  for (auto it = history_.rbegin(); it != history_.rend() && it->revision > after; ++it) {
    if (UnderPrefix(it->key, prefix)) return true;
  }
  return false;
}

void MemoryDcs::PutLocked(const std::string& key, const std::string& value, LeaseId lease,
                          Revision rev) {
  auto it = kvs_.find(key);
  if (it == kvs_.end()) {
    KeyValue kv;
    kv.key = key;
    kv.create_revision = rev;
    it = kvs_.emplace(key, std::move(kv)).first;
  } else if (it->second.lease != 0 && it->second.lease != lease) {
    auto old = leases_.find(it->second.lease);
    if (old != leases_.end()) old->second.keys.erase(key);
  }
  it->second.value = value;
  it->second.mod_revision = rev;
  it->second.lease = lease;
  if (lease != 0) leases_[lease].keys.insert(key);
  RecordLocked(rev, key);
}

bool MemoryDcs::DeleteLocked(const std::string& key, Revision rev) {
  auto it = kvs_.find(key);
  if (it == kvs_.end()) return false;
  if (it->second.lease != 0) {
    auto l = leases_.find(it->second.lease);
    if (l != leases_.end()) l->second.keys.erase(key);
  }
  kvs_.erase(it);
  RecordLocked(rev, key);
  return true;
}

void MemoryDcs::DropLeaseLocked(LeaseId id) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  std::set<std::string> keys = std::move(it->second.keys);
  leases_.erase(it);
  bool changed = false;
  for (const auto& k : keys) {
    auto kv = kvs_.find(k);
    if (kv == kvs_.end()) continue;
    kvs_.erase(kv);
    RecordLocked(rev_ + 1, k);
    changed = true;
  }
  if (changed) {
    ++rev_;
    cv_.notify_all();
  }
}

void MemoryDcs::ExpireLeasesLocked() {
  const MonoMs now = clock_.Now();
  std::vector<LeaseId> expired;
  for (const auto& [id, st] : leases_) {
    if (st.expires_at <= now) expired.push_back(id);
  }
  for (LeaseId id : expired) DropLeaseLocked(id);
}

bool MemoryDcs::CompareHoldsLocked(const Compare& c) const {
  auto it = kvs_.find(c.key);
  if (it == kvs_.end()) {
    switch (c.target) {
      case Compare::Target::kValue:
        return false;  // etcd: a value compare on a missing key always fails
      default:
        return c.number == 0;
    }
  }
  const KeyValue& kv = it->second;
  switch (c.target) {
    case Compare::Target::kCreateRevision:
      return kv.create_revision == c.number;
    case Compare::Target::kModRevision:
      return kv.mod_revision == c.number;
    case Compare::Target::kValue:
      return kv.value == c.value;
    case Compare::Target::kLease:
      return kv.lease == c.number;
  }
  return false;
}

Status MemoryDcs::ValidateOpsLocked(const std::vector<Op>& ops) const {
  for (const auto& op : ops) {
    if (op.type != Op::Type::kDeletePrefix && op.key.empty()) return EmptyKey();
    if (op.type == Op::Type::kPut && op.lease != 0 && leases_.count(op.lease) == 0) {
      return Error(ErrorCode::kNotFound, "requested lease not found");
    }
  }
  return Ok();
}

bool MemoryDcs::ApplyOpsLocked(const std::vector<Op>& ops) {
  const Revision rev = rev_ + 1;
  bool changed = false;
  for (const auto& op : ops) {
    switch (op.type) {
      case Op::Type::kPut:
        PutLocked(op.key, op.value, op.lease, rev);
        changed = true;
        break;
      case Op::Type::kDelete:
        changed |= DeleteLocked(op.key, rev);
        break;
      case Op::Type::kDeletePrefix: {
        std::vector<std::string> doomed;
        for (auto it = kvs_.lower_bound(op.key); it != kvs_.end() && UnderPrefix(it->first, op.key);
             ++it) {
          doomed.push_back(it->first);
        }
        for (const auto& k : doomed) changed |= DeleteLocked(k, rev);
        break;
      }
    }
  }
  if (changed) {
    rev_ = rev;
    cv_.notify_all();
  }
  return changed;
}

Result<std::optional<KeyValue>> MemoryDcs::Get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  TANDEM_TRY(CheckAvailableLocked());
  if (key.empty()) return EmptyKey();
  ExpireLeasesLocked();
  auto it = kvs_.find(key);
  if (it == kvs_.end()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(it->second);
}

Result<RangeResult> MemoryDcs::GetPrefix(const std::string& prefix) {
  std::lock_guard<std::mutex> lock(mu_);
  TANDEM_TRY(CheckAvailableLocked());
  ExpireLeasesLocked();
  RangeResult out;
  out.revision = rev_;
  for (auto it = kvs_.lower_bound(prefix); it != kvs_.end() && UnderPrefix(it->first, prefix);
       ++it) {
    out.kvs.push_back(it->second);
  }
  return out;
}

Result<Revision> MemoryDcs::Put(const std::string& key, const std::string& value, LeaseId lease) {
  std::lock_guard<std::mutex> lock(mu_);
  TANDEM_TRY(CheckAvailableLocked());
  ExpireLeasesLocked();
  std::vector<Op> ops{Op::Put(key, value, lease)};
  TANDEM_TRY(ValidateOpsLocked(ops));
  ApplyOpsLocked(ops);
  return rev_;
}

Result<Revision> MemoryDcs::Delete(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  TANDEM_TRY(CheckAvailableLocked());
  if (key.empty()) return EmptyKey();
  ExpireLeasesLocked();
  ApplyOpsLocked({Op::Delete(key)});
  return rev_;
}

Result<TxnResult> MemoryDcs::Txn(const std::vector<Compare>& compares,
                                 const std::vector<Op>& success_ops,
                                 const std::vector<Op>& failure_ops) {
  std::lock_guard<std::mutex> lock(mu_);
  TANDEM_TRY(CheckAvailableLocked());
  ExpireLeasesLocked();
  for (const auto& c : compares) {
    if (c.key.empty()) return EmptyKey();
  }
  // etcd validates both branches before evaluating the compares.
  TANDEM_TRY(ValidateOpsLocked(success_ops));
  TANDEM_TRY(ValidateOpsLocked(failure_ops));
  TxnResult out;
  out.succeeded = true;
  for (const auto& c : compares) {
    if (!CompareHoldsLocked(c)) {
      out.succeeded = false;
      break;
    }
  }
  ApplyOpsLocked(out.succeeded ? success_ops : failure_ops);
  out.revision = rev_;
  return out;
}

Result<LeaseGrant> MemoryDcs::GrantLease(int64_t ttl_seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  TANDEM_TRY(CheckAvailableLocked());
  ExpireLeasesLocked();
  if (ttl_seconds < 1) ttl_seconds = 1;
  LeaseGrant g;
  g.id = next_lease_++;
  g.ttl_seconds = ttl_seconds;
  LeaseState& st = leases_[g.id];
  st.ttl_seconds = ttl_seconds;
  st.expires_at = clock_.Now() + ttl_seconds * 1000;
  return g;
}

Result<int64_t> MemoryDcs::KeepAlive(LeaseId lease) {
  std::lock_guard<std::mutex> lock(mu_);
  TANDEM_TRY(CheckAvailableLocked());
  ExpireLeasesLocked();
  auto it = leases_.find(lease);
  if (it == leases_.end()) {
    return Error(ErrorCode::kNotFound, "lease " + std::to_string(lease) + " not found");
  }
  it->second.expires_at = clock_.Now() + it->second.ttl_seconds * 1000;
  return it->second.ttl_seconds;
}

Status MemoryDcs::Revoke(LeaseId lease) {
  std::lock_guard<std::mutex> lock(mu_);
  TANDEM_TRY(CheckAvailableLocked());
  ExpireLeasesLocked();
  if (leases_.count(lease) == 0) {
    return Error(ErrorCode::kNotFound, "lease " + std::to_string(lease) + " not found");
  }
  DropLeaseLocked(lease);
  return Ok();
}

Result<bool> MemoryDcs::WaitForChange(const std::string& prefix, Revision after_revision,
                                      int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  const MonoMs deadline = clock_.Now() + std::max<int64_t>(0, timeout_ms);
  // Re-evaluated at every notification (a write, a partition, an Advance of
  // a ManualClock) with mu_ held; expiring a lease is a change like a delete.
  auto done = [&] {
    if (unavailable_) return true;
    ExpireLeasesLocked();
    return ChangedSinceLocked(prefix, after_revision);
  };
  while (true) {
    if (done()) break;
    const MonoMs now = clock_.Now();
    if (now >= deadline) break;
    // On a real clock nothing notifies a lease expiry: wake for the next one.
    MonoMs wake = deadline;
    for (const auto& [id, st] : leases_) wake = std::min(wake, st.expires_at);
    clock_.WaitUntil(lock, cv_, std::max(wake, now + 1), done);
  }
  TANDEM_TRY(CheckAvailableLocked());
  return ChangedSinceLocked(prefix, after_revision);
}

Result<std::vector<Member>> MemoryDcs::MemberList() {
  return Error(ErrorCode::kFailedPrecondition, "the in-memory store has no cluster members");
}

Result<Member> MemoryDcs::MemberAdd(const std::vector<std::string>& peer_urls, bool as_learner) {
  return Error(ErrorCode::kFailedPrecondition, "the in-memory store has no cluster members");
}

Status MemoryDcs::MemberPromote(uint64_t id) {
  return Error(ErrorCode::kFailedPrecondition, "the in-memory store has no cluster members");
}

Status MemoryDcs::MemberRemove(uint64_t id) {
  return Error(ErrorCode::kFailedPrecondition, "the in-memory store has no cluster members");
}

}  // namespace tandem::dcs
