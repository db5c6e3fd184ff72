// EtcdDcs over etcd 3.4's JSON gRPC gateway.
//
// Wire notes (verified against etcd 3.4.23):
// - Every RPC is POST /v3/<service>/<method> with a JSON body; field names are
//   the proto names (create_revision, range_end, request_put, TTL, ID,
//   peerURLs, isLearner). bytes fields are base64; int64/uint64 fields come
//   back as JSON strings (and are sent as strings, which keeps uint64 member
//   ids exact); fields equal to 0/false/"" are omitted from answers.
// - Unary errors: HTTP 4xx/5xx with {"error": "...", "message": "...",
//   "code": <grpc code>}. Streaming RPCs (lease keepalive, watch) answer 200
//   with newline-separated {"result": {...}} messages, or
//   {"error": {"grpc_code": n, "http_code": n, "message": "..."}}.
// - Lease keepalive of an unknown lease answers a result without TTL.
// - Revoke: /v3/lease/revoke (3.4 also serves /v3/kv/lease/revoke).
// - Watch: the stream first sends {"result": {"created": true}}, then events
//   (historical ones included when start_revision is in the past). A start
//   revision that was compacted answers canceled with compact_revision.
//   With progress_notify, an idle stream gets a result with only a header
//   every --experimental-watch-progress-notify-interval (default 10 min).
//   Created with the header "Grpc-Metadata-hasleader: true" (the gateway
//   forwards it as gRPC metadata), the stream is closed, without an error
//   message, 2-3 s after its member lost the raft leader (measured).
//
// This file: those details (etcd_wire.h declares them for the client).

#include "dcs/etcd_wire.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "base/strings.h"

namespace tandem::dcs {

// "http://h:p", "https://h:p", "h:p" (http) -> "scheme://h:p"; nullopt when malformed.
std::optional<std::string> NormalizeEndpoint(std::string ep) {
  ep = Trim(ep);
  std::string scheme = "http";
  auto pos = ep.find("://");
  if (pos != std::string::npos) {
    scheme = ep.substr(0, pos);
    for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    ep = ep.substr(pos + 3);
  }
  if (scheme != "http" && scheme != "https") return std::nullopt;
  if (!ep.empty() && ep.back() == '/') ep.pop_back();  // "http://h:p/" is fine, a path is not
  if (ep.empty() || ep.find('/') != std::string::npos) return std::nullopt;
  // host[:port] or [v6]:port
  std::string host = ep;
  std::optional<std::string> port;
  if (ep.front() == '[') {
    auto close = ep.find(']');
    if (close == std::string::npos) return std::nullopt;
    host = ep.substr(0, close + 1);
    std::string rest = ep.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else {
    auto colon = ep.rfind(':');
    if (colon != std::string::npos) {
      host = ep.substr(0, colon);
      port = ep.substr(colon + 1);
    }
  }
  const bool bracketed = !host.empty() && host.front() == '[';
  if (host.empty() || (!bracketed && host.find(':') != std::string::npos)) return std::nullopt;
  if (port) {
    auto p = ParseInt(*port);
    if (!p || *p < 1 || *p > 65535) return std::nullopt;
  } else {
    port = scheme == "https" ? "443" : "80";
  }
  return scheme + "://" + host + ":" + *port;
}

int64_t JInt(const json& j, const char* name) {
  if (!j.is_object()) return 0;
  auto it = j.find(name);
  if (it == j.end()) return 0;
  if (it->is_string()) return ParseInt(it->get<std::string>()).value_or(0);
  if (it->is_number_integer()) return it->get<int64_t>();
  return 0;
}

uint64_t JUint(const json& j, const char* name) {
  if (!j.is_object()) return 0;
  auto it = j.find(name);
  if (it == j.end()) return 0;
  if (it->is_string()) {
    const std::string s = it->get<std::string>();
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return 0;
    return v;
  }
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer()) return static_cast<uint64_t>(it->get<int64_t>());
  return 0;
}

bool JBool(const json& j, const char* name) {
  if (!j.is_object()) return false;
  auto it = j.find(name);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

std::string JStr(const json& j, const char* name) {
  if (!j.is_object()) return {};
  auto it = j.find(name);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

std::vector<std::string> JStrList(const json& j, const char* name) {
  std::vector<std::string> out;
  if (!j.is_object()) return out;
  auto it = j.find(name);
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

Result<std::string> JBytes(const json& j, const char* name) {
  std::string enc = JStr(j, name);
  auto dec = Base64Decode(enc);
  if (!dec) return Error(ErrorCode::kInternal, std::string("etcd sent bad base64 in ") + name);
  return *dec;
}

Result<KeyValue> ParseKv(const json& j) {
  KeyValue kv;
  auto key = JBytes(j, "key");
  if (!key) return key.error();
  auto value = JBytes(j, "value");
  if (!value) return value.error();
  kv.key = std::move(*key);
  kv.value = std::move(*value);
  kv.create_revision = JInt(j, "create_revision");
  kv.mod_revision = JInt(j, "mod_revision");
  kv.lease = JInt(j, "lease");
  return kv;
}

Revision HeaderRevision(const json& j) {
  auto it = j.find("header");
  if (it == j.end()) return 0;
  return JInt(*it, "revision");
}

Result<RangeResult> ParseRange(const json& j) {
  RangeResult out;
  out.revision = HeaderRevision(j);
  if (auto it = j.find("kvs"); it != j.end() && it->is_array()) {
    for (const auto& k : *it) {
      auto kv = ParseKv(k);
      if (!kv) return kv.error();
      out.kvs.push_back(std::move(*kv));
    }
  }
  std::sort(out.kvs.begin(), out.kvs.end(),
            [](const KeyValue& a, const KeyValue& b) { return a.key < b.key; });
  return out;
}

Member ParseMember(const json& j) {
  Member m;
  m.id = JUint(j, "ID");
  m.name = JStr(j, "name");
  m.peer_urls = JStrList(j, "peerURLs");
  m.client_urls = JStrList(j, "clientURLs");
  m.is_learner = JBool(j, "isLearner");
  return m;
}

static bool Contains(const std::string& s, const char* needle) {
  return s.find(needle) != std::string::npos;
}

// Maps an etcd/gRPC error (message + gRPC code, HTTP status when known).
CallError MapEtcdError(const std::string& ep, int http_status, int grpc_code,
                       const std::string& message) {
  const std::string text = "etcd " + ep + ": " + message;
  if (Contains(message, "request timed out") || Contains(message, "deadline exceeded") ||
      grpc_code == 4) {
    return {Error(ErrorCode::kTimeout, text), Scope::kEndpoint};
  }
  if (Contains(message, "no leader") || Contains(message, "not leader") ||
      Contains(message, "leader changed") || Contains(message, "not capable") ||
      Contains(message, "not supported for learner") ||
      Contains(message, "raft proposal dropped") || grpc_code == 14) {
    return {Error(ErrorCode::kUnavailable, text), Scope::kEndpoint};
  }
  switch (grpc_code) {
    case 5:  // NotFound
      return {Error(ErrorCode::kNotFound, text), Scope::kFinal};
    case 9:   // FailedPrecondition
    case 7:   // PermissionDenied
    case 16:  // Unauthenticated
      return {Error(ErrorCode::kFailedPrecondition, text), Scope::kFinal};
    case 3:   // InvalidArgument
    case 11:  // OutOfRange
      return {Error(ErrorCode::kInvalidArgument, text), Scope::kFinal};
    case 6:   // AlreadyExists
    case 10:  // Aborted
      return {Error(ErrorCode::kConflict, text), Scope::kFinal};
    case 8:  // ResourceExhausted
      return {Error(ErrorCode::kUnavailable, text), Scope::kEndpoint};
    default:
      break;
  }
  if (http_status >= 500) return {Error(ErrorCode::kUnavailable, text), Scope::kEndpoint};
  return {Error(ErrorCode::kInternal, text), Scope::kFinal};
}

// Extracts an error from a parsed gateway answer ({"error": "..."} or the
// streaming {"error": {...}}); nullopt when there is none.
std::optional<CallError> ErrorFromBody(const std::string& ep, int http_status, const json& j) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find("error");
  if (it == j.end()) return std::nullopt;
  if (it->is_object()) {
    int code = static_cast<int>(JInt(*it, "grpc_code"));
    int http = static_cast<int>(JInt(*it, "http_code"));
    return MapEtcdError(ep, http != 0 ? http : http_status, code, JStr(*it, "message"));
  }
  if (it->is_string()) {
    std::string msg = it->get<std::string>();
    if (msg.empty() && http_status == 200) return std::nullopt;  // LeaseGrant's error field
    std::string m2 = JStr(j, "message");
    return MapEtcdError(ep, http_status, static_cast<int>(JInt(j, "code")), msg.empty() ? m2 : msg);
  }
  return std::nullopt;
}

json KeyRange(const std::string& prefix) {
  json j;
  // The empty prefix is every key: etcd spells that key="\0", range_end="\0".
  j["key"] = Base64Encode(prefix.empty() ? std::string(1, '\0') : prefix);
  j["range_end"] = Base64Encode(PrefixRangeEnd(prefix));
  return j;
}

json OpJson(const Op& op) {
  json j;
  switch (op.type) {
    case Op::Type::kPut: {
      json put;
      put["key"] = Base64Encode(op.key);
      put["value"] = Base64Encode(op.value);
      if (op.lease != 0) put["lease"] = std::to_string(op.lease);
      j["request_put"] = put;
      break;
    }
    case Op::Type::kDelete: {
      json del;
      del["key"] = Base64Encode(op.key);
      j["request_delete_range"] = del;
      break;
    }
    case Op::Type::kDeletePrefix:
      j["request_delete_range"] = KeyRange(op.key);
      break;
  }
  return j;
}

json CompareJson(const Compare& c) {
  json j;
  j["key"] = Base64Encode(c.key);
  j["result"] = "EQUAL";
  switch (c.target) {
    case Compare::Target::kCreateRevision:
      j["target"] = "CREATE";
      j["create_revision"] = std::to_string(c.number);
      break;
    case Compare::Target::kModRevision:
      j["target"] = "MOD";
      j["mod_revision"] = std::to_string(c.number);
      break;
    case Compare::Target::kValue:
      j["target"] = "VALUE";
      j["value"] = Base64Encode(c.value);
      break;
    case Compare::Target::kLease:
      j["target"] = "LEASE";
      j["lease"] = std::to_string(c.number);
      break;
  }
  return j;
}

}  // namespace tandem::dcs
