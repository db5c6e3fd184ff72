// The alarm catalogue as data and the rules that say which alarms hold now
// (EvaluateAlarms), who raises cluster-wide ones (AlarmSteward) and the
// hold-down before a condition counts (AlarmsHeldLongEnough). Pure.
#include "core/alarms.h"

#include <algorithm>

namespace tandem::core {

const char* AlarmSeverityName(AlarmSeverity s) {
  switch (s) {
    case AlarmSeverity::kCritical:
      return "critical";
    case AlarmSeverity::kMajor:
      return "major";
    case AlarmSeverity::kMinor:
      return "minor";
    case AlarmSeverity::kWarning:
      return "warning";
  }
  return "unknown";
}

const char* AlarmScopeName(AlarmScope s) {
  return s == AlarmScope::kNode ? "node" : "cluster";
}

const std::vector<AlarmDef>& AlarmCatalogue() {
  using S = AlarmSeverity;
  using C = AlarmScope;
  static const std::vector<AlarmDef> catalogue = {
      {AlarmId::kCommunicationFailure, "cluster-communication-failure", S::kMajor, C::kCluster,
       5'000,
       "a registered member has published no state for a while: its agent is down or cannot "
       "reach the store",
       "on that node: `systemctl start tandem` (or check its network), then `tandem cluster "
       "status`"},
      {AlarmId::kReplicationFailure, "replication-failure", S::kMajor, C::kNode, 10'000,
       "this replica's PostgreSQL is not running, not streaming from the primary, or further "
       "behind it than ha.max_lag_bytes",
       "read the replica's PostgreSQL log and `tandem cluster status` on it; check that it "
       "reaches the primary's PostgreSQL port"},
      {AlarmId::kManualResync, "manual-resync-needed", S::kMajor, C::kNode, 0,
       "a command failed and left this node in the Error state: it will not rejoin the "
       "cluster's replication by itself",
       "read the error in `tandem cluster status`, fix its cause, then `tandem cluster "
       "clear-error` on that node"},
      {AlarmId::kRestartRequired, "restart-required", S::kMinor, C::kNode, 0,
       "a changed setting (a PostgreSQL parameter pending a restart, or a TLS change the "
       "agent cannot apply live) takes effect only after a restart",
       "`systemctl restart tandem` on that node (replicas first, the primary last with a "
       "`tandem cluster switchover` before it)"},
      {AlarmId::kCertificateExpiring, "certificate-expiring", S::kWarning, C::kNode, 0,
       "one of this node's TLS certificates expires within 30 days",
       "`tandem pki issue NODE` (or sign a new CSR), then `tandem cluster certs` on that node"},
      {AlarmId::kCertificateInvalid, "certificate-invalid", S::kMajor, C::kNode, 0,
       "one of this node's TLS certificates is expired, not yet valid, or does not fit its use",
       "`tandem pki inspect FILE` says why; `tandem pki issue NODE`, then `tandem cluster "
       "certs` on that node"},
      {AlarmId::kNoSyncStandby, "no-synchronous-standby", S::kMajor, C::kCluster, 10'000,
       "synchronous replication is on but the primary has no synchronous standby: an "
       "acknowledged write may be on the primary only",
       "bring a replica back to streaming (`tandem cluster status` names the ones not in "
       "sync)"},
      {AlarmId::kDataLossFailoverPending, "data-loss-failover-pending", S::kCritical, C::kCluster,
       0,
       "there is no primary and no replica is proven to hold every acknowledged write: an "
       "operator must decide",
       "start the old primary again, or accept the loss: `tandem cluster failover --to NODE "
       "--accept-data-loss`"},
      {AlarmId::kQuorumAtRisk, "quorum-at-risk", S::kMajor, C::kCluster, 5'000,
       "one more failure stops writes: the store has only a bare majority of its voting "
       "members, or strict synchronous replication has only the standbys it waits for",
       "bring the missing members back (`tandem cluster status` names them)"},
      {AlarmId::kStoreMemberUnhealthy, "store-member-unhealthy", S::kMajor, C::kNode, 10'000,
       "this node's embedded etcd member is not running (the agent restarts it with a "
       "back-off)",
       "read the agent's log for the etcd member's exit (a full disk, a damaged data "
       "directory); `systemctl restart tandem`"},
      {AlarmId::kDiskSpaceLow, "disk-space-low", S::kMajor, C::kNode, 0,
       "the file system of PostgreSQL's data directory has under 10 % and under 1 GiB free",
       "free space or grow the file system; check for a replication slot holding WAL"},
      {AlarmId::kPostgresStartFailure, "postgres-start-failure", S::kCritical, C::kNode, 0,
       "this node's PostgreSQL could not be configured or started",
       "read the error in `tandem cluster status` and PostgreSQL's log, fix it; the agent "
       "retries by itself"},
  };
  return catalogue;
}

const AlarmDef* FindAlarm(int id) {
  for (const auto& d : AlarmCatalogue()) {
    if (static_cast<int>(d.id) == id) return &d;
  }
  return nullptr;
}

std::string AlarmKey(AlarmId id, const std::string& node) {
  return std::to_string(static_cast<int>(id)) + "/" + (node.empty() ? "cluster" : node);
}

std::string AlarmSteward(const std::optional<LeaderKey>& leader,
                         const std::map<std::string, MemberState>& members) {
  if (leader && members.count(leader->holder) != 0) return leader->holder;
  return members.empty() ? "" : members.begin()->first;  // std::map: name order
}

namespace {

using Out = std::vector<AlarmCondition>;

void Add(Out& out, AlarmId id, const std::string& node, std::string detail) {
  out.push_back({id, node, std::move(detail)});
}

const MemberState* LivePrimary(const AlarmObservation& o) {
  if (!o.leader) return nullptr;
  auto it = o.members.find(o.leader->holder);
  if (it == o.members.end() || it->second.role != Role::kPrimary) return nullptr;
  return &it->second;
}

// Rule: a replica of a live primary that is not streaming from it, or is past
// the lag limit, has a replication failure.
void ReplicationRule(const AlarmObservation& o, Out& out) {
  const MemberState* primary = LivePrimary(o);
  if (primary == nullptr || primary->name == o.self) return;
  std::string why;
  if (!o.pg.running) {
    why = "PostgreSQL is not running";
  } else if (!o.pg.in_recovery) {
    why = "PostgreSQL runs as a primary beside " + primary->name;
  } else if (!o.streaming || o.pg.following != primary->name) {
    why = "not streaming from " + primary->name;
  } else {
    auto self = o.members.find(o.self);
    const uint64_t lsn = self != o.members.end() ? self->second.lsn : o.pg.lsn;
    const uint64_t lag = primary->lsn > lsn ? primary->lsn - lsn : 0;
    if (lag > o.max_lag_bytes) {
      why = std::to_string(lag) + " bytes behind " + primary->name + " (limit " +
            std::to_string(o.max_lag_bytes) + ")";
    }
  }
  if (!why.empty()) Add(out, AlarmId::kReplicationFailure, o.self, why);
}

void CertificateRules(const AlarmObservation& o, Out& out) {
  std::string invalid, expiring;
  for (const auto& c : o.certificates) {
    std::string& to = c.invalid ? invalid : expiring;
    if (!c.invalid && !c.expiring) continue;
    to += (to.empty() ? "" : "; ") + c.name + " " + c.path + ": " + c.text;
  }
  if (!invalid.empty()) Add(out, AlarmId::kCertificateInvalid, o.self, invalid);
  if (!expiring.empty()) Add(out, AlarmId::kCertificateExpiring, o.self, expiring);
}

void RestartRule(const AlarmObservation& o, Out& out) {
  std::string why = o.restart_required;
  if (!o.pending_restart.empty()) {
    std::string names;
    for (const auto& p : o.pending_restart) names += (names.empty() ? "" : ", ") + p;
    why += (why.empty() ? "" : "; ") + std::string("PostgreSQL parameters pending a restart: ") +
           names;
  }
  if (!why.empty()) Add(out, AlarmId::kRestartRequired, o.self, why);
}

void DiskRule(const AlarmObservation& o, Out& out) {
  if (!o.data_disk || o.data_disk->total_bytes == 0) return;
  const DiskSpace& d = *o.data_disk;
  const double fraction = static_cast<double>(d.free_bytes) / static_cast<double>(d.total_bytes);
  if (fraction < kDiskLowFreeFraction && d.free_bytes < kDiskLowFreeBytes) {
    Add(out, AlarmId::kDiskSpaceLow, o.self,
        std::to_string(d.free_bytes >> 20) + " MiB free of " + std::to_string(d.total_bytes >> 20) +
            " MiB");
  }
}

void NodeRules(const AlarmObservation& o, Out& out) {
  ReplicationRule(o, out);
  if (o.error_state) Add(out, AlarmId::kManualResync, o.self, o.error_text);
  RestartRule(o, out);
  CertificateRules(o, out);
  if (o.embedded_store && !o.store_member_running) {
    Add(out, AlarmId::kStoreMemberUnhealthy, o.self, "the etcd member's process is not running");
  }
  DiskRule(o, out);
  if (!o.postgres_error.empty()) Add(out, AlarmId::kPostgresStartFailure, o.self, o.postgres_error);
}

// Rule: with synchronous replication on and a live primary that has another
// registered node to wait for, the sync record must count a standby.
void SyncRule(const AlarmObservation& o, Out& out) {
  const MemberState* primary = LivePrimary(o);
  if (o.sync_mode == SyncMode::kOff || primary == nullptr || o.nodes.size() < 2) return;
  bool counted = false;
  if (o.sync && o.sync->quorum > 0) {
    for (const auto& m : o.sync->members) counted = counted || m != primary->name;
  }
  if (!counted) {
    Add(out, AlarmId::kNoSyncStandby, "",
        primary->name + " runs in " + SyncModeName(o.sync_mode) +
            " mode with no synchronous standby");
  }
}

// Rule: one more lost voter leaves the store without a majority; in strict
// mode, one more lost standby blocks writes.
void QuorumRule(const AlarmObservation& o, Out& out) {
  std::string why;
  if (o.embedded_store) {
    int voters = 0, live = 0;
    std::string down;
    for (const auto& n : o.nodes) {
      if (!n.store_voter) continue;
      ++voters;
      if (o.members.count(n.name) != 0) {
        ++live;
      } else {
        down += (down.empty() ? "" : ", ") + n.name;
      }
    }
    const int majority = voters / 2 + 1;
    if (live < voters && live >= majority && live - 1 < majority) {
      why = std::to_string(live) + " of " + std::to_string(voters) +
            " store members are up (a majority is " + std::to_string(majority) + "; down: " + down +
            ")";
    }
  }
  const MemberState* primary = LivePrimary(o);
  if (o.sync_mode == SyncMode::kStrict && primary != nullptr && o.sync && o.sync->quorum > 0) {
    int live = 0;
    for (const auto& m : o.sync->members) {
      auto it = o.members.find(m);
      live += m != primary->name && it != o.members.end() && it->second.streaming ? 1 : 0;
    }
    if (live == o.sync->quorum) {
      why += (why.empty() ? "" : "; ") + std::string("strict mode waits for ") +
             std::to_string(o.sync->quorum) + " standby(s) and only " + std::to_string(live) +
             " stream";
    }
  }
  if (!why.empty()) Add(out, AlarmId::kQuorumAtRisk, "", why);
}

void ClusterRules(const AlarmObservation& o, Out& out) {
  for (const auto& n : o.nodes) {
    if (n.name != o.self && o.members.count(n.name) == 0) {
      Add(out, AlarmId::kCommunicationFailure, n.name,
          n.name + " has published no state: its agent is down or cut off from the store");
    }
  }
  SyncRule(o, out);
  if (!o.leader && o.failover_needs_decision) {
    Add(out, AlarmId::kDataLossFailoverPending, "", o.decide_reason);
  }
  QuorumRule(o, out);
}

}  // namespace

std::vector<AlarmCondition> EvaluateAlarms(const AlarmObservation& obs) {
  Out out;
  if (!obs.member) return out;
  NodeRules(obs, out);
  if (AlarmSteward(obs.leader, obs.members) == obs.self) ClusterRules(obs, out);
  std::sort(out.begin(), out.end(), [](const AlarmCondition& a, const AlarmCondition& b) {
    return a.id != b.id ? a.id < b.id : a.node < b.node;
  });
  return out;
}

std::vector<AlarmCondition> AlarmsHeldLongEnough(const std::vector<AlarmCondition>& holding,
                                                 MonoMs now,
                                                 std::map<std::string, MonoMs>* first_seen) {
  std::map<std::string, MonoMs> seen;
  std::vector<AlarmCondition> out;
  for (const auto& c : holding) {
    const std::string key = AlarmKey(c.id, c.node);
    auto it = first_seen->find(key);
    const MonoMs since = it != first_seen->end() ? it->second : now;
    seen[key] = since;
    const AlarmDef* def = FindAlarm(static_cast<int>(c.id));
    if (def != nullptr && now - since >= def->raise_after_ms) out.push_back(c);
  }
  *first_seen = std::move(seen);
  return out;
}

}  // namespace tandem::core
