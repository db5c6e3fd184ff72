// The node's configuration file (YAML), loaded and validated in one place.
//
// Every error names the key, the problem and the fix. Unknown keys are
// refused (a typo must not silently fall back to a default), and so are keys
// given twice. The keys are one table (config_keys.h: path, type, default,
// validator) the loader walks; see the configuration reference in README.md.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "core/types.h"
#include "pg/parameter_catalog.h"

namespace tandem::agent {

enum class TlsMode { kPermissive, kEnforce };
const char* TlsModeName(TlsMode m);

// The floating IP (optional; docs/design/vip.md): an IPv4 address the
// primary's agent adds to `interface` and announces with gratuitous ARP.
struct VipConfig {
  std::string address;  // "10.0.0.50" ("" = off)
  int prefix_len = 32;  // from the CIDR in the file ("10.0.0.50/24")
  std::string interface;
  bool enabled() const { return !address.empty(); }
  std::string cidr() const { return address + "/" + std::to_string(prefix_len); }
};

struct Config {
  std::string path;  // the file it was loaded from (absolute)

  std::string cluster = "tandem";  // cluster name (etcd key prefix /tandem/<cluster>/)

  // node
  std::string node_name;
  std::string node_address;              // the address this node clusters on (seed 1's localnode)
  std::string node_interface;            // alternatively: the interface whose IPv4 address to use
  std::string state_dir;                 // the agent's own state (etcd data, secrets, logs)
  std::string run_as_user = "postgres";  // for PostgreSQL and etcd when the agent is root

  // api
  std::string api_listen = "127.0.0.1";
  int api_port = 8008;
  // A second, plain-HTTP listener (on api_listen) serving only the health
  // endpoints, for load balancers when the API is HTTPS; 0 = off.
  int api_health_port = 0;
  // The health port also serves GET /metrics (for scrapers without a client
  // certificate); off by default.
  bool api_health_port_metrics = false;

  // ui: the dashboard's login (docs/dashboard.md): user -> crypt(3) hash
  // (yescrypt or bcrypt); none = no login (actions need a client certificate).
  std::map<std::string, std::string> ui_users;
  int64_t ui_session_timeout_ms = 1'800'000;  // a login lasts this long

  // postgresql
  int pg_port = 5432;
  // The same on every node: a standby's PostgreSQL does not start with a
  // lower max_connections than its primary's.
  int pg_max_connections = 100;
  std::string pg_data_dir;  // default <state_dir>/pgdata
  std::string pg_bin_dir;   // default: pg_config --bindir
  std::map<std::string, std::string> pg_parameters;

  // dcs
  std::vector<std::string> dcs_endpoints;  // external etcd; empty = embedded member
  int etcd_client_port = 2379;
  int etcd_peer_port = 2380;
  std::string etcd_bin = "etcd";
  core::HaConfig ha;

  // proxy: the client endpoint (src/proxy; 0 = that port is off)
  int proxy_rw_port = 0;
  int proxy_ro_port = 0;
  std::string proxy_listen;           // default: node_address
  int proxy_max_connections = 1000;   // per port
  int64_t proxy_idle_timeout_ms = 0;  // 0 = none
  int64_t proxy_connect_timeout_ms = 3'000;
  int proxy_threads = 0;  // event loops; 0 = one per core, at most 4
  uint64_t proxy_read_only_max_lag_bytes = 16ull << 20;
  bool proxy_read_only_fallback_to_primary = true;
  bool proxy_enabled() const { return proxy_rw_port > 0 || proxy_ro_port > 0; }
  std::string proxy_listen_address() const {
    return proxy_listen.empty() ? node_address : proxy_listen;
  }

  // vip: the floating IP (off unless vip.address is set)
  VipConfig vip;

  // tls: one cluster CA for PostgreSQL, etcd and the API (all five files, or
  // none = no TLS). enforce: a peer's certificate must chain to tls_ca_cert
  // and (tls_verify_hostname) name the peer's node address in a SAN or the
  // CN; permissive: encrypted, certificates presented, peers not verified
  // (failures only shown in status).
  std::string tls_server_key, tls_server_cert, tls_client_key, tls_client_cert, tls_ca_cert;
  TlsMode tls_mode = TlsMode::kEnforce;
  bool tls_verify_hostname = true;
  bool tls_enabled() const { return !tls_ca_cert.empty(); }

  std::string log_level = "info";
  // Where the agent's lines go (base/log.h): auto (journald under systemd,
  // else stderr), stderr, journald, syslog, file (log_file).
  std::string log_target = "auto";
  std::string log_file;                        // log.target file: appended to
  std::string log_syslog_facility = "daemon";  // log.target syslog

  bool embedded_etcd() const { return dcs_endpoints.empty(); }
  // https:// when tls_enabled(), else http://.
  std::string url_scheme() const;
  std::string api_url() const;  // http(s)://<node_address>:<api_port>
  std::string etcd_client_url() const;
  std::string etcd_peer_url() const;
  std::string secrets_path() const;   // <state_dir>/secrets.json (0600)
  std::string state_path() const;     // <state_dir>/state.json
  std::string etcd_data_dir() const;  // <state_dir>/etcd
  std::string socket_dir() const;     // <state_dir>/run
  std::string log_dir() const;        // <state_dir>/log
};

// The configuration reference: every key the file may hold, as the loader's
// table has it (README.md's reference lists the same keys and defaults; a
// unit test keeps the two in step).
struct ConfigKeyInfo {
  std::string path;           // "proxy.idle_timeout" ("cluster" at the top level)
  std::string type;           // "string", "port", "port or 0", "duration", "integer", ...
  std::string default_value;  // as the reference writes it ("2s", "\"\"", "<state_dir>/pgdata");
                              // "" when there is none (the reference shows an example)
};
std::vector<ConfigKeyInfo> ConfigKeys();
// The value of the key at `path` in cfg, written as the reference writes it
// ("2s", "true", "\"\"" for an empty string); "" for an unknown path.
std::string ConfigValueText(const Config& cfg, const std::string& path);

// Reads, parses and validates a config file. The address of the node is
// resolved from node.interface when node.address is not set. The YAML is
// parsed with limits (agent/yaml_limits.h: size, depth, no aliases).
// postgresql.parameters: the parameters Tandem manages are always refused;
// names and values are checked against `<bin_dir>/postgres --describe-config`
// (read once per binary per process). When that cannot be run, that check is
// skipped with one warning in the log. `may_run_postgres` false (the HA loop):
// only a catalog already read is used, nothing is run.
Result<Config> LoadConfig(const std::string& path, bool may_run_postgres = true);
// Parses YAML text (for tests); `path` is only used in messages.
// `catalog`: the parameter catalog to check postgresql.parameters against
// (nullptr: names and values unchecked; managed parameters still refused).
Result<Config> ParseConfig(const std::string& yaml_text, const std::string& path,
                           const pg::ParameterCatalog* catalog = nullptr);
// The IPv4 address of a network interface.
Result<std::string> InterfaceAddress(const std::string& interface);

}  // namespace tandem::agent
