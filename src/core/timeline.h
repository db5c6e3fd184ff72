// What this node writes to the timeline record (cluster_view.h: "the newest
// timeline a member announced", docs/design/state-machine.md). The agent
// carries the answer out with a compare-and-swap on the record it read.
//
// Rules:
// - Announce before promoting: a promotion of a server on timeline t first
//   records t + 1 under this node's name; if that write fails, no promotion.
// - Keep it current as leader: the node that holds the leader key and runs a
//   writable primary records the timeline PostgreSQL actually chose when it
//   is newer than the record.
// - Retract an announcement that never happened: when the record names this
//   node with timeline t + 1 but its PostgreSQL runs as a standby on t, the
//   promotion was announced and never took place: record t again, or nobody
//   could ever be promoted again. Only a running standby's timeline is
//   trusted for this (a stopped server's pg_control may still name the old
//   timeline after a real promotion).
//
// Pure: no I/O, no clock.
#pragma once

#include <cstdint>
#include <string>

#include "core/types.h"

namespace tandem::core {

struct TimelineRecordState {
  uint32_t timeline = 0;  // 0 = no record yet
  std::string member;     // who announced it
};

// Announce before promoting: the timeline to record before promoting a server
// that runs on local_timeline.
uint32_t TimelineBeforePromotion(uint32_t local_timeline);

struct TimelineUpkeep {
  enum class Kind { kNone, kKeepCurrent, kRetract };
  Kind kind = Kind::kNone;
  uint32_t timeline = 0;  // what to record (kKeepCurrent, kRetract)
  std::string reason;     // one line for the log
};

// The record upkeep of one cycle (the "keep current" and "retract" rules).
// leading: this node holds the leader key.
TimelineUpkeep MaintainTimelineRecord(const std::string& self, bool leading,
                                      const LocalPostgres& local,
                                      const TimelineRecordState& record);

}  // namespace tandem::core
