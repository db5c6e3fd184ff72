// EtcdDcs::ReadPrefix: a copy of a prefix kept current by that prefix's watch
// stream, served instead of a linearizable read while it is known complete
// (contract in dcs.h; the argument in docs/design/watched-view.md).
//
// The copy lives in the Watcher (etcd_impl.h) and is guarded by watch_mu:
// ApplyToCopy runs on the stream's thread for every message with events or a
// progress notification; ReadPrefix runs on any caller's thread.

#include <algorithm>

#include "dcs/etcd_impl.h"

namespace tandem::dcs {

namespace {

// After one of this client's own writes, the stream delivers the event within
// a few milliseconds; a copy still behind after this long is not waited for
// (the call reads instead).
constexpr MonoMs kOwnWriteWaitMs = 20;

}  // namespace

RangeResult EtcdDcs::Impl::CopyOut(const Watcher& w) {
  RangeResult out;
  out.revision = w.copy.revision;
  out.kvs.reserve(w.copy.kvs.size());
  for (const auto& [key, kv] : w.copy.kvs) out.kvs.push_back(kv);  // sorted by key
  return out;
}

void EtcdDcs::Impl::ApplyToCopy(Watcher* w, const json& response) {
  Watcher::Copy& c = w->copy;
  if (!c.valid) return;
  Revision newest = c.revision;
  if (auto ev = response.find("events"); ev != response.end() && ev->is_array()) {
    for (const auto& e : *ev) {
      auto kvj = e.find("kv");
      if (kvj == e.end()) continue;
      auto kv = ParseKv(*kvj);
      if (!kv) {
        // Not understood: the copy can no longer be trusted to follow.
        TLOG(Warn, "dcs") << "etcd watch of " << w->prefix
                          << " sent an event the copy cannot apply: " << kv.error().message();
        c.valid = false;
        return;
      }
      // An event at or below the copy's revision is already in it: a
      // reopened stream delivers again from after its last event, and a
      // reseed may have read past the stream.
      if (kv->mod_revision <= c.revision) continue;
      newest = std::max(newest, kv->mod_revision);
      if (JStr(e, "type") == "DELETE") {
        c.kvs.erase(kv->key);
      } else {
        std::string key = kv->key;
        c.kvs[key] = std::move(*kv);
      }
    }
  } else {
    // A progress notification: every event up to its revision was delivered.
    newest = std::max(newest, HeaderRevision(response));
  }
  // etcd sends the events of one revision (one transaction) in one message,
  // so after a message the copy is whole as of its newest revision.
  c.revision = newest;
}

bool EtcdDcs::Impl::CopyFollowing(const Watcher& w, MonoMs now, int64_t max_age_ms) const {
  const Watcher::Copy& c = w.copy;
  return c.valid && w.live && now >= w.synced_at && now - c.confirmed_at <= max_age_ms;
}

bool EtcdDcs::Impl::CopyServable(const Watcher& w, MonoMs now, int64_t max_age_ms) const {
  return CopyFollowing(w, now, max_age_ms) && w.copy.revision >= seen_revision.load();
}

Result<RangeResult> EtcdDcs::Impl::ReadPrefix(const std::string& prefix, int64_t max_age_ms) {
  if (!config_error.empty()) return Error(ErrorCode::kInvalidArgument, config_error);
  {
    std::unique_lock<std::mutex> lock(watch_mu);
    for (size_t i = 0; i < watchers.size(); ++i) {
      const std::shared_ptr<Watcher> w = watchers[i];  // owned here: the wait below unlocks
      if (w->prefix != prefix || !w->copy.kept) continue;
      const MonoMs now = NowMs();
      if (!CopyServable(*w, now, max_age_ms) && CopyFollowing(*w, now, max_age_ms)) {
        // Only a revision this client has seen is missing (its own write, an
        // event on another stream): the stream is about to deliver it.
        clock.WaitUntil(lock, watch_cv, now + kOwnWriteWaitMs,
                        [&] { return CopyServable(*w, NowMs(), max_age_ms); });
      }
      if (CopyServable(*w, NowMs(), max_age_ms)) {
        ++copy_served;
        return CopyOut(*w);
      }
      break;
    }
  }
  // Read, and (re)seed the copy from the read.
  ++copy_reads;
  const MonoMs sent = NowMs();
  auto r = Call("/v3/kv/range", KeyRange(prefix), Kind::kRead);
  if (!r) return r.error();
  auto parsed = ParseRange(*r);
  if (!parsed) return parsed.error();
  RangeResult read = std::move(*parsed);
  std::vector<std::shared_ptr<Watcher>> retired;
  {
    std::lock_guard<std::mutex> lock(watch_mu);
    // The stream must cover every revision after the read.
    std::shared_ptr<Watcher> w = WatcherFor(prefix, read.revision + 1, &retired);
    Watcher::Copy& c = w->copy;
    c.kept = true;
    if (!c.valid && w->latest > read.revision) {
      // The stream delivered events after this read while no copy was kept:
      // they were not applied, and it will not send them again. Seed from a
      // later read (the next call) instead of missing them.
    } else if (!c.valid || read.revision >= c.revision) {
      if (c.valid && read.revision == c.revision) {
        // Both are the prefix as of one revision: they must agree.
        bool same = c.kvs.size() == read.kvs.size();
        for (size_t i = 0; same && i < read.kvs.size(); ++i) {
          auto it = c.kvs.find(read.kvs[i].key);
          same = it != c.kvs.end() && it->second.mod_revision == read.kvs[i].mod_revision;
        }
        if (!same) {
          TLOG(Warn, "dcs") << "the watched copy of " << prefix << " at revision " << c.revision
                            << " differed from a read at the same revision; reseeded";
        }
      }
      c.kvs.clear();
      for (const auto& kv : read.kvs) c.kvs[kv.key] = kv;
      c.revision = read.revision;
      c.valid = true;
    }
    // Else the stream already delivered past the read: the copy is newer and,
    // its events being contiguous since its seed, as complete.
    if (c.valid) c.confirmed_at = sent;
  }
  for (auto& old : retired) StopWatcher(old);
  return read;
}

Result<RangeResult> EtcdDcs::ReadPrefix(const std::string& prefix, int64_t max_age_ms) {
  return impl_->ReadPrefix(prefix, max_age_ms);
}

EtcdDcs::CopyStats EtcdDcs::copy_stats() const {
  return {impl_->copy_served.load(), impl_->copy_reads.load()};
}

}  // namespace tandem::dcs
