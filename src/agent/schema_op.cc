// The schema upgrade's operation record: its key, JSON encoding, the API's
// view of it, the request's file list, SHA-256 (see schema_op.h). Pure but for
// OpenSSL's digest.
#include "agent/schema_op.h"

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

namespace tandem::agent {
using nlohmann::json;

std::string SchemaOperationKey(const Keys& keys) {
  return keys.prefix + "operations/schema";
}

std::string EncodeSchemaOperation(const SchemaOperation& op) {
  json files = json::array();
  for (const auto& f : op.files) {
    files.push_back({{"name", f.name}, {"sha256", f.sha256}, {"sql", f.sql}});
  }
  return json{{"id", op.id},
              {"command", op.command},
              {"dir", op.dir},
              {"database", op.database},
              {"target", op.target},
              {"timeout_ms", op.timeout_ms},
              {"files", files},
              {"state", op.state},
              {"requested_on", op.requested_on},
              {"runner", op.runner},
              {"progress", op.progress},
              {"progress_total", op.progress_total},
              {"applied", op.applied},
              {"error", op.error},
              {"started_ms", op.started_ms},
              {"finished_ms", op.finished_ms}}
      .dump();
}

Result<SchemaOperation> DecodeSchemaOperation(const std::string& text) {
  try {
    const json j = json::parse(text);
    SchemaOperation op;
    op.id = j.at("id").get<std::string>();
    op.command = j.value("command", "");
    op.dir = j.value("dir", "");
    op.database = j.value("database", "postgres");
    op.target = j.value("target", uint64_t{0});
    op.timeout_ms = j.value("timeout_ms", int64_t{0});
    for (const auto& f : j.value("files", json::array())) {
      op.files.push_back(
          {f.at("name").get<std::string>(), f.value("sql", ""), f.value("sha256", "")});
    }
    op.state = j.at("state").get<std::string>();
    op.requested_on = j.value("requested_on", "");
    op.runner = j.value("runner", "");
    op.progress = j.value("progress", std::vector<std::string>{});
    op.progress_total = j.value("progress_total", uint64_t{op.progress.size()});
    op.applied = j.value("applied", std::vector<uint64_t>{});
    op.error = j.value("error", "");
    op.started_ms = j.value("started_ms", int64_t{0});
    op.finished_ms = j.value("finished_ms", int64_t{0});
    return op;
  } catch (const std::exception& e) {
    return Error(ErrorCode::kInvalidArgument,
                 std::string("the schema operation record is malformed: ") + e.what());
  }
}

json SchemaOperationView(const SchemaOperation& op) {
  json files = json::array();
  for (const auto& f : op.files) files.push_back({{"name", f.name}, {"sha256", f.sha256}});
  return {{"id", op.id},
          {"command", op.command},
          {"dir", op.dir},
          {"database", op.database},
          {"target", op.target},
          {"files", files},
          {"state", op.state},
          {"requested_on", op.requested_on},
          {"runner", op.runner},
          {"progress", op.progress},
          {"progress_total", op.progress_total},
          {"applied", op.applied},
          {"error", op.error},
          {"started_ms", op.started_ms},
          {"finished_ms", op.finished_ms}};
}

void AddSchemaProgress(SchemaOperation* op, const std::string& line) {
  op->progress.push_back(line);
  ++op->progress_total;
  if (op->progress.size() > kMaxSchemaProgress) op->progress.erase(op->progress.begin());
}

void DropSchemaSql(SchemaOperation* op) {
  for (auto& f : op->files) f.sql.clear();
}

std::string Sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

Result<std::vector<core::MigrationFile>> DecodeSchemaFiles(const std::string& text) {
  std::vector<core::MigrationFile> out;
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception&) {
    return Error(
        ErrorCode::kInvalidArgument,
        "\"files\" is not JSON text; send a JSON array of {\"name\", \"sql\"} as a string");
  }
  if (!j.is_array()) {
    return Error(ErrorCode::kInvalidArgument,
                 "\"files\" must hold a JSON array of {\"name\", \"sql\"}");
  }
  for (const auto& f : j) {
    if (!f.is_object() || !f.contains("name") || !f["name"].is_string() || !f.contains("sql") ||
        !f["sql"].is_string() || f.size() != 2) {
      return Error(ErrorCode::kInvalidArgument,
                   "each entry of \"files\" must be {\"name\": STRING, \"sql\": STRING} (got " +
                       f.dump().substr(0, 80) + ")");
    }
    core::MigrationFile m;
    m.name = f["name"].get<std::string>();
    m.sql = f["sql"].get<std::string>();
    m.sha256 = Sha256Hex(m.sql);
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace tandem::agent
