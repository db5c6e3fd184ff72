// The logging facade's writer: one key=value line per message on stderr and,
// when set, a log file; the level, the file and the node name behind one
// mutex (g_mu), so any thread may log. Reads the wall clock for the line's
// timestamp (src/base may).
#include "base/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace tandem::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::mutex g_mu;
FILE* g_file = nullptr;
std::string g_node;

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  out += '"';
  return out;
}
}  // namespace

void SetLevel(Level level) {
  g_level = static_cast<int>(level);
}
Level GetLevel() {
  return static_cast<Level>(g_level.load());
}

void SetFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_file != nullptr) std::fclose(g_file);
  g_file = path.empty() ? nullptr : std::fopen(path.c_str(), "a");
}

void SetNode(const std::string& node) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_node = node;
}

void Write(Level level, const char* module, const std::string& message) {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[80];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  std::lock_guard<std::mutex> lock(g_mu);
  std::string line = std::string(ts) + " level=" + LevelName(level);
  if (!g_node.empty()) line += " node=" + g_node;
  line += std::string(" module=") + module + " msg=" + Quote(message) + "\n";
  std::fputs(line.c_str(), stderr);
  if (g_file != nullptr) {
    std::fputs(line.c_str(), g_file);
    std::fflush(g_file);
  }
}

}  // namespace tandem::log
