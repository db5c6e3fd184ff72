// The vocabulary of the decision core: what a node observes, what it may do.
//
// Everything here is plain data. Decide() (decide.h) maps an Observation to a
// Decision with no I/O and no clock; the agent gathers the Observation and
// carries out the Decision's actions in order, stopping at the first failure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"

namespace tandem::core {

// What a member's PostgreSQL is doing, as the member itself reports it.
// kWitness: the member runs no PostgreSQL at all (an etcd voter and an agent
// only, docs/design/witness.md): never a candidate, never a sync standby,
// never a route target.
enum class Role { kPrimary, kReplica, kStopped, kUnknown, kWitness };
const char* RoleName(Role role);

// One member's self-reported state, published under members/<name> on the
// member's lease (it vanishes when the agent dies).
struct MemberState {
  std::string name;
  Role role = Role::kUnknown;
  uint32_t timeline = 0;
  uint64_t lsn = 0;         // primary: current WAL flush position; replica: last received
  uint64_t replay_lsn = 0;  // replica: last replayed (primary: = lsn)
  std::string following;    // replica: the member it streams from ("" = none)
  bool streaming = false;   // replica: a WAL receiver is connected
  bool nofailover = false;  // never promote this member automatically
  // Its own TLS certificates as it judges them ("Valid", "Expiring in 12 days",
  // "Invalid (...)"; "" = no TLS). Shown in status only; no decision reads it.
  std::string certificate;
};

// The leader key as read from the store.
struct LeaderKey {
  std::string holder;        // member name
  int64_t mod_revision = 0;  // for compare-and-swap / compare-and-delete
  int64_t lease = 0;         // the lease it is bound to
};

// This node's own PostgreSQL, seen directly (not through the store).
struct LocalPostgres {
  bool running = false;
  bool in_recovery = false;  // valid when running
  uint32_t timeline = 0;
  uint64_t lsn = 0;       // as MemberState::lsn
  std::string following;  // replica: member it streams from
  // It was a primary (wrote on its timeline) after the point the current
  // leader's timeline forked, or it crashed as a primary and may be ahead: it
  // must be rewound before it may follow anyone. The agent tracks this.
  bool needs_rewind = false;
  // A rewind was tried and failed: only a fresh clone can bring it back.
  bool needs_reclone = false;
  // Consecutive failed attempts to start PostgreSQL locally.
  int start_failures = 0;
};

// Synchronous replication (issue 3; docs/design/sync-replication.md).
//   off     asynchronous: any healthy replica within the lag limit may be promoted.
//   quorum  PostgreSQL waits for ANY k of the sync set; with no healthy replica
//           the primary runs alone (writes go on, no automatic failover).
//   strict  as quorum, but writes block rather than run without a sync replica.
enum class SyncMode { kOff, kQuorum, kStrict };
const char* SyncModeName(SyncMode mode);
// "off" | "quorum" | "strict"; false for anything else.
bool ParseSyncMode(const std::string& text, SyncMode* mode);

// The sync record (store key "sync"), written only by the primary. It claims:
// every write the primary acknowledged is on at least `quorum` of `members`
// (the primary itself counts when it is listed). So when the primary is lost,
// any members.size() - quorum + 1 of them include one holding every
// acknowledged write, and the most advanced of those holds them all.
// quorum 0 claims nothing: no automatic failover is safe.
struct SyncRecord {
  std::string leader;
  SyncMode mode = SyncMode::kOff;
  std::vector<std::string> members;  // sorted, unique
  int quorum = 0;
  bool operator==(const SyncRecord& o) const {
    return leader == o.leader && mode == o.mode && members == o.members && quorum == o.quorum;
  }
};

// PostgreSQL's synchronous_standby_names as Tandem writes it: ANY quorum (names).
// quorum 0 = empty (asynchronous). names == {"*"} matches any standby.
struct PgSyncSet {
  std::vector<std::string> names;  // sorted, unique
  int quorum = 0;
  bool operator==(const PgSyncSet& o) const { return names == o.names && quorum == o.quorum; }
};
inline constexpr const char* kAnyStandby = "*";

// An operator's request to move the primary (store key "intent").
struct Intent {
  enum class Kind { kSwitchover, kFailover };
  Kind kind = Kind::kSwitchover;
  std::string from;               // switchover: the primary to step down ("" = whoever leads)
  std::string to;                 // the member to promote ("" = the best candidate)
  bool accept_data_loss = false;  // failover: promote `to` even if it may miss writes
  bool due = true;                // a scheduled switchover's time has come (agent computes)
  // Switchover: set by the old primary once it stopped cleanly: the position
  // of its shutdown checkpoint. The new primary must have received past it.
  uint64_t final_lsn = 0;
  uint32_t final_timeline = 0;
};

struct Observation {
  MonoMs now = 0;
  std::string self;
  // This node is a witness (no PostgreSQL): Decide returns no action, ever.
  bool witness = false;
  // The cluster view could be read from the store this cycle. When false,
  // leader and members are empty and must not be trusted.
  bool store_ok = false;
  std::optional<LeaderKey> leader;
  std::vector<MemberState> members;  // live members, self included if published
  LocalPostgres pg;
  // Our session lease (0 = none) and the local monotonic deadline before which
  // it is certainly still valid in the store: (time the last successful
  // renewal was SENT) + ttl - safety margin.
  int64_t lease = 0;
  MonoMs lease_deadline = 0;
  bool paused = false;  // maintenance mode: no automatic role changes
  // The newest timeline recorded in the store (0 = none recorded). A member on
  // an older timeline may hold WAL the newest one forked away from, so it is
  // never promoted automatically (Rule 4). The agent records (timeline + 1,
  // self) BEFORE promoting (no promotion if that write fails), as leader the
  // timeline PostgreSQL actually chose, and retracts a record naming itself
  // that its PostgreSQL never reached. See docs/design/state-machine.md.
  uint32_t cluster_timeline = 0;
  // The sync record (absent = asynchronous) and an operator intent, if any.
  std::optional<SyncRecord> sync;
  std::optional<Intent> intent;
};

enum class ActionType {
  kAcquireLeader,   // create leader key = self on our lease, iff absent (create_revision == 0)
  kTakeOverLeader,  // leader key already names us on an older lease: CAS it onto ours
  kReleaseLeader,   // delete the leader key iff it is still ours (mod_revision)
  kPromote,         // promote the local standby
  kDemote,          // fence: terminate backends, stop fast, keep data for a rewind
  kStartPrimary,    // start local PostgreSQL as it was (a primary restarting after a crash)
  kStartReplica,    // start local PostgreSQL as a standby of `target` ("" = no source yet)
  kFollow,          // re-point the running standby at `target`
  kRewind,          // stop if needed, pg_rewind from `target`, start as its standby
  kReclone,         // move data aside, pg_basebackup from `target`, start as its standby
  kStepDown,        // switchover: checkpoint, stop cleanly, record the final position in the
                    // intent and delete the leader key (one transaction)
};
const char* ActionName(ActionType type);

struct Action {
  ActionType type;
  std::string target;  // a member name, for the actions that need one
  bool operator==(const Action& o) const { return type == o.type && target == o.target; }
};

struct Decision {
  std::vector<Action> actions;
  std::string reason;  // one line, for the log, the status and test assertions
};

// Timing and policy knobs that Decide() depends on (see config for defaults).
struct HaConfig {
  // Tuned for a LAN; docs/design/timing.md explains each and its trade-off.
  int64_t ttl_ms = 2'000;                  // leader lease TTL (etcd leases are whole seconds)
  int64_t loop_interval_ms = 250;          // the primary's lease renewal period; the idle cycle
  int64_t safety_margin_ms = 500;          // demote this long before the lease can expire
  int max_start_failures = 2;              // local restarts of a crashed primary before releasing
  uint64_t max_lag_bytes = 16ull << 20;    // a replica further behind than this never promotes
  SyncMode sync_mode = SyncMode::kQuorum;  // what the primary maintains (the record rules failover)
  int sync_count = 1;                      // k in ANY k (...): acknowledgements per commit
  // A standby PostgreSQL waits for stays in its set this long after it stopped
  // streaming (a restart on either side), before quorum mode drops it.
  int64_t sync_reconnect_grace_ms = 2'000;
};

}  // namespace tandem::core
