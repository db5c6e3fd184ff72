// The configuration files Tandem owns in the data directory: tandem.conf
// (and the include line in postgresql.conf), tandem.pgpass, standby.signal,
// postgresql.auto.conf's primary_* lines, pg_hba.conf and pg_ident.conf.
// The text comes from conf.h (pure); this file writes it, owned by the
// service user. Runs on the caller's thread.
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

using internal::Ctx;
using internal::kMod;
using internal::NotValid;
using internal::RemoveFile;
using internal::WriteOwned;

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

Status Postgres::WriteStandbyConfigWithoutSource() {
  TANDEM_TRY(WriteConfig(std::nullopt));
  const std::string signal = paths_.data_dir + "/standby.signal";
  TANDEM_TRY(WriteFileAtomic(signal, "", 0600));
  TANDEM_TRY(Chown(signal, paths_.run_as_user));
  TLOG(Info, kMod) << "wrote tandem.conf: standby with no upstream yet";
  return Ok();
}

}  // namespace tandem::pg
