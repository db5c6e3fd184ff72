// The interface the agent uses to control its local PostgreSQL: the real one
// (pg::Postgres, pg/postgres.h) runs pg_ctl and libpq; tests use a fake that
// crashes, promotes and lags on command. Each method's contract is here;
// implementations say only how they meet it.
//
// Thread safety: one caller at a time per instance for the methods that
// change the server (InitDb, Write*, Start, Stop, Promote, Reload, BaseBackup,
// Rewind); the const queries may run concurrently with each other and with
// those (the API's health reads run beside the HA loop).
//
// Cost: IsRunning and Pid are cheap enough to call many times per cycle, and
// the queries reuse their connections; an implementation must not scan every
// process or open a connection per query.
#pragma once

#include "pg/types.h"

namespace tandem::pg {

class Controller {
 public:
  virtual ~Controller() = default;

  virtual const Paths& paths() const = 0;
  virtual const Settings& settings() const = 0;
  virtual void set_settings(Settings s) = 0;

  virtual DataDirState InspectDataDir() const = 0;
  virtual Result<ControlData> ReadControlData() const = 0;

  // initdb (UTF8, data checksums on, superuser "postgres" with this password,
  // scram-sha-256 for TCP). Refuses a data directory that is not missing/empty.
  virtual Status InitDb(const std::string& superuser_password) = 0;

  // Writes tandem.conf (+ the include line in postgresql.conf once). When
  // `standby_of` is set, also primary_conninfo/primary_slot_name and
  // standby.signal; otherwise removes standby.signal.
  virtual Status WriteConfig(const std::optional<Source>& standby_of) = 0;
  // A standby with no upstream yet (no leader to follow): WriteConfig(nullopt)
  // plus standby.signal, so the server starts read-only and reports its position.
  virtual Status WriteStandbyConfigWithoutSource() = 0;
  // pg_hba.conf: local trust (the socket dir is 0700), replication and the
  // superuser only from peers (scram; with TLS `hostssl` only, enforce: `cert`
  // for replication), every other user from anywhere (scram). Also
  // pg_ident.conf (the `tandem` map for the `cert` rules).
  virtual Status WriteHba(const std::vector<HbaPeer>& peers) = 0;

  // pg_ctl start, waits until it accepts connections (or timeout). Removes a
  // stale postmaster.pid first (logged). Already running: Ok. On kTimeout the
  // server may still be running (a standby waiting for WAL): check IsRunning.
  virtual Status Start(int64_t timeout_ms = 60'000) = 0;
  // Fence and stop: kFast terminates client backends (when the server answers
  // within 2 s) then `pg_ctl stop -m fast`; kImmediate `-m immediate`. If
  // pg_ctl fails or times out, SIGKILLs the postmaster and its children.
  // Not running: Ok.
  virtual Status Stop(StopMode mode, int64_t timeout_ms = 30'000) = 0;
  // pg_ctl promote -w, then a CHECKPOINT so pg_control (and pg_rewind of the
  // old primary) sees the new timeline at once.
  virtual Status Promote(int64_t timeout_ms = 30'000) = 0;
  virtual Status Reload() = 0;
  // Names of settings changed in the files that wait for a restart
  // (pg_settings.pending_restart).
  virtual Result<std::vector<std::string>> PendingRestart() const = 0;
  // postmaster.pid names a live, non-zombie postgres process whose working
  // directory is this data directory (a reused pid does not count). Once
  // identified, that process is followed until it exits.
  virtual bool IsRunning() const = 0;
  // The postmaster's pid, 0 when not running.
  virtual int Pid() const = 0;

  // Queries of the running server over its Unix socket as the superuser.
  // A server that is down or does not accept connections: kUnavailable; a
  // statement timeout: kTimeout. A connection the server closed since the
  // last call (restart, crash, terminated session) is replaced, not reported.
  virtual Result<LiveStatus> Query() const = 0;
  virtual Result<std::vector<ReplicaStat>> Replication() const = 0;
  // The primary's flush position, then pg_stat_replication, then
  // synchronous_standby_names: the real server reads them in one statement
  // (one round trip); a fake may make the three calls in order
  // (ReadSyncSnapshotByParts below).
  virtual Result<SyncSnapshot> ReadSyncSnapshot() const = 0;
  // Runs SQL as the superuser over the local socket; returns the first column
  // of each row. Not repeated when the connection breaks during it (it may
  // have run). A transaction left open is rolled back (its session dropped).
  virtual Result<std::vector<std::string>> Sql(const std::string& sql) const = 0;

  // CREATE or ALTER ROLE name WITH REPLICATION LOGIN PASSWORD ... CONNECTION LIMIT 16.
  virtual Status EnsureReplicationUser(const std::string& name,
                                       const std::string& password) const = 0;
  // Creates the physical slots in `wanted` that are missing and drops the
  // "tandem_" slots that are not wanted. Other slots are left alone.
  virtual Status SyncSlots(const std::vector<std::string>& wanted) const = 0;

  // pg_basebackup -X stream -R from source into the (missing or empty) data
  // directory; each progress line goes to on_progress.
  // The slot (source.slot_name) must exist on the source unless
  // options.create_slot. Afterwards call WriteConfig(source) and WriteHba.
  virtual Status BaseBackup(const Source& source,
                            const std::function<void(const std::string&)>& on_progress,
                            const BaseBackupOptions& options = {}) = 0;
  // pg_rewind from source (superuser); the local server must be stopped.
  // Issues a CHECKPOINT on the source first (so its pg_control shows its new
  // timeline), and finishes crash recovery in single-user mode when the
  // target was not shut down cleanly. Afterwards call WriteConfig(standby_of)
  // and WriteHba: the source's copies replaced ours.
  virtual Status Rewind(const Source& source, int64_t timeout_ms = 600'000) = 0;
};

// ReadSyncSnapshot as three calls of `pg` (Query, Replication, SHOW), in the
// order the sync rules need: for controllers without a one-statement form.
Result<SyncSnapshot> ReadSyncSnapshotByParts(const Controller& pg);

}  // namespace tandem::pg
