// Whether the primary hands the etcd raft leadership to another member, and
// to whom (the agent asks its member who leads, calls this, and carries the
// answer out with dcs::Dcs::MoveLeader).
//
// Why: a crash of the primary's node should cost one lease TTL. If that node
// also led etcd, it would cost an etcd election on top, plus the lease
// extension a new etcd leader grants (etcd renews every lease by an election
// timeout when it takes over): so the primary hands the etcd leadership to a
// replica that is a voting member of the embedded etcd.
//
// Pure: no I/O, no clock (the agent decides when to ask, every few seconds).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/types.h"

namespace tandem::core {

// A registered node as the handoff sees it.
struct EtcdPeer {
  std::string name;
  uint64_t member_id = 0;      // its etcd member (0 = it runs none: a client node)
  Role role = Role::kUnknown;  // as its member state says (kUnknown = none published)
};

struct EtcdLeadership {
  std::string self;
  bool embedded = false;          // this node runs the embedded etcd member
  bool primary = false;           // this node holds the leader key and serves writes
  uint64_t self_member_id = 0;    // its member, as the member's status says
  uint64_t leader_member_id = 0;  // the raft leader that member knows (0 = none)
  std::vector<EtcdPeer> peers;    // every registered node (self is skipped)
};

struct EtcdLeaderHandoff {
  // The members to hand the leadership to, in the order to try (by name);
  // empty = keep it (or it is not ours to move).
  std::vector<EtcdPeer> targets;
  std::string reason;  // one line for the log
};

EtcdLeaderHandoff HandOffEtcdLeadership(const EtcdLeadership& in);

}  // namespace tandem::core
