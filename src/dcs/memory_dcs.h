// MemoryDcs: an in-process store with etcd v3 semantics, for unit and
// simulation tests.
//
// Semantics mirrored from etcd 3.4:
// - The store starts at revision 1. Every Put, every Delete that removes a key
//   and every Txn whose applied ops change something advance the revision by
//   exactly 1 (a Txn with several ops is one revision; a Delete or Txn that
//   changes nothing does not advance it).
// - Compares on a missing key see create/mod revision 0 and lease 0; a value
//   compare on a missing key always fails (as in etcd).
// - Put with a lease that does not exist returns kNotFound (the whole Txn too).
// - Leases expire on the injected Clock: every call first expires the leases
//   whose deadline (grant or last keepalive + TTL) has passed, deleting their
//   keys in one revision per lease. A TTL below 1 s is raised to 1 s.
// - Get/Put/Delete with an empty key return kInvalidArgument (etcd: "key is
//   not provided"); an empty prefix means every key.
// - SetUnavailable(true) makes every call return kUnavailable (a partition
//   between the caller and the store); leases keep running on the clock.
// - Membership calls return kFailedPrecondition.
//
// WaitForChange: waits on the injected Clock (Clock::WaitUntil) until a write
// under the prefix lands at a revision > after_revision, or timeout_ms passes
// on that clock; it returns at once when such a change is already in the
// history (or when timeout_ms <= 0). A lease that expires while it waits
// wakes it like etcd's delete event would: on a ManualClock when the test
// advances past the expiry, on a real clock at the expiry itself.
// SetUnavailable(true) wakes waiters, which return kUnavailable.
// The change history keeps the last 100000 events; asking about an older
// revision returns true (like a compacted etcd watch: "something changed").
//
// Thread-safe: one mutex around the whole store. The Clock must be safe to
// read concurrently (a ManualClock is, as long as nobody advances it at the
// same moment from another thread).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "base/clock.h"
#include "dcs/dcs.h"

namespace tandem::dcs {

class MemoryDcs final : public Dcs {
 public:
  explicit MemoryDcs(const Clock& clock);
  ~MemoryDcs() override;

  // Simulates a partition: every call returns kUnavailable while set.
  void SetUnavailable(bool unavailable);
  bool unavailable() const;
  // The current store revision (for tests; ignores SetUnavailable).
  Revision CurrentRevision() const;

  Result<std::optional<KeyValue>> Get(const std::string& key) override;
  Result<RangeResult> GetPrefix(const std::string& prefix) override;
  Result<Revision> Put(const std::string& key, const std::string& value,
                       LeaseId lease = 0) override;
  Result<Revision> Delete(const std::string& key) override;
  Result<TxnResult> Txn(const std::vector<Compare>& compares, const std::vector<Op>& success_ops,
                        const std::vector<Op>& failure_ops = {}) override;

  Result<LeaseGrant> GrantLease(int64_t ttl_seconds) override;
  Result<int64_t> KeepAlive(LeaseId lease) override;
  Status Revoke(LeaseId lease) override;

  Result<bool> WaitForChange(const std::string& prefix, Revision after_revision,
                             int64_t timeout_ms) override;

  Result<std::vector<Member>> MemberList() override;
  Result<Member> MemberAdd(const std::vector<std::string>& peer_urls, bool as_learner) override;
  Status MemberPromote(uint64_t id) override;
  Status MemberRemove(uint64_t id) override;

 private:
  struct LeaseState {
    int64_t ttl_seconds = 0;
    MonoMs expires_at = 0;
    std::set<std::string> keys;
  };
  struct Event {
    Revision revision;
    std::string key;
  };

  // All below require mu_ held.
  Status CheckAvailableLocked() const;
  void ExpireLeasesLocked();
  bool CompareHoldsLocked(const Compare& c) const;
  Status ValidateOpsLocked(const std::vector<Op>& ops) const;
  // Applies ops at revision rev_ + 1; returns whether anything changed.
  bool ApplyOpsLocked(const std::vector<Op>& ops);
  void PutLocked(const std::string& key, const std::string& value, LeaseId lease, Revision rev);
  bool DeleteLocked(const std::string& key, Revision rev);
  void RecordLocked(Revision rev, const std::string& key);
  bool ChangedSinceLocked(const std::string& prefix, Revision after) const;
  void DropLeaseLocked(LeaseId id);

  const Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool unavailable_ = false;
  Revision rev_ = 1;
  LeaseId next_lease_ = 0x7a3d000000000001;
  std::map<std::string, KeyValue> kvs_;
  std::map<LeaseId, LeaseState> leases_;
  std::deque<Event> history_;
  Revision history_floor_ = 1;  // events at revisions > floor are all in history_
};

}  // namespace tandem::dcs
