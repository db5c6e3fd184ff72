// The schema upgrade as an operation record in the store (issue 15,
// docs/schema-upgrades.md): key /tandem/<cluster>/operations/schema, one JSON
// document with the files (their SQL while the run is running), the database,
// the target, the state (running, failed, done), who asked, who runs it, its
// progress lines and its error. Only one at a time: created only when absent
// or finished (a compare on its revision). Encoding is pure; the SHA-256 of a
// file is computed here (OpenSSL) because core links no crypto.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "agent/cluster_view.h"
#include "base/result.h"
#include "core/schema_files.h"
#include "dcs/dcs.h"

namespace tandem::agent {

struct SchemaOperation {
  std::string id;       // random, names one run
  std::string command;  // "tandem cluster upgrade-schema DIR" (the last-command line)
  std::string dir;
  std::string database = "postgres";
  uint64_t target = 0;  // 0 = every version
  int64_t timeout_ms = 0;
  std::vector<core::MigrationFile> files;  // sql emptied once finished
  std::string state;                       // "running", "failed", "done"
  std::string requested_on;
  std::string runner;                 // the node that runs it (last ran it); "" = not started
  std::vector<std::string> progress;  // newest last, at most kMaxSchemaProgress
  uint64_t progress_total = 0;        // lines ever added (a follower prints the new ones)
  std::vector<uint64_t> applied;      // versions this run applied
  std::string error;
  int64_t started_ms = 0;
  int64_t finished_ms = 0;
  dcs::Revision mod_revision = 0;  // not encoded
};

inline constexpr size_t kMaxSchemaProgress = 40;

std::string SchemaOperationKey(const Keys& keys);
std::string EncodeSchemaOperation(const SchemaOperation& op);
Result<SchemaOperation> DecodeSchemaOperation(const std::string& json);
// The record as the API shows it: everything but the SQL.
nlohmann::json SchemaOperationView(const SchemaOperation& op);
// Appends a progress line (bounded).
void AddSchemaProgress(SchemaOperation* op, const std::string& line);
// The SQL dropped (a finished record keeps names and checksums only).
void DropSchemaSql(SchemaOperation* op);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(const std::string& data);

// The API request's "files": a JSON array of {"name", "sql"} as text.
// kInvalidArgument naming the problem.
Result<std::vector<core::MigrationFile>> DecodeSchemaFiles(const std::string& text);

}  // namespace tandem::agent
