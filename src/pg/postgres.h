// Control of the local PostgreSQL instance: the only code that touches its
// data directory, its processes and its configuration files.
//
// Files the agent owns inside the data directory:
//   tandem.conf      all settings Tandem manages (included from postgresql.conf)
//   pg_hba.conf      generated from the membership (WriteHba)
//   standby.signal   present when starting as a standby
// Nothing else in the data directory is edited.
//
// When the agent runs as root, every PostgreSQL program runs as
// Paths::run_as_user (PostgreSQL refuses to run as root).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace tandem::pg {

struct Paths {
  std::string bin_dir;      // where initdb, pg_ctl, pg_basebackup, pg_rewind live
  std::string data_dir;
  std::string socket_dir;   // unix socket directory (created 0700, owned by run_as_user)
  std::string log_file;     // PostgreSQL's own server log (pg_ctl -l)
  std::string run_as_user;  // "" = current user
};

// `pg_config --bindir`, else /usr/lib/postgresql/15/bin when it exists.
Result<std::string> FindBinDir();

struct Settings {
  std::string listen_address = "127.0.0.1";
  int port = 5432;
  int max_connections = 100;
  int max_wal_senders = 10;
  int max_replication_slots = 10;
  std::string wal_keep_size = "256MB";
  std::string synchronous_standby_names;  // "" = async
  std::map<std::string, std::string> extra;  // operator's own parameters
};

// Where a standby streams from (also used by pg_basebackup and pg_rewind).
struct Source {
  std::string host;
  int port = 5432;
  std::string user;         // replication user (basebackup/streaming) or superuser (rewind)
  std::string password;     // never logged; passed through PGPASSFILE, not argv
  std::string application_name;  // this node's name: it appears in pg_stat_replication
  std::string slot_name;    // "" = no slot
};

// Slot name for a member: "tandem_" + name with every char outside [a-z0-9_] as '_'.
std::string SlotNameFor(const std::string& member_name);

// One rule of pg_hba.conf for a peer member.
struct HbaPeer {
  std::string name;
  std::string address;  // IP address (a /32 or /128 rule is written)
};

enum class DataDirState { kMissing, kEmpty, kValid, kNotPostgres };

struct ControlData {
  uint64_t system_identifier = 0;
  uint32_t timeline = 0;              // "Latest checkpoint's TimeLineID"
  std::string cluster_state;          // "in production", "shut down", "in archive recovery", ...
  uint64_t checkpoint_lsn = 0;
};

// What the running server says about itself.
struct LiveStatus {
  bool in_recovery = false;
  uint32_t timeline = 0;
  uint64_t lsn = 0;          // primary: pg_current_wal_flush_lsn(); standby: max(receive, replay)
  uint64_t replay_lsn = 0;
  bool streaming = false;    // standby: pg_stat_wal_receiver has a streaming row
  std::string sender_host;   // standby: host of the WAL sender it streams from
  int sender_port = 0;
};

struct ReplicaStat {       // one row of pg_stat_replication
  std::string application_name;
  std::string state;       // streaming, catchup, ...
  std::string sync_state;  // async, sync, quorum, potential
  uint64_t flush_lsn = 0;
  uint64_t replay_lsn = 0;
};

enum class StopMode { kFast, kImmediate };

class Postgres {
 public:
  Postgres(Paths paths, Settings settings);

  const Paths& paths() const { return paths_; }
  const Settings& settings() const { return settings_; }
  void set_settings(Settings s) { settings_ = std::move(s); }

  DataDirState InspectDataDir() const;
  Result<ControlData> ReadControlData() const;

  // initdb (UTF8, data checksums on, superuser "postgres" with this password,
  // scram-sha-256 for TCP). Refuses a data directory that is not missing/empty.
  Status InitDb(const std::string& superuser_password);

  // Writes tandem.conf (+ the include line in postgresql.conf once). When
  // `standby_of` is set, also primary_conninfo/primary_slot_name and
  // standby.signal; otherwise removes standby.signal.
  Status WriteConfig(const std::optional<Source>& standby_of);
  // pg_hba.conf: local trust (the socket dir is 0700), replication and the
  // superuser only from peers (scram), every other user from anywhere (scram).
  Status WriteHba(const std::vector<HbaPeer>& peers);

  // pg_ctl start, waits until it accepts connections (or timeout).
  Status Start(int64_t timeout_ms = 60'000);
  // Fence and stop: kFast terminates backends and stops; kImmediate kills.
  Status Stop(StopMode mode, int64_t timeout_ms = 30'000);
  Status Promote(int64_t timeout_ms = 30'000);
  Status Reload();
  // postmaster.pid names a live, non-zombie process.
  bool IsRunning() const;
  // The postmaster's pid, 0 when not running.
  int Pid() const;

  Result<LiveStatus> Query() const;
  Result<std::vector<ReplicaStat>> Replication() const;
  // Runs SQL as the superuser over the local socket; returns the first column
  // of each row.
  Result<std::vector<std::string>> Sql(const std::string& sql) const;

  // CREATE or ALTER ROLE name WITH REPLICATION LOGIN PASSWORD ... CONNECTION LIMIT 16.
  Status EnsureReplicationUser(const std::string& name, const std::string& password) const;
  // Creates the physical slots in `wanted` that are missing and drops the
  // "tandem_" slots that are not wanted. Other slots are left alone.
  Status SyncSlots(const std::vector<std::string>& wanted) const;

  // pg_basebackup -X stream -R from source into the (missing or empty) data
  // directory; each progress line goes to on_progress.
  Status BaseBackup(const Source& source,
                    const std::function<void(const std::string&)>& on_progress);
  // pg_rewind from source (superuser); the local server must be stopped.
  Status Rewind(const Source& source);

 private:
  Paths paths_;
  Settings settings_;
};

}  // namespace tandem::pg
