// The wire forms of the log targets (log.h): journald's native protocol
// datagram and the RFC 3164 line syslog(3) sends to /dev/log. Pure string
// building; the sockets are in log.cc.
#include <cstdint>
#include <cstdio>
#include <ctime>

#include "base/log.h"
#include "base/log_events.h"

namespace tandem::log {
namespace {

// syslog severities: err 3, warning 4, info 6, debug 7.
int Severity(Level l) {
  switch (l) {
    case Level::kDebug:
      return 7;
    case Level::kInfo:
      return 6;
    case Level::kWarn:
      return 4;
    case Level::kError:
      return 3;
  }
  return 6;
}

// A field of the native protocol; a value with a newline takes the binary form.
void Field(std::string* out, const char* key, const std::string& value) {
  if (value.find('\n') == std::string::npos) {
    *out += key;
    *out += '=';
    *out += value;
    *out += '\n';
    return;
  }
  *out += key;
  *out += '\n';
  uint64_t n = value.size();
  for (int i = 0; i < 8; ++i) *out += static_cast<char>((n >> (8 * i)) & 0xff);
  *out += value;
  *out += '\n';
}

// journald refuses datagrams over its buffer (and needs a memfd for more):
// one line of the agent's log is never this long, a longer one is cut.
constexpr size_t kMaxMessage = 48 * 1024;

std::string Cut(const std::string& s) {
  if (s.size() <= kMaxMessage) return s;
  return s.substr(0, kMaxMessage) + "... (cut)";
}
}  // namespace

std::string EncodeJournal(const Record& r) {
  std::string out;
  Field(&out, "PRIORITY", std::to_string(Severity(r.level)));
  Field(&out, "SYSLOG_IDENTIFIER", "tandem");
  Field(&out, "MESSAGE", Cut(r.message));
  Field(&out, "TANDEM_MODULE", r.module);
  if (!r.node.empty()) Field(&out, "TANDEM_NODE", r.node);
  if (!r.cluster.empty()) Field(&out, "TANDEM_CLUSTER", r.cluster);
  if (r.event != nullptr) {
    Field(&out, "TANDEM_EVENT", r.event);
    if (const Event* e = FindEvent(r.event)) Field(&out, "MESSAGE_ID", e->id);
  }
  return out;
}

std::string EncodeSyslog(const Record& r, int facility, long long unix_ms, int pid) {
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  localtime_r(&secs, &tm);
  char head[96];
  std::snprintf(head, sizeof head,
                "<%d>%s %2d %02d:%02d:%02d tandem[%d]: ", facility * 8 + Severity(r.level),
                kMonths[tm.tm_mon % 12], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, pid);
  std::string out = head;
  if (!r.node.empty()) out += "node=" + r.node + " ";
  out += "module=" + r.module + " ";
  if (r.event != nullptr) out += std::string("event=") + r.event + " ";
  // One line: a newline would start a new syslog record.
  for (char c : Cut(r.message)) out += c == '\n' ? ' ' : c;
  return out;
}

}  // namespace tandem::log
