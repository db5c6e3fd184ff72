// When a switchover may be scheduled: one rule for every way of asking
// (`--at +DURATION`, `--at 2026-11-22T03:00:00Z`, the API's at_ms), checked
// by the CLI before it asks and by the agent before it records the request.
// Pure: the caller passes the wall time (Clock::WallNow).
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"

namespace tandem::core {

// How far ahead a switchover may be scheduled (a year and a day): a request
// further out is a typo (2099 for 2029) that would block every other
// switchover and failover request until it is cancelled.
inline constexpr int64_t kSwitchoverHorizonMs = int64_t{366} * 24 * 3600 * 1000;
// A time up to this much before now counts as now (a UTC time typed to the
// second, then sent).
inline constexpr int64_t kSwitchoverPastToleranceMs = 1000;

// Ok when at_ms (wall ms since the epoch; 0 = now) lies in
// [now - tolerance, now + horizon]; otherwise kInvalidArgument naming the
// time, the limit and the fix.
Status CheckSwitchoverTime(int64_t at_ms, int64_t now_ms);

// "2026-11-22T03:00:00Z" for wall ms since the epoch (seconds truncated).
std::string FormatUtc(int64_t wall_ms);

}  // namespace tandem::core
