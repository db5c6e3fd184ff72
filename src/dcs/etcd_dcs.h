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
// Thread-safe: idle keep-alive connections are pooled per endpoint; a call
// takes one out of the pool (or opens a new one) and puts it back after a
// clean answer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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
  explicit EtcdDcs(EtcdOptions opts);
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

  // First a local (serializable) keys-only read of the prefix with
  // min_mod_revision = after_revision + 1: a put since then answers true at
  // once. Otherwise it opens a watch from after_revision + 1 and returns at
  // the first event (true), at timeout (false), or true when that revision was
  // compacted (something changed that can no longer be listed).
  // timeout_ms == 0 returns false at once when the store revision has not
  // moved past after_revision; when it has (deletes, or writes outside the
  // prefix), the wait lasts at least 300 ms, because etcd delivers a watch's
  // past events from a background sync that runs every 100 ms.
  Result<bool> WaitForChange(const std::string& prefix, Revision after_revision,
                             int64_t timeout_ms) override;

  Result<std::vector<Member>> MemberList() override;
  Result<Member> MemberAdd(const std::vector<std::string>& peer_urls, bool as_learner) override;
  Status MemberPromote(uint64_t id) override;
  Status MemberRemove(uint64_t id) override;
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
