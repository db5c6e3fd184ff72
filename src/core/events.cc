// The cluster event log's pure part (core/events.h): kinds, order, the cap,
// the selections, the text line and the `--since` parse.
#include "core/events.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <optional>

#include "base/strings.h"

namespace tandem::core {

const char* EventKindName(EventKind k) {
  switch (k) {
    case EventKind::kLeaderChange:
      return "leader-change";
    case EventKind::kAlarmRaised:
      return "alarm-raised";
    case EventKind::kAlarmCleared:
      return "alarm-cleared";
    case EventKind::kOperationStarted:
      return "operation-started";
    case EventKind::kOperationFinished:
      return "operation-finished";
    case EventKind::kOperationFailed:
      return "operation-failed";
    case EventKind::kConfigChanged:
      return "config-changed";
    case EventKind::kNodeJoined:
      return "node-joined";
    case EventKind::kNodeRemoved:
      return "node-removed";
  }
  return "unknown";
}

void SortEvents(std::vector<Event>* events) {
  std::stable_sort(events->begin(), events->end(),
                   [](const Event& a, const Event& b) { return a.seq < b.seq; });
}

std::vector<int64_t> EventsBeyondCap(const std::vector<Event>& sorted, size_t cap) {
  std::vector<int64_t> out;
  if (sorted.size() <= cap) return out;
  const size_t extra = sorted.size() - cap;
  for (size_t i = 0; i < extra; ++i) out.push_back(sorted[i].seq);
  return out;
}

EventPage SelectEvents(const std::vector<Event>& sorted, const EventFilter& filter) {
  EventPage page;
  page.next = filter.since_seq;
  for (const Event& e : sorted) {
    if (page.events.size() >= filter.limit) break;
    if (e.seq <= filter.since_seq) continue;
    // Skipped events still move `next`: a follower asking again does not
    // read them twice.
    page.next = e.seq;
    if (filter.since_ms != 0 && e.time_ms < filter.since_ms) continue;
    if (!filter.node.empty() && e.node != filter.node) continue;
    page.events.push_back(e);
  }
  return page;
}

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int64_t z, int* y, int* m, int* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = static_cast<int>(yoe + era * 400 + (*m <= 2 ? 1 : 0));
}

// Reads exactly n digits at *pos.
bool Digits(std::string_view s, size_t* pos, size_t n, int* out) {
  if (*pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[*pos + i];
    if (std::isdigit(static_cast<unsigned char>(c)) == 0) return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool Expect(std::string_view s, size_t* pos, char c) {
  if (*pos >= s.size() || std::toupper(static_cast<unsigned char>(s[*pos])) != c) return false;
  ++*pos;
  return true;
}

// RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM).
bool ParseRfc3339(std::string_view s, int64_t* out_ms) {
  size_t p = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!Digits(s, &p, 4, &y) || !Expect(s, &p, '-') || !Digits(s, &p, 2, &mo) ||
      !Expect(s, &p, '-') || !Digits(s, &p, 2, &d)) {
    return false;
  }
  if (p >= s.size() || (s[p] != 'T' && s[p] != 't' && s[p] != ' ')) return false;
  ++p;
  if (!Digits(s, &p, 2, &h) || !Expect(s, &p, ':') || !Digits(s, &p, 2, &mi) ||
      !Expect(s, &p, ':') || !Digits(s, &p, 2, &sec)) {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return false;
  int64_t ms = 0;
  if (p < s.size() && s[p] == '.') {
    ++p;
    int64_t scale = 100;
    const size_t first = p;
    while (p < s.size() && std::isdigit(static_cast<unsigned char>(s[p])) != 0) {
      ms += (s[p] - '0') * scale;
      scale /= 10;
      ++p;
    }
    if (p == first) return false;
  }
  int64_t offset_min = 0;
  if (p < s.size() && (s[p] == 'Z' || s[p] == 'z')) {
    ++p;
  } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
    const int sign = s[p] == '+' ? 1 : -1;
    ++p;
    int oh = 0, om = 0;
    if (!Digits(s, &p, 2, &oh) || !Expect(s, &p, ':') || !Digits(s, &p, 2, &om)) return false;
    if (oh > 23 || om > 59) return false;
    offset_min = sign * (oh * 60 + om);
  } else {
    return false;
  }
  if (p != s.size()) return false;
  const int64_t days = DaysFromCivil(y, mo, d);
  const int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
  *out_ms = secs * 1000 + ms;
  return true;
}

// "10m", "2h", "90s", "1d", "500ms"; a bare number is refused (minutes or seconds?).
std::optional<int64_t> ParseAgo(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s.back())) != 0) return std::nullopt;
  if (s.back() == 'd') {
    auto n = ParseInt(s.substr(0, s.size() - 1));
    if (!n || *n < 0 || *n > 36500) return std::nullopt;
    return *n * 86400 * 1000;
  }
  if (s.back() == 'h' && s.size() > 1) {
    auto n = ParseInt(s.substr(0, s.size() - 1));
    if (!n || *n < 0 || *n > 876000) return std::nullopt;
    return *n * 3600 * 1000;
  }
  return ParseDurationMs(s);
}

}  // namespace

std::string FormatEventTime(int64_t wall_ms) {
  const int64_t secs = wall_ms >= 0 ? wall_ms / 1000 : (wall_ms - 999) / 1000;
  const int64_t ms = wall_ms - secs * 1000;
  const int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  const int64_t rem = secs - days * 86400;
  int y = 0, m = 0, d = 0;
  CivilFromDays(days, &y, &m, &d);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d,
                static_cast<int>(rem / 3600), static_cast<int>(rem / 60 % 60),
                static_cast<int>(rem % 60), static_cast<int>(ms));
  return buf;
}

std::string RenderEvent(const Event& e) {
  char kind[24];
  std::snprintf(kind, sizeof kind, "%-18s", e.kind.c_str());
  char node[24];
  std::snprintf(node, sizeof node, "%-8s", e.node.c_str());
  return FormatEventTime(e.time_ms) + "  " + node + "  " + kind + "  " + e.message;
}

Result<int64_t> ParseSince(std::string_view text, int64_t now_ms) {
  if (auto ago = ParseAgo(text)) return now_ms - *ago;
  int64_t at = 0;
  if (ParseRfc3339(text, &at)) return at;
  return Error(ErrorCode::kInvalidArgument,
               "--since '" + std::string(text) +
                   "' is neither a duration nor an RFC 3339 time; use a duration before now "
                   "(90s, 10m, 2h, 1d) or a time such as 2026-12-03T20:00:00Z");
}

}  // namespace tandem::core
