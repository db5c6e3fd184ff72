// EtcdDcs's watch streams: one long-lived /v3/watch stream per watched
// prefix, on a thread of its own, and WaitForChange answering from it
// (contract in etcd_dcs.h, the design in docs/design/etcd-member.md).

#include <algorithm>

#include "base/thread_name.h"
#include "dcs/etcd_impl.h"

namespace tandem::dcs {

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
    if (JBool(res, "created") && !created) {
      created = true;
      w->live = true;
      // Past events (head >= start) come from etcd's 100 ms background sync.
      w->synced_at = NowMs() + (head >= start ? kHistorySyncMs : 0);
    } else if (const Revision c = JInt(res, "compact_revision"); c > 0) {
      w->compacted = std::max(w->compacted, c);
      w->copy.valid = false;  // events were lost: the copy can no longer follow
      compacted = true;
    } else if (auto ev = res.find("events"); ev != res.end() && ev->is_array() && !ev->empty()) {
      ApplyToCopy(w, res);
      for (const auto& e : *ev) {
        Revision r = 0;
        if (auto kv = e.find("kv"); kv != e.end()) r = JInt(*kv, "mod_revision");
        w->latest = std::max(w->latest, r != 0 ? r : head);
        // A watched copy older than an event this client has seen on any
        // stream is not served (a wake-up by one stream must not meet a
        // copy that lags on another).
        NoteSeen(r != 0 ? r : head);
      }
    } else if (JBool(res, "canceled")) {
      failure = CallError{
          Error(ErrorCode::kUnavailable, "etcd watch canceled: " + JStr(res, "cancel_reason")),
          Scope::kEndpoint};
    } else if (head > 0) {
      // A progress notification: every event up to head has been delivered.
      w->progress = std::max(w->progress, head);
      ApplyToCopy(w, res);
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
      if ((*it)->waiting == 0 && !(*it)->copy.kept &&
          (lru == watchers.end() || (*it)->last_used < (*lru)->last_used))
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
  w->thread = std::thread([this, raw] {
    NameThisThread("etcd-watch");
    WatchLoop(raw);
  });
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

}  // namespace tandem::dcs
