// The timeline record decisions (timeline.h). Pure.
#include "core/timeline.h"

namespace tandem::core {

uint32_t TimelineBeforePromotion(uint32_t local_timeline) {
  return local_timeline + 1;
}

TimelineUpkeep MaintainTimelineRecord(const std::string& self, bool leading,
                                      const LocalPostgres& local,
                                      const TimelineRecordState& record) {
  TimelineUpkeep out;
  if (leading && local.running && !local.in_recovery && local.timeline > record.timeline) {
    out.kind = TimelineUpkeep::Kind::kKeepCurrent;
    out.timeline = local.timeline;  // the timeline PostgreSQL actually chose
    out.reason = "recording timeline " + std::to_string(local.timeline) + " (the record says " +
                 std::to_string(record.timeline) + ")";
    return out;
  }
  if (record.member == self && local.running && local.in_recovery && local.timeline != 0 &&
      local.timeline + 1 == record.timeline) {
    out.kind = TimelineUpkeep::Kind::kRetract;
    out.timeline = local.timeline;
    out.reason =
        "retracting timeline " + std::to_string(record.timeline) + " that was never reached";
    return out;
  }
  return out;
}

}  // namespace tandem::core
