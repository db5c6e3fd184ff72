// Internal to the etcd client: EtcdDcs::Impl, shared by etcd_dcs.cc (unary
// calls over the pooled keep-alive connections) and etcd_watch.cc (the watch
// streams). Not an API.
#pragma once

// Debian's httplib is a compiled library built with OpenSSL, zlib and brotli;
// the header must see the same options (CMake passes them from pkg-config
// cpp-httplib to every target that links it) or the class layouts differ.
#if !defined(CPPHTTPLIB_OPENSSL_SUPPORT) || !defined(CPPHTTPLIB_ZLIB_SUPPORT) || \
    !defined(CPPHTTPLIB_BROTLI_SUPPORT)
#error "build with the cpp-httplib pkg-config flags (CMakeLists.txt links PkgConfig::HTTPLIB)"
#endif
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/log.h"
#include "base/strings.h"
#include "dcs/etcd_dcs.h"
#include "dcs/etcd_wire.h"

namespace tandem::dcs {

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

enum class Kind { kRead, kWrite };

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
    // A copy of the prefix (ReadPrefix), kept by this stream's events.
    struct Copy {
      bool kept = false;   // ReadPrefix asked for one: never retired as idle
      bool valid = false;  // seeded by a read, and every event since applied
      std::map<std::string, KeyValue> kvs;
      Revision revision = 0;    // the copy is the prefix exactly as of this revision
      MonoMs confirmed_at = 0;  // when a linearizable read last seeded or matched it
    } copy;
  };

  const Clock& clock;
  EtcdOptions opts;
  std::vector<std::string> endpoints;  // normalized
  std::string config_error;            // non-empty: every call fails with it

  std::mutex mu;
  size_t preferred = 0;
  std::vector<std::vector<Idle>> pool;
  uint64_t generation = 0;  // ResetConnections increments it

  // The newest store revision any answer to a key call has shown this client
  // (its own writes among them): a watched copy older than this is not served.
  std::atomic<Revision> seen_revision{0};
  std::atomic<uint64_t> copy_served{0}, copy_reads{0};  // EtcdDcs::copy_stats

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
  // The watched copies (etcd_watched_copy.cc). ApplyToCopy requires watch_mu.
  void ApplyToCopy(Watcher* w, const json& response);
  // Following: seeded, its stream open and synced, confirmed within
  // max_age_ms. Servable: following and holding every revision seen.
  bool CopyFollowing(const Watcher& w, MonoMs now, int64_t max_age_ms) const;
  bool CopyServable(const Watcher& w, MonoMs now, int64_t max_age_ms) const;
  static RangeResult CopyOut(const Watcher& w);
  Result<RangeResult> ReadPrefix(const std::string& prefix, int64_t max_age_ms);
  void NoteSeen(Revision r) {
    Revision cur = seen_revision.load();
    while (r > cur && !seen_revision.compare_exchange_weak(cur, r)) {
    }
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

  // read_ms: the read timeout of each attempt; 0 = opts.request_timeout_ms.
  Result<json> Call(const std::string& path, const json& request, Kind kind, int64_t read_ms = 0) {
    if (read_ms <= 0) read_ms = opts.request_timeout_ms;
    if (!config_error.empty()) return Error(ErrorCode::kInvalidArgument, config_error);
    const std::string body = request.dump();
    const size_t n = endpoints.size();
    const size_t start = Preferred();
    std::optional<Error> last;
    for (size_t i = 0; i < n; ++i) {
      const size_t ep = (start + i) % n;
      CallError failure{Error(ErrorCode::kInternal, ""), Scope::kFinal};
      auto r = CallOne(ep, path, body, kind, &failure, read_ms);
      if (r.ok()) {
        if (ep != start) SetPreferred(ep);
        if (StartsWith(path, "/v3/kv/")) NoteSeen(HeaderRevision(*r));
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

}  // namespace tandem::dcs
