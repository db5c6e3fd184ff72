// The config file's keys, one row each (see config_keys.h). The readers keep
// the messages the loader has always given: each names the key, what is
// wrong and what to write instead.
#include "agent/config_keys.h"

#include <cctype>

#include "base/log.h"
#include "base/strings.h"
#include "core/types.h"

namespace tandem::agent::config_internal {
namespace {

using Read = std::function<Status(const YAML::Node&, Config&, const std::string&)>;
using Show = std::function<std::string(const Config&)>;

template <typename T>
using Field = T& (*)(Config&);

std::string Quoted(const std::string& s) {
  return s.empty() ? "\"\"" : s;
}

std::string DurationText(int64_t ms) {
  if (ms == 0) return "0";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string Scalar(const YAML::Node& v) {
  return v.IsScalar() ? v.as<std::string>() : "";
}

// A string; `check` (optional) validates it and returns "" or the message.
Key String(std::string path, std::string def, Field<std::string> field,
           std::function<std::string(const std::string&)> check = nullptr) {
  Key k{path, "string", std::move(def), nullptr, nullptr};
  k.read = [path, field, check](const YAML::Node& v, Config& c, const std::string& file) -> Status {
    if (!v.IsScalar()) return Bad(file, "'" + path + "' must be a string");
    std::string s = v.as<std::string>();
    if (s.size() > 4096)
      return Bad(file, "'" + path + "' is too long (a string of at most 4096 characters)");
    if (check) {
      if (std::string problem = check(s); !problem.empty()) return Bad(file, problem);
    }
    field(c) = std::move(s);
    return Ok();
  };
  k.show = [field](const Config& c) { return Quoted(field(const_cast<Config&>(c))); };
  return k;
}

// true/yes/on or false/no/off, as YAML 1.1 spells booleans.
Key Bool(std::string path, std::string def, Field<bool> field) {
  Key k{path, "bool", std::move(def), nullptr, nullptr};
  k.read = [path, field](const YAML::Node& v, Config& c, const std::string& file) -> Status {
    const std::string text = Scalar(v);
    if (text == "true" || text == "yes" || text == "on") {
      field(c) = true;
    } else if (text == "false" || text == "no" || text == "off") {
      field(c) = false;
    } else {
      return Bad(file, "'" + path + "' must be true or false");
    }
    return Ok();
  };
  k.show = [field](const Config& c) {
    return std::string(field(const_cast<Config&>(c)) ? "true" : "false");
  };
  return k;
}

// zero_ok: 0 is allowed and means "off".
Key Port(std::string path, std::string def, Field<int> field, bool zero_ok = false) {
  Key k{path, zero_ok ? "port or 0" : "port", std::move(def), nullptr, nullptr};
  k.read = [path, field, zero_ok](const YAML::Node& v, Config& c,
                                  const std::string& file) -> Status {
    auto parsed = v.IsScalar() ? ParseInt(v.as<std::string>()) : std::nullopt;
    if (!parsed || *parsed < (zero_ok ? 0 : 1) || *parsed > 65535) {
      return Bad(file, "'" + path + "' must be a TCP port between 1 and 65535" +
                           (zero_ok ? std::string(", or 0 for off") : std::string()));
    }
    field(c) = static_cast<int>(*parsed);
    return Ok();
  };
  k.show = [field](const Config& c) { return std::to_string(field(const_cast<Config&>(c))); };
  return k;
}

// A duration such as 500ms, 2s or 1m, more than 0 and at most 1h.
Key Duration(std::string path, std::string def, Field<int64_t> field) {
  Key k{path, "duration", std::move(def), nullptr, nullptr};
  k.read = [path, field](const YAML::Node& v, Config& c, const std::string& file) -> Status {
    auto parsed = v.IsScalar() ? ParseDurationMs(v.as<std::string>()) : std::nullopt;
    if (!parsed || *parsed <= 0 || *parsed > 3'600'000) {
      return Bad(file, "'" + path + "' must be a duration such as 500ms, 2s or 1m (at most 1h)");
    }
    field(c) = *parsed;
    return Ok();
  };
  k.show = [field](const Config& c) { return DurationText(field(const_cast<Config&>(c))); };
  return k;
}

// An integer in [min, max]; `message` is the whole error text.
template <typename T>
Key Integer(std::string path, std::string def, Field<T> field, int64_t min, int64_t max,
            std::string message) {
  Key k{path, "integer", std::move(def), nullptr, nullptr};
  k.read = [field, min, max, message](const YAML::Node& v, Config& c,
                                      const std::string& file) -> Status {
    auto parsed = v.IsScalar() ? ParseInt(v.as<std::string>()) : std::nullopt;
    if (!parsed || *parsed < min || *parsed > max) return Bad(file, message);
    field(c) = static_cast<T>(*parsed);
    return Ok();
  };
  k.show = [field](const Config& c) { return std::to_string(field(const_cast<Config&>(c))); };
  return k;
}

constexpr int64_t kMaxInt = INT64_MAX;

std::string NameProblem(const std::string& key, const std::string& v) {
  if (IsValidName(v)) return "";
  return "'" + key + "' must be 1-63 characters of a-z, 0-9, '-', '_' or '.' (got '" + v + "')";
}

// A host name as RFC 1123 spells one: labels of letters, digits and '-'.
bool IsHostName(const std::string& v) {
  if (v.empty() || v.size() > 253) return false;
  for (const auto& label : Split(v, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char ch : label) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-') return false;
    }
  }
  return true;
}

std::string HostProblem(const std::string& key, const std::string& v) {
  if (IsIpAddress(v) || IsHostName(v)) return "";
  return "'" + key + "' must be an IP address or a host name, such as 127.0.0.1 or 0.0.0.0 (got '" +
         v + "')";
}

std::string IpProblem(const std::string& key, const std::string& v) {
  if (v.empty() || IsIpAddress(v)) return "";
  return "'" + key + "' must be an IP address such as 10.0.0.1 (got '" + v + "')";
}

// A file or directory path: one line, no NUL; `absolute` when it must start with /.
std::function<std::string(const std::string&)> PathCheck(std::string key, bool absolute) {
  return [key, absolute](const std::string& v) -> std::string {
    if (v.find_first_of(std::string("\n\r\0", 3)) != std::string::npos) {
      return "'" + key + "' must be a path on one line";
    }
    if (absolute && !v.empty() && v.front() != '/') {
      return "'" + key + "' must be an absolute path, starting with / (got '" + v + "')";
    }
    return "";
  };
}

std::string UserProblem(const std::string& v) {
  bool ok = !v.empty() && v.size() <= 32 &&
            (std::islower(static_cast<unsigned char>(v[0])) || v[0] == '_');
  for (char ch : v) {
    ok = ok && (std::islower(static_cast<unsigned char>(ch)) ||
                std::isdigit(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-');
  }
  if (ok) return "";
  return "'node.run_as_user' must be a user name (a-z, 0-9, '_', '-', starting with a letter or "
         "'_', at most 32; for example postgres) (got '" +
         v + "')";
}

std::string InterfaceProblem(const std::string& key, const std::string& v) {
  bool ok = v.size() < 16 && v != "." && v != "..";  // IF_NAMESIZE - 1
  for (char ch : v) ok = ok && std::isgraph(static_cast<unsigned char>(ch)) && ch != '/';
  if (ok) return "";
  return "'" + key + "' must be a network interface name such as eth0 (see `ip link`) (got '" + v +
         "')";
}

// http(s)://host:port, the host an IP address or a name, the port 1-65535.
std::string EndpointProblem(const std::string& url) {
  const std::string problem = "'dcs.endpoints' entry '" + url +
                              "' must be a URL such as http://10.0.0.1:2379 (http:// or "
                              "https://, a host, a port from 1 to 65535, nothing after)";
  std::string rest;
  if (StartsWith(url, "http://")) {
    rest = url.substr(7);
  } else if (StartsWith(url, "https://")) {
    rest = url.substr(8);
  } else {
    return problem;
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos) return problem;
  std::string host = rest.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  auto port = ParseInt(rest.substr(colon + 1));
  if (!port || *port < 1 || *port > 65535 || !(IsIpAddress(host) || IsHostName(host))) {
    return problem;
  }
  return "";
}

// The cluster name and the node section.
void ClusterAndNodeKeys(std::vector<Key>& keys) {
  keys.push_back(String(
      "cluster", "tandem", [](Config& c) -> std::string& { return c.cluster; },
      [](const std::string& v) { return NameProblem("cluster", v); }));
  // node
  keys.push_back(String(
      "node.name", "", [](Config& c) -> std::string& { return c.node_name; },
      [](const std::string& v) {
        return v.empty() ? std::string() : NameProblem("node.name", v);
      }));
  keys.push_back(String(
      "node.address", "", [](Config& c) -> std::string& { return c.node_address; },
      [](const std::string& v) { return IpProblem("node.address", v); }));
  keys.push_back(String(
      "node.interface", "", [](Config& c) -> std::string& { return c.node_interface; },
      [](const std::string& v) { return InterfaceProblem("node.interface", v); }));
  keys.push_back(String(
      "node.state_dir", "", [](Config& c) -> std::string& { return c.state_dir; },
      PathCheck("node.state_dir", false)));
  keys.push_back(String(
      "node.run_as_user", "postgres", [](Config& c) -> std::string& { return c.run_as_user; },
      UserProblem));
}

// Api.
void ApiKeys(std::vector<Key>& keys) {
  keys.push_back(String(
      "api.listen", "127.0.0.1", [](Config& c) -> std::string& { return c.api_listen; },
      [](const std::string& v) { return HostProblem("api.listen", v); }));
  keys.push_back(Port("api.port", "8008", [](Config& c) -> int& { return c.api_port; }));
  keys.push_back(Port(
      "api.health_port", "0", [](Config& c) -> int& { return c.api_health_port; }, true));
  keys.push_back(Bool("api.health_port_metrics", "false",
                      [](Config& c) -> bool& { return c.api_health_port_metrics; }));
}

// Ui: the dashboard's login (docs/dashboard.md).
void UiKeys(std::vector<Key>& keys) {
  Key k{"ui.users", "mapping", "{}", nullptr, nullptr};
  k.read = [](const YAML::Node& v, Config& c, const std::string& file) -> Status {
    if (!v.IsMap()) {
      return Bad(file,
                 "'ui.users' must be a mapping of user: crypt(3) hash, such as {admin: "
                 "'$y$j9T$...'} (make a hash with `tandem ui hash-password`)");
    }
    for (const auto& kv : v) {
      const std::string user = kv.first.IsScalar() ? kv.first.as<std::string>() : "";
      if (!IsValidName(user)) {
        return Bad(file,
                   "'ui.users' has a user name that is not 1-63 characters of a-z, 0-9, "
                   "'-', '_' or '.' (line " +
                       std::to_string(kv.first.Mark().line + 1) + ")");
      }
      const std::string hash = kv.second.IsScalar() ? kv.second.as<std::string>() : "";
      bool ok = StartsWith(hash, "$y$") || StartsWith(hash, "$2b$") || StartsWith(hash, "$2y$") ||
                StartsWith(hash, "$2a$");
      for (char ch : hash) ok = ok && ch > ' ' && ch <= '~';
      if (!ok) {
        return Bad(file, "'ui.users." + user +
                             "' must be a yescrypt ($y$...) or bcrypt ($2b$...) hash in quotes; "
                             "make one with `tandem ui hash-password`");
      }
      c.ui_users[user] = hash;
    }
    return Ok();
  };
  k.show = [](const Config& c) { return c.ui_users.empty() ? std::string("{}") : "..."; };
  keys.push_back(std::move(k));
  keys.push_back(Duration("ui.session_timeout", "30m",
                          [](Config& c) -> int64_t& { return c.ui_session_timeout_ms; }));
}

// Postgresql.
void PostgresqlKeys(std::vector<Key>& keys) {
  keys.push_back(Port("postgresql.port", "5432", [](Config& c) -> int& { return c.pg_port; }));
  keys.push_back(String(
      "postgresql.data_dir", "<state_dir>/pgdata",
      [](Config& c) -> std::string& { return c.pg_data_dir; },
      PathCheck("postgresql.data_dir", false)));
  keys.push_back(String(
      "postgresql.bin_dir", "\"\"", [](Config& c) -> std::string& { return c.pg_bin_dir; },
      PathCheck("postgresql.bin_dir", true)));
  keys.push_back(Integer<int>(
      "postgresql.max_connections", "100", [](Config& c) -> int& { return c.pg_max_connections; },
      1, 262143,
      "'postgresql.max_connections' must be an integer from 1 to 262143; use the same value on "
      "every node (a standby's PostgreSQL does not start with less than its primary's)"));
  {
    Key k{"postgresql.parameters", "mapping", "{}", nullptr, nullptr};
    k.read = [](const YAML::Node& v, Config& c, const std::string& file) -> Status {
      if (!v.IsMap()) {
        return Bad(file,
                   "'postgresql.parameters' must be a mapping of name: value, such as "
                   "{shared_buffers: 1GB}");
      }
      for (const auto& kv : v) {
        if (!kv.first.IsScalar()) {
          return Bad(file, "'postgresql.parameters' has a key that is not a name (line " +
                               std::to_string(kv.first.Mark().line + 1) + ")");
        }
        const std::string name = kv.first.as<std::string>();
        if (!kv.second.IsScalar()) {
          return Bad(file, "'postgresql.parameters." + name +
                               "' must be a single value (a number, word or quoted string)");
        }
        c.pg_parameters[name] = kv.second.as<std::string>();
      }
      return Ok();
    };
    k.show = [](const Config& c) { return c.pg_parameters.empty() ? std::string("{}") : "..."; };
    keys.push_back(std::move(k));
  }
  {
    Key k{"postgresql.sync_mode", "off | quorum | strict", "quorum", nullptr, nullptr};
    k.read = [](const YAML::Node& v, Config& c, const std::string& file) -> Status {
      const std::string mode = Scalar(v);
      if (!core::ParseSyncMode(mode, &c.ha.sync_mode)) {
        return Bad(file, "'postgresql.sync_mode' is '" + mode +
                             "'; use off (asynchronous), quorum (the default: wait for ANY "
                             "sync_count of the healthy replicas) or strict (as quorum, but "
                             "writes block when no replica acknowledges)");
      }
      return Ok();
    };
    k.show = [](const Config& c) { return std::string(core::SyncModeName(c.ha.sync_mode)); };
    keys.push_back(std::move(k));
  }
  keys.push_back(Integer<int>(
      "postgresql.sync_count", "1", [](Config& c) -> int& { return c.ha.sync_count; }, 1, 16,
      "'postgresql.sync_count' must be an integer from 1 to 16 (the number of replicas that "
      "acknowledge each commit)"));
  keys.push_back(Duration("postgresql.sync_reconnect_grace", "2s",
                          [](Config& c) -> int64_t& { return c.ha.sync_reconnect_grace_ms; }));
}

// Dcs.
void DcsKeys(std::vector<Key>& keys) {
  {
    Key k{"dcs.endpoints", "list", "[]", nullptr, nullptr};
    k.read = [](const YAML::Node& v, Config& c, const std::string& file) -> Status {
      if (!v.IsSequence()) {
        return Bad(file, "'dcs.endpoints' must be a list of URLs like http://10.0.0.1:2379");
      }
      for (const auto& e : v) {
        if (!e.IsScalar()) {
          return Bad(file, "'dcs.endpoints' must be a list of URLs like http://10.0.0.1:2379");
        }
        std::string url = e.as<std::string>();
        if (std::string problem = EndpointProblem(url); !problem.empty()) return Bad(file, problem);
        c.dcs_endpoints.push_back(url);
      }
      return Ok();
    };
    k.show = [](const Config& c) {
      std::string out;
      for (const auto& e : c.dcs_endpoints) out += (out.empty() ? "" : ", ") + e;
      return "[" + out + "]";
    };
    keys.push_back(std::move(k));
  }
  keys.push_back(
      Port("dcs.etcd_client_port", "2379", [](Config& c) -> int& { return c.etcd_client_port; }));
  keys.push_back(
      Port("dcs.etcd_peer_port", "2380", [](Config& c) -> int& { return c.etcd_peer_port; }));
  keys.push_back(String(
      "dcs.etcd_bin", "etcd", [](Config& c) -> std::string& { return c.etcd_bin; },
      [](const std::string& v) -> std::string {
        if (v.empty()) return "'dcs.etcd_bin' must name the etcd program (default etcd)";
        return PathCheck("dcs.etcd_bin", false)(v);
      }));
  keys.push_back(Duration("dcs.ttl", "2s", [](Config& c) -> int64_t& { return c.ha.ttl_ms; }));
  keys.push_back(Duration("dcs.loop_interval", "250ms",
                          [](Config& c) -> int64_t& { return c.ha.loop_interval_ms; }));
  keys.push_back(Duration("dcs.safety_margin", "500ms",
                          [](Config& c) -> int64_t& { return c.ha.safety_margin_ms; }));
  keys.push_back(Integer<uint64_t>(
      "dcs.max_lag_bytes", "16777216", [](Config& c) -> uint64_t& { return c.ha.max_lag_bytes; }, 0,
      kMaxInt, "'dcs.max_lag_bytes' must be a non-negative integer"));
}

// Proxy.
void ProxyKeys(std::vector<Key>& keys) {
  keys.push_back(Port(
      "proxy.read_write_port", "0", [](Config& c) -> int& { return c.proxy_rw_port; }, true));
  keys.push_back(Port(
      "proxy.read_only_port", "0", [](Config& c) -> int& { return c.proxy_ro_port; }, true));
  keys.push_back(String(
      "proxy.listen", "\"\"", [](Config& c) -> std::string& { return c.proxy_listen; },
      [](const std::string& v) -> std::string {
        if (v.empty() || IsIpAddress(v)) return "";
        return "'proxy.listen' must be an IP address such as 10.0.0.1 or "
               "0.0.0.0 (got '" +
               v + "')";
      }));
  keys.push_back(Integer<int>(
      "proxy.max_connections", "1000", [](Config& c) -> int& { return c.proxy_max_connections; }, 1,
      100'000, "'proxy.max_connections' must be an integer between 1 and 100000"));
  {
    // 0 (or 0s) = no idle timeout; at most 7 days.
    Key k{"proxy.idle_timeout", "duration or 0", "0", nullptr, nullptr};
    k.read = [](const YAML::Node& v, Config& c, const std::string& file) -> Status {
      auto d = v.IsScalar() ? ParseDurationMs(v.as<std::string>()) : std::nullopt;
      if (!d || *d < 0 || *d > int64_t{7} * 24 * 3'600'000) {
        return Bad(file,
                   "'proxy.idle_timeout' must be a duration such as 30m or 1h (at most 7 days), "
                   "or 0 for none");
      }
      c.proxy_idle_timeout_ms = *d;
      return Ok();
    };
    k.show = [](const Config& c) { return DurationText(c.proxy_idle_timeout_ms); };
    keys.push_back(std::move(k));
  }
  keys.push_back(Duration("proxy.connect_timeout", "3s",
                          [](Config& c) -> int64_t& { return c.proxy_connect_timeout_ms; }));
  keys.push_back(Integer<int>(
      "proxy.threads", "0", [](Config& c) -> int& { return c.proxy_threads; }, 0, 64,
      "'proxy.threads' must be an integer from 0 (one event loop per core, at most 4) to 64"));
  keys.push_back(Integer<uint64_t>(
      "proxy.read_only_max_lag_bytes", "<dcs.max_lag_bytes>",
      [](Config& c) -> uint64_t& { return c.proxy_read_only_max_lag_bytes; }, 0, kMaxInt,
      "'proxy.read_only_max_lag_bytes' must be a non-negative integer"));
  keys.push_back(Bool("proxy.read_only_fallback_to_primary", "true",
                      [](Config& c) -> bool& { return c.proxy_read_only_fallback_to_primary; }));
}

// Vip (checked as a whole by config.cc: the address is a CIDR until then), tls and log.
void VipTlsLogKeys(std::vector<Key>& keys) {
  keys.push_back(
      String("vip.address", "", [](Config& c) -> std::string& { return c.vip.address; }));
  keys.push_back(String(
      "vip.interface", "", [](Config& c) -> std::string& { return c.vip.interface; },
      [](const std::string& v) { return InterfaceProblem("vip.interface", v); }));
  // tls
  keys.push_back(String(
      "tls.server_key", "\"\"", [](Config& c) -> std::string& { return c.tls_server_key; },
      PathCheck("tls.server_key", false)));
  keys.push_back(String(
      "tls.server_cert", "\"\"", [](Config& c) -> std::string& { return c.tls_server_cert; },
      PathCheck("tls.server_cert", false)));
  keys.push_back(String(
      "tls.client_key", "\"\"", [](Config& c) -> std::string& { return c.tls_client_key; },
      PathCheck("tls.client_key", false)));
  keys.push_back(String(
      "tls.client_cert", "\"\"", [](Config& c) -> std::string& { return c.tls_client_cert; },
      PathCheck("tls.client_cert", false)));
  keys.push_back(String(
      "tls.ca_cert", "\"\"", [](Config& c) -> std::string& { return c.tls_ca_cert; },
      PathCheck("tls.ca_cert", false)));
  {
    Key k{"tls.mode", "enforce | permissive", "enforce", nullptr, nullptr};
    k.read = [](const YAML::Node& v, Config& c, const std::string& file) -> Status {
      const std::string mode = Scalar(v);
      if (mode == "enforce") {
        c.tls_mode = TlsMode::kEnforce;
      } else if (mode == "permissive") {
        c.tls_mode = TlsMode::kPermissive;
      } else {
        return Bad(file, "'tls.mode' is '" + mode +
                             "'; use enforce (every peer's certificate must be valid, signed by "
                             "tls.ca_cert and, with verify_hostname, name the peer's address) "
                             "or permissive (traffic is encrypted but peers are not verified)");
      }
      return Ok();
    };
    k.show = [](const Config& c) { return std::string(TlsModeName(c.tls_mode)); };
    keys.push_back(std::move(k));
  }
  keys.push_back(Bool("tls.verify_hostname", "true",
                      [](Config& c) -> bool& { return c.tls_verify_hostname; }));
  // log
  keys.push_back(String(
      "log.level", "info", [](Config& c) -> std::string& { return c.log_level; },
      [](const std::string& v) -> std::string {
        if (v == "debug" || v == "info" || v == "warn" || v == "error") return "";
        return "'log.level' must be one of debug, info, warn, error";
      }));
  keys.push_back(String(
      "log.target", "auto", [](Config& c) -> std::string& { return c.log_target; },
      [](const std::string& v) -> std::string {
        log::Target t{};
        if (log::ParseTarget(v, &t)) return "";
        return "'log.target' must be one of auto, stderr, journald, syslog, file";
      }));
  keys.push_back(String("log.file", "", [](Config& c) -> std::string& { return c.log_file; }));
  keys.push_back(String(
      "log.syslog_facility", "daemon",
      [](Config& c) -> std::string& { return c.log_syslog_facility; },
      [](const std::string& v) -> std::string {
        if (log::ParseFacility(v) >= 0) return "";
        return "'log.syslog_facility' must be daemon, user or local0 to local7";
      }));
}

std::vector<Key> MakeKeys() {
  std::vector<Key> keys;
  ClusterAndNodeKeys(keys);
  ApiKeys(keys);
  UiKeys(keys);
  PostgresqlKeys(keys);
  DcsKeys(keys);
  ProxyKeys(keys);
  VipTlsLogKeys(keys);
  return keys;
}

}  // namespace

Error Bad(const std::string& file, const std::string& msg) {
  return Error(ErrorCode::kInvalidArgument, file + ": " + msg);
}

const std::vector<Key>& Keys() {
  static const std::vector<Key> keys = MakeKeys();
  return keys;
}

}  // namespace tandem::agent::config_internal
