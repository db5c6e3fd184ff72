// Copies of another node's data directory: BaseBackup (pg_basebackup into an
// empty directory) and Rewind (pg_rewind of a stopped server, with crash
// recovery in single-user mode when needed). Their failures are classified
// by one function (clone_errors.h). Runs on the caller's thread (the agent's
// operation thread); passwords reach the tools through PGPASSFILE only.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/log.h"
#include "base/process.h"
#include "base/strings.h"
#include "pg/clone_errors.h"
#include "pg/conf.h"
#include "pg/internal.h"
#include "pg/libpq_conn.h"
#include "pg/postgres.h"

namespace tandem::pg {

using internal::CheckOwner;
using internal::CheckSource;
using internal::Contains;
using internal::Ctx;
using internal::EmptyDir;
using internal::kMod;
using internal::NotValid;
using internal::PrepareDir;
using internal::RemoveFile;
using internal::SecretFile;
using internal::WriteOwned;

namespace {

// The passfile the tools read the source's password from (PGPASSFILE), next
// to the data directory; null when the source needs no password.
Result<std::unique_ptr<SecretFile>> SourcePassFile(const Source& source, const Paths& paths,
                                                   const char* tool) {
  if (source.password.empty()) return std::unique_ptr<SecretFile>();
  auto line = PassFileLine(source.user, source.password);
  if (!line) return line.error();
  auto f = SecretFile::Create(DirName(paths.data_dir), *line, paths.run_as_user);
  if (!f) return f.error().Wrap(tool);
  return std::move(*f);
}

std::vector<std::string> BaseBackupArgv(const Ctx& c, const Source& source,
                                        const BaseBackupOptions& options) {
  std::vector<std::string> argv = {c.Bin("pg_basebackup"),
                                   "-h",
                                   source.host,
                                   "-p",
                                   std::to_string(source.port),
                                   "-U",
                                   source.user,
                                   "-D",
                                   c.p.data_dir,
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
  return argv;
}

// pg_basebackup's environment: the passfile, a connect timeout, TLS to the
// source (paths of the private copies only), the application name.
SpawnOptions BaseBackupEnv(const Ctx& c, const SecretFile* pass, const Source& source,
                           const TlsSettings& tls) {
  auto opts = c.Opts();
  opts.env["PGPASSFILE"] = pass ? pass->path() : "/dev/null";
  opts.env["PGCONNECT_TIMEOUT"] = "10";
  for (const auto& [k, v] : ClientTlsParams(tls)) {
    if (k == "sslmode") opts.env["PGSSLMODE"] = v;
    if (k == "sslrootcert") opts.env["PGSSLROOTCERT"] = v;
    if (k == "sslcert") opts.env["PGSSLCERT"] = v;
    if (k == "sslkey") opts.env["PGSSLKEY"] = v;
  }
  opts.env["PGAPPNAME"] =
      source.application_name.empty() ? "tandem_basebackup" : source.application_name;
  opts.env["LC_ALL"] = "C";
  return opts;
}

// A failed run, classified: the code the agent acts on and the fix.
Error BaseBackupFailed(const Source& source, const Result<RunResult>& r, bool tls) {
  const std::string from = "pg_basebackup from " + source.host + ":" + std::to_string(source.port);
  if (!r) return r.error().Wrap(from);
  const std::string& out = r->output;
  const CloneFailure f = ClassifyCloneFailure(CloneTool::kBaseBackup, out, tls);
  return Error(f.code, from + " failed (exit " + std::to_string(r->exit_code) +
                           "): " + OutputTail(out) + "; " + f.fix);
}

// -R put primary_conninfo (with the password read from PGPASSFILE) into
// postgresql.auto.conf; tandem.conf owns it.
Status DropAutoConfConninfo(const Ctx& c) {
  const std::string auto_conf = c.Data("postgresql.auto.conf");
  if (auto a = ReadFile(auto_conf)) {
    std::string cleaned = RemoveConfKeys(*a, {"primary_conninfo", "primary_slot_name"});
    if (cleaned != *a) TANDEM_TRY(WriteOwned(auto_conf, cleaned, c.p.run_as_user, 0600));
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
  auto pass = SourcePassFile(source, paths_, "pg_basebackup");
  if (!pass) return pass.error();
  const auto argv = BaseBackupArgv(c, source, options);
  const auto opts = BaseBackupEnv(c, pass->get(), source, settings_.tls);
  TLOG(Info, kMod) << "pg_basebackup from " << source.host << ":" << source.port << " as "
                   << source.user << " into " << d
                   << (source.slot_name.empty() ? "" : " slot=" + source.slot_name);
  auto r = RunCommand(argv, opts, options.timeout_ms, [&](const std::string& line) {
    if (on_progress) on_progress(line);
  });
  pass->reset();
  if (!r || r->exit_code != 0) {
    EmptyDir(d);  // leave it empty, as we found it, so a retry can run
    return BaseBackupFailed(source, r, settings_.tls.enabled());
  }
  TANDEM_TRY(DropAutoConfConninfo(c));
  TANDEM_TRY(ChownRecursive(d, paths_.run_as_user));
  TLOG(Info, kMod) << "pg_basebackup done: " << d;
  return Ok();
}

namespace {

// A freshly promoted source may not have checkpointed yet: its pg_control
// would still show the old timeline and pg_rewind would see nothing to do.
Status CheckpointSource(const Source& source, const TlsSettings& tls) {
  const std::string where = source.host + ":" + std::to_string(source.port);
  std::map<std::string, std::string> params = {
      {"host", source.host},     {"port", std::to_string(source.port)},
      {"user", source.user},     {"dbname", "postgres"},
      {"connect_timeout", "10"}, {"application_name", "tandem_rewind"}};
  if (!source.password.empty()) params["password"] = source.password;
  for (const auto& [k, v] : ClientTlsParams(tls)) params[k] = v;
  auto conn = PgConn::Connect(params, "rewind source " + where);
  if (!conn) return conn.error().Wrap("pg_rewind");
  auto ck = conn->Exec("CHECKPOINT", "CHECKPOINT");
  if (!ck) return ck.error().Wrap("pg_rewind");
  return Ok();
}

// --source-server for pg_rewind (the password comes from PGPASSFILE).
std::string RewindConninfo(const Source& source, const TlsSettings& tls) {
  std::vector<std::pair<std::string, std::string>> kv = {{"host", source.host},
                                                         {"port", std::to_string(source.port)},
                                                         {"user", source.user},
                                                         {"dbname", "postgres"},
                                                         {"connect_timeout", "10"}};
  for (auto& p : ClientTlsParams(tls)) kv.push_back(std::move(p));
  return BuildConninfo(kv);
}

// Crash recovery of a data directory that was not shut down cleanly, in
// single-user mode. The signal files of a crashed standby make single-user
// mode refuse to run: they are removed (and listed in *removed, so the
// caller can put them back; they are put back here on failure).
Status RecoverInSingleUserMode(const Ctx& c, int64_t timeout_ms,
                               std::vector<std::string>* removed) {
  const std::string& d = c.p.data_dir;
  auto restore = [&]() {
    for (const auto& s : *removed) (void)WriteOwned(s, "", c.p.run_as_user, 0600);
    removed->clear();
  };
  for (const auto& s : {c.Data("standby.signal"), c.Data("recovery.signal")}) {
    if (PathExists(s)) {
      TANDEM_TRY(RemoveFile(s));
      removed->push_back(s);
    }
  }
  Status bin = c.NeedBin("postgres");
  if (!bin) {
    restore();
    return bin;
  }
  auto single =
      RunCommand({c.Bin("postgres"), "--single", "-D", d, "postgres"}, c.Opts(), timeout_ms);
  if (!single || single->exit_code != 0) {
    restore();
    std::string tail = single ? OutputTail(single->output) : single.error().message();
    return Error(ErrorCode::kIo, "crash recovery of " + d + " in single-user mode failed: " + tail +
                                     "; the data directory may be damaged: re-clone this node");
  }
  return Ok();
}

// pg_rewind refuses a target that was not shut down cleanly.
bool NeedsCrashRecovery(const RunResult& r) {
  return r.exit_code != 0 &&
         (Contains(r.output, "shut down cleanly") || Contains(r.output, "single-user"));
}

}  // namespace

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

  TANDEM_TRY(CheckpointSource(source, settings_.tls));

  auto pass = SourcePassFile(source, paths_, "pg_rewind");
  if (!pass) return pass.error();
  const std::string conninfo = RewindConninfo(source, settings_.tls);
  auto opts = c.Opts();
  opts.env["PGPASSFILE"] = *pass ? (*pass)->path() : "/dev/null";
  opts.env["LC_ALL"] = "C";
  std::vector<std::string> argv = {c.Bin("pg_rewind"), "-D", d, "--source-server=" + conninfo};
  TLOG(Info, kMod) << "pg_rewind -D " << d << " from " << where;
  auto r = RunCommand(argv, opts, timeout_ms);
  if (!r) return r.error().Wrap("pg_rewind from " + where);

  std::vector<std::string> removed_signals;  // put back if the rewind fails
  auto restore_signals = [&]() {
    for (const auto& s : removed_signals) (void)WriteOwned(s, "", paths_.run_as_user, 0600);
  };
  if (NeedsCrashRecovery(*r)) {
    TLOG(Warn, kMod) << "pg_rewind: the target was not shut down cleanly ("
                     << OutputTail(r->output, 2)
                     << "); finishing crash recovery in single-user mode";
    TANDEM_TRY(RecoverInSingleUserMode(c, timeout_ms, &removed_signals));
    r = RunCommand(argv, opts, timeout_ms);
    if (!r) {
      restore_signals();
      return r.error().Wrap("pg_rewind from " + where);
    }
  }
  pass->reset();
  if (r->exit_code != 0) {
    restore_signals();
    const CloneFailure f =
        ClassifyCloneFailure(CloneTool::kRewind, r->output, settings_.tls.enabled());
    return Error(f.code, "pg_rewind -D " + d + " from " + where + " failed (exit " +
                             std::to_string(r->exit_code) + "): " + OutputTail(r->output) + "; " +
                             f.fix);
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
