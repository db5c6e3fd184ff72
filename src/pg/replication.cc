// Queries of the running server over kept local connections (ConnPool):
// its live status (Query), pg_stat_replication, arbitrary SQL, the
// replication user and the replication slots. May run on any thread; each
// caller gets a connection of its own.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/log.h"
#include "base/process.h"
#include "base/strings.h"
#include "pg/conf.h"
#include "pg/internal.h"
#include "pg/libpq_conn.h"
#include "pg/postgres.h"

namespace tandem::pg {

using internal::kMod;
using internal::LocalName;
using internal::LocalParams;

namespace {
uint64_t Lsn(const std::string& s) {
  auto v = ParseLsn(s);
  return v ? *v : 0;
}
}  // namespace

Status Postgres::OnLocal(ConnPool& pool, int statement_timeout_ms, ConnPool::Retry retry,
                         const std::function<Status(PgConn&)>& work) const {
  return pool.Run(LocalParams(paths_, settings_, 2, statement_timeout_ms),
                  LocalName(paths_, settings_), retry, work);
}

void Postgres::ForgetConnections() const {
  quick_.Clear();
  long_.Clear();
}

namespace {
// One round trip per HA cycle: whether the server is in recovery and, in
// the same statement, the positions that role has (CASE evaluates only the
// branch taken, so no primary-only function runs on a standby and back).
// Columns: 0 in recovery; primary: 1 flush LSN, 2 current WAL file; standby:
// 3 receive LSN, 4 replay LSN, 5 checkpoint timeline, 6 receiver status,
// 7 received timeline, 8 sender host, 9 sender port, 10 newest history file's
// timeline.
constexpr const char* kStatusQuery =
    "SELECT s.r::text, "
    "CASE WHEN NOT s.r THEN pg_current_wal_flush_lsn()::text END, "
    "CASE WHEN NOT s.r THEN pg_walfile_name(pg_current_wal_lsn()) END, "
    "CASE WHEN s.r THEN pg_last_wal_receive_lsn()::text END, "
    "CASE WHEN s.r THEN pg_last_wal_replay_lsn()::text END, "
    "CASE WHEN s.r THEN (SELECT timeline_id FROM pg_control_checkpoint())::text END, "
    "w.status, w.received_tli::text, w.sender_host, w.sender_port::text, "
    // The checkpoint's timeline stays stale until the next restartpoint, and
    // received_tli vanishes when the stream stops (the primary died): the
    // newest timeline history file this standby fetched is the timeline it
    // follows.
    "CASE WHEN s.r THEN (SELECT max(('x' || substr(name, 1, 8))::bit(32)::int) "
    " FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{8}\\.history$')::text END "
    "FROM (SELECT pg_is_in_recovery() AS r) AS s LEFT JOIN pg_stat_wal_receiver AS w ON true";

Result<LiveStatus> QueryOn(PgConn* conn) {
  auto r = conn->Exec(kStatusQuery, "status query");
  if (!r) return r.error();
  LiveStatus ls;
  ls.in_recovery = r->Get(0, 0) == "true";
  if (!ls.in_recovery) {
    ls.lsn = Lsn(r->Get(0, 1));
    ls.replay_lsn = ls.lsn;
    auto tli = TimelineFromWalFileName(r->Get(0, 2));
    if (!tli) {
      return Error(ErrorCode::kInternal, "unexpected WAL file name '" + r->Get(0, 2) + "'");
    }
    ls.timeline = *tli;
    return ls;
  }
  uint64_t receive = Lsn(r->Get(0, 3));
  ls.replay_lsn = Lsn(r->Get(0, 4));
  ls.lsn = std::max(receive, ls.replay_lsn);
  auto ck_tli = ParseInt(r->Get(0, 5));
  ls.timeline = ck_tli && *ck_tli > 0 ? static_cast<uint32_t>(*ck_tli) : 0;
  ls.streaming = r->Get(0, 6) == "streaming";
  if (ls.streaming) {
    auto rt = ParseInt(r->Get(0, 7));
    if (rt && *rt > 0) ls.timeline = std::max(ls.timeline, static_cast<uint32_t>(*rt));
  }
  auto hist_tli = ParseInt(r->Get(0, 10));
  if (hist_tli && *hist_tli > 0) {
    ls.timeline = std::max(ls.timeline, static_cast<uint32_t>(*hist_tli));
  }
  ls.sender_host = r->Get(0, 8);
  auto sp = ParseInt(r->Get(0, 9));
  ls.sender_port = sp ? static_cast<int>(*sp) : 0;
  return ls;
}

// A pg_stat_replication row: application_name, state, sync_state,
// flush_lsn, replay_lsn from column `first` on.
ReplicaStat ReplicaStatAt(const PgResult& r, int row, int first) {
  ReplicaStat s;
  s.application_name = r.Get(row, first);
  s.state = r.Get(row, first + 1);
  s.sync_state = r.Get(row, first + 2);
  s.flush_lsn = Lsn(r.Get(row, first + 3));
  s.replay_lsn = Lsn(r.Get(row, first + 4));
  return s;
}

Result<std::vector<ReplicaStat>> ReplicationOn(PgConn* conn) {
  auto r = conn->Exec(
      "SELECT application_name, state, sync_state, flush_lsn::text, replay_lsn::text "
      "FROM pg_stat_replication ORDER BY application_name",
      "pg_stat_replication query");
  if (!r) return r.error();
  std::vector<ReplicaStat> out;
  for (int i = 0; i < r->rows(); ++i) out.push_back(ReplicaStatAt(*r, i, 0));
  return out;
}

// The primary's sync upkeep in one statement, in the order PlanSync needs:
// the primary's flush position before the standbys'. A LEFT JOIN ON true can
// only be a nested loop with p outside (there is no hash or merge key, and a
// nested loop never puts its nullable side outside), so the executor reads
// p's row before it scans pg_stat_replication. Columns: 0 in recovery, 1
// flush LSN (NULL in recovery), 2 synchronous_standby_names, then per
// standby (NULL when none is connected) 3 application_name, 4 state,
// 5 sync_state, 6 flush_lsn, 7 replay_lsn.
constexpr const char* kSyncSnapshotQuery =
    "SELECT p.r::text, p.lsn::text, p.names, s.application_name, s.state, s.sync_state, "
    "s.flush_lsn::text, s.replay_lsn::text "
    "FROM (SELECT pg_is_in_recovery() AS r, "
    "CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_flush_lsn() END AS lsn, "
    "current_setting('synchronous_standby_names') AS names) AS p "
    "LEFT JOIN pg_stat_replication AS s ON true ORDER BY s.application_name";

Result<SyncSnapshot> SyncSnapshotOn(PgConn* conn) {
  auto r = conn->Exec(kSyncSnapshotQuery, "sync snapshot query");
  if (!r) return r.error();
  if (r->rows() == 0) return Error(ErrorCode::kInternal, "the sync snapshot query returned no row");
  SyncSnapshot snap;
  snap.in_recovery = r->Get(0, 0) == "true";
  snap.synchronous_standby_names = r->Get(0, 2);
  if (snap.in_recovery) return snap;
  snap.flush_lsn = Lsn(r->Get(0, 1));
  for (int i = 0; i < r->rows(); ++i) {
    if (r->IsNull(i, 3)) continue;  // the LEFT JOIN's row when no standby is connected
    snap.standbys.push_back(ReplicaStatAt(*r, i, 3));
  }
  return snap;
}

Result<std::vector<std::string>> SqlOn(PgConn* conn, const std::string& sql) {
  auto r = conn->Exec(sql, "SQL statement");
  if (!r) return r.error();
  std::vector<std::string> out;
  if (r->cols() == 0) return out;
  for (int i = 0; i < r->rows(); ++i) out.push_back(r->Get(i, 0));
  return out;
}

Status SyncSlotsOn(PgConn* conn, const std::vector<std::string>& wanted) {
  auto r = conn->Exec("SELECT slot_name, slot_type, active_pid::text FROM pg_replication_slots",
                      "replication slot list");
  if (!r) return r.error();
  std::map<std::string, std::pair<std::string, std::string>> have;  // name -> type, active pid
  for (int i = 0; i < r->rows(); ++i) have[r->Get(i, 0)] = {r->Get(i, 1), r->Get(i, 2)};
  std::optional<Error> first;
  for (const auto& w : wanted) {
    auto it = have.find(w);
    if (it != have.end()) {
      if (it->second.first != "physical") {
        TLOG(Warn, kMod) << "slot " << w << " exists but is " << it->second.first
                         << ", not physical; left alone";
      }
      continue;
    }
    auto c = conn->ExecParams("SELECT pg_create_physical_replication_slot($1, true)", {w},
                              "creating replication slot " + w);
    if (!c) {
      if (!first) first = c.error();
      continue;
    }
    TLOG(Info, kMod) << "created replication slot " << w;
  }
  for (const auto& [name, info] : have) {
    if (!StartsWith(name, "tandem_") || info.first != "physical") continue;
    if (std::find(wanted.begin(), wanted.end(), name) != wanted.end()) continue;
    if (!info.second.empty()) {
      auto t = conn->ExecParams("SELECT pg_terminate_backend($1::int)", {info.second},
                                "terminating the walsender of slot " + name);
      if (!t) {
        TLOG(Warn, kMod) << t.error().message();
      }
    }
    auto d = conn->ExecParams("SELECT pg_drop_replication_slot($1)", {name},
                              "dropping replication slot " + name);
    if (!d) {
      if (!first) {
        first = Error(ErrorCode::kConflict, d.error().message() +
                                                " (the slot is in use; it is dropped on a "
                                                "later pass once its walsender is gone)");
      }
      continue;
    }
    TLOG(Info, kMod) << "dropped replication slot " << name;
  }
  if (first) return *first;
  return Ok();
}

}  // namespace

Result<LiveStatus> Postgres::Query() const {
  return OnLocalResult<LiveStatus>(quick_, 5000, ConnPool::Retry::kOnce, QueryOn);
}

Result<std::vector<ReplicaStat>> Postgres::Replication() const {
  return OnLocalResult<std::vector<ReplicaStat>>(quick_, 5000, ConnPool::Retry::kOnce,
                                                 ReplicationOn);
}

Result<SyncSnapshot> Postgres::ReadSyncSnapshot() const {
  return OnLocalResult<SyncSnapshot>(quick_, 5000, ConnPool::Retry::kOnce, SyncSnapshotOn);
}

Result<std::vector<std::string>> Postgres::Sql(const std::string& sql) const {
  // Not repeated on a broken connection: the statement may have run.
  return OnLocalResult<std::vector<std::string>>(long_, 30'000, ConnPool::Retry::kNo,
                                                 [&](PgConn* c) { return SqlOn(c, sql); });
}

Status Postgres::EnsureReplicationUser(const std::string& name, const std::string& password) const {
  if (!IsValidRoleName(name) || name == kSuperuser) {
    return Error(ErrorCode::kInvalidArgument,
                 "replication user name '" + (IsValidRoleName(name) ? name : std::string("?")) +
                     "' is not usable: letters, digits and _, not 'postgres' (e.g. 'replicator')");
  }
  if (password.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 "the password for replication user " + name + " is empty; generate one");
  }
  // A connection of its own: the session settings below must not stay on a
  // kept one (rare: once per promotion).
  auto conn =
      PgConn::Connect(LocalParams(paths_, settings_, 2, 5000), LocalName(paths_, settings_));
  if (!conn) return conn.error();
  auto rec = conn->Exec("SELECT pg_is_in_recovery()", "recovery check");
  if (!rec) return rec.error();
  if (rec->Get(0, 0) == "t") {
    return Error(ErrorCode::kFailedPrecondition,
                 "cannot create replication user " + name +
                     ": this server is a standby (read-only); do it on the primary");
  }
  // Keep the statement (it carries the verifier) out of the server log.
  TANDEM_TRY(
      conn->Exec("SET log_statement = 'none'; SET log_min_error_statement = panic; "
                 "SET log_min_duration_statement = -1",
                 "session settings"));
  auto exists = conn->ExecParams("SELECT 1 FROM pg_roles WHERE rolname = $1", {name},
                                 "role lookup for " + name);
  if (!exists) return exists.error();
  auto verifier = conn->ScramVerifier(name, password);
  if (!verifier) return verifier.error();
  auto lit = conn->QuoteLiteral(*verifier);
  if (!lit) return lit.error();
  auto ident = conn->QuoteIdent(name);
  if (!ident) return ident.error();
  bool create = exists->rows() == 0;
  std::string sql = std::string(create ? "CREATE" : "ALTER") + " ROLE " + *ident +
                    " WITH REPLICATION LOGIN PASSWORD " + *lit + " CONNECTION LIMIT 16";
  auto r = conn->Exec(sql, std::string(create ? "CREATE" : "ALTER") + " ROLE " + name);
  if (!r) return r.error();
  TLOG(Info, kMod) << (create ? "created" : "updated") << " replication user " << name;
  return Ok();
}

Status Postgres::SyncSlots(const std::vector<std::string>& wanted) const {
  for (const auto& w : wanted) {
    if (!IsValidSlotName(w)) {
      return Error(ErrorCode::kInvalidArgument,
                   "replication slot name '" + w + "' is not valid ([a-z0-9_], 1-63 chars)");
    }
  }
  // Repeatable: it makes the slots what `wanted` says.
  return OnLocal(quick_, 5000, ConnPool::Retry::kOnce,
                 [&](PgConn& c) { return SyncSlotsOn(&c, wanted); });
}

}  // namespace tandem::pg
