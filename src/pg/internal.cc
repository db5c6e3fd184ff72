// The helpers behind pg::Postgres (see internal.h).
#include "pg/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/file.h"
#include "base/strings.h"
#include "pg/conf.h"

namespace tandem::pg::internal {

Error Errno(ErrorCode code, const std::string& what) {
  return Error(code, what + ": " + std::strerror(errno));
}

int Seconds(int64_t ms) {
  return static_cast<int>(std::max<int64_t>(1, (ms + 999) / 1000));
}

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

Result<std::unique_ptr<SecretFile>> SecretFile::Create(const std::string& near_dir,
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

SecretFile::~SecretFile() {
  ::unlink(path_.c_str());
}

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
                  mode_t mode) {
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
std::string FileTail(const std::string& path, size_t lines) {
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

SpawnOptions Ctx::Opts() const {
  SpawnOptions o;
  o.run_as_user = p.run_as_user;
  o.cwd = "/";
  return o;
}

Status Ctx::NeedBin(const std::string& name) const {
  if (p.bin_dir.empty() || ::access(Bin(name).c_str(), X_OK) != 0) {
    return Error(ErrorCode::kNotFound, "PostgreSQL program " + Bin(name) +
                                           " not found; install postgresql-15 or set "
                                           "postgresql.bin_dir (FindBinDir)");
  }
  return Ok();
}

std::map<std::string, std::string> LocalParams(const Paths& p, const Settings& s,
                                               int connect_timeout_s, int statement_timeout_ms) {
  std::map<std::string, std::string> params = {
      {"host", p.socket_dir},
      {"port", std::to_string(s.port)},
      {"user", kSuperuser},
      {"dbname", "postgres"},
      {"connect_timeout", std::to_string(connect_timeout_s)},
      {"application_name", "tandem"}};
  if (statement_timeout_ms > 0) {
    params["options"] = "-c statement_timeout=" + std::to_string(statement_timeout_ms);
  }
  return params;
}

std::string LocalName(const Paths& p, const Settings& s) {
  return "local PostgreSQL (socket " + p.socket_dir + ", port " + std::to_string(s.port) + ")";
}

}  // namespace tandem::pg::internal
