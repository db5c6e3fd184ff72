// The parsers of PostgreSQL's own files and tool output (declared in
// pg/conf.h): postmaster.pid's first line, pg_controldata's fields, the
// timeline in a WAL file's name, and the last lines of a tool's output for an
// error message. Pure: no I/O.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <optional>
#include <string>

#include "base/strings.h"
#include "pg/conf.h"

namespace tandem::pg {

std::optional<int> ParsePostmasterPid(const std::string& content) {
  auto nl = content.find('\n');
  auto v = ParseInt(Trim(content.substr(0, nl)));
  if (!v || *v <= 0 || *v > 0x7fffffff) return std::nullopt;
  return static_cast<int>(*v);
}

Result<ControlData> ParseControlData(const std::string& output) {
  ControlData cd;
  bool have_id = false, have_tli = false, have_state = false, have_lsn = false;
  for (const auto& l : Split(output, '\n')) {
    auto colon = l.find(':');
    if (colon == std::string::npos) continue;
    std::string key = Trim(l.substr(0, colon));
    std::string val = Trim(l.substr(colon + 1));
    if (key == "Database system identifier") {
      try {
        size_t used = 0;
        cd.system_identifier = std::stoull(val, &used);
        have_id = used == val.size();
      } catch (...) {
      }
    } else if (key == "Latest checkpoint's TimeLineID") {
      auto v = ParseInt(val);
      if (v && *v > 0 && *v <= 0xffffffffLL) {
        cd.timeline = static_cast<uint32_t>(*v);
        have_tli = true;
      }
    } else if (key == "Database cluster state") {
      cd.cluster_state = val;
      have_state = !val.empty();
    } else if (key == "Latest checkpoint location") {
      auto v = ParseLsn(val);
      if (v) {
        cd.checkpoint_lsn = *v;
        have_lsn = true;
      }
    }
  }
  if (!(have_id && have_tli && have_state && have_lsn)) {
    return Error(ErrorCode::kInternal,
                 "cannot parse pg_controldata output (missing system identifier, state, "
                 "checkpoint location or timeline): " +
                     OutputTail(output, 5));
  }
  return cd;
}

std::optional<uint32_t> TimelineFromWalFileName(const std::string& name) {
  std::string t = Trim(name);
  if (t.size() != 24) return std::nullopt;
  uint32_t v = 0;
  for (size_t i = 0; i < 8; ++i) {
    char c = t[i];
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else
      return std::nullopt;
    v = v * 16 + static_cast<uint32_t>(d);
  }
  for (size_t i = 8; i < 24; ++i) {
    if (!std::isxdigit(static_cast<unsigned char>(t[i]))) return std::nullopt;
  }
  if (v == 0) return std::nullopt;
  return v;
}

std::string OutputTail(const std::string& output, size_t n) {
  std::vector<std::string> lines;
  for (auto& l : Split(output, '\n')) {
    for (auto& part : Split(l, '\r')) {
      std::string t = Trim(part);
      if (!t.empty()) lines.push_back(t);
    }
  }
  if (lines.size() > n) lines.erase(lines.begin(), lines.end() - static_cast<long>(n));
  if (lines.empty()) return "(no output)";
  return Join(lines, " | ");
}

}  // namespace tandem::pg
