// Control of the local PostgreSQL instance: the only code that touches its
// data directory, its processes and its configuration files.
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
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace tandem::pg {

// The superuser initdb creates; every local connection uses it.
inline constexpr const char* kSuperuser = "postgres";

struct Paths {
  std::string bin_dir;  // where initdb, pg_ctl, pg_basebackup, pg_rewind live
  std::string data_dir;
  std::string socket_dir;   // unix socket directory (created 0700, owned by run_as_user)
  std::string log_file;     // PostgreSQL's own server log (pg_ctl -l)
  std::string run_as_user;  // "" = current user
};

// `pg_config --bindir`, else /usr/lib/postgresql/15/bin when it exists.
Result<std::string> FindBinDir();

// TLS for PostgreSQL (docs/design/tls.md).
//   off         no ssl; every rule in pg_hba.conf is `host` (plain or TLS).
//   permissive  ssl = on; replication and the superuser from peers only over TLS
//               (`hostssl`, password), no client certificate check; peers connect
//               with sslmode=require.
//   enforce     ssl = on with ssl_ca_file; replication from peers needs a client
//               certificate chaining to the CA whose CN maps (pg_ident.conf map
//               `tandem`) to the replication user; peers connect with
//               sslmode=verify-full (verify_hostname) or verify-ca.
enum class TlsMode { kOff, kPermissive, kEnforce };

struct TlsSettings {
  TlsMode mode = TlsMode::kOff;
  bool verify_hostname = true;
  // The agent's private copies (mode 0600, owned by the run user): PostgreSQL
  // and libpq refuse key files others can read.
  std::string server_cert, server_key, ca_cert, client_cert, client_key;
  bool enabled() const { return mode != TlsMode::kOff; }
};

// The CN of the client certificate the peers present; pg_ident.conf maps it to
// the replication user (and it is the superuser's own name, for pg_rewind).
inline constexpr const char* kClientCertCn = "postgres";
// The pg_ident.conf map name used by the `cert` rules.
inline constexpr const char* kIdentMap = "tandem";

struct Settings {
  std::string listen_address = "127.0.0.1";
  int port = 5432;
  int max_connections = 100;
  int max_wal_senders = 10;
  int max_replication_slots = 10;
  std::string wal_keep_size = "256MB";
  std::string synchronous_standby_names;     // "" = async
  std::map<std::string, std::string> extra;  // operator's own parameters
  // The role walsenders authenticate (pg_hba replication lines, EnsureReplicationUser).
  std::string replication_user = "replicator";
  TlsSettings tls;
};

// Where a standby streams from (also used by pg_basebackup and pg_rewind).
struct Source {
  std::string host;
  int port = 5432;
  std::string user;              // replication user (basebackup/streaming) or superuser (rewind)
  std::string password;          // never logged; passed through PGPASSFILE, not argv
  std::string application_name;  // this node's name: it appears in pg_stat_replication
  std::string slot_name;         // "" = no slot
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
  uint32_t timeline = 0;      // "Latest checkpoint's TimeLineID"
  std::string cluster_state;  // "in production", "shut down", "in archive recovery", ...
  uint64_t checkpoint_lsn = 0;
};

// What the running server says about itself.
struct LiveStatus {
  bool in_recovery = false;
  // primary: from pg_walfile_name(pg_current_wal_lsn()) (current after a
  // promote); standby: max(received_tli, checkpoint timeline) when streaming,
  // else the last checkpoint/restartpoint timeline.
  uint32_t timeline = 0;
  uint64_t lsn = 0;  // primary: pg_current_wal_flush_lsn(); standby: max(receive, replay)
  uint64_t replay_lsn = 0;
  bool streaming = false;   // standby: pg_stat_wal_receiver has a streaming row
  std::string sender_host;  // standby: host of the WAL sender it streams from
  int sender_port = 0;
};

struct ReplicaStat {  // one row of pg_stat_replication
  std::string application_name;
  std::string state;       // streaming, catchup, ...
  std::string sync_state;  // async, sync, quorum, potential
  uint64_t flush_lsn = 0;
  uint64_t replay_lsn = 0;
};

enum class StopMode { kFast, kImmediate };

struct BaseBackupOptions {
  // Pass -C: pg_basebackup creates source.slot_name on the source. Normally
  // false: the primary's agent creates one slot per member with SyncSlots
  // before the member clones, and -C fails when the slot already exists.
  bool create_slot = false;
  int64_t timeout_ms = 0;  // 0 = no limit
};

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
  // A standby with no upstream yet (no leader to follow): WriteConfig(nullopt)
  // plus standby.signal, so the server starts read-only and reports its position.
  Status WriteStandbyConfigWithoutSource();
  // pg_hba.conf: local trust (the socket dir is 0700), replication and the
  // superuser only from peers (scram; with TLS `hostssl` only, enforce: `cert`
  // for replication), every other user from anywhere (scram). Also
  // pg_ident.conf (the `tandem` map for the `cert` rules).
  Status WriteHba(const std::vector<HbaPeer>& peers);

  // pg_ctl start, waits until it accepts connections (or timeout). Removes a
  // stale postmaster.pid first (logged). Already running: Ok. On kTimeout the
  // server may still be running (a standby waiting for WAL): check IsRunning.
  Status Start(int64_t timeout_ms = 60'000);
  // Fence and stop: kFast terminates client backends (when the server answers
  // within 2 s) then `pg_ctl stop -m fast`; kImmediate `-m immediate`. If
  // pg_ctl fails or times out, SIGKILLs the postmaster and its children.
  // Not running: Ok.
  Status Stop(StopMode mode, int64_t timeout_ms = 30'000);
  // pg_ctl promote -w, then a CHECKPOINT so pg_control (and pg_rewind of the
  // old primary) sees the new timeline at once.
  Status Promote(int64_t timeout_ms = 30'000);
  Status Reload();
  // Names of settings changed in the files that wait for a restart
  // (pg_settings.pending_restart).
  Result<std::vector<std::string>> PendingRestart() const;
  // postmaster.pid names a live, non-zombie postgres process whose working
  // directory is this data directory (a reused pid does not count).
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
  // The slot (source.slot_name) must exist on the source unless
  // options.create_slot. Afterwards call WriteConfig(source) and WriteHba.
  Status BaseBackup(const Source& source,
                    const std::function<void(const std::string&)>& on_progress,
                    const BaseBackupOptions& options = {});
  // pg_rewind from source (superuser); the local server must be stopped.
  // Issues a CHECKPOINT on the source first (so its pg_control shows its new
  // timeline), and finishes crash recovery in single-user mode when the
  // target was not shut down cleanly. Afterwards call WriteConfig(standby_of)
  // and WriteHba: the source's copies replaced ours.
  Status Rewind(const Source& source, int64_t timeout_ms = 600'000);

 private:
  Paths paths_;
  Settings settings_;
};

}  // namespace tandem::pg
