// EtcdDcs over etcd 3.4's JSON gRPC gateway.
// Unary calls over pooled keep-alive connections (etcd_impl.h), the key,
// lease and member calls. The wire format: etcd_wire.cc; watches:
// etcd_watch.cc. Any thread.

#include "dcs/etcd_dcs.h"

#include <algorithm>
#include <utility>

#include "dcs/etcd_impl.h"

namespace tandem::dcs {

std::string PrefixRangeEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

EtcdDcs::EtcdDcs(EtcdOptions opts, const Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(opts), clock)) {}

EtcdDcs::~EtcdDcs() = default;

const EtcdOptions& EtcdDcs::options() const {
  return impl_->opts;
}

namespace {

// Membership changes are rare and not on the failover path: etcd may take
// well over the agent's short request timeout to apply one on a loaded
// machine, and giving up early leaves the caller guessing whether it landed.
constexpr int64_t kMembershipTimeoutMs = 5'000;

Error EmptyKey() {
  return Error(ErrorCode::kInvalidArgument, "key is not provided");
}

}  // namespace

Result<std::optional<KeyValue>> EtcdDcs::Get(const std::string& key) {
  if (key.empty()) return EmptyKey();
  json req;
  req["key"] = Base64Encode(key);
  auto r = impl_->Call("/v3/kv/range", req, Kind::kRead);
  if (!r) return r.error();
  auto it = r->find("kvs");
  if (it == r->end() || !it->is_array() || it->empty()) return std::optional<KeyValue>();
  auto kv = ParseKv((*it)[0]);
  if (!kv) return kv.error();
  return std::optional<KeyValue>(std::move(*kv));
}

Result<RangeResult> EtcdDcs::GetPrefix(const std::string& prefix) {
  auto r = impl_->Call("/v3/kv/range", KeyRange(prefix), Kind::kRead);
  if (!r) return r.error();
  return ParseRange(*r);
}

Result<Revision> EtcdDcs::Put(const std::string& key, const std::string& value, LeaseId lease) {
  if (key.empty()) return EmptyKey();
  json req = OpJson(Op::Put(key, value, lease))["request_put"];
  auto r = impl_->Call("/v3/kv/put", req, Kind::kWrite);
  if (!r) return r.error();
  return HeaderRevision(*r);
}

Result<Revision> EtcdDcs::Delete(const std::string& key) {
  if (key.empty()) return EmptyKey();
  json req;
  req["key"] = Base64Encode(key);
  auto r = impl_->Call("/v3/kv/deleterange", req, Kind::kWrite);
  if (!r) return r.error();
  return HeaderRevision(*r);
}

Result<TxnResult> EtcdDcs::Txn(const std::vector<Compare>& compares,
                               const std::vector<Op>& success_ops,
                               const std::vector<Op>& failure_ops) {
  json req;
  req["compare"] = json::array();
  for (const auto& c : compares) {
    if (c.key.empty()) return EmptyKey();
    req["compare"].push_back(CompareJson(c));
  }
  req["success"] = json::array();
  for (const auto& op : success_ops) req["success"].push_back(OpJson(op));
  req["failure"] = json::array();
  for (const auto& op : failure_ops) req["failure"].push_back(OpJson(op));
  auto r = impl_->Call("/v3/kv/txn", req, Kind::kWrite);
  if (!r) return r.error();
  TxnResult out;
  out.succeeded = JBool(*r, "succeeded");
  out.revision = HeaderRevision(*r);
  return out;
}

Result<LeaseGrant> EtcdDcs::GrantLease(int64_t ttl_seconds) {
  if (ttl_seconds <= 0) {
    return Error(ErrorCode::kInvalidArgument, "lease TTL must be positive");
  }
  json req;
  req["TTL"] = std::to_string(ttl_seconds);
  auto r = impl_->Call("/v3/lease/grant", req, Kind::kWrite);
  if (!r) return r.error();
  LeaseGrant g;
  g.id = JInt(*r, "ID");
  g.ttl_seconds = JInt(*r, "TTL");
  if (g.id == 0) return Error(ErrorCode::kInternal, "etcd granted a lease without an id");
  return g;
}

Result<int64_t> EtcdDcs::KeepAlive(LeaseId lease) {
  json req;
  req["ID"] = std::to_string(lease);
  auto r = impl_->Call("/v3/lease/keepalive", req, Kind::kRead);
  if (!r) return r.error();
  const json* res = &*r;
  auto it = r->find("result");
  if (it != r->end()) res = &*it;
  int64_t ttl = JInt(*res, "TTL");
  if (ttl <= 0) {
    return Error(ErrorCode::kNotFound, "lease " + std::to_string(lease) + " not found (expired)");
  }
  return ttl;
}

Status EtcdDcs::Revoke(LeaseId lease) {
  json req;
  req["ID"] = std::to_string(lease);
  auto r = impl_->Call("/v3/lease/revoke", req, Kind::kWrite);
  if (!r) return r.error();
  return Ok();
}

Result<MemberStatus> EtcdDcs::FirstMemberStatus() {
  auto r = impl_->CallFirst("/v3/maintenance/status", json::object(), Kind::kRead,
                            impl_->opts.request_timeout_ms);
  if (!r) return r.error();
  MemberStatus st;
  if (auto h = r->find("header"); h != r->end()) st.member_id = JUint(*h, "member_id");
  st.leader_id = JUint(*r, "leader");
  if (st.member_id == 0) return Error(ErrorCode::kInternal, "etcd status without a member id");
  return st;
}

Status EtcdDcs::MoveLeader(uint64_t to) {
  json req;
  req["targetID"] = std::to_string(to);
  auto r = impl_->CallFirst("/v3/maintenance/transfer-leadership", req, Kind::kWrite,
                            kMoveLeaderTimeoutMs);
  if (!r) return r.error();
  return Ok();
}

Result<std::vector<Member>> EtcdDcs::MemberList() {
  auto r = impl_->Call("/v3/cluster/member/list", json::object(), Kind::kRead);
  if (!r) return r.error();
  std::vector<Member> out;
  auto it = r->find("members");
  if (it != r->end() && it->is_array()) {
    for (const auto& m : *it) out.push_back(ParseMember(m));
  }
  return out;
}

Result<Member> EtcdDcs::MemberAdd(const std::vector<std::string>& peer_urls, bool as_learner) {
  if (peer_urls.empty()) return Error(ErrorCode::kInvalidArgument, "member add: no peer URLs");
  json req;
  req["peerURLs"] = peer_urls;
  req["isLearner"] = as_learner;
  auto r = impl_->Call("/v3/cluster/member/add", req, Kind::kWrite, kMembershipTimeoutMs);
  if (!r && r.error().code() == ErrorCode::kTimeout) {
    // The change may have been applied after all: a retry would then be
    // refused ("Peer URLs already exists"). The member list tells.
    auto members = MemberList();
    if (members) {
      for (const auto& m : *members) {
        for (const auto& u : m.peer_urls) {
          if (u == peer_urls[0]) return m;
        }
      }
    }
  }
  if (!r) return r.error();
  auto it = r->find("member");
  if (it == r->end()) return Error(ErrorCode::kInternal, "etcd member add: no member in answer");
  return ParseMember(*it);
}

Status EtcdDcs::MemberPromote(uint64_t id) {
  json req;
  req["ID"] = std::to_string(id);
  auto r = impl_->Call("/v3/cluster/member/promote", req, Kind::kWrite, kMembershipTimeoutMs);
  if (!r) return r.error();
  return Ok();
}

void EtcdDcs::ResetConnections() {
  std::vector<std::vector<Impl::Idle>> old;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    old.swap(impl_->pool);
    impl_->pool.resize(old.size());
    ++impl_->generation;
  }
  // The watch streams reopen with the new files.
  impl_->KickWatchers();
  // The idle connections are closed here, outside the lock.
}

Status EtcdDcs::MemberRemove(uint64_t id) {
  json req;
  req["ID"] = std::to_string(id);
  auto r = impl_->Call("/v3/cluster/member/remove", req, Kind::kWrite, kMembershipTimeoutMs);
  if (!r) return r.error();
  return Ok();
}

}  // namespace tandem::dcs
