// What GET /metrics reports about one node, as plain data: taken by
// Agent::MetricsSnapshot (metrics_snapshot.cc) from the same state the status
// document and the health endpoints read (the loop's last view and local
// observation, the lease, the registry's counters), plus one query of the
// local PostgreSQL for what the loop does not keep. The API renders it
// (api/metrics.h); nothing here knows the text format.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/metrics_registry.h"
#include "base/clock.h"

namespace tandem::agent {

struct NodeMetrics {
  std::string cluster, node;
  bool member = false;  // this node belongs to a cluster (an idle agent reports zeros)

  // This node's PostgreSQL, as the loop last observed it.
  bool pg_running = false;
  bool in_recovery = false;
  uint32_t timeline = 0;
  uint64_t lsn = 0;  // primary: flush position; standby: max(received, replayed)
  bool streaming = false;

  // From one query of PostgreSQL at scrape time (pg_queried: it answered).
  bool pg_queried = false;
  double postmaster_start_time = 0;  // Unix seconds, 0 = unknown
  int server_version = 0;            // server_version_num, 150004
  uint64_t received_lsn = 0;         // standby: pg_last_wal_receive_lsn() (0 = none)
  uint64_t replayed_lsn = 0;         // standby: pg_last_wal_replay_lsn()
  double replayed_timestamp = 0;     // standby: pg_last_xact_replay_timestamp(), 0 = null
  bool replay_paused = false;        // standby: pg_is_wal_replay_paused()
  int pending_restart = 0;           // settings changed that need a restart
  struct Replica {                   // primary: one row of pg_stat_replication
    std::string name;                // its application_name (the member's name)
    uint64_t lag_bytes = 0;          // this primary's flush LSN - its flush LSN
    double lag_seconds = 0;          // replay_lag (0 when PostgreSQL reports none)
    bool sync = false;               // sync_state sync or quorum
  };
  std::vector<Replica> replicas;

  // Roles, as the health endpoints judge them (Agent::GetHealth).
  bool primary = false;  // writable primary holding the leader key
  bool replica = false;  // running standby with an upstream
  bool sync_standby = false;

  // The cluster as the loop last read it.
  bool store_ok = false;  // the last cycle read the store
  bool has_leader = false;
  std::string leader;
  bool paused = false;
  int sync_standbys = 0;  // members of the sync record other than its writer
  int sync_quorum = 0;
  std::string sync_mode;  // the record's, "" without one
  int members = 0;        // live member states in the view
  int nodes = 0;          // registrations

  // The session lease and the watchdog.
  bool lease_held = false;
  MonoMs lease_remaining_ms = 0;  // until the local deadline (<= 0: passed)
  bool fence_armed = false;

  // Operator commands and intents in progress: "join", "switchover", ...
  std::vector<std::string> operations;

  std::vector<CertificateExpiry> certificates;  // checked at most a minute ago

  // The active alarms this node raised (its own, and the cluster-wide ones
  // while it is the steward: docs/alarms.md), as its last write or read knew them.
  struct Alarm {
    int id = 0;
    std::string name;
    std::string node;  // the node it is about, "" = the whole cluster
  };
  std::vector<Alarm> alarms;

  AgentMetrics::Snapshot counters;
  WallMs wall_now_ms = 0;
};

// Fills the query's part of *m from its rows ("start 1733234567.12",
// "replica <lag bytes> <lag s> <sync_state> <name>", ...); rows it does not
// know are skipped. Exposed for the tests.
void ParsePgMetricRows(const std::vector<std::string>& rows, NodeMetrics* m);

}  // namespace tandem::agent
