// The server's lifecycle: Start, Stop, Promote, Reload, whether it runs
// (IsRunning, Pid: the postmaster followed by its pid, pg/postmaster.h) and
// which settings wait for a restart. Every time read and wait goes through
// clock_; pg_ctl itself is waited for by base/process.h. Runs on the caller's
// thread; IsRunning/Pid/PendingRestart may run on any thread.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "base/file.h"
#include "base/log.h"
#include "base/process.h"
#include "base/strings.h"
#include "pg/conf.h"
#include "pg/internal.h"
#include "pg/libpq_conn.h"
#include "pg/postgres.h"

namespace tandem::pg {

using internal::CheckOwner;
using internal::Contains;
using internal::Ctx;
using internal::Errno;
using internal::FileTail;
using internal::kMod;
using internal::LocalParams;
using internal::NotValid;
using internal::PrepareDir;
using internal::RemoveFile;
using internal::Seconds;

int Postgres::Pid() const {
  return postmaster_.Pid();
}
bool Postgres::IsRunning() const {
  return Pid() != 0;
}

namespace {

// The socket directory (0700) and the server log (its directory too) that
// pg_ctl start needs, owned by the service user.
Status PrepareRunFiles(const Paths& p) {
  if (p.socket_dir.empty()) {
    return Error(ErrorCode::kInvalidArgument, "no unix socket directory configured");
  }
  TANDEM_TRY(PrepareDir(p.socket_dir, 0700, p.run_as_user, false, "socket directory"));
  if (p.log_file.empty()) {
    return Error(ErrorCode::kInvalidArgument, "no PostgreSQL log file configured");
  }
  std::string log_dir = DirName(p.log_file);
  if (!PathExists(log_dir)) {
    TANDEM_TRY(PrepareDir(log_dir, 0750, p.run_as_user, true, "log directory"));
  }
  {
    int fd = ::open(p.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) return Errno(ErrorCode::kIo, "cannot create the server log " + p.log_file);
    ::close(fd);
    TANDEM_TRY(Chown(p.log_file, p.run_as_user));
  }
  return Ok();
}

// Fence before a fast stop: no client keeps writing while the shutdown
// checkpoint runs. Our own sessions (application_name tandem) do not write
// and are not counted. A connection of its own: a kept one may be busy in
// another thread.
void TerminateClientBackends(const Paths& p, const Settings& s) {
  auto conn = PgConn::Connect(LocalParams(p, s, 2, 2000), "local PostgreSQL");
  if (!conn) {
    TLOG(Warn, kMod) << "could not terminate client backends before stopping: "
                     << conn.error().message();
    return;
  }
  auto r = conn->Exec(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
      "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
      "AND application_name <> 'tandem'",
      "terminating client backends");
  if (r) {
    TLOG(Info, kMod) << "terminated " << r->Get(0, 0) << " client backend(s) before stopping";
  } else {
    TLOG(Warn, kMod) << r.error().message();
  }
}

// pg_ctl promote -w, when we could not signal the postmaster ourselves.
Status PgCtlPromote(const Ctx& c, int64_t timeout_ms) {
  const std::string& d = c.p.data_dir;
  auto r = RunCommand(
      {c.Bin("pg_ctl"), "promote", "-D", d, "-w", "-t", std::to_string(Seconds(timeout_ms))},
      c.Opts(), timeout_ms + 5'000);
  if (!r) return r.error().Wrap("pg_ctl promote -D " + d);
  if (r->exit_code != 0) {
    ErrorCode code = Contains(r->output, "not in standby mode") ? ErrorCode::kFailedPrecondition
                                                                : ErrorCode::kIo;
    return Error(code, "pg_ctl promote -D " + d + " failed (exit " + std::to_string(r->exit_code) +
                           "): " + OutputTail(r->output, 5) + "; server log " + c.p.log_file +
                           ": " + FileTail(c.p.log_file, 5));
  }
  return Ok();
}

// So pg_control (and a pg_rewind against us) shows the new timeline now.
// The checkpoint goes on if we stop waiting: never hold the HA loop (and
// its lease renewals) for long.
void CheckpointAfterPromote(const Paths& p, const Settings& s) {
  auto conn = PgConn::Connect(LocalParams(p, s, 2, 1000), "local PostgreSQL");
  if (!conn) {
    TLOG(Warn, kMod) << "no CHECKPOINT after promote: " << conn.error().message();
    return;
  }
  auto ck = conn->Exec("CHECKPOINT", "CHECKPOINT after promote");
  if (!ck) TLOG(Warn, kMod) << ck.error().message();
}

}  // namespace

Status Postgres::Start(int64_t timeout_ms) {
  Ctx c{paths_};
  const std::string& d = paths_.data_dir;
  auto st = InspectDataDir();
  if (st != DataDirState::kValid) return NotValid(d, st, "start PostgreSQL");
  TANDEM_TRY(CheckOwner(paths_, "start PostgreSQL"));
  // A killed postmaster left as a zombie (we are its subreaper) still
  // "exists" for PostgreSQL's lock file check, and the new one would refuse
  // to start: reap it first.
  ReapChildren();
  if (int pid = Pid(); pid != 0) {
    TLOG(Info, kMod) << "PostgreSQL in " << d << " is already running (pid " << pid << ")";
    return Ok();
  }
  const std::string pidfile = c.Data("postmaster.pid");
  if (PathExists(pidfile)) {
    auto content = ReadFile(pidfile);
    auto pid = content ? ParsePostmasterPid(*content) : std::nullopt;
    TANDEM_TRY(RemoveFile(pidfile));
    TLOG(Warn, kMod) << "removed stale " << pidfile << " (pid "
                     << (pid ? std::to_string(*pid) : std::string("unreadable"))
                     << " is not a running postmaster of this data directory)";
  }
  TANDEM_TRY(c.NeedBin("pg_ctl"));
  TANDEM_TRY(PrepareRunFiles(paths_));
  std::vector<std::string> argv = {c.Bin("pg_ctl"),
                                   "start",
                                   "-D",
                                   d,
                                   "-l",
                                   paths_.log_file,
                                   "-w",
                                   "-t",
                                   std::to_string(Seconds(timeout_ms))};
  TLOG(Info, kMod) << "starting PostgreSQL: pg_ctl start -D " << d << " (port " << settings_.port
                   << ")";
  auto r = RunCommand(argv, c.Opts(), timeout_ms + 15'000);
  ForgetConnections();  // any kept one belonged to an earlier server
  if (r && r->exit_code == 0) {
    TLOG(Info, kMod) << "PostgreSQL started, pid " << Pid();
    return Ok();
  }
  std::string tail = r ? OutputTail(r->output, 5) : r.error().message();
  std::string log_tail = FileTail(paths_.log_file);
  if (IsRunning()) {
    return Error(ErrorCode::kTimeout,
                 "PostgreSQL in " + d + " did not accept connections within " +
                     std::to_string(Seconds(timeout_ms)) +
                     " s but is still running (a standby may be waiting for WAL from its "
                     "primary): pg_ctl: " +
                     tail + "; server log " + paths_.log_file + ": " + log_tail);
  }
  return Error(ErrorCode::kIo, "pg_ctl start -D " + d + " failed: " + tail + "; server log " +
                                   paths_.log_file + ": " + log_tail +
                                   "; fix the cause in the log and start again");
}

Status Postgres::Stop(StopMode mode, int64_t timeout_ms) {
  Ctx c{paths_};
  const std::string& d = paths_.data_dir;
  int pid = Pid();
  if (pid == 0) {
    TLOG(Info, kMod) << "PostgreSQL in " << d << " is not running; nothing to stop";
    return Ok();
  }
  const char* m = mode == StopMode::kFast ? "fast" : "immediate";
  ForgetConnections();  // the server ends every session now (ours are not counted below)
  if (mode == StopMode::kFast) TerminateClientBackends(paths_, settings_);
  std::string why;
  // The postmaster's own signals (SIGINT fast, SIGQUIT immediate), watched
  // every few ms: pg_ctl stop -w looks only every 100 ms, which a switchover
  // pays in write unavailability.
  TLOG(Info, kMod) << "stopping PostgreSQL (pid " << pid << "): " << m << " shutdown";
  if (::kill(pid, mode == StopMode::kFast ? SIGINT : SIGQUIT) == 0) {
    if (WaitForExit(pid, timeout_ms, clock_)) {
      TLOG(Info, kMod) << "PostgreSQL stopped (" << m << ")";
      return Ok();
    }
    why = std::string("the postmaster did not stop within ") + std::to_string(Seconds(timeout_ms)) +
          " s of the " + m + " shutdown signal";
  } else if (c.NeedBin("pg_ctl").ok()) {
    TLOG(Info, kMod) << "stopping PostgreSQL (pid " << pid << "): pg_ctl stop -m " << m;
    auto r = RunCommand({c.Bin("pg_ctl"), "stop", "-D", d, "-m", m, "-w", "-t",
                         std::to_string(Seconds(timeout_ms))},
                        c.Opts(), timeout_ms + 5'000);
    if (r && r->exit_code == 0 && WaitForExit(pid, 5'000, clock_)) {
      TLOG(Info, kMod) << "PostgreSQL stopped (" << m << ")";
      return Ok();
    }
    why = r ? "pg_ctl stop failed (exit " + std::to_string(r->exit_code) +
                  "): " + OutputTail(r->output, 5)
            : r.error().message();
  } else {
    why = "pg_ctl not found";
  }
  if (!IsAlive(pid)) return Ok();
  TLOG(Warn, kMod) << why << "; killing postmaster pid " << pid << " and its children (SIGKILL)";
  KillPostmaster(pid);
  if (!WaitForExit(pid, 10'000, clock_)) {
    return Error(ErrorCode::kTimeout, "PostgreSQL postmaster pid " + std::to_string(pid) + " in " +
                                          d + " survived SIGKILL for 10 s (" + why +
                                          "); check for a hung disk (D state) and the server log " +
                                          paths_.log_file);
  }
  TLOG(Warn, kMod) << "PostgreSQL postmaster pid " << pid << " killed";
  return Ok();
}

Status Postgres::Promote(int64_t timeout_ms) {
  Ctx c{paths_};
  const std::string& d = paths_.data_dir;
  if (!IsRunning()) {
    return Error(ErrorCode::kFailedPrecondition,
                 "cannot promote: PostgreSQL in " + d + " is not running; start it first");
  }
  TANDEM_TRY(c.NeedBin("pg_ctl"));
  TLOG(Info, kMod) << "promoting PostgreSQL in " << d;
  // What pg_ctl promote does (the "promote" file, then SIGUSR1 to the
  // postmaster), but watched every 5 ms instead of every 100 ms: the end of
  // recovery is when writes resume after a failover or switchover.
  // A connection of its own, polled every 5 ms on clock_.
  const auto local = LocalParams(paths_, settings_, 2, 0);
  auto watch = PgConn::Connect(local, "local PostgreSQL");
  bool signalled = false;
  if (watch) {
    auto rec = watch->Exec("SELECT pg_is_in_recovery()", "pg_is_in_recovery");
    if (rec && rec->Get(0, 0) != "t") {
      return Error(ErrorCode::kFailedPrecondition,
                   "cannot promote: PostgreSQL in " + d + " is not in standby mode");
    }
    const std::string signal_file = c.Data("promote");
    const int pid = Pid();
    if (WriteFileAtomic(signal_file, "", 0600).ok() &&
        Chown(signal_file, paths_.run_as_user).ok() && pid != 0 && ::kill(pid, SIGUSR1) == 0) {
      signalled = true;
    }
  }
  if (signalled) {
    const MonoMs begin = clock_.Now();
    bool done = false;
    while (clock_.Now() - begin < timeout_ms) {
      auto rec = watch->Exec("SELECT pg_is_in_recovery()", "pg_is_in_recovery");
      if (rec && rec->Get(0, 0) == "f") {
        done = true;
        break;
      }
      if (!rec) watch = PgConn::Connect(local, "local PostgreSQL");
      if (!watch) break;
      clock_.SleepFor(5);
    }
    if (!done) {
      return Error(ErrorCode::kTimeout, "PostgreSQL in " + d + " did not finish promoting within " +
                                            std::to_string(Seconds(timeout_ms)) +
                                            " s; server log " + paths_.log_file + ": " +
                                            FileTail(paths_.log_file, 5));
    }
  } else {
    TANDEM_TRY(PgCtlPromote(c, timeout_ms));
  }
  // Kept sessions were a standby's (in_hot_standby): start afresh.
  ForgetConnections();
  CheckpointAfterPromote(paths_, settings_);
  TLOG(Info, kMod) << "PostgreSQL promoted";
  return Ok();
}

Status Postgres::Reload() {
  Ctx c{paths_};
  const int pid = Pid();
  if (pid == 0) {
    return Error(ErrorCode::kFailedPrecondition,
                 "cannot reload: PostgreSQL in " + paths_.data_dir + " is not running");
  }
  // What pg_ctl reload does (SIGHUP to the postmaster of postmaster.pid),
  // without a fork and exec: a reload is on the promotion's path (the
  // standby set is applied just before promoting).
  if (::kill(pid, SIGHUP) == 0) {
    TLOG(Info, kMod) << "PostgreSQL configuration reloaded";
    return Ok();
  }
  // Not ours to signal (EPERM): pg_ctl, as the run user.
  TANDEM_TRY(c.NeedBin("pg_ctl"));
  auto r = RunCommand({c.Bin("pg_ctl"), "reload", "-D", paths_.data_dir}, c.Opts(), 30'000);
  if (!r) return r.error().Wrap("pg_ctl reload");
  if (r->exit_code != 0) {
    return Error(ErrorCode::kIo,
                 "pg_ctl reload -D " + paths_.data_dir + " failed: " + OutputTail(r->output, 5));
  }
  TLOG(Info, kMod) << "PostgreSQL configuration reloaded";
  return Ok();
}

Result<std::vector<std::string>> Postgres::PendingRestart() const {
  return Sql("SELECT name FROM pg_settings WHERE pending_restart ORDER BY name");
}

}  // namespace tandem::pg
