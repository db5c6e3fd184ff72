// Kept libpq connections to the local server (one pool per purpose), so an
// idle agent does not open a new connection for every query.
//
// A pool hands each caller a connection of its own: the HA loop and the API's
// health reads can query at once (each ends up with its own kept connection),
// and nobody waits for anybody else's statement. A connection goes back to
// the pool only when it is still usable (PgConn::Reusable): no transaction
// open, nothing sent by the server while idle. A server that stops, restarts
// or crashes closes its sessions, so the next query notices before it sends
// anything, drops the dead connection and connects again; a connection that
// breaks while in use is dropped, and Run connects once more and retries when
// the caller said the work may be repeated. Connection errors come back as
// PgConn reports them (kUnavailable "cannot connect to ..."): a server that
// is down is never hidden.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "pg/libpq_conn.h"

namespace tandem::pg {

class ConnPool {
 public:
  using Params = std::map<std::string, std::string>;

  // At most `max_idle` connections are kept.
  explicit ConnPool(size_t max_idle = 2) : max_idle_(max_idle) {}

  // Whether Run may repeat `work` on a fresh connection when a kept one turns
  // out to be broken. Only for work that does no harm when done twice.
  enum class Retry { kNo, kOnce };

  // Runs work(conn) on a kept connection made with `params` (a new one when
  // none is idle, or when the kept ones were made with other params: the
  // port or socket changed). `what` names the server in connection errors.
  Status Run(const Params& params, const std::string& what, Retry retry,
             const std::function<Status(PgConn&)>& work);

  // Drops every idle connection (after Stop, Start, Promote: their sessions
  // are gone or about to be).
  void Clear();

  // For tests: how many connections are kept idle, and how many were opened.
  size_t idle() const;
  size_t opened() const;

 private:
  // An idle connection made with `key`, or nullopt.
  std::optional<PgConn> Take(const std::string& key);
  void Give(const std::string& key, PgConn conn);

  const size_t max_idle_;
  mutable std::mutex mu_;
  std::vector<std::pair<std::string, PgConn>> idle_;
  size_t opened_ = 0;
};

}  // namespace tandem::pg
