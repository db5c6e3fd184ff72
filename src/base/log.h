// Logging facade: structured key=value lines on stderr (and optionally a file).
//
//   TLOG(Info, "agent") << "promoted; reason=" << reason;
//   -> 2026-11-22T10:00:00.123Z level=info module=agent msg="promoted; reason=..."
//
// Thread-safe. Never log secrets: passwords and keys are redacted at the source.
#pragma once

#include <sstream>
#include <string>

namespace tandem::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetLevel(Level level);
Level GetLevel();
// Also append every line to this file (in addition to stderr). Empty = stderr only.
void SetFile(const std::string& path);
// A node name added to every line ("node=node1").
void SetNode(const std::string& node);
void Write(Level level, const char* module, const std::string& message);

class Line {
 public:
  Line(Level level, const char* module) : level_(level), module_(module) {}
  ~Line() { Write(level_, module_, os_.str()); }
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
  std::ostringstream os_;
};

}  // namespace tandem::log

// A for-statement rather than if/else, so `if (x) TLOG(...) << y;` has no dangling else.
#define TLOG(level, module)                                                                   \
  for (bool tlog_on_ = ::tandem::log::Level::k##level >= ::tandem::log::GetLevel(); tlog_on_; \
       tlog_on_ = false)                                                                      \
  ::tandem::log::Line(::tandem::log::Level::k##level, module)
