// How often a node renews its session lease (docs/design/timing.md): the
// primary every loop interval, anyone else every third of the demotion
// window. Pure: no clock, no I/O.
#pragma once

#include "base/clock.h"
#include "core/types.h"

namespace tandem::core {

// The pause after a renewal attempt until the next one. `primary`: this node
// is the writable primary holding the leader key (its watchdog is armed);
// `last_ok`: the attempt just made succeeded and a lease is held.
MonoMs LeaseRenewalInterval(const HaConfig& ha, bool primary, bool last_ok);

}  // namespace tandem::core
