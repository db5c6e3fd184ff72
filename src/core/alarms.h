// The alarm catalogue (a fixed table: id, name, severity, who raises it,
// cause, the command that fixes it) and the pure rules that say which alarms
// hold now, from what one node observes. Pure: no I/O, no clock (time is an
// input). docs/alarms.md is the catalogue as operators read it.
//
// Who raises what (so two nodes never write one alarm's key):
//   node scope     the node the alarm is about raises and clears it itself
//                  (its PostgreSQL, its certificates, its disk, its etcd member);
//   cluster scope  the steward raises and clears it: the leader key's holder
//                  while it is a live member, else the first live member by name
//                  (AlarmSteward). A new steward adopts what the old one raised.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/types.h"

namespace tandem::core {

enum class AlarmId : int {
  kCommunicationFailure = 1001,
  kReplicationFailure = 1002,
  kManualResync = 1003,
  kRestartRequired = 1004,
  kCertificateExpiring = 1005,
  kCertificateInvalid = 1006,
  kNoSyncStandby = 1007,
  kDataLossFailoverPending = 1008,
  kQuorumAtRisk = 1009,
  kStoreMemberUnhealthy = 1010,
  kDiskSpaceLow = 1011,
  kPostgresStartFailure = 1012,
};

enum class AlarmSeverity { kCritical, kMajor, kMinor, kWarning };
const char* AlarmSeverityName(AlarmSeverity s);  // "critical", "major", "minor", "warning"

enum class AlarmScope { kNode, kCluster };
const char* AlarmScopeName(AlarmScope s);  // "node", "cluster"

struct AlarmDef {
  AlarmId id;
  const char* name;  // kebab-case, stable: "replication-failure"
  AlarmSeverity severity;
  AlarmScope scope;
  // A condition must hold this long before it is raised (a replica that
  // restarts for a switchover is not a replication failure); it clears at once.
  int64_t raise_after_ms;
  const char* cause;  // one sentence, as docs/alarms.md shows it
  const char* fix;    // the command (or step) that clears the cause
};

// Every alarm, in id order. Never changes at run time.
const std::vector<AlarmDef>& AlarmCatalogue();
// nullptr for an id outside the catalogue.
const AlarmDef* FindAlarm(int id);

// The thresholds the rules use (documented in docs/alarms.md).
inline constexpr int64_t kCertificateWarnDays = 30;
inline constexpr double kDiskLowFreeFraction = 0.10;       // under 10 % free ...
inline constexpr uint64_t kDiskLowFreeBytes = 1ull << 30;  // ... and under 1 GiB free

// One alarm that holds: which, about which node ("" = the whole cluster),
// and a line saying what exactly (shown beside the catalogue's cause).
struct AlarmCondition {
  AlarmId id;
  std::string node;
  std::string detail;
  bool operator==(const AlarmCondition& o) const {
    return id == o.id && node == o.node && detail == o.detail;
  }
};

// One of this node's certificates, as its start-up check judges it.
struct CertificateCheck {
  std::string name;  // "server", "client", "ca"
  std::string path;
  bool invalid = false;
  bool expiring = false;  // within kCertificateWarnDays
  int64_t days_left = 0;
  std::string text;  // "Invalid (expired on ...)", "Expiring in 12 days"
};

struct DiskSpace {
  uint64_t free_bytes = 0;  // available to PostgreSQL (statvfs f_bavail)
  uint64_t total_bytes = 0;
};

// A registered node (nodes/<name>) and whether it votes in the store.
struct RegisteredNode {
  std::string name;
  bool store_voter = false;  // an embedded etcd member that votes
};

// What one node observes, for the alarm rules.
struct AlarmObservation {
  std::string self;
  bool member = false;  // this node belongs to a cluster (else: no alarms)
  // The cluster as one snapshot of the store shows it.
  std::optional<LeaderKey> leader;
  std::map<std::string, MemberState> members;  // live (leased) state, self included
  std::vector<RegisteredNode> nodes;           // registrations
  bool embedded_store = true;  // the store is the agents' own etcd (quorum is knowable)
  std::optional<SyncRecord> sync;
  SyncMode sync_mode = SyncMode::kQuorum;  // what the primary is configured to keep
  uint64_t max_lag_bytes = 16ull << 20;
  // This node's last HA decision found no replica that may be promoted
  // without possibly losing acknowledged writes (reason says why).
  bool failover_needs_decision = false;
  std::string decide_reason;
  // This node itself.
  LocalPostgres pg;
  bool streaming = false;                    // its WAL receiver is connected (a replica)
  bool error_state = false;                  // a command failed and left it in the Error state
  std::string error_text;                    // that command's error
  std::string postgres_error;                // why its PostgreSQL could not start ("" = none)
  std::vector<std::string> pending_restart;  // pg_settings.pending_restart names
  std::string restart_required;              // the agent's own (TLS), "" = none
  std::vector<CertificateCheck> certificates;
  std::optional<DiskSpace> data_disk;  // nullopt = not measured
  bool store_member_running = true;    // its embedded etcd member's process
};

// The node that raises cluster-scope alarms in this view ("" = nobody live).
std::string AlarmSteward(const std::optional<LeaderKey>& leader,
                         const std::map<std::string, MemberState>& members);

// The alarms that hold now and that `obs.self` is responsible for: its own
// node-scope alarms, and the cluster-scope ones when it is the steward.
// Sorted by (id, node); at most one per (id, node).
std::vector<AlarmCondition> EvaluateAlarms(const AlarmObservation& obs);

// Holding a condition for its raise_after_ms before it counts: `first_seen`
// (key "id/node" -> when first seen holding, updated in place) and the
// conditions holding at `now`; returns those held long enough. A condition
// that stops holding is forgotten.
std::vector<AlarmCondition> AlarmsHeldLongEnough(const std::vector<AlarmCondition>& holding,
                                                 MonoMs now,
                                                 std::map<std::string, MonoMs>* first_seen);

// "1002/n2"; "1007/cluster" for the whole cluster. Also the store key's tail.
std::string AlarmKey(AlarmId id, const std::string& node);

}  // namespace tandem::core
