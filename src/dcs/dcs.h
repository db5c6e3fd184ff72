// Dcs: the consensus store as Tandem uses it (etcd v3 semantics).
//
// One interface for every store; EtcdDcs talks to a real etcd through its
// JSON gateway, MemoryDcs is an in-process fake for unit and simulation tests
// (it can be "partitioned" to return kUnavailable).
//
// Error contract (STYLE.md rule 5): a failed compare is NOT an error; it is
// TxnResult::succeeded == false. kUnavailable / kTimeout mean the store could
// not be reached or did not answer: the outcome of a write is then unknown.
//
// Thread safety: every method may be called from any thread concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace tandem::dcs {

using LeaseId = int64_t;  // 0 = no lease
using Revision = int64_t;

struct KeyValue {
  std::string key;
  std::string value;
  Revision create_revision = 0;
  Revision mod_revision = 0;
  LeaseId lease = 0;
};

struct RangeResult {
  std::vector<KeyValue> kvs;  // sorted by key
  Revision revision = 0;      // the store's revision when the read was served
};

// One comparison of a transaction (etcd's Compare with result EQUAL).
struct Compare {
  enum class Target { kCreateRevision, kModRevision, kValue, kLease };
  std::string key;
  Target target = Target::kCreateRevision;
  int64_t number = 0;  // for the revision and lease targets
  std::string value;   // for kValue
  static Compare CreateRevisionIs(std::string key, Revision r) {
    return {std::move(key), Target::kCreateRevision, r, {}};
  }
  static Compare ModRevisionIs(std::string key, Revision r) {
    return {std::move(key), Target::kModRevision, r, {}};
  }
  static Compare ValueIs(std::string key, std::string v) {
    return {std::move(key), Target::kValue, 0, std::move(v)};
  }
  static Compare LeaseIs(std::string key, LeaseId l) {
    return {std::move(key), Target::kLease, l, {}};
  }
};

struct Op {
  enum class Type { kPut, kDelete, kDeletePrefix };
  Type type = Type::kPut;
  std::string key;
  std::string value;
  LeaseId lease = 0;
  static Op Put(std::string key, std::string value, LeaseId lease = 0) {
    return {Type::kPut, std::move(key), std::move(value), lease};
  }
  static Op Delete(std::string key) { return {Type::kDelete, std::move(key), {}, 0}; }
  static Op DeletePrefix(std::string prefix) {
    return {Type::kDeletePrefix, std::move(prefix), {}, 0};
  }
};

struct TxnResult {
  bool succeeded = false;  // all compares held, the success ops were applied
  Revision revision = 0;   // store revision after the transaction
};

struct LeaseGrant {
  LeaseId id = 0;
  int64_t ttl_seconds = 0;  // as granted (etcd may raise a too-small TTL)
};

// An etcd cluster member (for the embedded etcd the agents manage).
struct Member {
  uint64_t id = 0;
  std::string name;
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;
  bool is_learner = false;
};

// What the member behind a client's first endpoint (an embedded node's own
// member) says about itself (etcd's maintenance status).
struct MemberStatus {
  uint64_t member_id = 0;  // the member that answered
  uint64_t leader_id = 0;  // the raft leader it knows (0 = none)
  bool leads() const { return member_id != 0 && member_id == leader_id; }
};

class Dcs {
 public:
  virtual ~Dcs() = default;

  // --- keys ---
  virtual Result<std::optional<KeyValue>> Get(const std::string& key) = 0;
  virtual Result<RangeResult> GetPrefix(const std::string& prefix) = 0;
  virtual Result<Revision> Put(const std::string& key, const std::string& value,
                               LeaseId lease = 0) = 0;
  virtual Result<Revision> Delete(const std::string& key) = 0;
  // All compares must hold for success_ops to apply, else failure_ops apply.
  virtual Result<TxnResult> Txn(const std::vector<Compare>& compares,
                                const std::vector<Op>& success_ops,
                                const std::vector<Op>& failure_ops = {}) = 0;

  // --- leases ---
  virtual Result<LeaseGrant> GrantLease(int64_t ttl_seconds) = 0;
  // Renews once. Returns the remaining TTL in seconds; kNotFound when the lease
  // has already expired (or was revoked).
  virtual Result<int64_t> KeepAlive(LeaseId lease) = 0;
  virtual Status Revoke(LeaseId lease) = 0;

  // --- watch ---
  // Blocks until a key under prefix changes at a revision > after_revision, or
  // timeout_ms passes. Returns true on a change, false on timeout. Used by the
  // agent loop to react to store events at once instead of on the next tick.
  virtual Result<bool> WaitForChange(const std::string& prefix, Revision after_revision,
                                     int64_t timeout_ms) = 0;

  // --- a watched copy of a prefix ---
  // Every key under prefix as of one revision, like GetPrefix: a consistent
  // snapshot (a prefix of the store's history), never a mix of revisions. It
  // may be served from a copy kept current by a watch stream instead of a
  // read: only while that copy is known complete, i.e. its stream is open and
  // has delivered its past events, it holds every revision this client has
  // seen in an answer (its own writes among them: read-your-writes), and a
  // linearizable read confirmed it less than max_age_ms ago. Otherwise it
  // reads as GetPrefix does and reseeds the copy from that read. So a result
  // may be older than a GetPrefix at the same moment by at most the watch's
  // delivery delay, and by max_age_ms if the stream silently stalled
  // (docs/design/watched-view.md says why the HA loop may decide on it).
  // The default reads every time.
  virtual Result<RangeResult> ReadPrefix(const std::string& prefix, int64_t max_age_ms) {
    (void)max_age_ms;
    return GetPrefix(prefix);
  }

  // --- membership (etcd cluster API); MemoryDcs returns kFailedPrecondition ---
  virtual Result<std::vector<Member>> MemberList() = 0;
  virtual Result<Member> MemberAdd(const std::vector<std::string>& peer_urls, bool as_learner) = 0;
  virtual Status MemberPromote(uint64_t id) = 0;
  virtual Status MemberRemove(uint64_t id) = 0;

  // --- the first endpoint's member (etcd maintenance API) ---
  // Asks only the first endpoint (no failover: the answer is about that
  // member). Stores without members return kFailedPrecondition.
  virtual Result<MemberStatus> FirstMemberStatus() {
    return Error(ErrorCode::kFailedPrecondition, "this store has no members");
  }
  // Asks the first endpoint's member, which must be the raft leader, to hand
  // leadership to member `to` and waits until it has (or failed: kTimeout,
  // kFailedPrecondition when it does not lead or `to` is no voting member).
  virtual Status MoveLeader(uint64_t to) {
    (void)to;
    return Error(ErrorCode::kFailedPrecondition, "this store has no members");
  }

  // The TLS files changed (a certificate rotation): connections opened from
  // now on use them. Idle pooled connections are dropped; busy ones finish
  // with what they have. A no-op without connections.
  virtual void ResetConnections() {}
};

}  // namespace tandem::dcs
