// The cluster event log as data (docs/logging.md, "The cluster event log"):
// one event record (what happened, where, when, in which order), the kinds,
// the order and the retention cap, the selections `GET /v1/events` and
// `tandem cluster log` make (after a sequence, since a time, one node), the
// text line, and the parse of `--since` (a duration or an RFC 3339 time).
// Pure: no I/O, no clock; the caller passes the wall time. The stored and
// the API's JSON form are the agent's (agent/events.h).
//
// The sequence is the store's revision of the event's key (etcd's revision
// is cluster-wide and strictly increasing), so every node sees the same order
// and two nodes never give out the same number.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace tandem::core {

// The store keeps at most this many events; older ones are pruned.
inline constexpr size_t kEventRetention = 1000;
// The most one `GET /v1/events` answers (and its default).
inline constexpr int kEventPageLimit = 500;

enum class EventKind {
  kLeaderChange,
  kAlarmRaised,
  kAlarmCleared,
  kOperationStarted,
  kOperationFinished,
  kOperationFailed,
  kConfigChanged,
  kNodeJoined,
  kNodeRemoved,
};
// "leader-change", "alarm-raised", ... (the API's and the text's word).
const char* EventKindName(EventKind k);

struct Event {
  int64_t seq = 0;      // the store's revision of its key (0 = not yet stored)
  int64_t time_ms = 0;  // wall ms since 1970 UTC, on the writing node
  std::string node;     // the node that wrote it
  std::string kind;     // EventKindName (kept as text: a newer version's kinds pass through)
  std::string message;  // one sentence for an operator
  std::map<std::string, std::string> fields;  // details by name (term, alarm id, operation, ...)
};

// Oldest first: by seq.
void SortEvents(std::vector<Event>* events);

// The seqs to delete so that at most `cap` remain (the oldest ones).
std::vector<int64_t> EventsBeyondCap(const std::vector<Event>& sorted, size_t cap);

// What a reader asks for. since_seq: only seq > since_seq; since_ms: only
// time_ms >= since_ms (0 = any); node: only that node's ("" = any); limit:
// at most this many, the oldest first.
struct EventFilter {
  int64_t since_seq = 0;
  int64_t since_ms = 0;
  std::string node;
  size_t limit = kEventPageLimit;
};
struct EventPage {
  std::vector<Event> events;
  int64_t next = 0;  // the seq to ask after next time (the last one's, or since_seq)
};
EventPage SelectEvents(const std::vector<Event>& sorted, const EventFilter& filter);

// "2026-12-03T20:00:00.123Z" for wall ms since the epoch.
std::string FormatEventTime(int64_t wall_ms);
// One line: "2026-12-03T20:00:00.123Z  node1  leader-change  node1 became primary (term 4)".
std::string RenderEvent(const Event& e);

// `--since`: a duration before now ("10m", "2h", "90s", "1d") or an RFC 3339
// time ("2026-12-03T20:00:00Z", with fractions and a +01:00 offset) -> wall
// ms. kInvalidArgument names the value and the forms accepted.
Result<int64_t> ParseSince(std::string_view text, int64_t now_ms);

}  // namespace tandem::core
