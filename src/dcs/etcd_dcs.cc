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
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
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
// A watch stream that sends nothing (no event, no progress notification) for
// this long is reopened: it may be a half-open connection to a host that
// vanished. The embedded etcd sends a progress notification every 30 s.
constexpr int64_t kWatchSilenceMs = 60'000;
// Pauses between watch attempts after every endpoint refused one.
constexpr MonoMs kWatchRetryMinMs = 100;
constexpr MonoMs kWatchRetryMaxMs = 1'000;
// Watch streams kept open at once (one per prefix; the agent watches one).
constexpr size_t kMaxWatchers = 4;
// A transfer of the raft leadership takes up to an election timeout.
constexpr int64_t kMoveLeaderTimeoutMs = 3'000;

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

  // One watch stream of a prefix (see WaitForChange), guarded by watch_mu.
  struct Watcher {
    std::string prefix;
    Revision from = 0;       // the stream has delivered every event at revisions >= from
    Revision latest = 0;     // the highest event revision delivered
    Revision compacted = 0;  // events below this revision were compacted away
    Revision progress = 0;   // a progress notification said: delivered up to here
    bool live = false;       // a stream is open (etcd answered "created")
    MonoMs synced_at = 0;    // when a live stream has surely sent its past events
    uint64_t failures = 0;   // rounds in which every endpoint refused the watch
    Error last_error{ErrorCode::kUnavailable, "etcd watch not started"};
    uint64_t version = 0;  // bumped at every change of the above (waiters re-check)
    MonoMs last_used = 0;
    int waiting = 0;                    // callers blocked on this watcher
    bool stop = false;                  // the thread must end
    bool done = false;                  // the thread has ended
    httplib::Client* client = nullptr;  // the open stream, for stop()
    std::thread thread;
  };

  const Clock& clock;
  EtcdOptions opts;
  std::vector<std::string> endpoints;  // normalized
  std::string config_error;            // non-empty: every call fails with it

  std::mutex mu;
  size_t preferred = 0;
  std::vector<std::vector<Idle>> pool;
  uint64_t generation = 0;  // ResetConnections increments it

  std::mutex watch_mu;  // after mu when both are held, never the other way
  std::condition_variable watch_cv;
  std::vector<std::shared_ptr<Watcher>> watchers;

  MonoMs NowMs() const { return clock.Now(); }

  Impl(EtcdOptions o, const Clock& c) : clock(c), opts(std::move(o)) {
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
    bool moved = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      moved = preferred != ep % endpoints.size();
      preferred = ep % endpoints.size();
    }
    // The watch streams follow: the old endpoint failed a call.
    if (moved) KickWatchers();
  }

  // Closes the open watch streams; their threads reopen them (on the
  // preferred endpoint, with the current TLS files).
  void KickWatchers() {
    std::lock_guard<std::mutex> lock(watch_mu);
    for (auto& w : watchers) {
      if (w->client != nullptr) w->client->stop();
    }
  }

  // Implemented below Impl (etcd_dcs.cc, "watch streams").
  void WatchLoop(Watcher* w);
  bool RunWatchStream(Watcher* w, size_t ep, Revision start, Error* error);
  void StopWatcher(const std::shared_ptr<Watcher>& w);
  std::shared_ptr<Watcher> WatcherFor(const std::string& prefix, Revision from,
                                      std::vector<std::shared_ptr<Watcher>>* retired);
  Result<bool> WaitForChange(const std::string& prefix, Revision after, int64_t timeout_ms);

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
                       CallError* failure, int64_t read_ms) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool reused = false;
      uint64_t gen = 0;
      auto client = Take(ep, &reused, &gen);
      if (read_ms != opts.request_timeout_ms) {
        SetTimeout(*client, opts.connect_timeout_ms, read_ms);
      }
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
          *failure = TransportError(ep, err, started, read_ms);
          return failure->error;
        }
        *failure = {Error(status >= 500 ? ErrorCode::kUnavailable : ErrorCode::kInternal,
                          "etcd " + endpoints[ep] + " " + path + ": HTTP " +
                              std::to_string(status) + ", not JSON: " + text.substr(0, 200)),
                    status >= 500 ? Scope::kEndpoint : Scope::kFinal};
        return failure->error;
      }
      if (err == httplib::Error::Success) {
        if (read_ms != opts.request_timeout_ms) {
          SetTimeout(*client, opts.connect_timeout_ms, opts.request_timeout_ms);
        }
        Give(ep, std::move(client), gen);
      }
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
      auto r = CallOne(ep, path, body, kind, &failure, opts.request_timeout_ms);
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

  // One call on the first endpoint only (questions about that member).
  Result<json> CallFirst(const std::string& path, const json& request, Kind kind, int64_t read_ms) {
    if (!config_error.empty()) return Error(ErrorCode::kInvalidArgument, config_error);
    CallError failure{Error(ErrorCode::kInternal, ""), Scope::kFinal};
    return CallOne(0, path, request.dump(), kind, &failure, read_ms);
  }

  ~Impl() {
    std::vector<std::shared_ptr<Watcher>> all;
    {
      std::lock_guard<std::mutex> lock(watch_mu);
      all.swap(watchers);
    }
    for (auto& w : all) StopWatcher(w);
  }
};

EtcdDcs::EtcdDcs(EtcdOptions opts, const Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(opts), clock)) {}

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

// ---------------------------------------------------------------- watch streams

// Opens one watch stream of w->prefix from `start` on endpoint ep and reads it
// until it ends. Returns whether etcd created it (false: *error says why).
bool EtcdDcs::Impl::RunWatchStream(Watcher* w, size_t ep, Revision start, Error* error) {
  json create = KeyRange(w->prefix);
  create["start_revision"] = std::to_string(start);
  create["progress_notify"] = true;
  json body;
  body["create_request"] = create;
  auto client = NewClient(ep, kWatchSilenceMs, false);
  {
    std::lock_guard<std::mutex> lock(watch_mu);
    if (w->stop) return true;
    w->client = client.get();
  }
  bool created = false;
  bool compacted = false;
  std::optional<CallError> failure;
  int status = 0;
  std::string buffer;
  // Handles one complete message; false ends the stream.
  auto handle = [&](const std::string& line) -> bool {
    if (Trim(line).empty()) return true;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) {
      failure =
          CallError{Error(ErrorCode::kInternal, "etcd watch sent non-JSON: " + line.substr(0, 200)),
                    Scope::kEndpoint};
      return false;
    }
    if (auto e = ErrorFromBody(endpoints[ep], status, j)) {
      failure = *e;
      return false;
    }
    const json& res = j.contains("result") ? j["result"] : j;
    std::lock_guard<std::mutex> lock(watch_mu);
    if (w->stop) return false;
    const Revision head = HeaderRevision(res);
    bool events = false;
    if (JBool(res, "created") && !created) {
      created = true;
      w->live = true;
      // Past events (head >= start) come from etcd's 100 ms background sync.
      w->synced_at = NowMs() + (head >= start ? kHistorySyncMs : 0);
    } else if (const Revision c = JInt(res, "compact_revision"); c > 0) {
      w->compacted = std::max(w->compacted, c);
      compacted = true;
    } else if (auto ev = res.find("events"); ev != res.end() && ev->is_array() && !ev->empty()) {
      events = true;
      for (const auto& e : *ev) {
        Revision r = 0;
        if (auto kv = e.find("kv"); kv != e.end()) r = JInt(*kv, "mod_revision");
        w->latest = std::max(w->latest, r != 0 ? r : head);
      }
    } else if (JBool(res, "canceled")) {
      failure = CallError{
          Error(ErrorCode::kUnavailable, "etcd watch canceled: " + JStr(res, "cancel_reason")),
          Scope::kEndpoint};
    } else if (!events && head > 0) {
      // A progress notification: every event up to head has been delivered.
      w->progress = std::max(w->progress, head);
    }
    ++w->version;
    watch_cv.notify_all();
    return !compacted && !failure;
  };

  httplib::Request req;
  req.method = "POST";
  req.path = "/v3/watch";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  // gRPC metadata "hasleader": etcd ends the stream when its member loses the
  // raft leader, so a partitioned member's silence is not taken for "no change".
  req.set_header("Grpc-Metadata-hasleader", "true");
  req.response_handler = [&](const httplib::Response& res) {
    status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
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
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  client->send(req, res, err);
  if (!compacted && !failure && !Trim(buffer).empty())
    handle(buffer);  // an unterminated last message
  {
    std::lock_guard<std::mutex> lock(watch_mu);
    w->client = nullptr;
    if (w->live) {
      w->live = false;
      ++w->version;
      watch_cv.notify_all();
    }
  }
  if (compacted) return true;
  if (failure) {
    *error = failure->error;
    return created;
  }
  if (created) return true;  // ended after it was open (silence, a kick): reopen
  if (err == httplib::Error::Success || err == httplib::Error::Canceled) {
    *error = status != 200 && status != 0
                 ? MapEtcdError(endpoints[ep], status, 0, "HTTP " + std::to_string(status)).error
                 : Error(ErrorCode::kUnavailable, "etcd " + endpoints[ep] + " closed the watch");
  } else {
    *error = TransportError(ep, err, started, kWatchSilenceMs).error;
  }
  return false;
}

// The thread of one watcher: keeps a stream open until w->stop.
void EtcdDcs::Impl::WatchLoop(Watcher* w) {
  const size_t n = endpoints.size();
  size_t ep = Preferred();
  size_t refused = 0;
  MonoMs pause = kWatchRetryMinMs;
  while (true) {
    Revision start = 0;
    {
      std::lock_guard<std::mutex> lock(watch_mu);
      if (w->stop) break;
      start = std::max({w->from, w->latest + 1, w->progress + 1, w->compacted});
    }
    Error error(ErrorCode::kUnavailable, "");
    const bool opened = RunWatchStream(w, ep, start, &error);
    std::unique_lock<std::mutex> lock(watch_mu);
    if (w->stop) break;
    if (opened) {
      refused = 0;
      pause = kWatchRetryMinMs;
      if (!error.message().empty()) {
        TLOG(Debug, "dcs") << "etcd watch of " << w->prefix << " ended: " << error.ToString();
        // The stream broke with an error: not again at once on the same endpoint.
        clock.WaitUntil(lock, watch_cv, NowMs() + kWatchRetryMinMs, [&] { return w->stop; });
      }
      lock.unlock();
      ep = Preferred();
      continue;
    }
    TLOG(Debug, "dcs") << "etcd watch of " << w->prefix << " failed on " << endpoints[ep] << ": "
                       << error.ToString();
    ep = (ep + 1) % n;
    if (++refused < n) continue;
    // Every endpoint refused: tell the waiters, pause, start over.
    refused = 0;
    ++w->failures;
    w->last_error =
        n > 1 && error.code() == ErrorCode::kUnavailable
            ? Error(ErrorCode::kUnavailable, "no etcd endpoint answered (" + Join(endpoints, ", ") +
                                                 "); last: " + error.message())
            : error;
    ++w->version;
    watch_cv.notify_all();
    clock.WaitUntil(lock, watch_cv, NowMs() + pause, [&] { return w->stop; });
    pause = std::min(2 * pause, kWatchRetryMaxMs);
    lock.unlock();
    ep = Preferred();
  }
  std::lock_guard<std::mutex> lock(watch_mu);
  w->done = true;
  watch_cv.notify_all();
}

void EtcdDcs::Impl::StopWatcher(const std::shared_ptr<Watcher>& w) {
  std::unique_lock<std::mutex> lock(watch_mu);
  w->stop = true;
  watch_cv.notify_all();
  while (!w->done) {
    // Again until it ends: a stop() before the stream's socket opened is lost.
    if (w->client != nullptr) w->client->stop();
    clock.WaitUntil(lock, watch_cv, NowMs() + 20, [&] { return w->done; });
  }
  lock.unlock();
  if (w->thread.joinable()) w->thread.join();
}

// The watcher of prefix that covers `from` (requires watch_mu); a new one when
// there is none or it started later. Watchers to stop go to *retired.
std::shared_ptr<EtcdDcs::Impl::Watcher> EtcdDcs::Impl::WatcherFor(
    const std::string& prefix, Revision from, std::vector<std::shared_ptr<Watcher>>* retired) {
  for (auto it = watchers.begin(); it != watchers.end(); ++it) {
    if ((*it)->prefix != prefix) continue;
    if ((*it)->from <= from) return *it;
    retired->push_back(*it);  // it cannot tell about revisions before its start
    watchers.erase(it);
    break;
  }
  if (watchers.size() >= kMaxWatchers) {
    auto lru = watchers.end();
    for (auto it = watchers.begin(); it != watchers.end(); ++it) {
      if ((*it)->waiting == 0 && (lru == watchers.end() || (*it)->last_used < (*lru)->last_used))
        lru = it;
    }
    if (lru != watchers.end()) {
      retired->push_back(*lru);
      watchers.erase(lru);
    }
  }
  auto w = std::make_shared<Watcher>();
  w->prefix = prefix;
  w->from = from;
  w->last_used = NowMs();
  Watcher* raw = w.get();
  w->thread = std::thread([this, raw] { WatchLoop(raw); });
  watchers.push_back(w);
  return w;
}

Result<bool> EtcdDcs::Impl::WaitForChange(const std::string& prefix, Revision after,
                                          int64_t timeout_ms) {
  if (!config_error.empty()) return Error(ErrorCode::kInvalidArgument, config_error);
  const MonoMs deadline = NowMs() + std::max<int64_t>(timeout_ms, 0);
  const Revision from = std::max<Revision>(after + 1, 1);
  std::vector<std::shared_ptr<Watcher>> retired;
  std::shared_ptr<Watcher> w;
  {
    std::lock_guard<std::mutex> lock(watch_mu);
    w = WatcherFor(prefix, from, &retired);
    ++w->waiting;
  }
  for (auto& r : retired) StopWatcher(r);
  // A stream no endpoint accepts reports within the connect timeouts; one that
  // opens but never answers (a hung member) is given this long.
  const MonoMs give_up =
      deadline + kHistorySyncMs +
      static_cast<int64_t>(endpoints.size()) * (opts.connect_timeout_ms + opts.request_timeout_ms);
  std::unique_lock<std::mutex> lock(watch_mu);
  const uint64_t failures = w->failures;
  Result<bool> out = false;
  while (true) {
    if (w->latest > after || w->compacted > from) {
      out = true;  // an event, or lost history: something changed
      break;
    }
    if (w->failures != failures) {
      out = w->last_error;
      break;
    }
    const MonoMs now = NowMs();
    if (now >= deadline && ((w->live && now >= w->synced_at) || w->stop)) break;
    if (now >= give_up) {
      out = Error(ErrorCode::kTimeout, "etcd did not open the watch of " + prefix + " in time");
      break;
    }
    const MonoMs wake = w->live ? std::max(deadline, w->synced_at) : give_up;
    const uint64_t seen = w->version;
    clock.WaitUntil(lock, watch_cv, wake, [&] { return w->version != seen; });
  }
  --w->waiting;
  w->last_used = NowMs();
  return out;
}

Result<bool> EtcdDcs::WaitForChange(const std::string& prefix, Revision after_revision,
                                    int64_t timeout_ms) {
  return impl_->WaitForChange(prefix, after_revision, timeout_ms);
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
  // The watch streams reopen with the new files.
  impl_->KickWatchers();
  // The idle connections are closed here, outside the lock.
}

Status EtcdDcs::MemberRemove(uint64_t id) {
  json req;
  req["ID"] = std::to_string(id);
  auto r = impl_->Call("/v3/cluster/member/remove", req, Kind::kWrite);
  if (!r) return r.error();
  return Ok();
}

}  // namespace tandem::dcs
