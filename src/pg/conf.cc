// The text of the files Tandem writes for PostgreSQL (tandem.conf, pg_hba.conf,
// pg_ident.conf, the passfile line, conninfo strings, with quoting and the
// checks of names and values) and the edits of postgresql.conf and
// postgresql.auto.conf. The parsers are in conf_parse.cc. Pure: no I/O.
#include "pg/conf.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "base/strings.h"

namespace tandem::pg {
namespace {

bool HasBadChar(const std::string& s) {
  return s.find_first_of(std::string("\n\r\0", 3)) != std::string::npos;
}

// Settings Tandem writes itself: an operator's `extra` may not override them.
const std::set<std::string>& ManagedKeys() {
  static const std::set<std::string> keys = {
      "listen_addresses",
      "port",
      "unix_socket_directories",
      "max_connections",
      "wal_level",
      "hot_standby",
      "max_wal_senders",
      "max_replication_slots",
      "wal_keep_size",
      "wal_log_hints",
      "hot_standby_feedback",
      "password_encryption",
      "synchronous_standby_names",
      "primary_conninfo",
      "primary_slot_name",
      "data_directory",
      "hba_file",
      "ident_file",
      "include",
      "include_if_exists",
      "include_dir",
  };
  return keys;
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string SlotNameFor(const std::string& member_name) {
  std::string out = "tandem_";
  for (char c : member_name) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool ok = (l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '_';
    out += ok ? l : '_';
  }
  if (out.size() > 63) out.resize(63);  // NAMEDATALEN - 1
  return out;
}

Result<std::string> QuoteConfValue(const std::string& value) {
  if (HasBadChar(value)) {
    return Error(ErrorCode::kInvalidArgument,
                 "a PostgreSQL setting value cannot contain a newline, carriage return or NUL");
  }
  std::string out = "'";
  for (char c : value) {
    if (c == '\'')
      out += "''";
    else if (c == '\\')
      out += "\\\\";
    else
      out += c;
  }
  out += '\'';
  return out;
}

std::string QuoteConninfoValue(const std::string& value) {
  bool bare = !value.empty();
  for (char c : value) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' ||
              c == '/' || c == ':' || c == '@';
    if (!ok) {
      bare = false;
      break;
    }
  }
  if (bare) return value;
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

std::string BuildConninfo(const std::vector<std::pair<std::string, std::string>>& kv) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : kv) {
    if (v.empty()) continue;
    parts.push_back(k + "=" + QuoteConninfoValue(v));
  }
  return Join(parts, " ");
}

Result<std::string> PassFileLine(const std::string& user, const std::string& password) {
  if (HasBadChar(user) || HasBadChar(password)) {
    return Error(ErrorCode::kInvalidArgument,
                 "a user name or password for a libpq password file cannot contain a newline, "
                 "carriage return or NUL; choose another password");
  }
  auto esc = [](const std::string& s) {
    std::string o;
    for (char c : s) {
      if (c == ':' || c == '\\') o += '\\';
      o += c;
    }
    return o;
  };
  return "*:*:*:" + esc(user) + ":" + esc(password) + "\n";
}

bool IsValidGucName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  if (!(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')) return false;
  }
  return name.back() != '.';
}

bool IsValidRoleName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  if (!(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

bool IsValidSlotName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

std::vector<std::pair<std::string, std::string>> ClientTlsParams(const TlsSettings& tls) {
  switch (tls.mode) {
    case TlsMode::kOff:
      return {};
    case TlsMode::kPermissive:
      // Encrypted, the client certificate offered, the server not verified.
      return {{"sslmode", "require"}, {"sslcert", tls.client_cert}, {"sslkey", tls.client_key}};
    case TlsMode::kEnforce:
      return {{"sslmode", tls.verify_hostname ? "verify-full" : "verify-ca"},
              {"sslrootcert", tls.ca_cert},
              {"sslcert", tls.client_cert},
              {"sslkey", tls.client_key}};
  }
  return {};
}

std::string PrimaryConninfo(const Source& source, const std::string& passfile,
                            const TlsSettings& tls) {
  std::vector<std::pair<std::string, std::string>> kv = {
      {"host", source.host},  {"port", std::to_string(source.port)},
      {"user", source.user},  {"application_name", source.application_name},
      {"passfile", passfile}, {"connect_timeout", "5"}};
  for (auto& p : ClientTlsParams(tls)) kv.push_back(std::move(p));
  return BuildConninfo(kv);
}

namespace {

Error Bad(const std::string& what) {
  return Error(ErrorCode::kInvalidArgument, what);
}

// The numeric settings within PostgreSQL's ranges, the addresses given.
Status CheckSettings(const Settings& s, const std::string& socket_dir) {
  if (s.port < 1 || s.port > 65535) {
    return Bad("postgresql port " + std::to_string(s.port) + " is out of range (1-65535)");
  }
  if (s.max_connections < 1 || s.max_connections > 262143) {
    return Bad("max_connections " + std::to_string(s.max_connections) +
               " is out of range (1-262143)");
  }
  if (s.max_wal_senders < 0 || s.max_wal_senders > 262143) {
    return Bad("max_wal_senders " + std::to_string(s.max_wal_senders) + " is out of range");
  }
  if (s.max_replication_slots < 0 || s.max_replication_slots > 262143) {
    return Bad("max_replication_slots " + std::to_string(s.max_replication_slots) +
               " is out of range");
  }
  if (s.listen_address.empty()) return Bad("listen_address is empty (use 127.0.0.1 or an IP)");
  if (socket_dir.empty()) return Bad("socket directory is empty");
  return Ok();
}

// tandem.conf's lines in order: key and the literal as written.
struct ConfLines {
  std::vector<std::pair<std::string, std::string>> lines;
  // A string value, quoted (refused when it cannot be: a newline, a NUL).
  Status Quoted(const std::string& key, const std::string& v) {
    auto r = QuoteConfValue(v);
    if (!r) return r.error().Wrap(key);
    lines.emplace_back(key, *r);
    return Ok();
  }
  void Raw(const std::string& key, const std::string& v) { lines.emplace_back(key, v); }
};

// The settings Tandem manages, and failover-friendly defaults.
Status AddManaged(ConfLines& c, const Settings& s, const std::string& socket_dir) {
  TANDEM_TRY(c.Quoted("listen_addresses", s.listen_address));
  c.Raw("port", std::to_string(s.port));
  TANDEM_TRY(c.Quoted("unix_socket_directories", socket_dir));
  c.Raw("max_connections", std::to_string(s.max_connections));
  c.Raw("wal_level", "replica");
  c.Raw("hot_standby", "on");
  c.Raw("max_wal_senders", std::to_string(s.max_wal_senders));
  c.Raw("max_replication_slots", std::to_string(s.max_replication_slots));
  TANDEM_TRY(c.Quoted("wal_keep_size", s.wal_keep_size));
  c.Raw("wal_log_hints", "on");
  c.Raw("hot_standby_feedback", "on");
  c.Raw("password_encryption", "'scram-sha-256'");
  TANDEM_TRY(c.Quoted("synchronous_standby_names", s.synchronous_standby_names));
  // Failover-friendly defaults the operator may override in `extra`: a standby
  // retries a lost or re-pointed upstream after 250ms instead of 5s, and a
  // silent peer (frozen, cut off) is dropped after 10s instead of 60s, so the
  // primary stops counting it as a synchronous standby.
  for (const auto& [k, v] : std::map<std::string, std::string>{
           {"wal_retrieve_retry_interval", "250ms"},
           {"wal_sender_timeout", "10s"},
           {"wal_receiver_timeout", "10s"},
           // Crash recovery starts by syncing the data directory: one
           // syncfs() instead of an fsync per file (0.7s of a 1s restart here).
           {"recovery_init_sync_method", "syncfs"}}) {
    if (s.extra.count(k) == 0) TANDEM_TRY(c.Quoted(k, v));
  }
  return Ok();
}

Status AddTls(ConfLines& c, const TlsSettings& tls) {
  if (!tls.enabled()) return Ok();
  if (tls.server_cert.empty() || tls.server_key.empty() || tls.ca_cert.empty() ||
      tls.client_cert.empty() || tls.client_key.empty()) {
    return Bad("TLS is on but a certificate or key path is empty");
  }
  c.Raw("ssl", "on");
  TANDEM_TRY(c.Quoted("ssl_cert_file", tls.server_cert));
  TANDEM_TRY(c.Quoted("ssl_key_file", tls.server_key));
  // enforce: client certificates are requested and must chain to the CA.
  // permissive: none is requested (one from another CA would fail the
  // handshake), so peers are not verified.
  TANDEM_TRY(c.Quoted("ssl_ca_file", tls.mode == TlsMode::kEnforce ? tls.ca_cert : ""));
  return Ok();
}

// postgresql.parameters: valid names that Tandem does not manage.
Status AddExtra(ConfLines& c, const Settings& s) {
  for (const auto& [k, v] : s.extra) {
    if (s.tls.enabled()) {
      static const std::set<std::string> tls_keys = {"ssl", "ssl_cert_file", "ssl_key_file",
                                                     "ssl_ca_file"};
      if (tls_keys.count(Lower(k)) != 0) {
        return Bad("extra PostgreSQL parameter '" + k +
                   "' is managed by Tandem when the tls section is set; remove it from "
                   "postgresql.parameters");
      }
    }
    if (!IsValidGucName(k)) {
      return Bad("extra PostgreSQL parameter name '" + (HasBadChar(k) ? std::string("?") : k) +
                 "' is not a valid name ([A-Za-z_][A-Za-z0-9_.]*)");
    }
    if (ManagedKeys().count(Lower(k)) != 0) {
      return Bad("extra PostgreSQL parameter '" + k +
                 "' is managed by Tandem; set it through its own setting, not `extra`");
    }
    TANDEM_TRY(c.Quoted(k, v));
  }
  return Ok();
}

// Where a standby streams from; empty on a primary.
Status AddUpstream(ConfLines& c, const std::optional<Source>& standby_of,
                   const std::string& passfile, const TlsSettings& tls) {
  if (!standby_of) {
    c.Raw("primary_conninfo", "''");
    c.Raw("primary_slot_name", "''");
    return Ok();
  }
  if (standby_of->host.empty()) return Bad("standby source has no host");
  if (standby_of->user.empty()) return Bad("standby source has no user");
  if (standby_of->port < 1 || standby_of->port > 65535) {
    return Bad("standby source port " + std::to_string(standby_of->port) + " is out of range");
  }
  if (!standby_of->slot_name.empty() && !IsValidSlotName(standby_of->slot_name)) {
    return Bad("slot name '" + standby_of->slot_name + "' is not valid ([a-z0-9_]{1,63})");
  }
  TANDEM_TRY(c.Quoted("primary_conninfo", PrimaryConninfo(*standby_of, passfile, tls)));
  TANDEM_TRY(c.Quoted("primary_slot_name", standby_of->slot_name));
  return Ok();
}

}  // namespace

Result<std::string> RenderConfig(const Settings& s, const std::string& socket_dir,
                                 const std::optional<Source>& standby_of,
                                 const std::string& passfile) {
  TANDEM_TRY(CheckSettings(s, socket_dir));
  ConfLines c;
  TANDEM_TRY(AddManaged(c, s, socket_dir));
  TANDEM_TRY(AddTls(c, s.tls));
  TANDEM_TRY(AddExtra(c, s));
  TANDEM_TRY(AddUpstream(c, standby_of, passfile, s.tls));
  std::string out =
      "# Written by Tandem; every change here is overwritten. Set parameters in the\n"
      "# node configuration (postgresql.parameters) instead.\n";
  out += standby_of ? "# role: standby\n" : "# role: primary\n";
  for (const auto& [k, v] : c.lines) out += k + " = " + v + "\n";
  return out;
}

std::optional<std::string> HostCidr(const std::string& address) {
  unsigned char buf[16];
  if (address.empty() || address.size() > 45) return std::nullopt;
  if (::inet_pton(AF_INET, address.c_str(), buf) == 1) return address + "/32";
  if (::inet_pton(AF_INET6, address.c_str(), buf) == 1) return address + "/128";
  return std::nullopt;
}

namespace {

Status CheckReplicationUser(const std::string& replication_user) {
  if (!IsValidRoleName(replication_user)) {
    return Error(ErrorCode::kInvalidArgument,
                 "replication user name '" +
                     (HasBadChar(replication_user) ? std::string("?") : replication_user) +
                     "' is not valid (letters, digits and _, starting with a letter or _)");
  }
  if (replication_user == kSuperuser) {
    return Error(ErrorCode::kInvalidArgument,
                 "the replication user cannot be the superuser 'postgres'; use e.g. 'replicator'");
  }
  return Ok();
}

struct HbaRow {
  std::string cidr, name;
};

// One row per distinct peer address (host CIDR), in the peers' order.
Result<std::vector<HbaRow>> PeerRows(const std::vector<HbaPeer>& peers) {
  std::vector<HbaRow> rows;
  std::set<std::string> seen;
  for (const auto& p : peers) {
    auto cidr = HostCidr(p.address);
    if (!cidr) {
      std::string shown = HasBadChar(p.address) ? "(contains a newline)" : "'" + p.address + "'";
      return Error(ErrorCode::kInvalidArgument,
                   "peer " + (IsValidName(p.name) ? p.name : std::string("?")) + " address " +
                       shown +
                       " is not an IP address; give an IPv4 or IPv6 address (no name, no "
                       "mask)");
    }
    if (seen.insert(*cidr).second) rows.push_back({*cidr, p.name});
  }
  return rows;
}

std::string HbaLine(const std::string& type, const std::string& db, const std::string& user,
                    const std::string& addr, const std::string& method,
                    const std::string& comment) {
  std::string l = type + "   " + db + "   " + user + "   " + addr + "   " + method;
  if (!comment.empty()) l += "   # " + comment;
  return l + "\n";
}

std::string PeerComment(const std::string& name) {
  return IsValidName(name) ? name : std::string();
}

// Streaming replication from the peers (and this node over loopback).
std::string ReplicationRules(const std::vector<HbaRow>& rows, const std::string& replication_user,
                             TlsMode tls) {
  const bool ssl = tls != TlsMode::kOff;
  const std::string loopback = "127.0.0.1/32";
  // Replication and the superuser from peers: over TLS only when TLS is on.
  const std::string peer_type = ssl ? "hostssl" : "host";
  // enforce: the client certificate (CN postgres, chained to ssl_ca_file)
  // is the credential, mapped to the replication user by pg_ident.conf.
  const std::string repl_method =
      tls == TlsMode::kEnforce ? std::string("cert map=") + kIdentMap : "scram-sha-256";
  std::string out;
  if (tls == TlsMode::kEnforce) {
    out +=
        "# Streaming replication from the peers, over TLS with a client certificate\n"
        "# (CN postgres, signed by the cluster CA; pg_ident.conf map tandem).\n";
  } else if (ssl) {
    out += "# Streaming replication from the peers, over TLS only.\n";
  } else {
    out += "# Streaming replication from the peers.\n";
  }
  bool loopback_listed = false;
  for (const auto& r : rows) {
    if (r.cidr == loopback) loopback_listed = true;
    out += HbaLine(peer_type, "replication", replication_user, r.cidr, repl_method,
                   PeerComment(r.name));
  }
  if (!loopback_listed) {
    out += HbaLine(peer_type, "replication", replication_user, loopback, repl_method, "local");
  }
  if (ssl) {
    out += HbaLine("hostnossl", "replication", "all", "all", "reject",
                   "TLS is required for replication");
  }
  return out;
}

}  // namespace

Result<std::string> RenderHba(const std::vector<HbaPeer>& peers,
                              const std::string& replication_user, TlsMode tls) {
  TANDEM_TRY(CheckReplicationUser(replication_user));
  auto rows = PeerRows(peers);
  if (!rows) return rows.error();
  const bool ssl = tls != TlsMode::kOff;
  const std::string peer_type = ssl ? "hostssl" : "host";
  std::string out =
      "# Written by Tandem from the cluster membership; every change here is overwritten.\n"
      "# TYPE  DATABASE     USER        ADDRESS   METHOD\n"
      "# The socket directory is 0700: only root and the service user reach it.\n"
      "local   all          all                   trust\n";
  out += ReplicationRules(*rows, replication_user, tls);
  out += ssl ? "# The superuser over TCP only from the peers (pg_rewind), over TLS only.\n"
             : "# The superuser over TCP only from the peers (pg_rewind).\n";
  for (const auto& r : *rows) {
    out += HbaLine(peer_type, "all", kSuperuser, r.cidr, "scram-sha-256", PeerComment(r.name));
  }
  out += HbaLine("host", "all", kSuperuser, "all", "reject", "");
  out += "# Every other user from anywhere, with a password.\n";
  out += HbaLine("host", "all", "all", "all", "scram-sha-256", "");
  return out;
}

std::string RenderIdent(const std::string& replication_user) {
  std::string out =
      "# Written by Tandem; every change here is overwritten.\n"
      "# MAPNAME   SYSTEM-USERNAME (certificate CN)   PG-USERNAME\n";
  out += std::string(kIdentMap) + "   " + kClientCertCn + "   " + replication_user + "\n";
  out += std::string(kIdentMap) + "   " + kClientCertCn + "   " + kSuperuser + "\n";
  return out;
}

std::string EnsureIncludeLast(const std::string& conf) {
  std::vector<std::string> kept;
  for (const auto& l : Split(conf, '\n')) {
    if (Trim(l) == kIncludeLine) continue;
    kept.push_back(l);
  }
  while (!kept.empty() && Trim(kept.back()).empty()) kept.pop_back();
  std::string out = Join(kept, "\n");
  if (!out.empty()) out += "\n";
  out += std::string(kIncludeLine) + "\n";
  return out;
}

std::string RemoveConfKeys(const std::string& content, const std::vector<std::string>& keys) {
  std::vector<std::string> kept;
  auto lines = Split(content, '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    std::string t = Trim(l);
    bool drop = false;
    for (const auto& k : keys) {
      if (t.size() > k.size() && Lower(t.substr(0, k.size())) == k) {
        std::string rest = Trim(t.substr(k.size()));
        if (!rest.empty() && rest[0] == '=') drop = true;
      }
    }
    if (!drop) kept.push_back(l);
  }
  return Join(kept, "\n");
}

}  // namespace tandem::pg
