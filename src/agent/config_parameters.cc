// The table of parameters Tandem owns (what pg::RenderConfig writes; a test
// renders tandem.conf and checks every key it writes is here or is one of
// the defaults an operator may override) and the per-parameter checks.
#include "agent/config_parameters.h"

#include <map>

#include "agent/config_keys.h"
#include "base/strings.h"
#include "pg/conf.h"

namespace tandem::agent::config_internal {
namespace {

struct Owned {
  const char* name;
  const char* reason;  // what sets it instead
  bool tls_only = false;
};

const std::vector<Owned>& OwnedTable() {
  static const std::vector<Owned> table = {
      {"port", "set postgresql.port instead"},
      {"listen_addresses", "PostgreSQL listens on node.address; set that instead"},
      {"unix_socket_directories", "Tandem puts the socket in <node.state_dir>/run"},
      {"max_connections",
       "set postgresql.max_connections instead, to the same value on every node (a standby's "
       "PostgreSQL does not start with a lower max_connections than its primary's)"},
      {"wal_level", "Tandem sets it to replica, which streaming replication needs"},
      {"hot_standby", "Tandem sets it to on, so replicas serve reads"},
      {"max_wal_senders", "Tandem sets it (10), one per replica and pg_basebackup"},
      {"max_replication_slots", "Tandem sets it (10) and keeps one slot per replica"},
      {"wal_keep_size", "Tandem sets it (256MB) so a replica that falls behind can catch up"},
      {"wal_log_hints", "Tandem sets it to on, which pg_rewind needs"},
      {"hot_standby_feedback", "Tandem sets it to on"},
      {"password_encryption", "Tandem sets it to scram-sha-256, which its pg_hba.conf requires"},
      {"synchronous_standby_names", "set postgresql.sync_mode and postgresql.sync_count instead"},
      {"primary_conninfo", "Tandem points each replica at the current primary"},
      {"primary_slot_name", "Tandem points each replica at its slot on the primary"},
      {"data_directory", "set postgresql.data_dir instead"},
      {"config_file", "Tandem starts PostgreSQL with the data directory's postgresql.conf"},
      {"hba_file", "Tandem writes pg_hba.conf in the data directory from the membership"},
      {"ident_file", "Tandem writes pg_ident.conf in the data directory"},
      {"include", "an include directive is not a parameter"},
      {"include_if_exists", "an include directive is not a parameter"},
      {"include_dir", "an include directive is not a parameter"},
      {"ssl", "Tandem turns TLS on from the tls section", true},
      {"ssl_cert_file", "Tandem sets it from tls.server_cert", true},
      {"ssl_key_file", "Tandem sets it from tls.server_key", true},
      {"ssl_ca_file", "Tandem sets it from tls.ca_cert (and tls.mode)", true},
  };
  return table;
}

std::string ParamKey(const std::string& name) {
  return "'postgresql.parameters." + name + "'";
}

std::string Shown(const std::string& v) {
  std::string out;
  for (char ch : v.substr(0, 80)) out += (ch == '\n' || ch == '\r' || ch == '\0') ? ' ' : ch;
  return out + (v.size() > 80 ? "..." : "");
}

Status CheckAgainstCatalog(const std::string& name, const std::string& value,
                           const pg::ParameterCatalog& catalog, const std::string& file) {
  const std::string lower = ToLower(name);
  // A dotted name is an extension's own (pg_stat_statements.max): PostgreSQL
  // accepts it as a placeholder, and the extension checks it when loaded.
  if (lower.find('.') != std::string::npos || pg::DeveloperOptions().count(lower)) return Ok();
  auto it = catalog.params.find(lower);
  if (it == catalog.params.end()) {
    auto near = pg::SimilarParameterNames(catalog, lower);
    std::string hint = near.empty() ? "check the spelling in PostgreSQL's documentation"
                                    : "did you mean " + Join(near, ", ") + "?";
    return Bad(file, ParamKey(name) + " is not a parameter of this node's PostgreSQL (" +
                         "postgres --describe-config does not list it); " + hint);
  }
  if (std::string expected = pg::CheckParameterValue(it->second, value); !expected.empty()) {
    return Bad(file, ParamKey(name) + " must be " + expected + " (got '" + Shown(value) + "')");
  }
  return Ok();
}

}  // namespace

std::vector<std::string> ManagedParameterNames() {
  std::vector<std::string> out;
  for (const auto& o : OwnedTable()) out.push_back(o.name);
  return out;
}

std::string ManagedParameterReason(const std::string& name, const Config& c) {
  const std::string lower = ToLower(name);
  for (const auto& o : OwnedTable()) {
    if (lower != o.name || (o.tls_only && !c.tls_enabled())) continue;
    return o.reason;
  }
  if (lower == "synchronous_commit" && c.ha.sync_mode != core::SyncMode::kOff) {
    return "Tandem sets it while postgresql.sync_mode is not off (set sync_mode and sync_count "
           "instead)";
  }
  return "";
}

Status CheckPgParameters(const Config& c, const pg::ParameterCatalog* catalog,
                         const std::string& file) {
  for (const auto& [name, value] : c.pg_parameters) {
    if (!pg::IsValidGucName(name)) {
      return Bad(file, ParamKey(Shown(name)) +
                           " is not a valid parameter name (letters, digits, _ and ., starting "
                           "with a letter or _, at most 63)");
    }
    if (std::string why = ManagedParameterReason(name, c); !why.empty()) {
      return Bad(file, ParamKey(name) + " is managed by Tandem: " + why +
                           "; remove it from postgresql.parameters");
    }
    if (value.find_first_of(std::string("\n\r\0", 3)) != std::string::npos) {
      return Bad(file,
                 ParamKey(name) + " must be a single line (no newline, carriage return or NUL)");
    }
    if (catalog != nullptr) TANDEM_TRY(CheckAgainstCatalog(name, value, *catalog, file));
  }
  return Ok();
}

}  // namespace tandem::agent::config_internal
