// This process's image and its re-execution in place (base/reexec.h).
#include "base/reexec.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace tandem {
namespace {

std::string g_executable;
std::vector<std::string> g_arguments;
std::string g_token;
std::string g_version = "unknown";
std::mutex g_refusal_mu;
int g_refusals = 0;          // under g_refusal_mu
std::string g_last_refusal;  // under g_refusal_mu

std::string ReadExeLink() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

std::string RandomToken() {
  unsigned char bytes[8] = {};
  const int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)!::read(fd, bytes, sizeof bytes);
    ::close(fd);
  }
  char hex[17];
  for (size_t i = 0; i < sizeof bytes; ++i) std::snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
  // With /dev/urandom unreadable, the pid and the address of a stack byte
  // still differ between two images of one process (ASLR).
  if (std::strcmp(hex, "0000000000000000") == 0) {
    std::snprintf(hex, sizeof hex, "%08x%08x", static_cast<unsigned>(::getpid()),
                  static_cast<unsigned>(reinterpret_cast<uintptr_t>(&bytes)));
  }
  return hex;
}

}  // namespace

void RememberInvocation(int argc, char** argv) {
  g_executable = ReadExeLink();
  g_arguments.assign(argv, argv + argc);
  g_token = RandomToken();
}

const std::string& InvokedExecutable() {
  return g_executable;
}
const std::vector<std::string>& InvokedArguments() {
  return g_arguments;
}
const std::string& ImageToken() {
  return g_token;
}

void SetBuildVersion(const std::string& version) {
  g_version = version;
}
const std::string& BuildVersion() {
  return g_version;
}

void NoteReloadRefused(const std::string& why) {
  std::lock_guard<std::mutex> lock(g_refusal_mu);
  ++g_refusals;
  g_last_refusal = why;
}

int ReloadRefusals() {
  std::lock_guard<std::mutex> lock(g_refusal_mu);
  return g_refusals;
}

std::string LastReloadRefusal() {
  std::lock_guard<std::mutex> lock(g_refusal_mu);
  return g_last_refusal;
}

Error ReplaceImage() {
  std::vector<char*> args;
  for (auto& a : g_arguments) args.push_back(a.data());
  args.push_back(nullptr);
  // Every descriptor but stdin, stdout and stderr (the journal's stream
  // under systemd) closes on exec: the new image opens its own.
  if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = 3; fd < 65536; ++fd) {
      const int flags = ::fcntl(fd, F_GETFD);
      if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
  }
  std::string why;
  if (!g_executable.empty()) {
    ::execv(g_executable.c_str(), args.data());
    why = g_executable + ": " + std::strerror(errno);
  }
  ::execv("/proc/self/exe", args.data());
  why += (why.empty() ? "" : "; ") + std::string("/proc/self/exe: ") + std::strerror(errno);
  return Error(ErrorCode::kIo, "cannot execute the agent again (" + why + ")");
}

}  // namespace tandem
