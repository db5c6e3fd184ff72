#include "pg/postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <thread>

#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/process.h"
#include "base/strings.h"
#include "pg/conf.h"
#include "pg/libpq_conn.h"

namespace tandem::pg {
namespace {

constexpr const char* kMod = "pg";
constexpr const char* kDefaultBinDir = "/usr/lib/postgresql/15/bin";

Error Errno(ErrorCode code, const std::string& what) {
  return Error(code, what + ": " + std::strerror(errno));
}

int Seconds(int64_t ms) {
  return static_cast<int>(std::max<int64_t>(1, (ms + 999) / 1000));
}

// uid/gid of the service user; the current ids when the user is empty.
struct Ids {
  uid_t uid;
  gid_t gid;
};
Result<Ids> UserIds(const std::string& user) {
  if (user.empty()) return Ids{::geteuid(), ::getegid()};
  struct passwd pw {};
  struct passwd* res = nullptr;
  char buf[4096];
  if (getpwnam_r(user.c_str(), &pw, buf, sizeof buf, &res) != 0 || res == nullptr) {
    return Error(ErrorCode::kInvalidArgument,
                 "no such OS user '" + user +
                     "' to run PostgreSQL as (create it, or set postgresql.run_as_user)");
  }
  return Ids{pw.pw_uid, pw.pw_gid};
}

// A file holding a secret (pwfile, PGPASSFILE): 0600, owned by the service
// user, removed when this object dies.
class SecretFile {
 public:
  static Result<std::unique_ptr<SecretFile>> Create(const std::string& near_dir,
                                                    const std::string& content,
                                                    const std::string& user) {
    auto ids = UserIds(user);
    if (!ids) return ids.error();
    std::vector<std::string> dirs = {near_dir, "/tmp"};
    for (const auto& dir : dirs) {
      if (dir.empty() || !IsDirectory(dir)) continue;
      std::string tmpl = dir + "/.tandem-secret-XXXXXX";
      int fd = ::mkstemp(tmpl.data());
      if (fd < 0) continue;
      auto f = std::unique_ptr<SecretFile>(new SecretFile(tmpl));
      bool ok = ::fchmod(fd, 0600) == 0;
      if (ok && ::geteuid() == 0) ok = ::fchown(fd, ids->uid, ids->gid) == 0;
      size_t off = 0;
      while (ok && off < content.size()) {
        ssize_t n = ::write(fd, content.data() + off, content.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
          ok = false;
        else
          off += static_cast<size_t>(n);
      }
      ::close(fd);
      if (ok) return f;
    }
    return Error(ErrorCode::kIo, "cannot create a temporary password file near " + near_dir +
                                     " or in /tmp (is the disk full or read-only?)");
  }
  ~SecretFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  explicit SecretFile(std::string p) : path_(std::move(p)) {}
  std::string path_;
};

// Creates `path` (parents 0755) with `mode` when missing. An existing
// directory is given `mode` and the owner only when `take_over`; otherwise it
// must already belong to the user.
Status PrepareDir(const std::string& path, mode_t mode, const std::string& user, bool take_over,
                  const std::string& role) {
  auto ids = UserIds(user);
  if (!ids) return ids.error();
  if (!PathExists(path)) {
    std::string parent = DirName(path);
    if (!parent.empty()) TANDEM_TRY(MakeDirs(parent, 0755));
    if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
      return Errno(ErrorCode::kIo, "cannot create the " + role + " " + path);
    }
    take_over = true;
  } else if (!IsDirectory(path)) {
    return Error(ErrorCode::kFailedPrecondition, "the " + role + " " + path +
                                                     " exists but is not a directory; remove it "
                                                     "or point the configuration elsewhere");
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Errno(ErrorCode::kIo, "cannot stat " + path);
  if (!take_over && st.st_uid != ids->uid) {
    return Error(ErrorCode::kFailedPrecondition,
                 "the " + role + " " + path + " belongs to uid " + std::to_string(st.st_uid) +
                     ", not to " + (user.empty() ? std::string("us") : user) +
                     "; give PostgreSQL a directory of its own (Tandem creates it mode 0700)");
  }
  if (::chmod(path.c_str(), mode) != 0) return Errno(ErrorCode::kIo, "cannot chmod " + path);
  if (st.st_uid != ids->uid || st.st_gid != ids->gid) {
    if (::chown(path.c_str(), ids->uid, ids->gid) != 0) {
      return Errno(ErrorCode::kIo, "cannot chown " + path + " to " + user);
    }
  }
  return Ok();
}

// Writes a file PostgreSQL reads, atomically, owned by the service user.
Status WriteOwned(const std::string& path, const std::string& content, const std::string& user,
                  mode_t mode = 0600) {
  TANDEM_TRY(WriteFileAtomic(path, content, mode));
  return Chown(path, user);
}

Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Errno(ErrorCode::kIo, "cannot remove " + path);
  }
  return Ok();
}

// The last ~4 KiB of a file, as OutputTail lines (syscalls: filebuf throws).
std::string FileTail(const std::string& path, size_t lines = 10) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "(no server log at " + path + ")";
  off_t size = ::lseek(fd, 0, SEEK_END);
  off_t start = size > 4096 ? size - 4096 : 0;
  std::string buf(4096, '\0');
  ssize_t n = size >= 0 ? ::pread(fd, buf.data(), buf.size(), start) : -1;
  ::close(fd);
  if (n <= 0) return "(server log " + path + " is empty)";
  buf.resize(static_cast<size_t>(n));
  return OutputTail(buf, lines);
}

bool Contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

std::string RealPath(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) return p;
  return buf;
}

// Direct children of `pid` (from /proc/*/stat).
std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    auto n = ParseInt(e->d_name);
    if (!n) continue;
    auto stat = ReadFile(std::string("/proc/") + e->d_name + "/stat");  // may vanish: fine
    if (!stat) continue;
    const std::string& content = *stat;
    auto rp = content.rfind(')');
    if (rp == std::string::npos) continue;
    auto fields = Split(Trim(content.substr(rp + 1)), ' ');
    if (fields.size() < 2) continue;
    auto ppid = ParseInt(fields[1]);
    if (ppid && *ppid == pid) out.push_back(static_cast<pid_t>(*n));
  }
  ::closedir(d);
  return out;
}

}  // namespace

Result<std::string> FindBinDir() {
  std::string from_pg_config;
  std::string pg_config = FindInPath("pg_config");
  if (!pg_config.empty()) {
    auto r = RunCommand({pg_config, "--bindir"}, SpawnOptions{}, 10'000);
    if (r && r->exit_code == 0) {
      for (const auto& l : Split(r->output, '\n')) {
        std::string t = Trim(l);
        if (StartsWith(t, "/")) {
          from_pg_config = t;
          break;
        }
      }
      if (!from_pg_config.empty() && PathExists(from_pg_config + "/initdb")) {
        return from_pg_config;
      }
    }
  }
  if (PathExists(std::string(kDefaultBinDir) + "/initdb")) return std::string(kDefaultBinDir);
  return Error(ErrorCode::kNotFound,
               "PostgreSQL server programs not found (" +
                   (from_pg_config.empty()
                        ? std::string("no usable pg_config in PATH")
                        : "pg_config --bindir gave " + from_pg_config + " without initdb") +
                   ", and " + kDefaultBinDir +
                   "/initdb is missing); install postgresql-15 or set postgresql.bin_dir");
}

Postgres::Postgres(Paths paths, Settings settings)
    : paths_(std::move(paths)), settings_(std::move(settings)) {
  if (!paths_.data_dir.empty()) paths_.data_dir = AbsolutePath(paths_.data_dir);
  if (!paths_.socket_dir.empty()) paths_.socket_dir = AbsolutePath(paths_.socket_dir);
  if (!paths_.log_file.empty()) paths_.log_file = AbsolutePath(paths_.log_file);
}

namespace {

struct Ctx {
  const Paths& p;
  std::string Bin(const std::string& name) const { return p.bin_dir + "/" + name; }
  std::string Data(const std::string& name) const { return p.data_dir + "/" + name; }
  SpawnOptions Opts() const {
    SpawnOptions o;
    o.run_as_user = p.run_as_user;
    o.cwd = "/";
    return o;
  }
  Status NeedBin(const std::string& name) const {
    if (p.bin_dir.empty() || ::access(Bin(name).c_str(), X_OK) != 0) {
      return Error(ErrorCode::kNotFound, "PostgreSQL program " + Bin(name) +
                                             " not found; install postgresql-15 or set "
                                             "postgresql.bin_dir (FindBinDir)");
    }
    return Ok();
  }
};

// The postmaster named by postmaster.pid when it is alive, not a zombie, a
// postgres process, and working in this data directory.
int LivePostmaster(const Paths& p) {
  auto content = ReadFile(p.data_dir + "/postmaster.pid");
  if (!content) return 0;
  auto pid = ParsePostmasterPid(*content);
  if (!pid || !IsAlive(*pid)) return 0;
  std::string proc = "/proc/" + std::to_string(*pid);
  auto comm = ReadFile(proc + "/comm");
  if (comm) {
    std::string c = Trim(*comm);
    if (c != "postgres" && c != "postmaster") return 0;
  }
  char buf[PATH_MAX];
  ssize_t n = ::readlink((proc + "/cwd").c_str(), buf, sizeof buf - 1);
  if (n > 0) {
    buf[n] = '\0';
    if (std::string(buf) != RealPath(p.data_dir)) return 0;
  }
  return *pid;
}

// PostgreSQL refuses a data directory it does not own; say so before pg_ctl does.
Status CheckOwner(const Paths& p, const std::string& what) {
  auto ids = UserIds(p.run_as_user);
  if (!ids) return ids.error();
  struct stat st {};
  if (::stat(p.data_dir.c_str(), &st) != 0) {
    return Errno(ErrorCode::kIo, "cannot " + what + ": cannot stat " + p.data_dir);
  }
  if (st.st_uid != ids->uid) {
    std::string who = p.run_as_user.empty() ? "uid " + std::to_string(ids->uid) : p.run_as_user;
    return Error(ErrorCode::kFailedPrecondition,
                 "cannot " + what + ": data directory " + p.data_dir + " belongs to uid " +
                     std::to_string(st.st_uid) + ", not to " + who + "; fix it with: chown -R " +
                     who + " " + p.data_dir + " && chmod 700 " + p.data_dir);
  }
  return Ok();
}

Status NotValid(const std::string& dir, DataDirState st, const std::string& what) {
  std::string why = st == DataDirState::kMissing ? "does not exist"
                    : st == DataDirState::kEmpty ? "is empty"
                                                 : "is not a PostgreSQL data directory";
  return Error(ErrorCode::kFailedPrecondition,
               "cannot " + what + ": data directory " + dir + " " + why +
                   "; initialize it (initdb) or clone it from the primary (pg_basebackup) first");
}

}  // namespace

DataDirState Postgres::InspectDataDir() const {
  const std::string& d = paths_.data_dir;
  if (!PathExists(d)) return DataDirState::kMissing;
  if (!IsDirectory(d)) return DataDirState::kNotPostgres;
  DIR* dir = ::opendir(d.c_str());
  if (dir == nullptr) return DataDirState::kNotPostgres;
  bool empty = true;
  while (struct dirent* e = ::readdir(dir)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") {
      empty = false;
      break;
    }
  }
  ::closedir(dir);
  if (empty) return DataDirState::kEmpty;
  if (PathExists(d + "/PG_VERSION") && PathExists(d + "/global/pg_control")) {
    return DataDirState::kValid;
  }
  return DataDirState::kNotPostgres;
}

Result<ControlData> Postgres::ReadControlData() const {
  Ctx c{paths_};
  auto st = InspectDataDir();
  if (st != DataDirState::kValid) return NotValid(paths_.data_dir, st, "read pg_control").error();
  TANDEM_TRY(c.NeedBin("pg_controldata"));
  auto opts = c.Opts();
  opts.env["LC_ALL"] = "C";
  auto r = RunCommand({c.Bin("pg_controldata"), "-D", paths_.data_dir}, opts, 30'000);
  if (!r) return r.error().Wrap("pg_controldata -D " + paths_.data_dir);
  if (r->exit_code != 0) {
    return Error(ErrorCode::kIo, "pg_controldata -D " + paths_.data_dir + " failed (exit " +
                                     std::to_string(r->exit_code) + "): " + OutputTail(r->output) +
                                     "; check the data directory's ownership and pg_control");
  }
  return ParseControlData(r->output);
}

Status Postgres::InitDb(const std::string& superuser_password) {
  Ctx c{paths_};
  const std::string& d = paths_.data_dir;
  if (d.empty()) return Error(ErrorCode::kInvalidArgument, "initdb: no data directory configured");
  auto st = InspectDataDir();
  if (st == DataDirState::kValid) {
    return Error(ErrorCode::kFailedPrecondition,
                 "initdb refused: " + d +
                     " already holds a PostgreSQL cluster; use it as it is, or move it away to "
                     "start a new one");
  }
  if (st == DataDirState::kNotPostgres) {
    return Error(ErrorCode::kFailedPrecondition,
                 "initdb refused: " + d +
                     " is not empty and is not a PostgreSQL data directory; nothing was changed. "
                     "Move its contents away or point postgresql.data_dir at an empty directory");
  }
  if (superuser_password.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 "initdb: the superuser password is empty; generate one (tandem keeps it in the "
                 "node's secrets)");
  }
  if (superuser_password.find_first_of(std::string("\n\r\0", 3)) != std::string::npos) {
    return Error(ErrorCode::kInvalidArgument,
                 "initdb: the superuser password contains a newline or NUL; choose another");
  }
  TANDEM_TRY(c.NeedBin("initdb"));
  TANDEM_TRY(PrepareDir(d, 0700, paths_.run_as_user, /*take_over=*/true, "data directory"));
  auto pw = SecretFile::Create(DirName(d), superuser_password + "\n", paths_.run_as_user);
  if (!pw) return pw.error().Wrap("initdb");
  std::vector<std::string> argv = {c.Bin("initdb"),
                                   "-D",
                                   d,
                                   "--auth-local=trust",
                                   "--auth-host=scram-sha-256",
                                   "-U",
                                   kSuperuser,
                                   "--pwfile=" + (*pw)->path(),
                                   "-E",
                                   "UTF8",
                                   "--data-checksums"};
  TLOG(Info, kMod) << "initdb -D " << d << " (UTF8, data checksums, superuser " << kSuperuser
                   << ")";
  auto r = RunCommand(argv, c.Opts(), 300'000);
  if (!r) return r.error().Wrap("initdb -D " + d);
  if (r->exit_code != 0) {
    return Error(ErrorCode::kIo, "initdb -D " + d + " failed (exit " +
                                     std::to_string(r->exit_code) + "): " + OutputTail(r->output) +
                                     "; fix the cause above and retry with an empty directory");
  }
  TLOG(Info, kMod) << "initdb done: " << d;
  return Ok();
}

Status Postgres::WriteConfig(const std::optional<Source>& standby_of) {
  Ctx c{paths_};
  auto st = InspectDataDir();
  if (st != DataDirState::kValid) return NotValid(paths_.data_dir, st, "write tandem.conf");
  const std::string& user = paths_.run_as_user;
  const std::string passfile = c.Data(kPassFile);
  auto conf = RenderConfig(settings_, paths_.socket_dir, standby_of, passfile);
  if (!conf) return conf.error().Wrap("tandem.conf");

  // The password file first, so a reload that reads the new conninfo finds it.
  if (standby_of && !standby_of->password.empty()) {
    auto line = PassFileLine(standby_of->user, standby_of->password);
    if (!line) return line.error();
    TANDEM_TRY(WriteOwned(passfile, *line, user, 0600));
  } else {
    TANDEM_TRY(RemoveFile(passfile));
  }
  TANDEM_TRY(WriteOwned(c.Data(kTandemConf), *conf, user, 0600));

  const std::string main_conf = c.Data("postgresql.conf");
  auto cur = ReadFile(main_conf);
  std::string cur_text = cur ? *cur : "";
  std::string want = EnsureIncludeLast(cur_text);
  if (want != cur_text) TANDEM_TRY(WriteOwned(main_conf, want, user, 0600));

  // pg_basebackup -R (or ALTER SYSTEM) may have put these in postgresql.auto.conf,
  // which is read after tandem.conf and would win.
  const std::string auto_conf = c.Data("postgresql.auto.conf");
  if (auto a = ReadFile(auto_conf)) {
    std::string cleaned = RemoveConfKeys(*a, {"primary_conninfo", "primary_slot_name"});
    if (cleaned != *a) {
      TANDEM_TRY(WriteOwned(auto_conf, cleaned, user, 0600));
      TLOG(Info, kMod) << "removed primary_conninfo/primary_slot_name from " << auto_conf
                       << " (tandem.conf manages them)";
    }
  }

  const std::string signal = c.Data("standby.signal");
  if (standby_of) {
    if (!PathExists(signal)) TANDEM_TRY(WriteOwned(signal, "", user, 0600));
    TLOG(Info, kMod) << "wrote tandem.conf: standby of " << standby_of->host << ":"
                     << standby_of->port << " as " << standby_of->user << " slot="
                     << (standby_of->slot_name.empty() ? "(none)" : standby_of->slot_name);
  } else {
    TANDEM_TRY(RemoveFile(signal));
    TLOG(Info, kMod) << "wrote tandem.conf: primary on port " << settings_.port;
  }
  return Ok();
}

Status Postgres::WriteHba(const std::vector<HbaPeer>& peers) {
  Ctx c{paths_};
  auto st = InspectDataDir();
  if (st != DataDirState::kValid) return NotValid(paths_.data_dir, st, "write pg_hba.conf");
  auto hba = RenderHba(peers, settings_.replication_user, settings_.tls.mode);
  if (!hba) return hba.error().Wrap("pg_hba.conf");
  // The map first: a reload that reads the new pg_hba.conf finds it.
  TANDEM_TRY(WriteOwned(c.Data("pg_ident.conf"), RenderIdent(settings_.replication_user),
                        paths_.run_as_user, 0600));
  TANDEM_TRY(WriteOwned(c.Data("pg_hba.conf"), *hba, paths_.run_as_user, 0600));
  TLOG(Info, kMod) << "wrote pg_hba.conf for " << peers.size() << " peer(s)";
  return Ok();
}

int Postgres::Pid() const {
  return LivePostmaster(paths_);
}
bool Postgres::IsRunning() const {
  return Pid() != 0;
}

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
  if (paths_.socket_dir.empty()) {
    return Error(ErrorCode::kInvalidArgument, "no unix socket directory configured");
  }
  TANDEM_TRY(PrepareDir(paths_.socket_dir, 0700, paths_.run_as_user, false, "socket directory"));
  if (paths_.log_file.empty()) {
    return Error(ErrorCode::kInvalidArgument, "no PostgreSQL log file configured");
  }
  std::string log_dir = DirName(paths_.log_file);
  if (!PathExists(log_dir)) {
    TANDEM_TRY(PrepareDir(log_dir, 0750, paths_.run_as_user, true, "log directory"));
  }
  {
    int fd = ::open(paths_.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) return Errno(ErrorCode::kIo, "cannot create the server log " + paths_.log_file);
    ::close(fd);
    TANDEM_TRY(Chown(paths_.log_file, paths_.run_as_user));
  }
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

namespace {
void KillPostmaster(pid_t pid) {
  auto kids = ChildrenOf(pid);
  KillProcessTree(pid, SIGKILL);
  ::kill(pid, SIGKILL);
  for (pid_t k : kids) ::kill(k, SIGKILL);
}
}  // namespace

Status Postgres::Stop(StopMode mode, int64_t timeout_ms) {
  Ctx c{paths_};
  const std::string& d = paths_.data_dir;
  int pid = Pid();
  if (pid == 0) {
    TLOG(Info, kMod) << "PostgreSQL in " << d << " is not running; nothing to stop";
    return Ok();
  }
  const char* m = mode == StopMode::kFast ? "fast" : "immediate";
  if (mode == StopMode::kFast) {
    // Fence first: no client keeps writing while the shutdown checkpoint runs.
    auto conn = PgConn::Connect({{"host", paths_.socket_dir},
                                 {"port", std::to_string(settings_.port)},
                                 {"user", kSuperuser},
                                 {"dbname", "postgres"},
                                 {"connect_timeout", "2"},
                                 {"application_name", "tandem"},
                                 {"options", "-c statement_timeout=2000"}},
                                "local PostgreSQL");
    if (conn) {
      auto r = conn->Exec(
          "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
          "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
          "terminating client backends");
      if (r) {
        TLOG(Info, kMod) << "terminated " << r->Get(0, 0) << " client backend(s) before stopping";
      } else {
        TLOG(Warn, kMod) << r.error().message();
      }
    } else {
      TLOG(Warn, kMod) << "could not terminate client backends before stopping: "
                       << conn.error().message();
    }
  }
  std::string why;
  // The postmaster's own signals (SIGINT fast, SIGQUIT immediate), watched
  // every few ms: pg_ctl stop -w looks only every 100 ms, which a switchover
  // pays in write unavailability.
  TLOG(Info, kMod) << "stopping PostgreSQL (pid " << pid << "): " << m << " shutdown";
  if (::kill(pid, mode == StopMode::kFast ? SIGINT : SIGQUIT) == 0) {
    if (WaitForExit(pid, timeout_ms)) {
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
    if (r && r->exit_code == 0 && WaitForExit(pid, 5'000)) {
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
  if (!WaitForExit(pid, 10'000)) {
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
  const std::map<std::string, std::string> local = {
      {"host", paths_.socket_dir}, {"port", std::to_string(settings_.port)},
      {"user", kSuperuser},        {"dbname", "postgres"},
      {"connect_timeout", "2"},    {"application_name", "tandem"}};
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
    const MonoMs begin = SystemClock::Get().Now();
    bool done = false;
    while (SystemClock::Get().Now() - begin < timeout_ms) {
      auto rec = watch->Exec("SELECT pg_is_in_recovery()", "pg_is_in_recovery");
      if (rec && rec->Get(0, 0) == "f") {
        done = true;
        break;
      }
      if (!rec) watch = PgConn::Connect(local, "local PostgreSQL");
      if (!watch) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!done) {
      return Error(ErrorCode::kTimeout, "PostgreSQL in " + d + " did not finish promoting within " +
                                            std::to_string(Seconds(timeout_ms)) +
                                            " s; server log " + paths_.log_file + ": " +
                                            FileTail(paths_.log_file, 5));
    }
  } else {
    auto r = RunCommand(
        {c.Bin("pg_ctl"), "promote", "-D", d, "-w", "-t", std::to_string(Seconds(timeout_ms))},
        c.Opts(), timeout_ms + 5'000);
    if (!r) return r.error().Wrap("pg_ctl promote -D " + d);
    if (r->exit_code != 0) {
      ErrorCode code = Contains(r->output, "not in standby mode") ? ErrorCode::kFailedPrecondition
                                                                  : ErrorCode::kIo;
      return Error(code, "pg_ctl promote -D " + d + " failed (exit " +
                             std::to_string(r->exit_code) + "): " + OutputTail(r->output, 5) +
                             "; server log " + paths_.log_file + ": " +
                             FileTail(paths_.log_file, 5));
    }
  }
  // So pg_control (and a pg_rewind against us) shows the new timeline now.
  auto conn = PgConn::Connect({{"host", paths_.socket_dir},
                               {"port", std::to_string(settings_.port)},
                               {"user", kSuperuser},
                               {"dbname", "postgres"},
                               {"connect_timeout", "2"},
                               {"application_name", "tandem"},
                               // The checkpoint goes on if we stop waiting: never hold
                               // the HA loop (and its lease renewals) for long.
                               {"options", "-c statement_timeout=1000"}},
                              "local PostgreSQL");
  if (conn) {
    auto ck = conn->Exec("CHECKPOINT", "CHECKPOINT after promote");
    if (!ck) {
      TLOG(Warn, kMod) << ck.error().message();
    }
  } else {
    TLOG(Warn, kMod) << "no CHECKPOINT after promote: " << conn.error().message();
  }
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

namespace {
Result<PgConn> Local(const Paths& p, const Settings& s, int statement_timeout_ms = 5000) {
  return PgConn::Connect(
      {{"host", p.socket_dir},
       {"port", std::to_string(s.port)},
       {"user", kSuperuser},
       {"dbname", "postgres"},
       {"connect_timeout", "2"},
       {"application_name", "tandem"},
       {"options", "-c statement_timeout=" + std::to_string(statement_timeout_ms)}},
      "local PostgreSQL (socket " + p.socket_dir + ", port " + std::to_string(s.port) + ")");
}

uint64_t Lsn(const std::string& s) {
  auto v = ParseLsn(s);
  return v ? *v : 0;
}
}  // namespace

Result<std::vector<std::string>> Postgres::PendingRestart() const {
  return Sql("SELECT name FROM pg_settings WHERE pending_restart ORDER BY name");
}

Result<LiveStatus> Postgres::Query() const {
  auto conn = Local(paths_, settings_);
  if (!conn) return conn.error();
  auto rec = conn->Exec("SELECT pg_is_in_recovery()", "status query");
  if (!rec) return rec.error();
  LiveStatus ls;
  ls.in_recovery = rec->Get(0, 0) == "t";
  if (!ls.in_recovery) {
    auto r =
        conn->Exec("SELECT pg_current_wal_flush_lsn()::text, pg_walfile_name(pg_current_wal_lsn())",
                   "primary status query");
    if (!r) return r.error();
    ls.lsn = Lsn(r->Get(0, 0));
    ls.replay_lsn = ls.lsn;
    auto tli = TimelineFromWalFileName(r->Get(0, 1));
    if (!tli) {
      return Error(ErrorCode::kInternal, "unexpected WAL file name '" + r->Get(0, 1) + "'");
    }
    ls.timeline = *tli;
    return ls;
  }
  auto r = conn->Exec(
      "SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, "
      "(SELECT timeline_id FROM pg_control_checkpoint())::text, "
      "w.status, w.received_tli::text, w.sender_host, w.sender_port::text, "
      // The checkpoint's timeline stays stale until the next restartpoint, and
      // received_tli vanishes when the stream stops (the primary died): the
      // newest timeline history file this standby fetched is the timeline it
      // follows.
      "(SELECT max(('x' || substr(name, 1, 8))::bit(32)::int) FROM pg_ls_waldir() "
      " WHERE name ~ '^[0-9A-F]{8}\\.history$')::text "
      "FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS w ON true",
      "standby status query");
  if (!r) return r.error();
  uint64_t receive = Lsn(r->Get(0, 0));
  ls.replay_lsn = Lsn(r->Get(0, 1));
  ls.lsn = std::max(receive, ls.replay_lsn);
  auto ck_tli = ParseInt(r->Get(0, 2));
  ls.timeline = ck_tli && *ck_tli > 0 ? static_cast<uint32_t>(*ck_tli) : 0;
  ls.streaming = r->Get(0, 3) == "streaming";
  if (ls.streaming) {
    auto rt = ParseInt(r->Get(0, 4));
    if (rt && *rt > 0) ls.timeline = std::max(ls.timeline, static_cast<uint32_t>(*rt));
  }
  auto hist_tli = ParseInt(r->Get(0, 7));
  if (hist_tli && *hist_tli > 0) {
    ls.timeline = std::max(ls.timeline, static_cast<uint32_t>(*hist_tli));
  }
  ls.sender_host = r->Get(0, 5);
  auto sp = ParseInt(r->Get(0, 6));
  ls.sender_port = sp ? static_cast<int>(*sp) : 0;
  return ls;
}

Result<std::vector<ReplicaStat>> Postgres::Replication() const {
  auto conn = Local(paths_, settings_);
  if (!conn) return conn.error();
  auto r = conn->Exec(
      "SELECT application_name, state, sync_state, flush_lsn::text, replay_lsn::text "
      "FROM pg_stat_replication ORDER BY application_name",
      "pg_stat_replication query");
  if (!r) return r.error();
  std::vector<ReplicaStat> out;
  for (int i = 0; i < r->rows(); ++i) {
    ReplicaStat s;
    s.application_name = r->Get(i, 0);
    s.state = r->Get(i, 1);
    s.sync_state = r->Get(i, 2);
    s.flush_lsn = Lsn(r->Get(i, 3));
    s.replay_lsn = Lsn(r->Get(i, 4));
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<std::string>> Postgres::Sql(const std::string& sql) const {
  auto conn = Local(paths_, settings_, 30'000);
  if (!conn) return conn.error();
  auto r = conn->Exec(sql, "SQL statement");
  if (!r) return r.error();
  std::vector<std::string> out;
  if (r->cols() == 0) return out;
  for (int i = 0; i < r->rows(); ++i) out.push_back(r->Get(i, 0));
  return out;
}

Status Postgres::EnsureReplicationUser(const std::string& name, const std::string& password) const {
  if (!IsValidRoleName(name) || name == kSuperuser) {
    return Error(ErrorCode::kInvalidArgument,
                 "replication user name '" + (IsValidRoleName(name) ? name : std::string("?")) +
                     "' is not usable: letters, digits and _, not 'postgres' (e.g. 'replicator')");
  }
  if (password.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 "the password for replication user " + name + " is empty; generate one");
  }
  auto conn = Local(paths_, settings_);
  if (!conn) return conn.error();
  auto rec = conn->Exec("SELECT pg_is_in_recovery()", "recovery check");
  if (!rec) return rec.error();
  if (rec->Get(0, 0) == "t") {
    return Error(ErrorCode::kFailedPrecondition,
                 "cannot create replication user " + name +
                     ": this server is a standby (read-only); do it on the primary");
  }
  // Keep the statement (it carries the verifier) out of the server log.
  TANDEM_TRY(
      conn->Exec("SET log_statement = 'none'; SET log_min_error_statement = panic; "
                 "SET log_min_duration_statement = -1",
                 "session settings"));
  auto exists = conn->ExecParams("SELECT 1 FROM pg_roles WHERE rolname = $1", {name},
                                 "role lookup for " + name);
  if (!exists) return exists.error();
  auto verifier = conn->ScramVerifier(name, password);
  if (!verifier) return verifier.error();
  auto lit = conn->QuoteLiteral(*verifier);
  if (!lit) return lit.error();
  auto ident = conn->QuoteIdent(name);
  if (!ident) return ident.error();
  bool create = exists->rows() == 0;
  std::string sql = std::string(create ? "CREATE" : "ALTER") + " ROLE " + *ident +
                    " WITH REPLICATION LOGIN PASSWORD " + *lit + " CONNECTION LIMIT 16";
  auto r = conn->Exec(sql, std::string(create ? "CREATE" : "ALTER") + " ROLE " + name);
  if (!r) return r.error();
  TLOG(Info, kMod) << (create ? "created" : "updated") << " replication user " << name;
  return Ok();
}

Status Postgres::SyncSlots(const std::vector<std::string>& wanted) const {
  for (const auto& w : wanted) {
    if (!IsValidSlotName(w)) {
      return Error(ErrorCode::kInvalidArgument,
                   "replication slot name '" + w + "' is not valid ([a-z0-9_], 1-63 chars)");
    }
  }
  auto conn = Local(paths_, settings_);
  if (!conn) return conn.error();
  auto r = conn->Exec("SELECT slot_name, slot_type, active_pid::text FROM pg_replication_slots",
                      "replication slot list");
  if (!r) return r.error();
  std::map<std::string, std::pair<std::string, std::string>> have;  // name -> type, active pid
  for (int i = 0; i < r->rows(); ++i) have[r->Get(i, 0)] = {r->Get(i, 1), r->Get(i, 2)};
  std::optional<Error> first;
  for (const auto& w : wanted) {
    auto it = have.find(w);
    if (it != have.end()) {
      if (it->second.first != "physical") {
        TLOG(Warn, kMod) << "slot " << w << " exists but is " << it->second.first
                         << ", not physical; left alone";
      }
      continue;
    }
    auto c = conn->ExecParams("SELECT pg_create_physical_replication_slot($1, true)", {w},
                              "creating replication slot " + w);
    if (!c) {
      if (!first) first = c.error();
      continue;
    }
    TLOG(Info, kMod) << "created replication slot " << w;
  }
  for (const auto& [name, info] : have) {
    if (!StartsWith(name, "tandem_") || info.first != "physical") continue;
    if (std::find(wanted.begin(), wanted.end(), name) != wanted.end()) continue;
    if (!info.second.empty()) {
      auto t = conn->ExecParams("SELECT pg_terminate_backend($1::int)", {info.second},
                                "terminating the walsender of slot " + name);
      if (!t) {
        TLOG(Warn, kMod) << t.error().message();
      }
    }
    auto d = conn->ExecParams("SELECT pg_drop_replication_slot($1)", {name},
                              "dropping replication slot " + name);
    if (!d) {
      if (!first) {
        first = Error(ErrorCode::kConflict, d.error().message() +
                                                " (the slot is in use; it is dropped on a "
                                                "later pass once its walsender is gone)");
      }
      continue;
    }
    TLOG(Info, kMod) << "dropped replication slot " << name;
  }
  if (first) return *first;
  return Ok();
}

namespace {
// Removes everything inside dir (not dir itself).
void EmptyDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) (void)RemoveAll(dir + "/" + n);
}

Status CheckSource(const Source& s, const char* what) {
  if (s.host.empty() || s.user.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 std::string(what) + ": the source needs a host and a user");
  }
  if (s.port < 1 || s.port > 65535) {
    return Error(ErrorCode::kInvalidArgument, std::string(what) + ": source port " +
                                                  std::to_string(s.port) + " is out of range");
  }
  if (!s.slot_name.empty() && !IsValidSlotName(s.slot_name)) {
    return Error(ErrorCode::kInvalidArgument, std::string(what) + ": slot name '" + s.slot_name +
                                                  "' is not valid ([a-z0-9_], 1-63 chars)");
  }
  return Ok();
}
}  // namespace

Status Postgres::BaseBackup(const Source& source,
                            const std::function<void(const std::string&)>& on_progress,
                            const BaseBackupOptions& options) {
  Ctx c{paths_};
  const std::string& d = paths_.data_dir;
  TANDEM_TRY(CheckSource(source, "pg_basebackup"));
  if (options.create_slot && source.slot_name.empty()) {
    return Error(ErrorCode::kInvalidArgument, "pg_basebackup: create_slot needs a slot name");
  }
  if (d.empty()) return Error(ErrorCode::kInvalidArgument, "no data directory configured");
  auto st = InspectDataDir();
  if (st == DataDirState::kValid || st == DataDirState::kNotPostgres) {
    return Error(ErrorCode::kFailedPrecondition,
                 "pg_basebackup refused: " + d + " is not empty" +
                     (st == DataDirState::kValid ? " (it holds a PostgreSQL cluster)" : "") +
                     "; nothing was changed. Move it aside first (a joining node keeps its old "
                     "database elsewhere)");
  }
  TANDEM_TRY(c.NeedBin("pg_basebackup"));
  TANDEM_TRY(PrepareDir(d, 0700, paths_.run_as_user, true, "data directory"));
  std::unique_ptr<SecretFile> pass;
  if (!source.password.empty()) {
    auto line = PassFileLine(source.user, source.password);
    if (!line) return line.error();
    auto f = SecretFile::Create(DirName(d), *line, paths_.run_as_user);
    if (!f) return f.error().Wrap("pg_basebackup");
    pass = std::move(*f);
  }
  std::vector<std::string> argv = {c.Bin("pg_basebackup"),
                                   "-h",
                                   source.host,
                                   "-p",
                                   std::to_string(source.port),
                                   "-U",
                                   source.user,
                                   "-D",
                                   d,
                                   "-X",
                                   "stream",
                                   "-R",
                                   "-P",
                                   "-v",
                                   "-c",
                                   "fast",
                                   "-w"};
  if (!source.slot_name.empty()) {
    argv.push_back("-S");
    argv.push_back(source.slot_name);
    if (options.create_slot) argv.push_back("-C");
  }
  auto opts = c.Opts();
  opts.env["PGPASSFILE"] = pass ? pass->path() : "/dev/null";
  opts.env["PGCONNECT_TIMEOUT"] = "10";
  // TLS to the source (paths of the private copies only).
  for (const auto& [k, v] : ClientTlsParams(settings_.tls)) {
    if (k == "sslmode") opts.env["PGSSLMODE"] = v;
    if (k == "sslrootcert") opts.env["PGSSLROOTCERT"] = v;
    if (k == "sslcert") opts.env["PGSSLCERT"] = v;
    if (k == "sslkey") opts.env["PGSSLKEY"] = v;
  }
  opts.env["PGAPPNAME"] =
      source.application_name.empty() ? "tandem_basebackup" : source.application_name;
  opts.env["LC_ALL"] = "C";
  TLOG(Info, kMod) << "pg_basebackup from " << source.host << ":" << source.port << " as "
                   << source.user << " into " << d
                   << (source.slot_name.empty() ? "" : " slot=" + source.slot_name);
  auto r = RunCommand(argv, opts, options.timeout_ms, [&](const std::string& line) {
    if (on_progress) on_progress(line);
  });
  pass.reset();
  if (!r || r->exit_code != 0) {
    EmptyDir(d);  // leave it empty, as we found it, so a retry can run
    if (!r)
      return r.error().Wrap("pg_basebackup from " + source.host + ":" +
                            std::to_string(source.port));
    const std::string& out = r->output;
    ErrorCode code = ErrorCode::kIo;
    std::string fix = "fix the cause above and retry";
    if (Contains(out, "no encryption") || Contains(out, "requires a valid client certificate")) {
      code = ErrorCode::kFailedPrecondition;
      fix = settings_.tls.enabled()
                ? "the primary refused this node's TLS client certificate; check tls.client_cert "
                  "(CN postgres, signed by the cluster CA)"
                : "the primary requires TLS: set this node's tls section (all five files; "
                  "`tandem pki issue NODE` makes them)";
    } else if (Contains(out, "certificate verify failed") || Contains(out, "does not match host") ||
               Contains(out, "unknown ca") || Contains(out, "SSL error")) {
      code = ErrorCode::kFailedPrecondition;
      fix =
          "the TLS handshake with the primary failed: both nodes' certificates must be signed by "
          "the same CA (tls.ca_cert), and with tls.verify_hostname the server certificate must "
          "name the primary's address";
    } else if (Contains(out, "could not connect") || Contains(out, "Connection refused") ||
               Contains(out, "timeout expired")) {
      code = ErrorCode::kUnavailable;
      fix = "check that the primary is up and reachable on that port (firewall?)";
    } else if (Contains(out, "password authentication failed") ||
               Contains(out, "no pg_hba.conf entry")) {
      code = ErrorCode::kFailedPrecondition;
      fix =
          "check the replication user's password and the primary's pg_hba.conf (this node "
          "must be a member)";
    } else if (Contains(out, "replication slot") && Contains(out, "does not exist")) {
      code = ErrorCode::kFailedPrecondition;
      fix =
          "the slot must be created on the primary first (the primary's agent does it with "
          "SyncSlots)";
    }
    return Error(code, "pg_basebackup from " + source.host + ":" + std::to_string(source.port) +
                           " failed (exit " + std::to_string(r->exit_code) +
                           "): " + OutputTail(out) + "; " + fix);
  }
  // -R put primary_conninfo (with the password read from PGPASSFILE) into
  // postgresql.auto.conf; tandem.conf owns it.
  const std::string auto_conf = c.Data("postgresql.auto.conf");
  if (auto a = ReadFile(auto_conf)) {
    std::string cleaned = RemoveConfKeys(*a, {"primary_conninfo", "primary_slot_name"});
    if (cleaned != *a) TANDEM_TRY(WriteOwned(auto_conf, cleaned, paths_.run_as_user, 0600));
  }
  TANDEM_TRY(ChownRecursive(d, paths_.run_as_user));
  TLOG(Info, kMod) << "pg_basebackup done: " << d;
  return Ok();
}

Status Postgres::Rewind(const Source& source, int64_t timeout_ms) {
  Ctx c{paths_};
  const std::string& d = paths_.data_dir;
  TANDEM_TRY(CheckSource(source, "pg_rewind"));
  auto st = InspectDataDir();
  if (st != DataDirState::kValid) return NotValid(d, st, "rewind");
  TANDEM_TRY(CheckOwner(paths_, "rewind"));
  if (int pid = Pid(); pid != 0) {
    return Error(ErrorCode::kFailedPrecondition, "cannot rewind: PostgreSQL in " + d +
                                                     " is running (pid " + std::to_string(pid) +
                                                     "); stop it first");
  }
  TANDEM_TRY(c.NeedBin("pg_rewind"));
  const std::string where = source.host + ":" + std::to_string(source.port);

  // A freshly promoted source may not have checkpointed yet: its pg_control
  // would still show the old timeline and pg_rewind would see nothing to do.
  {
    std::map<std::string, std::string> params = {
        {"host", source.host},     {"port", std::to_string(source.port)},
        {"user", source.user},     {"dbname", "postgres"},
        {"connect_timeout", "10"}, {"application_name", "tandem_rewind"}};
    if (!source.password.empty()) params["password"] = source.password;
    for (const auto& [k, v] : ClientTlsParams(settings_.tls)) params[k] = v;
    auto conn = PgConn::Connect(params, "rewind source " + where);
    if (!conn) return conn.error().Wrap("pg_rewind");
    auto ck = conn->Exec("CHECKPOINT", "CHECKPOINT");
    if (!ck) return ck.error().Wrap("pg_rewind");
  }

  std::unique_ptr<SecretFile> pass;
  if (!source.password.empty()) {
    auto line = PassFileLine(source.user, source.password);
    if (!line) return line.error();
    auto f = SecretFile::Create(DirName(d), *line, paths_.run_as_user);
    if (!f) return f.error().Wrap("pg_rewind");
    pass = std::move(*f);
  }
  std::vector<std::pair<std::string, std::string>> kv = {{"host", source.host},
                                                         {"port", std::to_string(source.port)},
                                                         {"user", source.user},
                                                         {"dbname", "postgres"},
                                                         {"connect_timeout", "10"}};
  for (auto& p : ClientTlsParams(settings_.tls)) kv.push_back(std::move(p));
  std::string conninfo = BuildConninfo(kv);
  auto opts = c.Opts();
  opts.env["PGPASSFILE"] = pass ? pass->path() : "/dev/null";
  opts.env["LC_ALL"] = "C";
  std::vector<std::string> argv = {c.Bin("pg_rewind"), "-D", d, "--source-server=" + conninfo};
  TLOG(Info, kMod) << "pg_rewind -D " << d << " from " << where;
  auto r = RunCommand(argv, opts, timeout_ms);
  if (!r) return r.error().Wrap("pg_rewind from " + where);

  // The signal files of a crashed standby make single-user mode refuse to run.
  const std::vector<std::string> signals = {c.Data("standby.signal"), c.Data("recovery.signal")};
  std::vector<std::string> removed_signals;
  auto restore_signals = [&]() {
    for (const auto& s : removed_signals) (void)WriteOwned(s, "", paths_.run_as_user, 0600);
  };
  if (r->exit_code != 0 &&
      (Contains(r->output, "shut down cleanly") || Contains(r->output, "single-user"))) {
    TLOG(Warn, kMod) << "pg_rewind: the target was not shut down cleanly ("
                     << OutputTail(r->output, 2)
                     << "); finishing crash recovery in single-user mode";
    for (const auto& s : signals) {
      if (PathExists(s)) {
        TANDEM_TRY(RemoveFile(s));
        removed_signals.push_back(s);
      }
    }
    TANDEM_TRY(c.NeedBin("postgres"));
    auto single =
        RunCommand({c.Bin("postgres"), "--single", "-D", d, "postgres"}, c.Opts(), timeout_ms);
    if (!single || single->exit_code != 0) {
      restore_signals();
      std::string tail = single ? OutputTail(single->output) : single.error().message();
      return Error(ErrorCode::kIo, "crash recovery of " + d +
                                       " in single-user mode failed: " + tail +
                                       "; the data directory may be damaged: re-clone this node");
    }
    r = RunCommand(argv, opts, timeout_ms);
    if (!r) {
      restore_signals();
      return r.error().Wrap("pg_rewind from " + where);
    }
  }
  pass.reset();
  if (r->exit_code != 0) {
    restore_signals();
    const std::string& out = r->output;
    ErrorCode code = ErrorCode::kIo;
    std::string fix = "re-clone this node (pg_basebackup) if the cause cannot be fixed";
    if (Contains(out, "could not connect") || Contains(out, "Connection refused")) {
      code = ErrorCode::kUnavailable;
      fix = "check that the source is up and reachable";
    } else if (Contains(out, "password authentication failed") ||
               Contains(out, "no pg_hba.conf entry")) {
      code = ErrorCode::kFailedPrecondition;
      fix =
          "check the superuser password and the source's pg_hba.conf (this node must be a "
          "member)";
    }
    return Error(code, "pg_rewind -D " + d + " from " + where + " failed (exit " +
                           std::to_string(r->exit_code) + "): " + OutputTail(out) + "; " + fix);
  }
  // Never come back writable by accident: the node starts as a standby until
  // WriteConfig says otherwise.
  TANDEM_TRY(WriteOwned(c.Data("standby.signal"), "", paths_.run_as_user, 0600));
  TANDEM_TRY(ChownRecursive(d, paths_.run_as_user));
  TLOG(Info, kMod) << "pg_rewind done: " << d << " follows " << where << " ("
                   << OutputTail(r->output, 1) << ")";
  return Ok();
}

}  // namespace tandem::pg
