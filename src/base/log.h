// Logging facade: one line per message, to stderr (the default), journald,
// syslog or a file (log.target; docs/logging.md).
//
//   TLOG(Info, "agent") << "promoted; reason=" << reason;
//   -> 2026-11-22T10:00:00.123Z level=info module=agent msg="promoted; reason=..."
//   TLOG_EVENT(Info, "ha", "promote") << ...   // + event=promote (log_events.h)
//
// journald gets structured fields (PRIORITY, SYSLOG_IDENTIFIER=tandem,
// TANDEM_MODULE, TANDEM_NODE, TANDEM_CLUSTER, MESSAGE_ID for an event) over its
// native socket protocol, without libsystemd; syslog gets RFC 3164 lines with
// ident "tandem" on /dev/log. A line the chosen target refuses goes to stderr,
// so nothing is lost silently.
//
// Thread-safe. Never log secrets: passwords and keys are redacted at the source.
#pragma once

#include <sstream>
#include <string>

namespace tandem::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class Target { kStderr, kJournald, kSyslog, kFile };

void SetLevel(Level level);
Level GetLevel();
// Also append every line to this file (in addition to the target). Empty = none.
void SetFile(const std::string& path);
// A node name added to every line ("node=node1") and journald's TANDEM_NODE.
void SetNode(const std::string& node);
// The cluster's name: journald's TANDEM_CLUSTER.
void SetCluster(const std::string& cluster);

struct Sink {
  Target target = Target::kStderr;
  std::string file;         // kFile: appended to (created 0640)
  std::string socket_path;  // kJournald / kSyslog: "" = /run/systemd/journal/socket, /dev/log
  int syslog_facility = 3;  // kSyslog: the facility's number (3 = daemon, 16-23 = local0-7)
};
// Where lines go from now on. Returns "" or why the sink cannot be used (the
// file cannot be opened, the socket does not exist); the target is then
// unchanged.
std::string SetSink(const Sink& sink);
// journald when this process runs under systemd with its stderr in the
// journal ($JOURNAL_STREAM set and the journal's socket present), else stderr.
Target AutoTarget();
// "stderr", "journald", "syslog", "file", "auto" (AutoTarget) -> the target;
// false when the word is none of them.
bool ParseTarget(const std::string& word, Target* out);
// "daemon", "user", "local0".."local7" -> the facility's number; -1 otherwise.
int ParseFacility(const std::string& word);

void Write(Level level, const char* module, const std::string& message,
           const char* event = nullptr);

class Line {
 public:
  Line(Level level, const char* module, const char* event = nullptr)
      : level_(level), module_(module), event_(event) {}
  ~Line() { Write(level_, module_, os_.str(), event_); }
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;
  template <typename T>
  Line& operator<<(const T& v) {
    os_ << v;
    return *this;
  }

 private:
  Level level_;
  const char* module_;
  const char* event_;
  std::ostringstream os_;
};

// The wire forms, pure (log_sinks.cc), for the tests.
struct Record {
  Level level = Level::kInfo;
  std::string module, message, node, cluster;
  const char* event = nullptr;  // a name from log_events.h, or nullptr
};
// journald's native datagram: KEY=value lines, a value with a newline in the
// binary form (KEY\n, 64-bit little-endian length, value, \n).
std::string EncodeJournal(const Record& r);
// An RFC 3164 line as syslog(3) sends it to /dev/log: <PRI>Mmm dd hh:mm:ss tandem[pid]: text.
std::string EncodeSyslog(const Record& r, int facility, long long unix_ms, int pid);

}  // namespace tandem::log

// A for-statement rather than if/else, so `if (x) TLOG(...) << y;` has no dangling else.
#define TLOG(level, module)                                                                   \
  for (bool tlog_on_ = ::tandem::log::Level::k##level >= ::tandem::log::GetLevel(); tlog_on_; \
       tlog_on_ = false)                                                                      \
  ::tandem::log::Line(::tandem::log::Level::k##level, module)
// The same with an event kind from log_events.h (journald's MESSAGE_ID).
#define TLOG_EVENT(level, module, event)                                                      \
  for (bool tlog_on_ = ::tandem::log::Level::k##level >= ::tandem::log::GetLevel(); tlog_on_; \
       tlog_on_ = false)                                                                      \
  ::tandem::log::Line(::tandem::log::Level::k##level, module, event)
