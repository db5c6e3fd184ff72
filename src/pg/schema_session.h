// One session of the schema runner (issue 15, docs/schema-upgrades.md) on the
// local primary: a libpq connection to the database being migrated, the
// history table tandem.schema_history (created when missing, read), the
// advisory lock against a concurrent runner, one migration applied with its
// history row in one transaction (or, for a non-transactional file, its
// statements alone and the row after), and the replicas' replay positions.
//
// Threads: one thread uses a session (the agent's schema worker); Cancel may
// be called from any other thread. Time: durations and the --timeout budget
// through the Clock given to Open.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "core/schema_plan.h"
#include "pg/libpq_conn.h"
#include "pg/types.h"

namespace tandem::pg {

// How a migration failed (beyond Apply's Error, whose message says it all).
struct MigrationFailure {
  int line = 0;              // the file's line of the failing statement (0: none)
  bool sql_error = false;    // PostgreSQL refused a statement: the run stops, Failed
  bool timed_out = false;    // --timeout: cancelled and rolled back
  bool interrupted = false;  // the connection was lost or Cancel was called: retry later
};

struct AppliedMigration {
  uint64_t commit_lsn = 0;  // the primary's WAL position after the commit
  int64_t duration_ms = 0;
  bool already_applied = false;  // the history had it (a run resumed after a lost commit)
};

class SchemaSession {
 public:
  // Connects to `database` on the local server as the superuser. A database
  // that does not exist is kNotFound naming it; a server that does not
  // answer kUnavailable.
  static Result<std::unique_ptr<SchemaSession>> Open(const Paths& paths, const Settings& settings,
                                                     const std::string& database,
                                                     const Clock& clock);

  // Whether tandem.schema_history exists; its rows, ascending (none when absent).
  Result<std::vector<core::HistoryRow>> ReadHistory();
  // CREATE SCHEMA / TABLE IF NOT EXISTS.
  Status EnsureHistoryTable();
  // pg_try_advisory_lock: kConflict when another session holds it.
  Status TryLock();
  // Applies `m` (statements one at a time, the history row in the same
  // transaction; a non-transactional file alone, its row after: success =
  // false when it failed). timeout_ms bounds the whole migration (0 = none).
  // On an error *why says what kind.
  Result<AppliedMigration> Apply(const core::Migration& m, const std::string& node,
                                 int64_t timeout_ms, MigrationFailure* why);
  // The replicas' replay positions (pg_stat_replication), and this server's
  // current WAL position.
  Result<std::vector<ReplicaStat>> Replicas();
  // Cancels the statement in flight (any thread); Apply then reports
  // interrupted.
  void Cancel();

 private:
  SchemaSession(PgConn conn, const Clock& clock) : conn_(std::move(conn)), clock_(clock) {}
  // BEGIN and the history's look: nullopt when `m` is applied already
  // (rolled back), else the row count before it (a non-transactional file:
  // its failed row removed, no transaction left open).
  Result<std::optional<std::string>> Begin(const core::Migration& m, MigrationFailure* why);
  Status RunStatements(const core::Migration& m, int64_t deadline, bool in_txn,
                       MigrationFailure* why);
  Status ExecOne(const core::Statement& s, const core::Migration& m, int64_t deadline, bool in_txn,
                 MigrationFailure* why);

  PgConn conn_;
  const Clock& clock_;
  std::mutex cancel_mu_;
  bool cancelled_ = false;  // under cancel_mu_
};

}  // namespace tandem::pg
