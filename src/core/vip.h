// Whether this node should hold the floating IP (docs/design/vip.md).
//
// Pure, like Decide() and ComputeRoute(): the agent hands over the
// Observation Decide saw, the Decision it returned, and whether the address is
// on this node's interface now; no I/O, no clock (time is obs.now).
//
// The floating IP is the write route in another form, so it follows safety
// rule 5: only the node that holds the leader key on its live lease AND runs
// PostgreSQL as a writable primary holds it. It is given up before any action
// that gives up the primary role runs (demote, step down, release the key),
// and never outlives the lease deadline. While the store cannot be read, a
// node that holds it keeps it until that deadline (as the route is kept: a
// remote primary fences itself first, rule 2), but never takes it.
#pragma once

#include <string>

#include "core/types.h"

namespace tandem::core {

struct VipDecision {
  bool hold = false;
  std::string reason;  // one line, for the log and the status
};

VipDecision DecideVip(const Observation& obs, const Decision& decision, bool held);

}  // namespace tandem::core
