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
enum class Role { kPrimary, kReplica, kStopped, kUnknown };
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

struct Observation {
  MonoMs now = 0;
  std::string self;
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
  int64_t ttl_ms = 10'000;               // leader lease TTL
  int64_t loop_interval_ms = 1'000;      // agent cycle when nothing happens
  int64_t safety_margin_ms = 2'000;      // demote this long before the lease can expire
  int max_start_failures = 2;            // local restarts of a crashed primary before releasing
  uint64_t max_lag_bytes = 16ull << 20;  // a replica further behind than this never promotes
};

}  // namespace tandem::core
