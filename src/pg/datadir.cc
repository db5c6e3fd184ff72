// The data directory: what it holds (InspectDataDir), its pg_control
// (ReadControlData), creating it (InitDb), and where the PostgreSQL programs
// are (FindBinDir). Runs on the caller's thread; touches only the data
// directory and runs initdb/pg_controldata/pg_config.
#include <dirent.h>

#include <string>
#include <vector>

#include "base/file.h"
#include "base/log.h"
#include "base/process.h"
#include "base/strings.h"
#include "pg/conf.h"
#include "pg/internal.h"
#include "pg/postgres.h"

namespace tandem::pg {

using internal::Contains;
using internal::Ctx;
using internal::Errno;
using internal::kMod;
using internal::NotValid;
using internal::PrepareDir;
using internal::Seconds;
using internal::SecretFile;

namespace {
constexpr const char* kDefaultBinDir = "/usr/lib/postgresql/15/bin";

Paths Absolute(Paths p) {
  if (!p.data_dir.empty()) p.data_dir = AbsolutePath(p.data_dir);
  if (!p.socket_dir.empty()) p.socket_dir = AbsolutePath(p.socket_dir);
  if (!p.log_file.empty()) p.log_file = AbsolutePath(p.log_file);
  return p;
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

Postgres::Postgres(Paths paths, Settings settings, const Clock& clock)
    : paths_(Absolute(std::move(paths))),
      settings_(std::move(settings)),
      clock_(clock),
      postmaster_(paths_.data_dir) {}

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

}  // namespace tandem::pg
