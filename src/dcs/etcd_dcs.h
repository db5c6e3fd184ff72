// EtcdDcs: the Dcs interface over etcd v3's JSON gRPC gateway (etcd 3.4).
//
// Every call is one HTTP POST to /v3/... on one of the configured endpoints,
// with keys and values base64-encoded (see etcd_dcs.cc for the wire details).
//
// Endpoints: "http://host:port" or "https://host:port" (TLS as EtcdOptions::tls
// says: the client certificate presented, the CA and how the server is
// checked; a handshake that fails verification counts as "cannot connect").
// The client sends to the endpoint that last answered; when it
// cannot connect it tries the next one. A member that answers "no leader" /
// "not leader" makes reads move on to the next endpoint at once; writes then
// return kUnavailable (their outcome is unknown, a retry elsewhere could
// apply them twice) and the next call starts at the next endpoint.
//
// Errors:
//   cannot connect to any endpoint, HTTP 5xx, gRPC Unavailable, no leader -> kUnavailable
//   read timeout, "request timed out", deadline exceeded                   -> kTimeout
//   lease not found (KeepAlive, Revoke, Put on a dead lease)              -> kNotFound
//   member not found                                                       -> kNotFound
//   promote of a learner not in sync, other gRPC FailedPrecondition        -> kFailedPrecondition
//   bad endpoint, empty key, gRPC InvalidArgument                          -> kInvalidArgument
// A failed txn compare is not an error (TxnResult::succeeded == false).
//
// Connections (what an idle agent costs): unary calls reuse pooled
// keep-alive connections, one per concurrent caller and endpoint, so an idle
// client opens none; WaitForChange keeps one watch stream per prefix open
// across calls instead of a watch per call. ResetConnections (a TLS rotation)
// drops the idle pooled connections and reopens the watch streams.
//
// Time: every time read and wait goes through the Clock given to the
// constructor (HTTP socket timeouts are the kernel's, in real time).
//
// Thread-safe: idle keep-alive connections are pooled per endpoint; a call
// takes one out of the pool (or opens a new one) and puts it back after a
// clean answer. Watch streams run on one thread per watched prefix (at most
// kMaxWatchers, the least recently used one is closed first), ended by the
// destructor.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "dcs/dcs.h"
#include "dcs/tls_client.h"

namespace tandem::dcs {

struct EtcdOptions {
  std::vector<std::string> endpoints;  // "http://127.0.0.1:2379"
  int64_t request_timeout_ms = 2000;   // per request (read/write timeout of one HTTP call)
  int64_t connect_timeout_ms = 500;    // per endpoint tried
  TlsClientOptions tls;                // for https:// endpoints
};

class EtcdDcs final : public Dcs {
 public:
  // clock: outlives this client.
  EtcdDcs(EtcdOptions opts, const Clock& clock);
  ~EtcdDcs() override;
  EtcdDcs(const EtcdDcs&) = delete;
  EtcdDcs& operator=(const EtcdDcs&) = delete;

  const EtcdOptions& options() const;

  Result<std::optional<KeyValue>> Get(const std::string& key) override;
  Result<RangeResult> GetPrefix(const std::string& prefix) override;
  Result<Revision> Put(const std::string& key, const std::string& value,
                       LeaseId lease = 0) override;
  Result<Revision> Delete(const std::string& key) override;
  Result<TxnResult> Txn(const std::vector<Compare>& compares, const std::vector<Op>& success_ops,
                        const std::vector<Op>& failure_ops = {}) override;

  // etcd raises a TTL below its minimum (1.5 x election timeout, rounded up to
  // whole seconds) and reports the raised TTL in LeaseGrant::ttl_seconds.
  Result<LeaseGrant> GrantLease(int64_t ttl_seconds) override;
  Result<int64_t> KeepAlive(LeaseId lease) override;
  // kNotFound when the lease is already gone.
  Status Revoke(LeaseId lease) override;

  // Answers from the prefix's watch stream, which stays open between calls
  // (one per prefix, started from after_revision + 1 by the first call, and
  // again from an older revision when a call asks about one): true when an
  // event at a revision > after_revision arrived (or that revision was
  // compacted: something changed that can no longer be listed), false at
  // timeout. A stream that breaks is reopened (from the revision after the
  // last event it delivered) on the preferred endpoint; the call returns the
  // error when no endpoint accepts the watch. The stream asks etcd to end it
  // when the member loses its raft leader (a partitioned member then makes
  // the watch move on) and for progress notifications (so an idle stream
  // stays open; a stream silent for 60 s is reopened).
  // A new stream must first receive the past events since after_revision:
  // when the store revision has not moved past after_revision,
  // timeout_ms == 0 returns false once the stream is open; when it has
  // (deletes, or writes outside the prefix), a new stream's first answer
  // waits at least 300 ms, because etcd delivers a watch's past events from a
  // background sync that runs every 100 ms.
  Result<bool> WaitForChange(const std::string& prefix, Revision after_revision,
                             int64_t timeout_ms) override;

  // The copy lives in the prefix's watch stream (the one WaitForChange
  // uses), which applies each event to it; a stream that was compacted,
  // reopened past a gap or retired drops its copy. See Dcs::ReadPrefix.
  Result<RangeResult> ReadPrefix(const std::string& prefix, int64_t max_age_ms) override;
  // How ReadPrefix answered so far: from a copy, or by a read (tests, metrics).
  struct CopyStats {
    uint64_t served = 0;
    uint64_t reads = 0;
  };
  CopyStats copy_stats() const;

  Result<std::vector<Member>> MemberList() override;
  Result<Member> MemberAdd(const std::vector<std::string>& peer_urls, bool as_learner) override;
  Status MemberPromote(uint64_t id) override;
  Status MemberRemove(uint64_t id) override;
  // POST /v3/maintenance/status on the first endpoint.
  Result<MemberStatus> FirstMemberStatus() override;
  // POST /v3/maintenance/transfer-leadership on the first endpoint, allowed
  // 3 s (a transfer takes up to an election timeout).
  Status MoveLeader(uint64_t to) override;
  void ResetConnections() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The range_end that selects every key starting with prefix (etcd's
// "prefix + 1": the last byte below 0xff incremented, trailing 0xff bytes
// dropped; "\0" = to the end of the keyspace for an empty or all-0xff prefix).
std::string PrefixRangeEnd(const std::string& prefix);

}  // namespace tandem::dcs
