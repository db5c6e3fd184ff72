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

#include "dcs/etcd_dcs.h"

// Debian's httplib is a compiled library built with OpenSSL, zlib and brotli;
// the header must see the same options (CMake passes them from pkg-config
// cpp-httplib to every target that links it) or the class layouts differ.
#if !defined(CPPHTTPLIB_OPENSSL_SUPPORT) || !defined(CPPHTTPLIB_ZLIB_SUPPORT) || \
    !defined(CPPHTTPLIB_BROTLI_SUPPORT)
#error "build with the cpp-httplib pkg-config flags (CMakeLists.txt links PkgConfig::HTTPLIB)"
#endif
#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

#include "base/clock.h"
#include "base/log.h"
#include "base/strings.h"

namespace tandem::dcs {

using json = nlohmann::json;

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

namespace {

constexpr size_t kMaxIdlePerEndpoint = 8;
constexpr MonoMs kMaxIdleMs = 60'000;
// etcd delivers a watch's past events from a background sync that runs every
// 100 ms; a wait that may have past events to report lasts at least this long.
constexpr int64_t kHistorySyncMs = 300;

MonoMs NowMs() {
  return SystemClock::Get().Now();
}

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

Member ParseMember(const json& j) {
  Member m;
  m.id = JUint(j, "ID");
  m.name = JStr(j, "name");
  m.peer_urls = JStrList(j, "peerURLs");
  m.client_urls = JStrList(j, "clientURLs");
  m.is_learner = JBool(j, "isLearner");
  return m;
}

bool Contains(const std::string& s, const char* needle) {
  return s.find(needle) != std::string::npos;
}

// How bad an error is for the endpoint that produced it.
enum class Scope {
  kFinal,     // the answer to the request (not found, bad argument, precondition)
  kEndpoint,  // this endpoint cannot serve now (down, no leader): another one may
};

struct CallError {
  Error error;
  Scope scope;
};

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
      Contains(message, "not supported for learner") || grpc_code == 14) {
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

enum class Kind { kRead, kWrite };

}  // namespace

struct EtcdDcs::Impl {
  struct Idle {
    std::unique_ptr<httplib::Client> client;
    MonoMs since;
  };

  EtcdOptions opts;
  std::vector<std::string> endpoints;  // normalized
  std::string config_error;            // non-empty: every call fails with it

  std::mutex mu;
  size_t preferred = 0;
  std::vector<std::vector<Idle>> pool;
  uint64_t generation = 0;  // ResetConnections increments it

  explicit Impl(EtcdOptions o) : opts(std::move(o)) {
    if (opts.request_timeout_ms <= 0) opts.request_timeout_ms = 2000;
    if (opts.connect_timeout_ms <= 0) opts.connect_timeout_ms = 500;
    for (const auto& ep : opts.endpoints) {
      auto n = NormalizeEndpoint(ep);
      if (!n) {
        config_error = "bad etcd endpoint '" + ep + "' (want http://host:port)";
        continue;
      }
      endpoints.push_back(*n);
    }
    if (opts.endpoints.empty()) config_error = "no etcd endpoints configured";
    pool.resize(endpoints.size());
  }

  static void SetTimeout(httplib::Client& c, int64_t connect_ms, int64_t read_ms) {
    c.set_connection_timeout(connect_ms / 1000, (connect_ms % 1000) * 1000);
    c.set_read_timeout(read_ms / 1000, (read_ms % 1000) * 1000);
    c.set_write_timeout(read_ms / 1000, (read_ms % 1000) * 1000);
  }

  std::unique_ptr<httplib::Client> NewClient(size_t ep, int64_t read_ms, bool keep_alive) {
    auto c = MakeHttpClient(endpoints[ep], opts.tls);
    SetTimeout(*c, opts.connect_timeout_ms, read_ms);
    c->set_keep_alive(keep_alive);
    c->set_tcp_nodelay(true);
    return c;
  }

  // A pooled keep-alive client for ep (reused = true) or a new one.
  std::unique_ptr<httplib::Client> Take(size_t ep, bool* reused, uint64_t* gen) {
    {
      std::lock_guard<std::mutex> lock(mu);
      *gen = generation;
      auto& idle = pool[ep];
      const MonoMs now = NowMs();
      while (!idle.empty()) {
        Idle it = std::move(idle.back());
        idle.pop_back();
        if (now - it.since <= kMaxIdleMs) {
          *reused = true;
          return std::move(it.client);
        }
      }
    }
    *reused = false;
    return NewClient(ep, opts.request_timeout_ms, true);
  }

  // gen: the generation Take saw; a client from before ResetConnections is
  // closed, not pooled (it holds the old TLS files).
  void Give(size_t ep, std::unique_ptr<httplib::Client> c, uint64_t gen) {
    std::lock_guard<std::mutex> lock(mu);
    if (gen == generation && pool[ep].size() < kMaxIdlePerEndpoint)
      pool[ep].push_back({std::move(c), NowMs()});
  }

  size_t Preferred() {
    std::lock_guard<std::mutex> lock(mu);
    return preferred;
  }

  void SetPreferred(size_t ep) {
    std::lock_guard<std::mutex> lock(mu);
    preferred = ep % endpoints.size();
  }

  // Maps a transport failure of one attempt.
  CallError TransportError(size_t ep, httplib::Error err, MonoMs started, int64_t read_ms) {
    const std::string& url = endpoints[ep];
    switch (err) {
      case httplib::Error::Connection:
      case httplib::Error::ConnectionTimeout:
      case httplib::Error::BindIPAddress:
      case httplib::Error::SSLConnection:
      case httplib::Error::SSLLoadingCerts:
      case httplib::Error::SSLServerVerification:
        return {Error(ErrorCode::kUnavailable,
                      "cannot connect to etcd " + url + ": " + httplib::to_string(err)),
                Scope::kEndpoint};
      case httplib::Error::Read:
        if (NowMs() - started >= read_ms - 20) {
          return {Error(ErrorCode::kTimeout, "etcd " + url + " did not answer within " +
                                                 std::to_string(read_ms) + " ms"),
                  Scope::kEndpoint};
        }
        return {Error(ErrorCode::kUnavailable, "etcd " + url + ": connection lost"),
                Scope::kEndpoint};
      default:
        return {Error(ErrorCode::kUnavailable, "etcd " + url + ": " + httplib::to_string(err)),
                Scope::kEndpoint};
    }
  }

  // One POST on one endpoint; retries once on a fresh connection when a
  // pooled one turned out dead before the request could have been processed.
  //
  // The body goes through a content receiver instead of Response::body:
  // the gateway ends its error answers with an HTTP trailer
  // (Grpc-Trailer-Content-Type) that httplib 0.11 cannot parse, so such a
  // transfer "fails" with Error::Read after the whole JSON body arrived. A
  // complete JSON body with a status line is the answer, whatever the
  // transport said afterwards; that connection is not reused.
  Result<json> CallOne(size_t ep, const std::string& path, const std::string& body, Kind kind,
                       CallError* failure) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool reused = false;
      uint64_t gen = 0;
      auto client = Take(ep, &reused, &gen);
      int status = 0;
      std::string text;
      httplib::Request req;
      req.method = "POST";
      req.path = path;
      req.body = body;
      req.set_header("Content-Type", "application/json");
      req.response_handler = [&](const httplib::Response& res) {
        status = res.status;
        return true;
      };
      req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
        text.append(data, len);
        return true;
      };
      httplib::Response res;
      httplib::Error err = httplib::Error::Success;
      const MonoMs started = NowMs();
      client->send(req, res, err);

      json j = json::value_t::discarded;
      if (status != 0 && !text.empty()) {
        // Streaming answers may carry several newline-separated messages; the
        // first one is the answer to our single request.
        auto nl = text.find('\n');
        j = json::parse(nl == std::string::npos ? text : text.substr(0, nl), nullptr, false);
      }
      if (j.is_discarded()) {
        if (err != httplib::Error::Success) {
          // A stale pooled connection: the request never left
          // (Write/Connection), or a read that is safe to repeat.
          if (reused && status == 0 &&
              (err == httplib::Error::Write || err == httplib::Error::Connection ||
               (err == httplib::Error::Read && kind == Kind::kRead))) {
            continue;
          }
          *failure = TransportError(ep, err, started, opts.request_timeout_ms);
          return failure->error;
        }
        *failure = {Error(status >= 500 ? ErrorCode::kUnavailable : ErrorCode::kInternal,
                          "etcd " + endpoints[ep] + " " + path + ": HTTP " +
                              std::to_string(status) + ", not JSON: " + text.substr(0, 200)),
                    status >= 500 ? Scope::kEndpoint : Scope::kFinal};
        return failure->error;
      }
      if (err == httplib::Error::Success) Give(ep, std::move(client), gen);
      if (auto e = ErrorFromBody(endpoints[ep], status, j)) {
        *failure = *e;
        return failure->error;
      }
      if (status != 200) {
        *failure = MapEtcdError(endpoints[ep], status, 0, "HTTP " + std::to_string(status));
        return failure->error;
      }
      return j;
    }
    *failure = {Error(ErrorCode::kUnavailable, "etcd " + endpoints[ep] + ": connection lost"),
                Scope::kEndpoint};
    return failure->error;
  }

  Result<json> Call(const std::string& path, const json& request, Kind kind) {
    if (!config_error.empty()) return Error(ErrorCode::kInvalidArgument, config_error);
    const std::string body = request.dump();
    const size_t n = endpoints.size();
    const size_t start = Preferred();
    std::optional<Error> last;
    for (size_t i = 0; i < n; ++i) {
      const size_t ep = (start + i) % n;
      CallError failure{Error(ErrorCode::kInternal, ""), Scope::kFinal};
      auto r = CallOne(ep, path, body, kind, &failure);
      if (r.ok()) {
        if (ep != start) SetPreferred(ep);
        return r;
      }
      if (failure.scope == Scope::kFinal) {
        if (ep != start) SetPreferred(ep);
        return failure.error;
      }
      TLOG(Debug, "dcs") << "etcd " << path << " failed on " << endpoints[ep] << ": "
                         << failure.error.ToString();
      last = failure.error;
      // The next call starts at the next endpoint.
      SetPreferred(ep + 1);
      const bool never_sent = failure.error.code() == ErrorCode::kUnavailable &&
                              StartsWith(failure.error.message(), "cannot connect");
      if (kind == Kind::kWrite && !never_sent) return failure.error;
    }
    if (n > 1 && last && last->code() == ErrorCode::kUnavailable) {
      return Error(ErrorCode::kUnavailable, "no etcd endpoint answered (" + Join(endpoints, ", ") +
                                                "); last: " + last->message());
    }
    return *last;
  }
};

EtcdDcs::EtcdDcs(EtcdOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}

EtcdDcs::~EtcdDcs() = default;

const EtcdOptions& EtcdDcs::options() const {
  return impl_->opts;
}

namespace {

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
  RangeResult out;
  out.revision = HeaderRevision(*r);
  auto it = r->find("kvs");
  if (it != r->end() && it->is_array()) {
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

Result<bool> EtcdDcs::WaitForChange(const std::string& prefix, Revision after_revision,
                                    int64_t timeout_ms) {
  Impl& im = *impl_;
  if (!im.config_error.empty()) return Error(ErrorCode::kInvalidArgument, im.config_error);
  timeout_ms = std::max<int64_t>(timeout_ms, 0);
  const MonoMs begin = NowMs();
  const Revision from = std::max<Revision>(after_revision + 1, 1);

  // 1. A cheap local (serializable) read: a put under the prefix since
  //    after_revision answers at once; the store revision tells whether the
  //    watch can have past events (deletes) to deliver at all.
  Revision current = 0;
  {
    json q = KeyRange(prefix);
    q["keys_only"] = true;
    q["serializable"] = true;
    q["limit"] = "1";
    q["min_mod_revision"] = std::to_string(from);
    auto r = im.Call("/v3/kv/range", q, Kind::kRead);
    if (r.ok()) {
      auto kvs = r->find("kvs");
      if (kvs != r->end() && kvs->is_array() && !kvs->empty()) return true;
      current = HeaderRevision(*r);
      if (current < from && timeout_ms == 0) return false;
    } else if (r.error().code() == ErrorCode::kInvalidArgument) {
      return r.error();
    }
    // Other failures: the watch below tries the endpoints again and reports.
  }

  // 2. The watch from `from`.
  int64_t wait_ms = timeout_ms;
  if (current == 0 || current >= from) wait_ms = std::max(wait_ms, kHistorySyncMs);
  const MonoMs deadline = begin + wait_ms;
  json create = KeyRange(prefix);
  create["start_revision"] = std::to_string(from);
  json req;
  req["create_request"] = create;
  const std::string body = req.dump();

  const size_t n = im.endpoints.size();
  const size_t start = im.Preferred();
  std::optional<Error> last;
  for (size_t i = 0; i < n; ++i) {
    const size_t ep = (start + i) % n;
    const int64_t remaining = deadline - NowMs();
    if (remaining <= 0 && last) break;
    auto client = im.NewClient(ep, std::max<int64_t>(remaining, 1), false);

    std::string buffer;
    bool created = false;
    bool changed = false;
    std::optional<CallError> failure;
    int status = 0;
    // Handles one complete message; false stops the stream.
    auto handle = [&](const std::string& line) -> bool {
      if (Trim(line).empty()) return true;
      json j = json::parse(line, nullptr, false);
      if (j.is_discarded()) {
        failure = CallError{
            Error(ErrorCode::kInternal, "etcd watch sent non-JSON: " + line.substr(0, 200)),
            Scope::kFinal};
        return false;
      }
      if (auto e = ErrorFromBody(im.endpoints[ep], status, j)) {
        failure = *e;
        return false;
      }
      const json& res = j.contains("result") ? j["result"] : j;
      if (JBool(res, "created")) created = true;
      if (JInt(res, "compact_revision") > 0) {
        changed = true;  // our start revision is compacted: assume a change
        return false;
      }
      auto ev = res.find("events");
      if (ev != res.end() && ev->is_array() && !ev->empty()) {
        changed = true;
        return false;
      }
      if (JBool(res, "canceled")) {
        failure = CallError{
            Error(ErrorCode::kUnavailable, "etcd watch canceled: " + JStr(res, "cancel_reason")),
            Scope::kEndpoint};
        return false;
      }
      return true;
    };

    httplib::Request hreq;
    hreq.method = "POST";
    hreq.path = "/v3/watch";
    hreq.body = body;
    hreq.set_header("Content-Type", "application/json");
    hreq.response_handler = [&](const httplib::Response& res) {
      status = res.status;
      return true;
    };
    hreq.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
      buffer.append(data, len);
      size_t nl;
      while ((nl = buffer.find('\n')) != std::string::npos) {
        std::string line = buffer.substr(0, nl);
        buffer.erase(0, nl + 1);
        if (!handle(line)) return false;
      }
      return true;
    };
    const MonoMs started = NowMs();
    httplib::Response hres;
    httplib::Error err = httplib::Error::Success;
    client->send(hreq, hres, err);
    if (!changed && !failure && !Trim(buffer).empty()) handle(buffer);  // unterminated last message
    if (changed) {
      if (ep != start) im.SetPreferred(ep);
      return true;
    }
    if (failure) {
      if (failure->scope == Scope::kFinal) return failure->error;
      last = failure->error;
      im.SetPreferred(ep + 1);
      continue;
    }
    if (err == httplib::Error::Success || err == httplib::Error::Canceled) {
      if (status != 200 && status != 0) {
        CallError e = MapEtcdError(im.endpoints[ep], status, 0, "HTTP " + std::to_string(status));
        if (e.scope == Scope::kFinal) return e.error;
        last = e.error;
        im.SetPreferred(ep + 1);
        continue;
      }
      // The server ended the stream without an event.
      return Error(ErrorCode::kUnavailable, "etcd " + im.endpoints[ep] + " closed the watch");
    }
    if (created && NowMs() >= deadline - 20) {
      if (ep != start) im.SetPreferred(ep);
      return false;  // no change within the timeout
    }
    CallError e = im.TransportError(ep, err, started, remaining);
    last = e.error;
    im.SetPreferred(ep + 1);
    if (created) return e.error;  // the stream broke mid-way: report it
  }
  if (!last) return Error(ErrorCode::kTimeout, "etcd watch: no time left");
  return *last;
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
  auto r = impl_->Call("/v3/cluster/member/add", req, Kind::kWrite);
  if (!r) return r.error();
  auto it = r->find("member");
  if (it == r->end()) return Error(ErrorCode::kInternal, "etcd member add: no member in answer");
  return ParseMember(*it);
}

Status EtcdDcs::MemberPromote(uint64_t id) {
  json req;
  req["ID"] = std::to_string(id);
  auto r = impl_->Call("/v3/cluster/member/promote", req, Kind::kWrite);
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
  // Closed here, outside the lock.
}

Status EtcdDcs::MemberRemove(uint64_t id) {
  json req;
  req["ID"] = std::to_string(id);
  auto r = impl_->Call("/v3/cluster/member/remove", req, Kind::kWrite);
  if (!r) return r.error();
  return Ok();
}

}  // namespace tandem::dcs
