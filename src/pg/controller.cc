// pg::ReadSyncSnapshotByParts (controller.h), for controllers that have no
// one-statement form (the fakes in tests): the three reads in the order the
// sync rules need.
#include "pg/controller.h"

namespace tandem::pg {

Result<SyncSnapshot> ReadSyncSnapshotByParts(const Controller& pg) {
  SyncSnapshot snap;
  auto q = pg.Query();
  if (!q) return q.error();
  snap.in_recovery = q->in_recovery;
  if (snap.in_recovery) return snap;
  snap.flush_lsn = q->lsn;
  auto reps = pg.Replication();
  if (!reps) return reps.error();
  snap.standbys = std::move(*reps);
  auto shown = pg.Sql("SHOW synchronous_standby_names");
  if (!shown) return shown.error();
  if (shown->empty()) {
    return Error(ErrorCode::kInternal, "SHOW synchronous_standby_names returned no row");
  }
  snap.synchronous_standby_names = (*shown)[0];
  return snap;
}

}  // namespace tandem::pg
