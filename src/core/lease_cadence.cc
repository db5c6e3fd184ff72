// LeaseRenewalInterval (lease_cadence.h): the rule and why.
#include "core/lease_cadence.h"

#include <algorithm>

namespace tandem::core {

MonoMs LeaseRenewalInterval(const HaConfig& ha, bool primary, bool last_ok) {
  // The primary renews every loop interval: ttl - margin >= 2 x loop
  // (CheckTiming), so a renewal can fail once and the next one still lands
  // before its deadline, and an etcd election fits too (timing.md). A failed
  // renewal is retried after one loop interval, whoever we are.
  if (primary || !last_ok) return ha.loop_interval_ms;
  // Anyone else's lease only keeps its member key alive and is there to take
  // the leader key with: a third of the demotion window (ttl - margin), at
  // most the margin, so a renewal late by an etcd election plus one retry
  // still lands inside the TTL, and its deadline stays at least two thirds of
  // the window ahead when it takes the key.
  return std::max<MonoMs>(
      ha.loop_interval_ms,
      std::min<MonoMs>((ha.ttl_ms - ha.safety_margin_ms) / 3, ha.safety_margin_ms));
}

}  // namespace tandem::core
