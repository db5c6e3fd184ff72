// The scheduled switchover's time rule (switchover_time.h).
#include "core/switchover_time.h"

#include <ctime>

namespace tandem::core {

std::string FormatUtc(int64_t wall_ms) {
  const std::time_t t = static_cast<std::time_t>(wall_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Status CheckSwitchoverTime(int64_t at_ms, int64_t now_ms) {
  if (at_ms == 0) return Ok();
  if (at_ms < now_ms - kSwitchoverPastToleranceMs) {
    return Error(ErrorCode::kInvalidArgument, "the switchover time " + FormatUtc(at_ms) +
                                                  " is in the past (now " + FormatUtc(now_ms) +
                                                  "); give a later time or none for now");
  }
  if (at_ms > now_ms + kSwitchoverHorizonMs) {
    const int64_t days = (at_ms - now_ms) / (24 * 3600 * 1000);
    return Error(ErrorCode::kInvalidArgument,
                 "the switchover time " + FormatUtc(at_ms) + " is " + std::to_string(days) +
                     " days ahead; a switchover can be scheduled at most " +
                     std::to_string(kSwitchoverHorizonMs / (24 * 3600 * 1000)) +
                     " days ahead (until " + FormatUtc(now_ms + kSwitchoverHorizonMs) +
                     "); nothing was changed");
  }
  return Ok();
}

}  // namespace tandem::core
