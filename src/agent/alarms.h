// Alarms kept in the store (docs/alarms.md, "In the store"): the records and
// their keys, reading them, and AlarmKeeper, which raises and clears the
// alarms one node is responsible for, writing only when its set changes.
//
//   alarms/active/<id>/<node>          one alarm that holds (no lease)
//   alarms/history/<raised>-<id>-<node> one alarm that cleared (the last kAlarmHistoryLimit)
//
// Thread: AlarmKeeper::Update runs on the HA loop only; RaisedHere may be
// called from any thread (API workers: metrics).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "core/alarms.h"
#include "dcs/dcs.h"

namespace tandem::agent {

inline constexpr size_t kAlarmHistoryLimit = 100;

// One alarm as stored.
struct AlarmRecord {
  int id = 0;
  std::string name, severity;  // from the catalogue, for readers without it
  std::string node;            // "" = the whole cluster
  std::string detail;
  int64_t raised_ms = 0;           // wall clock
  int64_t cleared_ms = 0;          // 0 = active
  std::string raised_by;           // the node that wrote it
  dcs::Revision mod_revision = 0;  // as read (not encoded)
};

std::string EncodeAlarm(const AlarmRecord& r);
Result<AlarmRecord> DecodeAlarm(const std::string& json);

struct AlarmKeys {
  std::string active_prefix;   // <cluster prefix>alarms/active/
  std::string history_prefix;  // <cluster prefix>alarms/history/
  explicit AlarmKeys(const std::string& cluster_prefix)
      : active_prefix(cluster_prefix + "alarms/active/"),
        history_prefix(cluster_prefix + "alarms/history/") {}
  std::string active(int id, const std::string& node) const;
  std::string history(const AlarmRecord& r) const;
};

// The alarms in the store: the active ones by (id, node), the history oldest
// first (only when asked). Malformed records are skipped.
struct StoredAlarms {
  std::vector<AlarmRecord> active;
  std::vector<AlarmRecord> history;
};
Result<StoredAlarms> ReadAlarms(dcs::Dcs& store, const AlarmKeys& keys, bool with_history);

// Which stored alarms a node may clear: its own node alarms; as the steward,
// the cluster alarms and the node alarms of nodes no longer registered.
struct AlarmOwnership {
  std::string self;
  bool steward = false;
  std::set<std::string> registered;
  bool Owns(const AlarmRecord& r) const;
};

// What to write: raise what is wanted and not stored, clear what is stored,
// owned and no longer wanted. Pure. Alarms are matched on (id, node): a
// changed detail alone is no write.
struct AlarmWrites {
  std::vector<core::AlarmCondition> raise;
  std::vector<AlarmRecord> clear;
  bool empty() const { return raise.empty() && clear.empty(); }
};
AlarmWrites PlanAlarmWrites(const std::vector<core::AlarmCondition>& wanted,
                            const std::vector<AlarmRecord>& stored, const AlarmOwnership& own);

// The inputs of the alarm rules that cost a query or a file read, refreshed
// every kAlarmSlowInputsMs by the loop (alarms.cc).
inline constexpr MonoMs kAlarmSlowInputsMs = 10'000;
struct AlarmSlowInputs {
  MonoMs due = 0;
  std::vector<std::string> pending_restart;
  std::vector<core::CertificateCheck> certificates;
  std::optional<core::DiskSpace> data_disk;
};

// One node's side of the alarms in the store. Update does no I/O while the
// wanted set equals what it last read or wrote; it reads the active alarms
// again when the set changed, when the node became or stopped being the
// steward, after a failed write, and once every kResyncMs.
class AlarmKeeper {
 public:
  static constexpr MonoMs kResyncMs = 60'000;
  explicit AlarmKeeper(const std::string& cluster_prefix)
      : keys_(cluster_prefix), cluster_prefix_(cluster_prefix) {}

  void Update(dcs::Dcs& store, const std::vector<core::AlarmCondition>& wanted,
              const AlarmOwnership& own, int64_t wall_now_ms, MonoMs now);
  // The active alarms this node raised or adopted (what its metrics export).
  std::vector<AlarmRecord> RaisedHere() const;
  const AlarmKeys& keys() const { return keys_; }

 private:
  bool Raise(dcs::Dcs& store, const core::AlarmCondition& c, const std::string& self,
             int64_t wall_now_ms);
  bool Clear(dcs::Dcs& store, const AlarmRecord& r, int64_t wall_now_ms);
  void TrimHistory(dcs::Dcs& store);
  void RecordAlarmEvent(dcs::Dcs& store, bool raised, const AlarmRecord& r, const std::string& self,
                        int64_t wall_now_ms) const;
  const AlarmKeys keys_;
  const std::string cluster_prefix_;          // for the event log (agent/events.h)
  std::string self_;                          // own.self of the last Update
  std::map<std::string, AlarmRecord> known_;  // active key -> record, as last read or written
  bool synced_ = false;
  bool was_steward_ = false;
  MonoMs next_resync_ = 0;
  mutable std::mutex mu_;
  std::vector<AlarmRecord> raised_here_;  // under mu_
};

}  // namespace tandem::agent
