// The schema runner's session on the local primary: the history table, the
// advisory lock, one migration and its row, the replicas' replay positions
// (see schema_session.h). Errors carry the file, the statement's line and
// PostgreSQL's message, never the SQL itself.
#include "pg/schema_session.h"

#include <libpq-fe.h>

#include "base/strings.h"
#include "pg/internal.h"

namespace tandem::pg {
namespace {

// The advisory lock of the schema runner: "tandem" in ASCII.
constexpr const char* kLockKey = "127978561037677";

std::string OneLine(const char* msg) {
  std::string s = msg ? msg : "";
  for (auto& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return Trim(s);
}

int64_t ToInt(const std::string& s) {
  try {
    return std::stoll(s);
  } catch (...) {
    return 0;
  }
}

}  // namespace

Result<std::unique_ptr<SchemaSession>> SchemaSession::Open(const Paths& paths,
                                                           const Settings& settings,
                                                           const std::string& database,
                                                           const Clock& clock) {
  auto params = internal::LocalParams(paths, settings, 5, 0);
  params["dbname"] = database;
  params["application_name"] = "tandem-schema";
  auto conn = PgConn::Connect(params, internal::LocalName(paths, settings));
  if (!conn) {
    if (conn.error().message().find("does not exist") != std::string::npos) {
      return Error(ErrorCode::kNotFound, "database '" + database +
                                             "' does not exist; create it first or name "
                                             "another with --database");
    }
    return conn.error();
  }
  // The server's notices (CREATE ... IF NOT EXISTS skipping) are not the agent's output.
  PQsetNoticeProcessor(
      conn->raw(), [](void*, const char*) {}, nullptr);
  return std::unique_ptr<SchemaSession>(new SchemaSession(std::move(*conn), clock));
}

Result<std::vector<core::HistoryRow>> SchemaSession::ReadHistory() {
  auto exists = conn_.Exec("SELECT to_regclass('tandem.schema_history') IS NOT NULL",
                           "looking for tandem.schema_history");
  if (!exists) return exists.error();
  std::vector<core::HistoryRow> rows;
  if (exists->Get(0, 0) != "t") return rows;
  auto r = conn_.Exec(
      "SELECT version, description, sha256, applied_at::text, applied_by, duration_ms, success "
      "FROM tandem.schema_history ORDER BY version",
      "reading tandem.schema_history");
  if (!r) return r.error();
  for (int i = 0; i < r->rows(); ++i) {
    core::HistoryRow h;
    h.version = static_cast<uint64_t>(ToInt(r->Get(i, 0)));
    h.description = r->Get(i, 1);
    h.sha256 = r->Get(i, 2);
    h.applied_at = r->Get(i, 3);
    h.applied_by = r->Get(i, 4);
    h.duration_ms = ToInt(r->Get(i, 5));
    h.success = r->Get(i, 6) == "t";
    rows.push_back(std::move(h));
  }
  return rows;
}

Status SchemaSession::EnsureHistoryTable() {
  auto r = conn_.Exec(
      "CREATE SCHEMA IF NOT EXISTS tandem; "
      "CREATE TABLE IF NOT EXISTS tandem.schema_history ("
      " version bigint PRIMARY KEY, description text NOT NULL, sha256 text NOT NULL,"
      " applied_at timestamptz NOT NULL DEFAULT now(), applied_by text NOT NULL,"
      " duration_ms bigint NOT NULL, success boolean NOT NULL)",
      "creating tandem.schema_history");
  if (!r) return r.error();
  return Ok();
}

Status SchemaSession::TryLock() {
  auto r = conn_.Exec(std::string("SELECT pg_try_advisory_lock(") + kLockKey + ")",
                      "taking the schema runner's advisory lock");
  if (!r) return r.error();
  if (r->Get(0, 0) != "t") {
    return Error(ErrorCode::kConflict,
                 "another session holds the schema runner's advisory lock (another run?)");
  }
  return Ok();
}

Status SchemaSession::ExecOne(const core::Statement& s, const core::Migration& m, int64_t deadline,
                              bool in_txn, MigrationFailure* why) {
  if (deadline > 0) {
    const int64_t left = deadline - clock_.Now();
    if (left <= 0) {
      why->timed_out = true;
      why->line = s.line;
      return Error(ErrorCode::kTimeout, m.file + " line " + std::to_string(s.line) +
                                            ": the migration ran past its --timeout");
    }
    const std::string set =
        std::string(in_txn ? "SET LOCAL" : "SET") + " statement_timeout = " + std::to_string(left);
    auto r = conn_.Exec(set, "setting statement_timeout");
    if (!r) {
      why->interrupted = true;
      return r.error();
    }
  }
  PGresult* res = PQexec(conn_.raw(), s.sql.c_str());
  PgResult holder(res);
  const auto st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) return Ok();
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  const std::string sqlstate = state ? state : "";
  const char* primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  const char* pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : nullptr;
  why->line = s.line;
  if (pos != nullptr) {
    why->line = s.first_line + core::LineOfPosition(s.sql, static_cast<int>(ToInt(pos))) - 1;
  }
  std::string msg = primary ? OneLine(primary) : OneLine(PQerrorMessage(conn_.raw()));
  const std::string where = m.file + " line " + std::to_string(why->line) + ": ";
  bool cancelled;
  {
    std::lock_guard<std::mutex> lock(cancel_mu_);
    cancelled = cancelled_;
  }
  if (PQstatus(conn_.raw()) != CONNECTION_OK || StartsWith(sqlstate, "08") ||
      StartsWith(sqlstate, "57P") || (sqlstate == "57014" && cancelled)) {
    why->interrupted = true;
    return Error(ErrorCode::kUnavailable, where + "interrupted: " + msg);
  }
  if (sqlstate == "57014") {
    why->timed_out = true;
    return Error(ErrorCode::kTimeout,
                 where + "cancelled after the --timeout, rolled back (" + msg + ")");
  }
  why->sql_error = true;
  return Error(ErrorCode::kFailedPrecondition, where + "ERROR: " + msg);
}

Status SchemaSession::RunStatements(const core::Migration& m, int64_t deadline, bool in_txn,
                                    MigrationFailure* why) {
  for (const auto& s : core::SplitStatements(m.sql)) {
    TANDEM_TRY(ExecOne(s, m, deadline, in_txn, why));
  }
  return Ok();
}

Result<std::optional<std::string>> SchemaSession::Begin(const core::Migration& m,
                                                        MigrationFailure* why) {
  const std::string v = std::to_string(m.version);
  auto lost = [&](const Error& e) -> Error {
    why->interrupted = true;
    return e;
  };
  auto begin = conn_.Exec("BEGIN", "starting the migration's transaction");
  if (!begin) return lost(begin.error());
  // The row commits with the migration: a run resumed after a lost commit
  // finds it here and applies nothing twice.
  auto seen = conn_.ExecParams(
      "SELECT count(*), count(*) FILTER (WHERE version = $1 AND success) "
      "FROM tandem.schema_history",
      {v}, "reading tandem.schema_history");
  if (!seen) return lost(seen.error());
  if (seen->Get(0, 1) != "0") {
    (void)conn_.Exec("ROLLBACK", "rollback");
    return std::optional<std::string>();
  }
  if (!m.transactional) {
    auto end = conn_.Exec("COMMIT", "ending the check");
    if (!end) return lost(end.error());
    auto del = conn_.ExecParams("DELETE FROM tandem.schema_history WHERE version = $1", {v},
                                "removing the failed attempt's row");
    if (!del) return lost(del.error());
  }
  return std::optional<std::string>(seen->Get(0, 0));
}

Result<AppliedMigration> SchemaSession::Apply(const core::Migration& m, const std::string& node,
                                              int64_t timeout_ms, MigrationFailure* why) {
  const MonoMs began = clock_.Now();
  const int64_t deadline = timeout_ms > 0 ? began + timeout_ms : 0;
  const std::string v = std::to_string(m.version);
  auto lost = [&](const Error& e) -> Error {
    why->interrupted = true;
    return e;
  };
  AppliedMigration out;
  auto rows = Begin(m, why);
  if (!rows) return rows.error();
  if (!rows->has_value()) {
    out.already_applied = true;
    return out;
  }
  const std::string rows_before = **rows;
  Status st = RunStatements(m, deadline, m.transactional, why);
  if (st.ok() && m.transactional) {
    auto after =
        conn_.Exec("SELECT count(*) FROM tandem.schema_history", "checking tandem.schema_history");
    if (!after) {
      st = after.error();
    } else if (after->Get(0, 0) != rows_before) {
      why->sql_error = true;
      st = Error(ErrorCode::kFailedPrecondition,
                 m.file +
                     ": the migration changed tandem.schema_history, which only Tandem "
                     "writes; rolled back");
    }
  }
  if (!st.ok() && m.transactional) {
    (void)conn_.Exec("ROLLBACK", "rolling the migration back");
    return st.error();
  }
  const int64_t ms = clock_.Now() - began;
  auto row = conn_.ExecParams(
      "INSERT INTO tandem.schema_history (version, description, sha256, applied_by, "
      "duration_ms, success) VALUES ($1, $2, $3, $4, $5, $6)",
      {v, m.description, m.sha256, node, std::to_string(ms), st.ok() ? "true" : "false"},
      "recording the migration in tandem.schema_history");
  if (!row) return lost(row.error());
  if (m.transactional) {
    auto commit = conn_.Exec("COMMIT", "committing the migration");
    if (!commit) return lost(commit.error());
  }
  if (!st.ok()) return st.error();
  auto lsn = conn_.Exec("SELECT pg_current_wal_lsn()::text", "reading the commit position");
  if (!lsn) return lost(lsn.error());
  out.commit_lsn = ParseLsn(lsn->Get(0, 0)).value_or(0);
  out.duration_ms = ms;
  return out;
}

Result<std::vector<ReplicaStat>> SchemaSession::Replicas() {
  auto r = conn_.Exec(
      "SELECT application_name, state, sync_state, coalesce(flush_lsn::text, '0/0'), "
      "coalesce(replay_lsn::text, '0/0') FROM pg_stat_replication",
      "reading pg_stat_replication");
  if (!r) return r.error();
  std::vector<ReplicaStat> out;
  for (int i = 0; i < r->rows(); ++i) {
    ReplicaStat s;
    s.application_name = r->Get(i, 0);
    s.state = r->Get(i, 1);
    s.sync_state = r->Get(i, 2);
    s.flush_lsn = ParseLsn(r->Get(i, 3)).value_or(0);
    s.replay_lsn = ParseLsn(r->Get(i, 4)).value_or(0);
    out.push_back(std::move(s));
  }
  return out;
}

void SchemaSession::Cancel() {
  {
    std::lock_guard<std::mutex> lock(cancel_mu_);
    cancelled_ = true;
  }
  PGcancel* c = PQgetCancel(conn_.raw());
  if (c == nullptr) return;
  char err[256];
  (void)PQcancel(c, err, sizeof err);
  PQfreeCancel(c);
}

}  // namespace tandem::pg
