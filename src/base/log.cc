// The logging facade's writer: one line per message to the chosen target
// (stderr, journald, syslog or a file) and, when set, an extra log file; the
// level, the sink, the file and the node name behind one mutex (g_mu), so any
// thread may log. Reads the wall clock for the line's timestamp (src/base
// may). The wire forms are in log_sinks.cc.
#include "base/log.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>

namespace tandem::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::mutex g_mu;
FILE* g_file = nullptr;  // SetFile's extra copy
std::string g_node, g_cluster;
Sink g_sink;
FILE* g_target_file = nullptr;  // kFile
int g_socket = -1;              // kJournald / kSyslog: a datagram socket, not connected
sockaddr_un g_addr{};
bool g_warned_fallback = false;

constexpr const char* kJournalSocket = "/run/systemd/journal/socket";
constexpr const char* kSyslogSocket = "/dev/log";

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

long long UnixMs() {
  auto now = std::chrono::system_clock::now();
  return std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
}

std::string Timestamp(long long ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[80];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return ts;
}

// Requires g_mu.
void CloseSinkLocked() {
  if (g_target_file != nullptr) std::fclose(g_target_file);
  g_target_file = nullptr;
  if (g_socket >= 0) ::close(g_socket);
  g_socket = -1;
}

// Requires g_mu. A datagram to the target's socket, never blocking the
// caller (a full journal queue is a refusal, and the line goes to stderr).
bool SendLocked(const std::string& datagram) {
  if (g_socket < 0) return false;
  const ssize_t n =
      ::sendto(g_socket, datagram.data(), datagram.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&g_addr), sizeof g_addr);
  return n == static_cast<ssize_t>(datagram.size());
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

void SetCluster(const std::string& cluster) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_cluster = cluster;
}

Target AutoTarget() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  if (stream != nullptr && *stream != '\0' && ::stat(kJournalSocket, &st) == 0 &&
      S_ISSOCK(st.st_mode)) {
    return Target::kJournald;
  }
  return Target::kStderr;
}

bool ParseTarget(const std::string& word, Target* out) {
  if (word == "stderr")
    *out = Target::kStderr;
  else if (word == "journald")
    *out = Target::kJournald;
  else if (word == "syslog")
    *out = Target::kSyslog;
  else if (word == "file")
    *out = Target::kFile;
  else if (word == "auto")
    *out = AutoTarget();
  else
    return false;
  return true;
}

int ParseFacility(const std::string& word) {
  if (word == "daemon") return 3;
  if (word == "user") return 1;
  if (word.size() == 6 && word.rfind("local", 0) == 0 && word[5] >= '0' && word[5] <= '7') {
    return 16 + (word[5] - '0');
  }
  return -1;
}

std::string SetSink(const Sink& sink) {
  FILE* file = nullptr;
  int sock = -1;
  sockaddr_un addr{};
  if (sink.target == Target::kFile) {
    if (sink.file.empty()) return "log.target is file but log.file names no file";
    const int fd = ::open(sink.file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) return "cannot open the log file " + sink.file + ": " + std::strerror(errno);
    file = ::fdopen(fd, "a");
    if (file == nullptr) {
      ::close(fd);
      return "cannot open the log file " + sink.file;
    }
  } else if (sink.target == Target::kJournald || sink.target == Target::kSyslog) {
    std::string path = sink.socket_path;
    if (path.empty()) path = sink.target == Target::kJournald ? kJournalSocket : kSyslogSocket;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
      return std::string(sink.target == Target::kJournald ? "journald" : "syslog") +
             " is not listening: no socket at " + path +
             (sink.target == Target::kJournald ? " (is systemd-journald running?)"
                                               : " (is a syslog daemon such as rsyslog running?)");
    }
    if (path.size() >= sizeof addr.sun_path) return "the log socket path is too long: " + path;
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    sock = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return std::string("cannot create a log socket: ") + std::strerror(errno);
  }
  std::lock_guard<std::mutex> lock(g_mu);
  CloseSinkLocked();
  g_sink = sink;
  g_target_file = file;
  g_socket = sock;
  g_addr = addr;
  g_warned_fallback = false;
  return "";
}

void Write(Level level, const char* module, const std::string& message, const char* event) {
  const long long ms = UnixMs();
  std::lock_guard<std::mutex> lock(g_mu);
  std::string fields = std::string("level=") + LevelName(level);
  if (!g_node.empty()) fields += " node=" + g_node;
  fields += std::string(" module=") + module;
  if (event != nullptr) fields += std::string(" event=") + event;
  fields += " msg=" + Quote(message);
  const std::string line = Timestamp(ms) + " " + fields + "\n";
  bool sent = false;
  if (g_sink.target == Target::kJournald || g_sink.target == Target::kSyslog) {
    Record r{level, module, message, g_node, g_cluster, event};
    sent = SendLocked(g_sink.target == Target::kJournald
                          ? EncodeJournal(r)
                          : EncodeSyslog(r, g_sink.syslog_facility, ms, ::getpid()));
    if (!sent && !g_warned_fallback) {
      g_warned_fallback = true;
      std::fputs((Timestamp(ms) + " level=warn module=log msg=\"the log target refused a line (" +
                  std::strerror(errno) + "); such lines go to stderr\"\n")
                     .c_str(),
                 stderr);
    }
  } else if (g_sink.target == Target::kFile && g_target_file != nullptr) {
    sent = std::fputs(line.c_str(), g_target_file) >= 0 && std::fflush(g_target_file) == 0;
  }
  if (!sent) std::fputs(line.c_str(), stderr);
  if (g_file != nullptr) {
    std::fputs(line.c_str(), g_file);
    std::fflush(g_file);
  }
}

}  // namespace tandem::log
