// Synchronous replication: which standbys PostgreSQL waits for, what the store
// records about them, and in which order the two change.
//
// Pure, like Decide(). The primary's agent calls PlanSync() every cycle and
// carries out the one step it returns; the failover rule that reads the record
// is SyncCandidates() (candidates.h). The reasoning is in
// docs/design/sync-replication.md; in short, with PostgreSQL at
// ANY kp (L) and the record at (S, k), the record's claim stays true while
//   L is a subset of S and kp >= k,
// so the record is widened (members added, k lowered) before PostgreSQL's set
// changes, and narrowed (members dropped, k raised) only after PostgreSQL has
// changed AND enough of the remaining standbys have flushed past a position
// read from the primary (everything acknowledged before then).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/types.h"

namespace tandem::core {

// A standby as the primary sees it in pg_stat_replication.
struct SyncStandby {
  std::string name;        // application_name = member name
  bool streaming = false;  // state = 'streaming'
  uint64_t flush_lsn = 0;
  bool eligible = true;  // a member that may be counted (not nofailover, still registered)
  // Registered as a witness (no PostgreSQL): never counted, never waited for,
  // whatever pg_stat_replication shows under its name (docs/design/witness.md).
  bool witness = false;
  // Not connected now, but PostgreSQL waits for it and it streamed less than
  // postgresql.sync_reconnect_grace ago (the primary or the standby just
  // restarted): kept in PostgreSQL's set, so the record keeps counting it and a
  // failover stays possible, instead of writes going on with no standby.
  // Never counted as caught up.
  bool reconnecting = false;
};

struct SyncInput {
  std::string self;
  SyncMode mode = SyncMode::kQuorum;
  int count = 1;  // wanted acknowledgements per commit
  std::optional<SyncRecord> record;
  PgSyncSet pg;  // what PostgreSQL runs with now
  std::vector<SyncStandby> standbys;
  uint64_t primary_flush_lsn = 0;  // pg_current_wal_flush_lsn()
};

struct SyncStep {
  enum class Kind { kNone, kWriteRecord, kSetPg };
  Kind kind = Kind::kNone;
  SyncRecord record;  // kWriteRecord: the new record
  PgSyncSet pg;       // kSetPg: the new synchronous_standby_names
  std::string reason;
};

// The next step towards PostgreSQL waiting for the healthy standbys and the
// record naming exactly them. One step per call; kNone when settled or waiting.
SyncStep PlanSync(const SyncInput& in);

// What a standby about to be promoted does first: the record to write before
// promoting (always: the record names its writer, who holds every write it
// acknowledged) and synchronous_standby_names to
// start with, so that the current record's claim holds for every write the
// new primary acknowledges. `mode` is the promoting node's configured mode.
struct PromotionSync {
  std::optional<SyncRecord> record;  // nullopt only when sync is off and no record exists
  PgSyncSet pg;
};
PromotionSync SyncForPromotion(const std::optional<SyncRecord>& record, const std::string& self,
                               SyncMode mode, int count);

// synchronous_standby_names for a set: "" or ANY k ("a", "b").
std::string RenderSyncStandbyNames(const PgSyncSet& set);
// Parses what RenderSyncStandbyNames() writes (and "", "*", "ANY k (...)",
// "FIRST k (...)" / "k (...)" counted as their names); nullopt if unparseable.
std::optional<PgSyncSet> ParseSyncStandbyNames(const std::string& text);

// "ANY 1 (node2, node3)" for logs and status.
std::string DescribeSync(const std::vector<std::string>& names, int quorum);

}  // namespace tandem::core
