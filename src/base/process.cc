// Child processes: fork/exec with the options of SpawnOptions (user, env,
// process group, output fd), RunCommand (to completion, with output and a
// timeout), liveness, reaping orphans as a subreaper,
// killing a process tree, waiting for exit. Any thread: g_reap_mu keeps
// ReapChildren from taking the exit status of a child RunCommand waits for.
#include "base/process.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>

#include "base/clock.h"
#include "base/proc_info.h"
#include "base/strings.h"

extern char** environ;

namespace tandem {
namespace {

// Children that RunCommand is about to wait for: ReapChildren must not take
// their exit status. Spawning happens under the same lock, so a child cannot
// exit and be reaped before it is registered.
std::mutex g_reap_mu;
std::set<pid_t> g_waited;

struct UserIds {
  uid_t uid;
  gid_t gid;
  std::string home;
};

Result<UserIds> Lookup(const std::string& user) {
  struct passwd pw {};
  struct passwd* res = nullptr;
  char buf[4096];
  if (getpwnam_r(user.c_str(), &pw, buf, sizeof buf, &res) != 0 || res == nullptr) {
    return Error(ErrorCode::kInvalidArgument,
                 "no such OS user '" + user + "' (set run_as_user in the config or create it)");
  }
  return UserIds{pw.pw_uid, pw.pw_gid, pw.pw_dir};
}

// Everything after fork() must be async-signal-safe-ish: we prepared all data before.
[[noreturn]] void ExecChild(const std::vector<char*>& args, const SpawnOptions& opts,
                            const UserIds* ids, int out_fd, const std::vector<char*>& envp) {
  if (opts.new_process_group) ::setpgid(0, 0);
  ::signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull >= 0) ::dup2(devnull, 0);
  if (out_fd >= 0) {
    ::dup2(out_fd, 1);
    ::dup2(out_fd, 2);
  }
  if (!opts.cwd.empty() && ::chdir(opts.cwd.c_str()) != 0) _exit(126);
  if (ids != nullptr) {
    if (::setgroups(0, nullptr) != 0 && errno != EPERM) _exit(126);
    if (::setgid(ids->gid) != 0 || ::setuid(ids->uid) != 0) _exit(126);
  }
  ::execvpe(args[0], args.data(), envp.data());
  _exit(127);
}

std::vector<std::string> BuildEnv(const SpawnOptions& opts, const UserIds* ids) {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string s(*e);
    auto eq = s.find('=');
    if (eq != std::string::npos) env[s.substr(0, eq)] = s.substr(eq + 1);
  }
  if (ids != nullptr) {
    env["HOME"] = ids->home;
    env["USER"] = opts.run_as_user;
    env["LOGNAME"] = opts.run_as_user;
  }
  for (const auto& [k, v] : opts.env) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

Result<pid_t> SpawnWithFd(const std::vector<std::string>& argv, const SpawnOptions& opts,
                          int out_fd) {
  if (argv.empty()) return Error(ErrorCode::kInvalidArgument, "empty command");
  std::optional<UserIds> ids;
  if (!opts.run_as_user.empty() && ::geteuid() == 0) {
    auto r = Lookup(opts.run_as_user);
    if (!r) return r.error();
    ids = *r;
  }
  auto env_strings = BuildEnv(opts, ids ? &*ids : nullptr);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  // Everything the child needs is built before fork(): no allocation after it.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return Error(ErrorCode::kIo, std::string("fork: ") + std::strerror(errno));
  if (pid == 0) ExecChild(args, opts, ids ? &*ids : nullptr, out_fd, envp);
  if (opts.new_process_group) ::setpgid(pid, pid);  // also from the parent: no race
  return pid;
}

}  // namespace

Result<pid_t> Spawn(const std::vector<std::string>& argv, const SpawnOptions& opts) {
  std::lock_guard<std::mutex> lock(g_reap_mu);
  int fd = -1;
  if (!opts.output_file.empty()) {
    fd = ::open(opts.output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
      return Error(ErrorCode::kIo,
                   "cannot open log " + opts.output_file + ": " + std::strerror(errno));
    }
    if (!opts.run_as_user.empty() && ::geteuid() == 0) {
      auto ids = Lookup(opts.run_as_user);
      if (ids) (void)::fchown(fd, ids->uid, ids->gid);
    }
  } else {
    fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  }
  auto r = SpawnWithFd(argv, opts, fd);
  if (fd >= 0) ::close(fd);
  return r;
}

namespace {

// Hands every complete line in *pending to on_line (empty lines skipped),
// keeping the unfinished tail.
void EmitLines(std::string* pending, const std::function<void(const std::string&)>& on_line) {
  size_t pos;
  while ((pos = pending->find_first_of("\r\n")) != std::string::npos) {
    std::string line = pending->substr(0, pos);
    pending->erase(0, pos + 1);
    if (!line.empty()) on_line(line);
  }
}

// Reads the child's output until EOF (every writer closed) or timeout_ms
// (0 = none) passes, keeping the last MiB in *output and handing each line to
// on_line. Returns false when it timed out.
bool ReadOutput(int fd, int64_t timeout_ms, const std::function<void(const std::string&)>& on_line,
                std::string* output) {
  std::string pending;
  const MonoMs start = SystemClock::Get().Now();
  bool timed_out = false;
  while (true) {
    int wait_ms = 200;
    if (timeout_ms > 0) {
      MonoMs left = timeout_ms - (SystemClock::Get().Now() - start);
      if (left <= 0) {
        timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(std::min<MonoMs>(left, 200));
    }
    struct pollfd p {
      fd, POLLIN, 0
    };
    int n = ::poll(&p, 1, wait_ms);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    char buf[8192];
    ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // EOF: every writer closed
    output->append(buf, static_cast<size_t>(got));
    if (output->size() > (1u << 20)) output->erase(0, output->size() - (1u << 20));
    if (on_line) {
      pending.append(buf, static_cast<size_t>(got));
      EmitLines(&pending, on_line);
    }
  }
  if (on_line && !pending.empty()) on_line(pending);
  return !timed_out;
}

// Waits for the child and records how it ended; exit code 127 (the shell's
// "command not found", and ExecChild's) is an error naming the program.
Result<RunResult> Collect(pid_t pid, const std::string& program, RunResult result) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st)) result.exit_code = WEXITSTATUS(st);
  if (WIFSIGNALED(st)) result.signal = WTERMSIG(st);
  if (result.exit_code == 127) {
    return Error(ErrorCode::kNotFound, "cannot execute '" + program + "' (not installed?)");
  }
  return result;
}

}  // namespace

Result<RunResult> RunCommand(const std::vector<std::string>& argv, const SpawnOptions& opts,
                             int64_t timeout_ms,
                             const std::function<void(const std::string&)>& on_line) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    return Error(ErrorCode::kIo, std::string("pipe: ") + std::strerror(errno));
  }
  Result<pid_t> pid = Error(ErrorCode::kInternal, "not spawned");
  {
    std::lock_guard<std::mutex> lock(g_reap_mu);
    pid = SpawnWithFd(argv, opts, pipefd[1]);
    if (pid.ok()) g_waited.insert(*pid);
  }
  struct Unregister {
    pid_t p;
    ~Unregister() {
      std::lock_guard<std::mutex> lock(g_reap_mu);
      g_waited.erase(p);
    }
  } unregister{pid.ok() ? *pid : 0};
  ::close(pipefd[1]);
  if (!pid) {
    ::close(pipefd[0]);
    return pid.error();
  }
  RunResult result;
  const bool finished = ReadOutput(pipefd[0], timeout_ms, on_line, &result.output);
  ::close(pipefd[0]);
  if (!finished) {
    KillProcessTree(*pid, SIGKILL);
    int st = 0;
    ::waitpid(*pid, &st, 0);
    return Error(ErrorCode::kTimeout, "'" + argv[0] + "' did not finish within " +
                                          std::to_string(timeout_ms / 1000) + " s");
  }
  return Collect(*pid, argv[0], std::move(result));
}

bool IsAlive(pid_t pid) {
  if (pid <= 0) return false;
  // Our own child (or an orphan we adopted as subreaper): the kernel says
  // whether it exited without a /proc read, and leaves a zombie unreaped.
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0) {
    return info.si_pid == 0;  // 0: no state change yet, still running
  }
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  auto st = ReadProcStat(pid);
  return st && st->state != 'Z' && st->state != 'X';
}

namespace {
// The exited children of ours that are not being waited for by RunCommand,
// from /proc/self/task/*/children (no scan of every process). Used only when
// the first zombie waitid() shows is one a RunCommand call owns.
std::vector<pid_t> OtherZombieChildren() {
  std::vector<pid_t> out;
  for (pid_t c : ChildrenOf(::getpid())) {
    if (g_waited.count(c) != 0) continue;
    auto st = ReadProcStat(c);
    if (st && st->state == 'Z') out.push_back(c);
  }
  return out;
}
}  // namespace

int ReapChildren() {
  // Reap exited children (ours or adopted orphans) one by one, skipping those a
  // RunCommand call is waiting for: waitpid(-1) would steal their exit status.
  // With nothing to reap this is one waitid() call.
  std::lock_guard<std::mutex> lock(g_reap_mu);
  int n = 0;
  while (true) {
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) break;
    const pid_t pid = info.si_pid;
    if (g_waited.count(pid) != 0) {
      // Its RunCommand reaps it; look past it for the others.
      for (pid_t z : OtherZombieChildren()) {
        int st = 0;
        if (::waitpid(z, &st, WNOHANG) > 0) ++n;
      }
      break;
    }
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) <= 0) break;
    ++n;
  }
  return n;
}

void BecomeSubreaper() {
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

void KillProcessTree(pid_t pid, int sig) {
  if (pid <= 0) return;
  if (::getpgid(pid) == pid) {
    ::kill(-pid, sig);
  } else {
    ::kill(pid, sig);
  }
}

bool WaitForExit(pid_t pid, int64_t timeout_ms, const Clock& clock) {
  const MonoMs start = clock.Now();
  while (true) {
    int st = 0;
    ::waitpid(pid, &st, WNOHANG);  // reap if it is our child
    if (!IsAlive(pid)) return true;
    if (clock.Now() - start >= timeout_ms) return false;
    clock.SleepFor(20);
  }
}

std::string FindInPath(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  for (const auto& dir : Split(path ? path : "/usr/bin:/bin", ':')) {
    std::string p = dir + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

}  // namespace tandem
