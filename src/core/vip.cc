// DecideVip: whether this node holds the floating IP after this cycle's
// decision (safety rule 5: only a leader on its live lease running a writable
// primary). Pure: no I/O, no clock (time is obs.now).
#include "core/vip.h"

#include "core/route.h"

namespace tandem::core {
namespace {

VipDecision Release(std::string reason) {
  return VipDecision{false, std::move(reason)};
}

}  // namespace

VipDecision DecideVip(const Observation& obs, const Decision& decision, bool held) {
  if (obs.lease == 0 || obs.now >= obs.lease_deadline) {
    return Release("no valid lease: the floating IP is not ours");
  }
  if (!obs.pg.running || obs.pg.in_recovery) {
    return Release("PostgreSQL is not a running primary here");
  }
  if (GivesUpPrimary(decision)) {
    return Release("giving up the primary role: the floating IP goes first");
  }
  if (!obs.store_ok) {
    if (held) {
      return VipDecision{true,
                         "the store cannot be read: keeping the floating IP until the lease "
                         "deadline"};
    }
    return Release("the store cannot be read: not taking the floating IP");
  }
  if (!obs.leader || obs.leader->holder != obs.self) {
    return Release("this node does not hold the leader key");
  }
  if (obs.leader->lease != obs.lease) {
    return Release("the leader key names this node on another lease");
  }
  return VipDecision{true, "this node is the primary holding the leader key"};
}

}  // namespace tandem::core
