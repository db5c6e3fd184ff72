// Helpers shared by the files that implement pg::Postgres (datadir.cc,
// config_files.cc, lifecycle.cc, clone.cc, replication.cc): the service
// user's ids, files owned by it (secret files, prepared directories), the
// server log's tail, and the usual error messages. Not part of the interface:
// include it only from src/pg/*.cc.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>

#include "base/process.h"
#include "base/result.h"
#include "pg/types.h"

namespace tandem::pg::internal {

inline constexpr const char* kMod = "pg";

// `what: strerror(errno)`.
Error Errno(ErrorCode code, const std::string& what);
// Whole seconds, at least 1 (pg_ctl -t).
int Seconds(int64_t ms);
bool Contains(const std::string& hay, const std::string& needle);

// uid/gid of the service user; the current ids when the user is empty.
struct Ids {
  uid_t uid;
  gid_t gid;
};
Result<Ids> UserIds(const std::string& user);

// A file holding a secret (pwfile, PGPASSFILE): 0600, owned by the service
// user, removed when this object dies.
class SecretFile {
 public:
  static Result<std::unique_ptr<SecretFile>> Create(const std::string& near_dir,
                                                    const std::string& content,
                                                    const std::string& user);
  ~SecretFile();
  const std::string& path() const { return path_; }

 private:
  explicit SecretFile(std::string p) : path_(std::move(p)) {}
  std::string path_;
};

// Creates `path` (parents 0755) with `mode` when missing. An existing
// directory is given `mode` and the owner only when `take_over`; otherwise it
// must already belong to the user.
Status PrepareDir(const std::string& path, mode_t mode, const std::string& user, bool take_over,
                  const std::string& role);
// Writes a file PostgreSQL reads, atomically, owned by the service user.
Status WriteOwned(const std::string& path, const std::string& content, const std::string& user,
                  mode_t mode = 0600);
// unlink; a missing file is fine.
Status RemoveFile(const std::string& path);
// Removes everything inside dir (not dir itself).
void EmptyDir(const std::string& dir);
// The last lines of a file (the server log), as OutputTail lines.
std::string FileTail(const std::string& path, size_t lines = 10);

// The programs and files of one data directory.
struct Ctx {
  const Paths& p;
  std::string Bin(const std::string& name) const { return p.bin_dir + "/" + name; }
  std::string Data(const std::string& name) const { return p.data_dir + "/" + name; }
  // Run as the service user, in "/".
  SpawnOptions Opts() const;
  // kNotFound (with the fix) when bin_dir/name is not executable.
  Status NeedBin(const std::string& name) const;
};

// PostgreSQL refuses a data directory it does not own; say so before pg_ctl does.
Status CheckOwner(const Paths& p, const std::string& what);
// "cannot <what>: data directory <dir> does not exist/is empty/..." (kFailedPrecondition).
Status NotValid(const std::string& dir, DataDirState st, const std::string& what);
// A Source usable by pg_basebackup/pg_rewind (host, user, port, slot name).
Status CheckSource(const Source& s, const char* what);

// libpq parameters of a connection to the local server over its Unix socket
// as the superuser; statement_timeout_ms <= 0 leaves the server's default.
std::map<std::string, std::string> LocalParams(const Paths& p, const Settings& s,
                                               int connect_timeout_s, int statement_timeout_ms);
// How errors name the local server.
std::string LocalName(const Paths& p, const Settings& s);

}  // namespace tandem::pg::internal
