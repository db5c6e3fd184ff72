// Control of the local PostgreSQL instance (the real pg::Controller): the only
// code that touches its data directory, its processes and its configuration
// files. The contract of each method is in pg/controller.h.
//
// Files the agent owns inside the data directory:
//   tandem.conf      all settings Tandem manages (included from postgresql.conf)
//   pg_hba.conf      generated from the membership (WriteHba)
//   standby.signal   present when starting as a standby
//   tandem.pgpass    the replication password for primary_conninfo (0600,
//                    present only on a standby)
// plus the one `include 'tandem.conf'` line at the end of postgresql.conf, and
// primary_conninfo/primary_slot_name are removed from postgresql.auto.conf
// (pg_basebackup -R writes them there, password included, and that file would
// override tandem.conf). Nothing else in the data directory is edited.
//
// Files copied from another node: pg_basebackup and pg_rewind bring the
// source's tandem.conf, pg_hba.conf and tandem.pgpass along. After either,
// the caller must call WriteConfig(standby_of) and WriteHba(peers) again.
//
// Restart vs reload (PostgreSQL 15): listen_addresses, port,
// unix_socket_directories, max_connections, wal_level, hot_standby,
// max_wal_senders, max_replication_slots, wal_log_hints and standby.signal
// take effect only on a restart (PendingRestart() lists the settings waiting);
// wal_keep_size, hot_standby_feedback, synchronous_standby_names,
// password_encryption, primary_conninfo, primary_slot_name and pg_hba.conf
// take effect on Reload().
//
// When the agent runs as root, every PostgreSQL program runs as
// Paths::run_as_user (PostgreSQL refuses to run as root).
//
// Time: every time read and wait (the promotion's watch, the wait for the
// postmaster to exit) goes through the Clock given to the constructor. The
// programs it runs (pg_ctl, pg_basebackup, ...) are waited for by
// base/process.h (their own timeouts, in real time).
//
// Idle cost: the postmaster is identified once from postmaster.pid and then
// followed by its pid (pg/postmaster.h), and queries run on kept connections
// (pg/local_conn.h): an idle agent opens no file and no connection per query.
//
// Where the code is: datadir.cc (inspect, control data, initdb, bin dir),
// config_files.cc (tandem.conf, pg_hba.conf, standby.signal), lifecycle.cc
// (start, stop, promote, reload, running/pid, pending restart), clone.cc
// (pg_basebackup, pg_rewind; their failures classified by clone_errors.h),
// replication.cc (live status, pg_stat_replication, SQL, replication user,
// slots); shared helpers in internal.h.
#pragma once

#include "base/clock.h"
#include "pg/controller.h"
#include "pg/local_conn.h"
#include "pg/postmaster.h"

namespace tandem::pg {

class Postgres final : public Controller {
 public:
  // `clock` must outlive this object.
  Postgres(Paths paths, Settings settings, const Clock& clock);

  const Paths& paths() const override { return paths_; }
  const Settings& settings() const override { return settings_; }
  void set_settings(Settings s) override { settings_ = std::move(s); }

  DataDirState InspectDataDir() const override;
  Result<ControlData> ReadControlData() const override;

  Status InitDb(const std::string& superuser_password) override;

  Status WriteConfig(const std::optional<Source>& standby_of) override;
  Status WriteStandbyConfigWithoutSource() override;
  Status WriteHba(const std::vector<HbaPeer>& peers) override;

  Status Start(int64_t timeout_ms = 60'000) override;
  Status Stop(StopMode mode, int64_t timeout_ms = 30'000) override;
  Status Promote(int64_t timeout_ms = 30'000) override;
  Status Reload() override;
  Result<std::vector<std::string>> PendingRestart() const override;
  bool IsRunning() const override;
  int Pid() const override;

  Result<LiveStatus> Query() const override;
  Result<std::vector<ReplicaStat>> Replication() const override;
  Result<SyncSnapshot> ReadSyncSnapshot() const override;
  Result<std::vector<std::string>> Sql(const std::string& sql) const override;

  Status EnsureReplicationUser(const std::string& name, const std::string& password) const override;
  Status SyncSlots(const std::vector<std::string>& wanted) const override;

  Status BaseBackup(const Source& source,
                    const std::function<void(const std::string&)>& on_progress,
                    const BaseBackupOptions& options = {}) override;
  Status Rewind(const Source& source, int64_t timeout_ms = 600'000) override;

 private:
  // Runs work on a kept connection to the local server: quick_ (statement
  // timeout 5 s) for the observation and upkeep queries, long_ (30 s) for Sql.
  Status OnLocal(ConnPool& pool, int statement_timeout_ms, ConnPool::Retry retry,
                 const std::function<Status(PgConn&)>& work) const;
  template <class T>
  Result<T> OnLocalResult(ConnPool& pool, int statement_timeout_ms, ConnPool::Retry retry,
                          const std::function<Result<T>(PgConn*)>& work) const {
    std::optional<T> out;
    Status st = OnLocal(pool, statement_timeout_ms, retry, [&](PgConn& c) -> Status {
      auto r = work(&c);
      if (!r) return r.error();
      out = std::move(*r);
      return Ok();
    });
    if (!st) return st.error();
    return std::move(*out);
  }
  // The server's sessions are gone or going (stop, start, promote).
  void ForgetConnections() const;

  Paths paths_;
  Settings settings_;
  const Clock& clock_;
  PostmasterTracker postmaster_;
  mutable ConnPool quick_;
  mutable ConnPool long_;
};

}  // namespace tandem::pg
