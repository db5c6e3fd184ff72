// Kept connections to the local server (see local_conn.h).
#include "pg/local_conn.h"

#include <optional>

namespace tandem::pg {
namespace {

std::string KeyOf(const ConnPool::Params& params) {
  std::string key;
  for (const auto& [k, v] : params) key += k + "\x1f" + v + "\x1e";
  return key;
}

}  // namespace

std::optional<PgConn> ConnPool::Take(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < idle_.size();) {
    if (idle_[i].first != key) {
      idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));  // made for other params
      continue;
    }
    PgConn c = std::move(idle_[i].second);
    idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
    if (c.Reusable()) return c;  // else dropped: the server closed it or it is mid-transaction
  }
  return std::nullopt;
}

void ConnPool::Give(const std::string& key, PgConn conn) {
  if (!conn.Reusable()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() >= max_idle_) return;
  idle_.emplace_back(key, std::move(conn));
}

Status ConnPool::Run(const Params& params, const std::string& what, Retry retry,
                     const std::function<Status(PgConn&)>& work) {
  const std::string key = KeyOf(params);
  std::optional<PgConn> conn = Take(key);
  const bool kept = conn.has_value();
  if (!conn) {
    auto fresh = PgConn::Connect(params, what);
    if (!fresh) return fresh.error();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++opened_;
    }
    conn.emplace(std::move(*fresh));
  }
  Status st = work(*conn);
  if (st.ok()) {
    Give(key, std::move(*conn));
    return st;
  }
  // A kept connection that broke under us (the server went away between its
  // last use and now): once more on a new one, when that is harmless.
  const bool broken = st.error().code() == ErrorCode::kUnavailable && !conn->Reusable();
  if (!broken) {
    Give(key, std::move(*conn));  // a statement error: the session itself is fine
    return st;
  }
  conn.reset();
  if (!kept || retry == Retry::kNo) return st;
  auto fresh = PgConn::Connect(params, what);
  if (!fresh) return fresh.error();
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++opened_;
  }
  st = work(*fresh);
  Give(key, std::move(*fresh));
  return st;
}

void ConnPool::Clear() {
  std::vector<std::pair<std::string, PgConn>> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    gone.swap(idle_);
  }
}

size_t ConnPool::idle() const {
  std::lock_guard<std::mutex> lock(mu_);
  return idle_.size();
}

size_t ConnPool::opened() const {
  std::lock_guard<std::mutex> lock(mu_);
  return opened_;
}

}  // namespace tandem::pg
