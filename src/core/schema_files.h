// Schema migrations as files (issue 15, docs/schema-upgrades.md): the name
// `V<digits>__<description>.sql`, the set of files a directory holds (no
// duplicate version, no gap, starting at 1), their text (UTF-8, the
// `-- tandem:no-transaction` first-line directive, no touching of the history
// table) and the split of one file into statements with their lines. Pure: no
// I/O, no clock; the checksums are computed by the caller (core links no
// crypto) and passed in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace tandem::core {

// The first line that makes a file non-transactional (for statements such as
// CREATE INDEX CONCURRENTLY that PostgreSQL refuses inside a transaction).
inline constexpr const char* kNoTransactionDirective = "-- tandem:no-transaction";
// The table Tandem records applied migrations in (in the migrated database).
inline constexpr const char* kHistoryTable = "tandem.schema_history";
// The most SQL one run may carry (every file together): it travels in the API
// request and in the store's operation record.
inline constexpr size_t kMaxMigrationBytes = 256 * 1024;

// One file as read from the directory.
struct MigrationFile {
  std::string name;  // the file name, no directory: "V0001__create_calls.sql"
  std::string sql;
  std::string sha256;  // hex, filled in by the caller
};

// One parsed migration.
struct Migration {
  uint64_t version = 0;     // 1 for V0001
  std::string description;  // "create calls" (underscores read as spaces)
  std::string file;
  std::string sql;
  std::string sha256;
  bool transactional = true;  // false: the first line is kNoTransactionDirective
};

// One statement of a file and the line (1-based) it starts on.
struct Statement {
  std::string sql;     // from just after the previous ';' (leading blanks included)
  int line = 1;        // the line of its first character that is code
  int first_line = 1;  // the line of sql's first character
};

// Parses "V<digits>__<description>.sql". nullopt-like error naming the rule
// the name breaks (kInvalidArgument).
Result<Migration> ParseMigrationName(const std::string& name);

// Whether `s` is valid UTF-8 (no overlong forms, no surrogates, <= U+10FFFF).
bool IsValidUtf8(const std::string& s);

// The whole set, checked before anything runs: at least one file, every name
// parses, text is UTF-8 and not empty, no two files share a version, the
// versions run 1, 2, 3, ... without a gap, the total within
// kMaxMigrationBytes, no statement touches the history table. Sorted by
// version. Each refusal names the file and the fix.
Result<std::vector<Migration>> CheckMigrationSet(const std::vector<MigrationFile>& files);

// Splits SQL into statements at top-level semicolons, honouring '...',
// E'...', "...", $tag$...$tag$, -- and (nested) /* */ comments. Statements
// that hold only comments and blanks are dropped.
std::vector<Statement> SplitStatements(const std::string& sql);

// Whether the SQL (comments and string literals aside) names the history
// table (schema_history); such a migration is refused.
bool TouchesHistoryTable(const std::string& sql);

// The line (1-based) of a 1-based character position in `sql` (PostgreSQL's
// error position); 1 when out of range.
int LineOfPosition(const std::string& sql, int position);

// "V0003" for printing: the version as the file wrote it is lost in the
// number, so the canonical form is V<version>.
std::string VersionName(uint64_t version);

}  // namespace tandem::core
