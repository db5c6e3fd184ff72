// The value types of PostgreSQL control, shared by the Controller interface
// (pg/controller.h), its real implementation (pg/postgres.h) and the fakes in
// tests. Plain data: no I/O here.
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

// What the primary's synchronous-replication upkeep reads, in one round trip
// and in this order: the server's role and flush position first, then the
// standbys' (pg_stat_replication), with synchronous_standby_names as the
// server shows it to new sessions.
struct SyncSnapshot {
  bool in_recovery = false;
  uint64_t flush_lsn = 0;  // the primary's; 0 in recovery
  std::string synchronous_standby_names;
  std::vector<ReplicaStat> standbys;  // by application_name; empty in recovery
};

enum class StopMode { kFast, kImmediate };

struct BaseBackupOptions {
  // Pass -C: pg_basebackup creates source.slot_name on the source. Normally
  // false: the primary's agent creates one slot per member with SyncSlots
  // before the member clones, and -C fails when the slot already exists.
  bool create_slot = false;
  int64_t timeout_ms = 0;  // 0 = no limit
};

}  // namespace tandem::pg
