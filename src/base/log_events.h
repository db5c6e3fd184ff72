// The catalogue of logged event kinds: each decision or state change the
// agent logs once, when it happens, carries one of these. journald gets the
// id as MESSAGE_ID (so `journalctl MESSAGE_ID=...` finds every promotion of
// every node), the text lines get `event=NAME`. Ids are fixed forever: add
// new kinds, never reuse or change an id. The table is documented in
// docs/logging.md (a unit test keeps the two in step).
#pragma once

#include <string_view>

namespace tandem::log {

struct Event {
  const char* name;  // what the text line shows: event=promote
  const char* id;    // 32 lowercase hex digits (journald's MESSAGE_ID)
  const char* what;  // one line for docs/logging.md
};

inline constexpr Event kEvents[] = {
    // One per HA action (core::ActionName), logged when the action starts.
    {"acquire-leader", "55ed6176f5074fbc949d9d8a8fe24a6c", "took the free leader key"},
    {"take-over-leader", "9172fb77eb4c45da843c5e870e6a205c",
     "took the leader key over from a primary that handed it on (switchover)"},
    {"release-leader", "d888d6a48425454b929ae4eb8e1d33c4", "gave the leader key up"},
    {"promote", "14a9ad40495b47e1acddb54e544cd108", "promoted the local standby"},
    {"demote", "d3a0b2f960894799b389ad34c85f8c5f", "stopped the local primary to demote it"},
    {"start-primary", "8f5ec029321c487aa7c300d5ee27e5b2", "started PostgreSQL as the primary"},
    {"start-replica", "0ae7c1c53a3544bb80b97e3f75ab782d", "started PostgreSQL as a replica"},
    {"follow", "c38111aaf2a145d895ac3db6b1b25b46", "pointed the replica at a new upstream"},
    {"rewind", "4fa81558fe454428aa4ff7fe8f8616f2", "rewound the data directory (pg_rewind)"},
    {"reclone", "6a3546b964244274896757ddcecd4fcd",
     "copied the data directory anew (pg_basebackup), the old one kept aside"},
    {"step-down", "53125558ff8c490bb1903942510b4f41", "the primary stepped down for a switchover"},
    // The watchdog and the lease.
    {"fence", "e04a83217a874cd9a80477a521260264",
     "the lease deadline passed: PostgreSQL stopped at once (fenced)"},
    {"lease-lost", "df522d73df7a4fd98763bb41004f55d8", "this node's lease expired in the store"},
    {"postgres-died", "9b73eb28913742bcb2bd7c2685f79258", "the postmaster exited"},
    // The loop and membership.
    {"loop-started", "c9f368e5f34b40ccab0ef96cd53243a7", "the HA loop started"},
    {"loop-stopped", "47e51ae7a4cc4967b636d2c249049053", "the HA loop stopped"},
    {"removed", "edc1f561bccc40e89a1533223b580b3a",
     "this node's registration is gone: it left the cluster"},
    // Operator requests.
    {"switchover-requested", "1f0ba9adb5834f098c332b2487b8a900",
     "an operator asked for a switchover"},
    {"failover-requested", "3484a60acb244fb6a8c3d6b34d62184a", "an operator asked for a failover"},
    {"paused", "9fd5e93e11a1430395745bb776f520fb", "automatic failover paused"},
    {"resumed", "2e9168afb68347658d501bc12fad8608", "automatic failover resumed"},
};

// The event named `name`, or nullptr.
inline const Event* FindEvent(std::string_view name) {
  for (const Event& e : kEvents) {
    if (name == e.name) return &e;
  }
  return nullptr;
}

}  // namespace tandem::log
