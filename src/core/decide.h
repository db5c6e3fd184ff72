// The HA decision: a pure function of what this node observed.
#pragma once

#include <string>

#include "core/types.h"

namespace tandem::core {

// Returns what this node should do now, and why. No I/O, no clock: the same
// inputs always give the same decision. See docs/design/state-machine.md.
Decision Decide(const Observation& obs, const HaConfig& cfg);

// The timing invariants between the knobs (ARCHITECTURE.md rule 6). Returns ""
// when they hold, else a message naming the knob to change.
std::string CheckTiming(const HaConfig& cfg);

}  // namespace tandem::core
