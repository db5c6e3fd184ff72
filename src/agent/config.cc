#include "agent/config.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <yaml-cpp/yaml.h>

#include <set>

#include "base/file.h"
#include "base/strings.h"
#include "core/decide.h"

namespace tandem::agent {
namespace {

Error Bad(const std::string& path, const std::string& msg) {
  return Error(ErrorCode::kInvalidArgument, path + ": " + msg);
}

// Walks a mapping, refusing keys that are not in `known`.
Status CheckKeys(const YAML::Node& node, const std::string& section,
                 const std::set<std::string>& known, const std::string& path) {
  if (!node) return Ok();
  if (!node.IsMap()) return Bad(path, "'" + section + "' must be a mapping");
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    if (known.count(key) == 0) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      return Bad(path, "unknown key '" + (section.empty() ? "" : section + ".") + key +
                           "' (known keys here: " + list + ")");
    }
  }
  return Ok();
}

Status GetString(const YAML::Node& n, const char* key, const std::string& where,
                 const std::string& path, std::string* out) {
  if (!n || !n[key]) return Ok();
  const auto& v = n[key];
  if (!v.IsScalar()) return Bad(path, "'" + where + "' must be a string");
  *out = v.as<std::string>();
  if (out->size() > 4096) return Bad(path, "'" + where + "' is too long");
  return Ok();
}

// true/yes/on or false/no/off, as YAML 1.1 spells booleans.
Status GetBool(const YAML::Node& n, const char* key, const std::string& where,
               const std::string& path, bool* out) {
  if (!n || !n[key]) return Ok();
  const auto& v = n[key];
  const std::string text = v.IsScalar() ? v.as<std::string>() : "";
  if (text == "true" || text == "yes" || text == "on") {
    *out = true;
  } else if (text == "false" || text == "no" || text == "off") {
    *out = false;
  } else {
    return Bad(path, "'" + where + "' must be true or false");
  }
  return Ok();
}

// zero_ok: 0 is allowed and means "off".
Status GetPort(const YAML::Node& n, const char* key, const std::string& where,
               const std::string& path, int* out, bool zero_ok = false) {
  if (!n || !n[key]) return Ok();
  const auto& v = n[key];
  auto parsed = v.IsScalar() ? ParseInt(v.as<std::string>()) : std::nullopt;
  if (!parsed || *parsed < (zero_ok ? 0 : 1) || *parsed > 65535) {
    return Bad(path, "'" + where + "' must be a TCP port between 1 and 65535" +
                         (zero_ok ? std::string(", or 0 for off") : std::string()));
  }
  *out = static_cast<int>(*parsed);
  return Ok();
}

Status GetDuration(const YAML::Node& n, const char* key, const std::string& where,
                   const std::string& path, int64_t* out) {
  if (!n || !n[key]) return Ok();
  const auto& v = n[key];
  auto parsed = v.IsScalar() ? ParseDurationMs(v.as<std::string>()) : std::nullopt;
  if (!parsed || *parsed <= 0 || *parsed > 3'600'000) {
    return Bad(path, "'" + where + "' must be a duration such as 500ms, 2s or 1m (at most 1h)");
  }
  *out = *parsed;
  return Ok();
}

// yaml-cpp keeps the first of two equal keys silently; a config where a key
// appears twice is ambiguous, so it is refused.
Status CheckDuplicateKeys(const YAML::Node& node, const std::string& where,
                          const std::string& path) {
  if (node.IsMap()) {
    std::set<std::string> seen;
    for (const auto& kv : node) {
      std::string key = kv.first.as<std::string>();
      std::string full = where.empty() ? key : where + "." + key;
      if (!seen.insert(key).second) {
        return Bad(path, "key '" + full + "' appears twice; keep one of them");
      }
      TANDEM_TRY(CheckDuplicateKeys(kv.second, full, path));
    }
  } else if (node.IsSequence()) {
    for (const auto& item : node) TANDEM_TRY(CheckDuplicateKeys(item, where, path));
  }
  return Ok();
}

// vip.address (an IPv4 CIDR) and vip.interface, checked against the node.
Status ParseVip(const std::string& cidr, Config& c, const std::string& path) {
  if (cidr.empty()) {
    return Bad(path,
               "'vip.address' is required when the vip section is present (for example "
               "10.0.0.50/24); remove the section to turn the floating IP off");
  }
  const auto slash = cidr.find('/');
  const std::string addr = cidr.substr(0, slash);
  struct in_addr a4;
  if (inet_pton(AF_INET, addr.c_str(), &a4) != 1) {
    return Bad(path,
               "'vip.address' must be an IPv4 address with its prefix length, such as "
               "10.0.0.50/24 (got '" +
                   cidr + "')");
  }
  if (slash == std::string::npos) {
    return Bad(path, "'vip.address' needs the prefix length of the network it lives in, such as " +
                         addr + "/24 (got '" + cidr + "')");
  }
  auto prefix = ParseInt(cidr.substr(slash + 1));
  if (!prefix || *prefix < 1 || *prefix > 32) {
    return Bad(path, "'vip.address' prefix length must be 1 to 32, as in " + addr + "/24 (got '" +
                         cidr + "')");
  }
  const uint32_t host = ntohl(a4.s_addr);
  if (host == 0 || (host >> 24) == 127 || (host >> 28) >= 14) {
    return Bad(path,
               "'vip.address' must be a unicast address outside 0.0.0.0/8 and 127.0.0.0/8 "
               "(got '" +
                   cidr + "')");
  }
  if (c.vip.interface.empty()) {
    return Bad(path,
               "'vip.interface' is required with vip.address: the network interface the "
               "floating IP is added to (for example eth0; see `ip link`)");
  }
  if (c.vip.interface.size() >= IF_NAMESIZE || ::if_nametoindex(c.vip.interface.c_str()) == 0) {
    return Bad(path, "'vip.interface' names '" + c.vip.interface +
                         "', which is not a network interface on this node (check `ip link`)");
  }
  if (addr == c.node_address) {
    return Bad(path, "'vip.address' " + addr +
                         " is this node's own address (node.address): the floating IP must be "
                         "a spare address that moves with the primary; pick an unused one");
  }
  c.vip.address = addr;
  c.vip.prefix_len = static_cast<int>(*prefix);
  return Ok();
}

}  // namespace

const char* TlsModeName(TlsMode m) {
  return m == TlsMode::kEnforce ? "enforce" : "permissive";
}

std::string Config::url_scheme() const {
  return tls_enabled() ? "https://" : "http://";
}
std::string Config::api_url() const {
  return url_scheme() + node_address + ":" + std::to_string(api_port);
}
std::string Config::etcd_client_url() const {
  return url_scheme() + node_address + ":" + std::to_string(etcd_client_port);
}
std::string Config::etcd_peer_url() const {
  return url_scheme() + node_address + ":" + std::to_string(etcd_peer_port);
}
std::string Config::secrets_path() const {
  return state_dir + "/secrets.json";
}
std::string Config::state_path() const {
  return state_dir + "/state.json";
}
std::string Config::etcd_data_dir() const {
  return state_dir + "/etcd";
}
std::string Config::socket_dir() const {
  return state_dir + "/run";
}
std::string Config::log_dir() const {
  return state_dir + "/log";
}

Result<std::string> InterfaceAddress(const std::string& interface) {
  struct ifaddrs* addrs = nullptr;
  if (getifaddrs(&addrs) != 0) return Error(ErrorCode::kIo, "cannot list network interfaces");
  std::string found;
  for (auto* a = addrs; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    if (interface != a->ifa_name) continue;
    char buf[INET_ADDRSTRLEN];
    auto* sin = reinterpret_cast<struct sockaddr_in*>(a->ifa_addr);
    if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf) != nullptr) {
      found = buf;
      break;
    }
  }
  freeifaddrs(addrs);
  if (found.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 "network interface '" + interface +
                     "' has no IPv4 address (check `ip -4 addr`, or set node.address instead)");
  }
  return found;
}

Result<Config> ParseConfig(const std::string& text, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Bad(path, std::string("not valid YAML: ") + e.what());
  }
  if (!root || root.IsNull()) {
    return Bad(path, "the file is empty; at least node.name and node.state_dir are needed");
  }
  if (!root.IsMap()) return Bad(path, "the top level must be a mapping of sections");
  TANDEM_TRY(CheckDuplicateKeys(root, "", path));

  try {
    Config c;
    c.path = path;
    TANDEM_TRY(CheckKeys(
        root, "", {"cluster", "node", "api", "postgresql", "dcs", "proxy", "vip", "tls", "log"},
        path));
    TANDEM_TRY(GetString(root, "cluster", "cluster", path, &c.cluster));
    if (!IsValidName(c.cluster)) {
      return Bad(path, "'cluster' must be 1-63 characters of a-z, 0-9, '-', '_' or '.' (got '" +
                           c.cluster + "')");
    }

    auto node = root["node"];
    TANDEM_TRY(CheckKeys(node, "node", {"name", "address", "interface", "state_dir", "run_as_user"},
                         path));
    TANDEM_TRY(GetString(node, "name", "node.name", path, &c.node_name));
    TANDEM_TRY(GetString(node, "address", "node.address", path, &c.node_address));
    TANDEM_TRY(GetString(node, "interface", "node.interface", path, &c.node_interface));
    TANDEM_TRY(GetString(node, "state_dir", "node.state_dir", path, &c.state_dir));
    TANDEM_TRY(GetString(node, "run_as_user", "node.run_as_user", path, &c.run_as_user));
    if (c.node_name.empty()) return Bad(path, "'node.name' is required (for example: node1)");
    if (!IsValidName(c.node_name)) {
      return Bad(path, "'node.name' must be 1-63 characters of a-z, 0-9, '-', '_' or '.' (got '" +
                           c.node_name + "')");
    }
    if (c.state_dir.empty()) {
      return Bad(path, "'node.state_dir' is required (for example: /var/lib/tandem)");
    }
    c.state_dir = AbsolutePath(c.state_dir);
    if (c.node_address.empty() && !c.node_interface.empty()) {
      auto addr = InterfaceAddress(c.node_interface);
      if (!addr) return Bad(path, "node.interface: " + addr.error().message());
      c.node_address = *addr;
    }
    if (c.node_address.empty()) {
      return Bad(path, "set 'node.address' (the IP this node clusters on) or 'node.interface'");
    }
    {
      unsigned char buf[16];
      if (inet_pton(AF_INET, c.node_address.c_str(), buf) != 1 &&
          inet_pton(AF_INET6, c.node_address.c_str(), buf) != 1) {
        return Bad(path, "'node.address' must be an IP address (got '" + c.node_address + "')");
      }
    }

    auto api = root["api"];
    TANDEM_TRY(CheckKeys(api, "api", {"listen", "port", "health_port"}, path));
    TANDEM_TRY(GetString(api, "listen", "api.listen", path, &c.api_listen));
    TANDEM_TRY(GetPort(api, "port", "api.port", path, &c.api_port));
    TANDEM_TRY(GetPort(api, "health_port", "api.health_port", path, &c.api_health_port,
                       /*zero_ok=*/true));

    auto pg = root["postgresql"];
    TANDEM_TRY(CheckKeys(pg, "postgresql",
                         {"port", "data_dir", "bin_dir", "parameters", "sync_mode", "sync_count",
                          "sync_reconnect_grace"},
                         path));
    if (pg && pg["sync_mode"]) {
      const std::string mode = pg["sync_mode"].as<std::string>();
      if (!core::ParseSyncMode(mode, &c.ha.sync_mode)) {
        return Bad(path, "'postgresql.sync_mode' is '" + mode +
                             "'; use off (asynchronous), quorum (the default: wait for ANY "
                             "sync_count of the healthy replicas) or strict (as quorum, but "
                             "writes block when no replica acknowledges)");
      }
    }
    if (pg && pg["sync_count"]) {
      auto v = ParseInt(pg["sync_count"].as<std::string>());
      if (!v || *v < 1 || *v > 16) {
        return Bad(path,
                   "'postgresql.sync_count' must be an integer from 1 to 16 (the number "
                   "of replicas that acknowledge each commit)");
      }
      c.ha.sync_count = static_cast<int>(*v);
    }
    TANDEM_TRY(GetDuration(pg, "sync_reconnect_grace", "postgresql.sync_reconnect_grace", path,
                           &c.ha.sync_reconnect_grace_ms));
    TANDEM_TRY(GetPort(pg, "port", "postgresql.port", path, &c.pg_port));
    TANDEM_TRY(GetString(pg, "data_dir", "postgresql.data_dir", path, &c.pg_data_dir));
    TANDEM_TRY(GetString(pg, "bin_dir", "postgresql.bin_dir", path, &c.pg_bin_dir));
    if (pg && pg["parameters"]) {
      if (!pg["parameters"].IsMap()) return Bad(path, "'postgresql.parameters' must be a mapping");
      for (const auto& kv : pg["parameters"]) {
        c.pg_parameters[kv.first.as<std::string>()] = kv.second.as<std::string>();
      }
    }
    for (const char* owned : {"synchronous_standby_names", "synchronous_commit"}) {
      if (c.pg_parameters.count(owned) && c.ha.sync_mode != core::SyncMode::kOff) {
        return Bad(path, std::string("'postgresql.parameters.") + owned +
                             "' is managed by Tandem while postgresql.sync_mode is not off; "
                             "remove it (set postgresql.sync_mode and sync_count instead)");
      }
    }
    c.pg_data_dir = c.pg_data_dir.empty() ? c.state_dir + "/pgdata" : AbsolutePath(c.pg_data_dir);

    auto dcs = root["dcs"];
    TANDEM_TRY(CheckKeys(dcs, "dcs",
                         {"endpoints", "etcd_client_port", "etcd_peer_port", "etcd_bin", "ttl",
                          "loop_interval", "safety_margin", "max_lag_bytes"},
                         path));
    if (dcs && dcs["endpoints"]) {
      if (!dcs["endpoints"].IsSequence()) {
        return Bad(path, "'dcs.endpoints' must be a list of URLs like http://10.0.0.1:2379");
      }
      for (const auto& e : dcs["endpoints"]) {
        std::string url = e.as<std::string>();
        if (!StartsWith(url, "http://") && !StartsWith(url, "https://")) {
          return Bad(path,
                     "'dcs.endpoints' entry '" + url + "' must start with http:// or https://");
        }
        c.dcs_endpoints.push_back(url);
      }
    }
    TANDEM_TRY(GetPort(dcs, "etcd_client_port", "dcs.etcd_client_port", path, &c.etcd_client_port));
    TANDEM_TRY(GetPort(dcs, "etcd_peer_port", "dcs.etcd_peer_port", path, &c.etcd_peer_port));
    TANDEM_TRY(GetString(dcs, "etcd_bin", "dcs.etcd_bin", path, &c.etcd_bin));
    TANDEM_TRY(GetDuration(dcs, "ttl", "dcs.ttl", path, &c.ha.ttl_ms));
    TANDEM_TRY(
        GetDuration(dcs, "loop_interval", "dcs.loop_interval", path, &c.ha.loop_interval_ms));
    TANDEM_TRY(
        GetDuration(dcs, "safety_margin", "dcs.safety_margin", path, &c.ha.safety_margin_ms));
    if (dcs && dcs["max_lag_bytes"]) {
      auto v = ParseInt(dcs["max_lag_bytes"].as<std::string>());
      if (!v || *v < 0) return Bad(path, "'dcs.max_lag_bytes' must be a non-negative integer");
      c.ha.max_lag_bytes = static_cast<uint64_t>(*v);
    }
    std::string timing = core::CheckTiming(c.ha);
    if (!timing.empty()) return Bad(path, timing);

    auto proxy = root["proxy"];
    TANDEM_TRY(CheckKeys(
        proxy, "proxy",
        {"read_write_port", "read_only_port", "listen", "max_connections", "idle_timeout",
         "connect_timeout", "read_only_max_lag_bytes", "read_only_fallback_to_primary", "threads"},
        path));
    TANDEM_TRY(GetPort(proxy, "read_write_port", "proxy.read_write_port", path, &c.proxy_rw_port,
                       /*zero_ok=*/true));
    TANDEM_TRY(GetPort(proxy, "read_only_port", "proxy.read_only_port", path, &c.proxy_ro_port,
                       /*zero_ok=*/true));
    TANDEM_TRY(GetString(proxy, "listen", "proxy.listen", path, &c.proxy_listen));
    if (!c.proxy_listen.empty() && !IsIpAddress(c.proxy_listen)) {
      return Bad(path, "'proxy.listen' must be an IP address such as 10.0.0.1 or 0.0.0.0 (got '" +
                           c.proxy_listen + "')");
    }
    if (proxy && proxy["max_connections"]) {
      auto v = ParseInt(proxy["max_connections"].as<std::string>());
      if (!v || *v < 1 || *v > 100'000) {
        return Bad(path, "'proxy.max_connections' must be an integer between 1 and 100000");
      }
      c.proxy_max_connections = static_cast<int>(*v);
    }
    if (proxy && proxy["threads"]) {
      auto v = ParseInt(proxy["threads"].as<std::string>());
      if (!v || *v < 0 || *v > 64) {
        return Bad(path,
                   "'proxy.threads' must be an integer from 0 (one event loop per core, at most "
                   "4) to 64");
      }
      c.proxy_threads = static_cast<int>(*v);
    }
    if (proxy && proxy["idle_timeout"]) {
      // 0 (or 0s) = no idle timeout.
      auto d = proxy["idle_timeout"].IsScalar()
                   ? ParseDurationMs(proxy["idle_timeout"].as<std::string>())
                   : std::nullopt;
      if (!d || *d < 0 || *d > int64_t{7} * 24 * 3'600'000) {
        return Bad(path,
                   "'proxy.idle_timeout' must be a duration such as 30m or 1h (at most 7 days), "
                   "or 0 for none");
      }
      c.proxy_idle_timeout_ms = *d;
    }
    TANDEM_TRY(GetDuration(proxy, "connect_timeout", "proxy.connect_timeout", path,
                           &c.proxy_connect_timeout_ms));
    c.proxy_read_only_max_lag_bytes = c.ha.max_lag_bytes;
    if (proxy && proxy["read_only_max_lag_bytes"]) {
      auto v = ParseInt(proxy["read_only_max_lag_bytes"].as<std::string>());
      if (!v || *v < 0) {
        return Bad(path, "'proxy.read_only_max_lag_bytes' must be a non-negative integer");
      }
      c.proxy_read_only_max_lag_bytes = static_cast<uint64_t>(*v);
    }
    TANDEM_TRY(GetBool(proxy, "read_only_fallback_to_primary",
                       "proxy.read_only_fallback_to_primary", path,
                       &c.proxy_read_only_fallback_to_primary));

    auto vip = root["vip"];
    TANDEM_TRY(CheckKeys(vip, "vip", {"address", "interface"}, path));
    if (vip) {
      std::string cidr;
      TANDEM_TRY(GetString(vip, "address", "vip.address", path, &cidr));
      TANDEM_TRY(GetString(vip, "interface", "vip.interface", path, &c.vip.interface));
      TANDEM_TRY(ParseVip(cidr, c, path));
    }

    auto tls = root["tls"];
    TANDEM_TRY(CheckKeys(tls, "tls",
                         {"server_key", "server_cert", "client_key", "client_cert", "ca_cert",
                          "mode", "verify_hostname"},
                         path));
    TANDEM_TRY(GetString(tls, "server_key", "tls.server_key", path, &c.tls_server_key));
    TANDEM_TRY(GetString(tls, "server_cert", "tls.server_cert", path, &c.tls_server_cert));
    TANDEM_TRY(GetString(tls, "client_key", "tls.client_key", path, &c.tls_client_key));
    TANDEM_TRY(GetString(tls, "client_cert", "tls.client_cert", path, &c.tls_client_cert));
    TANDEM_TRY(GetString(tls, "ca_cert", "tls.ca_cert", path, &c.tls_ca_cert));
    {
      // All five files or none: half a TLS setup is a mistake, never a mode.
      const std::pair<const char*, const std::string*> files[] = {
          {"server_key", &c.tls_server_key},
          {"server_cert", &c.tls_server_cert},
          {"client_key", &c.tls_client_key},
          {"client_cert", &c.tls_client_cert},
          {"ca_cert", &c.tls_ca_cert}};
      std::string set, missing;
      for (const auto& [key, value] : files) {
        std::string& list = value->empty() ? missing : set;
        list += std::string(list.empty() ? "" : ", ") + "tls." + key;
      }
      if (!set.empty() && !missing.empty()) {
        return Bad(path, "TLS needs all five files, but " + missing +
                             (missing.find(',') == std::string::npos ? " is" : " are") +
                             " not set (" + set +
                             " are); `tandem pki issue NODE` makes a node's set, or remove "
                             "the tls section to run without TLS");
      }
    }
    if (tls && tls["mode"]) {
      const std::string v = tls["mode"].as<std::string>();
      if (v == "enforce") {
        c.tls_mode = TlsMode::kEnforce;
      } else if (v == "permissive") {
        c.tls_mode = TlsMode::kPermissive;
      } else {
        return Bad(path, "'tls.mode' is '" + v +
                             "'; use enforce (every peer's certificate must be valid, signed by "
                             "tls.ca_cert and, with verify_hostname, name the peer's address) "
                             "or permissive (traffic is encrypted but peers are not verified)");
      }
    }
    TANDEM_TRY(
        GetBool(tls, "verify_hostname", "tls.verify_hostname", path, &c.tls_verify_hostname));

    auto log = root["log"];
    TANDEM_TRY(CheckKeys(log, "log", {"level"}, path));
    TANDEM_TRY(GetString(log, "level", "log.level", path, &c.log_level));
    if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" &&
        c.log_level != "error") {
      return Bad(path, "'log.level' must be one of debug, info, warn, error");
    }

    // Ports this node binds must not collide.
    std::map<int, std::string> ports;
    auto claim = [&](int port, const std::string& what) -> Status {
      if (port == 0) return Ok();
      auto [it, fresh] = ports.emplace(port, what);
      if (!fresh) {
        return Bad(path, what + " and " + it->second + " both use port " + std::to_string(port) +
                             "; give each its own port");
      }
      return Ok();
    };
    TANDEM_TRY(claim(c.api_port, "api.port"));
    TANDEM_TRY(claim(c.api_health_port, "api.health_port"));
    TANDEM_TRY(claim(c.pg_port, "postgresql.port"));
    if (c.embedded_etcd()) {
      TANDEM_TRY(claim(c.etcd_client_port, "dcs.etcd_client_port"));
      TANDEM_TRY(claim(c.etcd_peer_port, "dcs.etcd_peer_port"));
    }
    TANDEM_TRY(claim(c.proxy_rw_port, "proxy.read_write_port"));
    TANDEM_TRY(claim(c.proxy_ro_port, "proxy.read_only_port"));
    return c;
  } catch (const YAML::Exception& e) {
    return Bad(path, std::string("wrong type of value: ") + e.what());
  }
}

Result<Config> LoadConfig(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) {
    return Error(ErrorCode::kInvalidArgument, "cannot read the config file " + path + " (" +
                                                  text.error().message() +
                                                  "); pass the node's file with -c FILE");
  }
  return ParseConfig(*text, AbsolutePath(path));
}

}  // namespace tandem::agent
