// Schema upgrades as decisions (issue 15, docs/schema-upgrades.md): the
// directory compared with the history table (a changed checksum, an applied
// version missing from the directory), the plan (what is applied, pending,
// failed; --target), and whether the cluster has settled enough to start
// (every replica streaming from the primary and in sync). Pure: no I/O, no
// clock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "core/schema_files.h"
#include "core/types.h"

namespace tandem::core {

// One row of tandem.schema_history.
struct HistoryRow {
  uint64_t version = 0;
  std::string description;
  std::string sha256;
  std::string applied_at;  // as PostgreSQL prints timestamptz
  std::string applied_by;  // node name
  int64_t duration_ms = 0;
  bool success = true;  // false: a non-transactional file that failed part-way
};

struct SchemaPlan {
  std::vector<uint64_t> applied;        // successful rows, ascending
  std::vector<uint64_t> failed;         // rows with success = false
  std::vector<Migration> pending;       // to run now, in order (within --target)
  std::vector<uint64_t> beyond_target;  // pending but above --target
};

// Compares the directory (CheckMigrationSet's output) with the history and
// plans the run up to `target` (0 = every version). Refused, naming the file
// and nothing run: an applied version whose file's checksum changed, an
// applied version with no file, a target that is not a version in the
// directory or is below an applied version.
Result<SchemaPlan> PlanSchemaUpgrade(const std::vector<Migration>& dir,
                                     const std::vector<HistoryRow>& history, uint64_t target);

// Parses --target: "7", "V7", "V0007". kInvalidArgument otherwise.
Result<uint64_t> ParseTargetVersion(const std::string& text);

// What the settle check looks at: the registered data nodes (witnesses
// excluded) other than the primary, and each one's published state.
struct SettleInput {
  std::string primary;
  uint32_t primary_timeline = 0;
  uint64_t primary_lsn = 0;
  uint64_t max_lag_bytes = 0;
  std::vector<std::string> replicas;           // registered, not the primary
  std::map<std::string, MemberState> members;  // live states by name
  bool only_live = false;  // a resumed run: judge only the replicas that run now
  bool paused = false;
  bool other_operation = false;  // a switchover or failover request is recorded
};

// "" when settled; otherwise why not, naming the node ("node3 is not
// streaming from node1").
std::string SettleProblem(const SettleInput& in);

}  // namespace tandem::core
