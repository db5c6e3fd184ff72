#include "base/file.h"
#include "base/log.h"
#include "pg/postgres.h"

namespace tandem::pg {

Status Postgres::WriteStandbyConfigWithoutSource() {
  TANDEM_TRY(WriteConfig(std::nullopt));
  const std::string signal = paths_.data_dir + "/standby.signal";
  TANDEM_TRY(WriteFileAtomic(signal, "", 0600));
  TANDEM_TRY(Chown(signal, paths_.run_as_user));
  TLOG(Info, "pg") << "wrote tandem.conf: standby with no upstream yet";
  return Ok();
}

}  // namespace tandem::pg
