// `tandem cluster upgrade-schema DIR` and `tandem cluster schema`
// (docs/schema-upgrades.md): their registration under `cluster`, reading
// the migration directory on this node, following the run through the
// local agent, and the text views.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "base/result.h"
#include "core/schema_files.h"

namespace CLI {
class App;
}

namespace tandem::cli {

class Context;

// Adds upgrade-schema and schema to the `cluster` group (cluster_register.cc).
void AddSchemaCommands(CLI::App* cluster, Context& ctx);

// The migration files of `dir` (regular files; names starting with '.' are
// skipped, every other name must be a migration's), checked by
// core::CheckMigrationSet before anything is sent. Errors name the file.
Result<std::vector<core::MigrationFile>> ReadMigrationDir(const std::string& dir);

// The text of `cluster schema` from GET /v1/schema's answer and, when a
// directory was given, the dry run's plan (null otherwise). Pure.
std::string RenderSchema(const nlohmann::json& schema, const nlohmann::json& plan);
// The dry run's text. Pure.
std::string RenderSchemaPlan(const nlohmann::json& plan);

}  // namespace tandem::cli
