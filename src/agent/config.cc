// The loader: it walks the table of keys (config_keys.h), then checks what
// spans several keys. Every error names the key, the problem and the fix.
#include "agent/config.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <set>

#include "agent/config_keys.h"
#include "agent/config_parameters.h"
#include "agent/yaml_limits.h"
#include "base/file.h"
#include "base/log.h"
#include "base/strings.h"
#include "core/decide.h"
#include "pg/types.h"

namespace tandem::agent {
namespace {

using config_internal::Bad;

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
        return Bad(path, "line " + std::to_string(kv.first.Mark().line + 1) + ": key '" + full +
                             "' appears twice; keep one of them");
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

namespace {

using config_internal::Keys;

// "postgresql.port" -> {"postgresql", "port"}; "cluster" -> {"", "cluster"}.
std::pair<std::string, std::string> SplitPath(const std::string& path) {
  const auto dot = path.find('.');
  if (dot == std::string::npos) return {"", path};
  return {path.substr(0, dot), path.substr(dot + 1)};
}

std::string List(const std::set<std::string>& names) {
  std::string list;
  for (const auto& k : names) list += (list.empty() ? "" : ", ") + k;
  return list;
}

// Every key of the file is in the table; every section is a mapping.
Status CheckKnownKeys(const YAML::Node& root, const std::string& path) {
  std::map<std::string, std::set<std::string>> known;  // section ("" = top level) -> names
  for (const auto& k : Keys()) {
    auto [section, name] = SplitPath(k.path);
    known[""].insert(section.empty() ? name : section);
    if (!section.empty()) known[section].insert(name);
  }
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    if (known[""].count(key) == 0) {
      return Bad(path, "line " + std::to_string(kv.first.Mark().line + 1) + ": unknown key '" +
                           key + "' (known keys here: " + List(known[""]) + ")");
    }
    if (known.count(key) == 0) continue;  // a top-level scalar (cluster)
    if (!kv.second.IsMap()) return Bad(path, "'" + key + "' must be a mapping");
    for (const auto& entry : kv.second) {
      const std::string name = entry.first.as<std::string>();
      if (known[key].count(name) == 0) {
        return Bad(path, "line " + std::to_string(entry.first.Mark().line + 1) + ": unknown key '" +
                             key + "." + name + "' (known keys here: " + List(known[key]) + ")");
      }
    }
  }
  return Ok();
}

// Reads every key present; `present` gets their paths.
Status ReadKeys(const YAML::Node& root, Config& c, const std::string& path,
                std::set<std::string>* present) {
  const YAML::Node& top = root;  // const: looking a key up never adds it
  for (const auto& k : Keys()) {
    auto [section, name] = SplitPath(k.path);
    const YAML::Node parent = section.empty() ? top : top[section];
    if (!parent) continue;
    const YAML::Node value = parent[name];
    if (!value) continue;
    TANDEM_TRY(k.read(value, c, path));
    present->insert(k.path);
  }
  return Ok();
}

// node.name and node.state_dir are required; node.address is an IP, or
// comes from node.interface.
Status CheckNode(Config& c, const std::string& path) {
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
  unsigned char buf[16];
  if (inet_pton(AF_INET, c.node_address.c_str(), buf) != 1 &&
      inet_pton(AF_INET6, c.node_address.c_str(), buf) != 1) {
    return Bad(path, "'node.address' must be an IP address (got '" + c.node_address + "')");
  }
  return Ok();
}

// All five files or none: half a TLS setup is a mistake, never a mode.
Status CheckTlsFiles(const Config& c, const std::string& path) {
  const std::pair<const char*, const std::string*> files[] = {{"server_key", &c.tls_server_key},
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
                         (missing.find(',') == std::string::npos ? " is" : " are") + " not set (" +
                         set +
                         " are); `tandem pki issue NODE` makes a node's set, or remove "
                         "the tls section to run without TLS");
  }
  return Ok();
}

// Ports this node binds must not collide.
Status CheckPorts(const Config& c, const std::string& path) {
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
  return Ok();
}

// What spans several keys, after the table's own checks.
Status CheckTogether(Config& c, bool has_vip, const std::set<std::string>& present,
                     const pg::ParameterCatalog* catalog, const std::string& path) {
  TANDEM_TRY(CheckNode(c, path));
  TANDEM_TRY(config_internal::CheckPgParameters(c, catalog, path));
  c.pg_data_dir = c.pg_data_dir.empty() ? c.state_dir + "/pgdata" : AbsolutePath(c.pg_data_dir);
  if (std::string timing = core::CheckTiming(c.ha); !timing.empty()) return Bad(path, timing);
  if (present.count("proxy.read_only_max_lag_bytes") == 0) {
    c.proxy_read_only_max_lag_bytes = c.ha.max_lag_bytes;
  }
  if (has_vip) {
    const std::string cidr = c.vip.address;
    c.vip.address.clear();
    TANDEM_TRY(ParseVip(cidr, c, path));
  }
  TANDEM_TRY(CheckTlsFiles(c, path));
  if (c.log_target == "file" && c.log_file.empty()) {
    return Bad(path,
               "'log.target' is file but 'log.file' names no file: set log.file to a path "
               "(e.g. /var/log/tandem/agent.log) or choose another log.target");
  }
  if (!c.log_file.empty()) c.log_file = AbsolutePath(c.log_file);
  return CheckPorts(c, path);
}

}  // namespace

std::vector<ConfigKeyInfo> ConfigKeys() {
  std::vector<ConfigKeyInfo> out;
  for (const auto& k : Keys()) out.push_back({k.path, k.type, k.default_value});
  return out;
}

std::string ConfigValueText(const Config& cfg, const std::string& path) {
  for (const auto& k : Keys()) {
    if (k.path == path) return k.show(cfg);
  }
  return "";
}

Result<Config> ParseConfig(const std::string& text, const std::string& path,
                           const pg::ParameterCatalog* catalog) {
  auto loaded = LoadYamlWithLimits(text, path);
  if (!loaded) return loaded.error();
  const YAML::Node root = *loaded;
  if (!root || root.IsNull()) {
    return Bad(path, "the file is empty; at least node.name and node.state_dir are needed");
  }
  if (!root.IsMap()) {
    return Bad(path, "line " + std::to_string(root.Mark().line + 1) +
                         ": the top level must be a mapping of sections (node:, api:, ...)");
  }
  try {
    TANDEM_TRY(CheckDuplicateKeys(root, "", path));
    TANDEM_TRY(CheckKnownKeys(root, path));
    Config c;
    c.path = path;
    std::set<std::string> present;
    TANDEM_TRY(ReadKeys(root, c, path, &present));
    TANDEM_TRY(CheckTogether(c, static_cast<bool>(root["vip"]), present, catalog, path));
    return c;
  } catch (const YAML::Exception& e) {
    return Bad(path, std::string("wrong type of value: ") + e.what());
  }
}

namespace {

// The catalog of the node's PostgreSQL binary, or nullptr (with one warning
// when postgresql.parameters is not empty) when it cannot be had.
std::shared_ptr<const pg::ParameterCatalog> CatalogFor(const Config& c, bool may_run) {
  std::string bin_dir = c.pg_bin_dir;
  if (bin_dir.empty()) {
    if (!may_run) return nullptr;
    auto found = pg::FindBinDir();
    if (!found) {
      if (!c.pg_parameters.empty()) {
        TLOG(Warn, "config") << c.path
                             << ": postgresql.parameters not checked against PostgreSQL's "
                                "catalog (no PostgreSQL found: "
                             << found.error().message()
                             << "); set postgresql.bin_dir. PostgreSQL checks them when it starts";
      }
      return nullptr;
    }
    bin_dir = *found;
  }
  auto catalog = pg::ReadParameterCatalog(bin_dir, may_run);
  if (!catalog) {
    if (may_run && !c.pg_parameters.empty()) {
      TLOG(Warn, "config") << c.path
                           << ": postgresql.parameters not checked against PostgreSQL's catalog ("
                           << catalog.error().message() << "); PostgreSQL checks them when it "
                           << "starts";
    }
    return nullptr;
  }
  return *catalog;
}

}  // namespace

Result<Config> LoadConfig(const std::string& path, bool may_run_postgres) {
  auto text = ReadYamlFile(path);
  if (!text && text.error().code() == ErrorCode::kInvalidArgument) return text.error();
  if (!text) {
    return Error(ErrorCode::kInvalidArgument, "cannot read the config file " + path + " (" +
                                                  text.error().message() +
                                                  "); pass the node's file with -c FILE");
  }
  const std::string abs = AbsolutePath(path);
  auto cfg = ParseConfig(*text, abs);
  if (!cfg || cfg->pg_parameters.empty()) return cfg;
  auto catalog = CatalogFor(*cfg, may_run_postgres);
  if (!catalog) return cfg;
  TANDEM_TRY(config_internal::CheckPgParameters(*cfg, catalog.get(), abs));
  return cfg;
}

}  // namespace tandem::agent
