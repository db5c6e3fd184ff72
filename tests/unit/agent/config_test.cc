// The config loader refuses bad input with a message naming the key and the fix.
#include "agent/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

#include "unit/agent/config_text.h"

namespace tandem::agent {
namespace {

using config_testing::ErrorOf;
constexpr const char* kMinimal = config_testing::kMinimalNode;

TEST(Config, MinimalFileGetsDefaults) {
  auto c = ParseConfig(kMinimal, "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->cluster, "tandem");
  EXPECT_EQ(c->node_name, "node1");
  EXPECT_EQ(c->pg_port, 5432);
  EXPECT_EQ(c->api_port, 8008);
  EXPECT_EQ(c->pg_data_dir, "/var/lib/tandem/pgdata");
  EXPECT_TRUE(c->embedded_etcd());
  EXPECT_EQ(c->ha.ttl_ms, 2'000);
  EXPECT_EQ(c->ha.loop_interval_ms, 250);
  EXPECT_EQ(c->ha.safety_margin_ms, 500);
  EXPECT_EQ(c->ha.sync_mode, core::SyncMode::kQuorum);
  EXPECT_EQ(c->ha.sync_count, 1);
  EXPECT_EQ(c->api_url(), "http://10.0.0.1:8008");
  EXPECT_EQ(c->etcd_peer_url(), "http://10.0.0.1:2380");
}

TEST(Config, SyncModeIsCheckedAndOwnsTheSyncParameters) {
  auto c = ParseConfig(
      std::string(kMinimal) + "postgresql:\n  sync_mode: strict\n  sync_count: 2\n", "/etc/t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->ha.sync_mode, core::SyncMode::kStrict);
  EXPECT_EQ(c->ha.sync_count, 2);
  auto bad =
      ParseConfig(std::string(kMinimal) + "postgresql:\n  sync_mode: always\n", "/etc/t.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("'postgresql.sync_mode' is 'always'"), std::string::npos);
  bad = ParseConfig(std::string(kMinimal) + "postgresql:\n  sync_count: 0\n", "/etc/t.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("sync_count"), std::string::npos);
  bad = ParseConfig(
      std::string(kMinimal) + "postgresql:\n  parameters:\n    synchronous_commit: local\n",
      "/etc/t.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("managed by Tandem"), std::string::npos);
}

TEST(Config, FullFileParses) {
  auto c = ParseConfig(std::string(kMinimal) +
                           "cluster: bridge-a\napi:\n  port: 9000\npostgresql:\n  port: 6432\n"
                           "  parameters:\n    shared_buffers: 1GB\n"
                           "dcs:\n  endpoints: [http://10.0.0.9:2379]\n  ttl: 6s\n"
                           "  loop_interval: 500ms\n  safety_margin: 1s\n",
                       "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->cluster, "bridge-a");
  EXPECT_EQ(c->pg_parameters.at("shared_buffers"), "1GB");
  EXPECT_FALSE(c->embedded_etcd());
  EXPECT_EQ(c->ha.ttl_ms, 6000);
  EXPECT_EQ(c->ha.loop_interval_ms, 500);
}

TEST(Config, TlsNeedsAllFiveFilesAndAKnownMode) {
  const std::string files =
      "tls:\n  server_key: /t/server.key\n  server_cert: /t/server.crt\n"
      "  client_key: /t/client.key\n  client_cert: /t/client.crt\n  ca_cert: /t/ca.crt\n";
  auto c = ParseConfig(std::string(kMinimal) + files, "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_TRUE(c->tls_enabled());
  EXPECT_EQ(c->tls_mode, TlsMode::kEnforce);
  EXPECT_TRUE(c->tls_verify_hostname);
  c = ParseConfig(std::string(kMinimal) + files + "  mode: permissive\n  verify_hostname: false\n",
                  "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->tls_mode, TlsMode::kPermissive);
  EXPECT_FALSE(c->tls_verify_hostname);
  auto no = ParseConfig(kMinimal, "t.yaml");
  ASSERT_TRUE(no.ok());
  EXPECT_FALSE(no->tls_enabled());

  std::string e = ErrorOf(std::string(kMinimal) + files + "  mode: strict\n");
  EXPECT_NE(e.find("'tls.mode' is 'strict'"), std::string::npos) << e;
  e = ErrorOf(std::string(kMinimal) +
              "tls:\n  server_key: /t/server.key\n  server_cert: /t/server.crt\n");
  EXPECT_NE(e.find("tls.client_key, tls.client_cert, tls.ca_cert are not set"), std::string::npos)
      << e;
  EXPECT_NE(e.find("tandem pki issue"), std::string::npos) << e;
}

TEST(Config, TheLogTargetIsOneOfTheKnownOnesAndAFileTargetNamesItsFile) {
  auto c = ParseConfig(
      std::string(kMinimal) + "log:\n  target: syslog\n  syslog_facility: local4\n", "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->log_target, "syslog");
  EXPECT_EQ(c->log_syslog_facility, "local4");
  std::string e = ErrorOf(std::string(kMinimal) + "log:\n  target: journal\n");
  EXPECT_NE(e.find("'log.target' must be one of auto, stderr, journald, syslog, file"),
            std::string::npos)
      << e;
  e = ErrorOf(std::string(kMinimal) + "log:\n  target: file\n");
  EXPECT_NE(e.find("'log.file' names no file"), std::string::npos) << e;
  e = ErrorOf(std::string(kMinimal) + "log:\n  syslog_facility: kern\n");
  EXPECT_NE(e.find("daemon, user or local0 to local7"), std::string::npos) << e;
}

TEST(Config, TlsMakesTheApiAndEtcdUrlsHttps) {
  auto c = ParseConfig(
      std::string(kMinimal) +
          "tls:\n  server_key: /t/server.key\n  server_cert: /t/server.crt\n"
          "  client_key: /t/client.key\n  client_cert: /t/client.crt\n  ca_cert: /t/ca.crt\n",
      "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->api_url(), "https://10.0.0.1:8008");
  EXPECT_EQ(c->etcd_client_url(), "https://10.0.0.1:2379");
  EXPECT_EQ(c->etcd_peer_url(), "https://10.0.0.1:2380");
}

TEST(Config, HealthPortIsOffByDefaultAndMustNotCollide) {
  auto c = ParseConfig(kMinimal, "t.yaml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->api_health_port, 0);
  c = ParseConfig(std::string(kMinimal) + "api:\n  health_port: 8009\n", "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->api_health_port, 8009);
  std::string e = ErrorOf(std::string(kMinimal) + "api:\n  health_port: 8008\n");
  EXPECT_NE(e.find("api.health_port and api.port both use port 8008"), std::string::npos) << e;
  e = ErrorOf(std::string(kMinimal) + "api:\n  health_port: 70000\n");
  EXPECT_NE(e.find("'api.health_port' must be a TCP port"), std::string::npos) << e;
}

TEST(Config, EmptyFileIsRefused) {
  EXPECT_NE(ErrorOf("").find("the file is empty"), std::string::npos);
}

TEST(Config, TruncatedYamlIsRefused) {
  EXPECT_NE(ErrorOf("node:\n  name: [node1\n").find("not valid YAML"), std::string::npos);
}

TEST(Config, UnknownKeyIsRefusedAndNamed) {
  auto e = ErrorOf(std::string(kMinimal) + "postgresql:\n  prot: 5432\n");
  EXPECT_NE(e.find("unknown key 'postgresql.prot'"), std::string::npos) << e;
  EXPECT_NE(e.find("/etc/tandem/tandem.yaml"), std::string::npos) << e;
}

TEST(Config, WrongTypesAreRefused) {
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "api:\n  port: eighty\n").find("'api.port' must be"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "api:\n  port: -1\n").find("'api.port' must be"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "api:\n  port: 99999999999999999999\n")
                .find("'api.port' must be"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "dcs:\n  ttl: forever\n").find("'dcs.ttl' must be"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "dcs:\n  endpoints: 10.0.0.1\n")
                .find("'dcs.endpoints' must be a list"),
            std::string::npos);
  EXPECT_NE(ErrorOf("node: [1, 2]\n").find("'node' must be a mapping"), std::string::npos);
}

TEST(Config, DuplicateKeysAreRefused) {
  auto e = ErrorOf("node:\n  name: a\n  name: b\n  address: 10.0.0.1\n  state_dir: /x\n");
  EXPECT_NE(e.find("key 'node.name' appears twice"), std::string::npos) << e;
}

TEST(Config, NodeNameWithSlashIsRefused) {
  auto e = ErrorOf("node:\n  name: a/b\n  address: 10.0.0.1\n  state_dir: /x\n");
  EXPECT_NE(e.find("'node.name' must be"), std::string::npos) << e;
}

TEST(Config, MissingRequiredKeysAreNamed) {
  EXPECT_NE(
      ErrorOf("node:\n  address: 10.0.0.1\n  state_dir: /x\n").find("'node.name' is required"),
      std::string::npos);
  EXPECT_NE(ErrorOf("node:\n  name: a\n  address: 10.0.0.1\n").find("'node.state_dir' is required"),
            std::string::npos);
  EXPECT_NE(ErrorOf("node:\n  name: a\n  state_dir: /x\n").find("node.address"), std::string::npos);
}

TEST(Config, AddressMustBeAnIp) {
  auto e = ErrorOf("node:\n  name: a\n  address: db.example\n  state_dir: /x\n");
  EXPECT_NE(e.find("'node.address' must be an IP address"), std::string::npos) << e;
}

TEST(Config, UnknownInterfaceIsNamed) {
  auto e = ErrorOf("node:\n  name: a\n  interface: nosuchif0\n  state_dir: /x\n");
  EXPECT_NE(e.find("nosuchif0"), std::string::npos) << e;
}

TEST(Config, LoopbackInterfaceResolves) {
  auto c = ParseConfig("node:\n  name: a\n  interface: lo\n  state_dir: /x\n", "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->node_address, "127.0.0.1");
}

TEST(Config, DuplicatePortsAreRefused) {
  auto e = ErrorOf(std::string(kMinimal) + "api:\n  port: 5432\n");
  EXPECT_NE(e.find("both use port 5432"), std::string::npos) << e;
}

TEST(Config, Rule6_TimingThatBreaksTheLeaseIsRefused) {
  auto e = ErrorOf(std::string(kMinimal) + "dcs:\n  loop_interval: 3s\n  safety_margin: 2s\n");
  EXPECT_NE(e.find("dcs.safety_margin"), std::string::npos) << e;
}

TEST(Config, HugeValueIsRefused) {
  std::string big(8 << 10, 'x');
  auto e = ErrorOf("node:\n  name: a\n  address: 10.0.0.1\n  state_dir: /" + big + "\n");
  EXPECT_NE(e.find("too long"), std::string::npos);
}

TEST(Config, MissingFileNamesTheFlag) {
  auto r = LoadConfig("/nonexistent/tandem.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("-c FILE"), std::string::npos);
}

TEST(Config, ProxyIsOffByDefaultWithItsDefaults) {
  auto c = ParseConfig(kMinimal, "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_FALSE(c->proxy_enabled());
  EXPECT_EQ(c->proxy_max_connections, 1000);
  EXPECT_EQ(c->proxy_idle_timeout_ms, 0);
  EXPECT_EQ(c->proxy_connect_timeout_ms, 3'000);
  EXPECT_TRUE(c->proxy_read_only_fallback_to_primary);
  EXPECT_EQ(c->proxy_read_only_max_lag_bytes, c->ha.max_lag_bytes);
  EXPECT_EQ(c->proxy_listen_address(), "10.0.0.1");
}

TEST(Config, ProxyKeysParse) {
  auto c = ParseConfig(std::string(kMinimal) +
                           "proxy:\n  read_write_port: 6432\n  read_only_port: 0\n"
                           "  listen: 0.0.0.0\n  max_connections: 50\n  idle_timeout: 30m\n"
                           "  connect_timeout: 1s\n  read_only_max_lag_bytes: 1024\n"
                           "  read_only_fallback_to_primary: false\n",
                       "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_TRUE(c->proxy_enabled());
  EXPECT_EQ(c->proxy_rw_port, 6432);
  EXPECT_EQ(c->proxy_ro_port, 0);
  EXPECT_EQ(c->proxy_listen_address(), "0.0.0.0");
  EXPECT_EQ(c->proxy_max_connections, 50);
  EXPECT_EQ(c->proxy_idle_timeout_ms, 30 * 60'000);
  EXPECT_EQ(c->proxy_connect_timeout_ms, 1'000);
  EXPECT_EQ(c->proxy_read_only_max_lag_bytes, 1024u);
  EXPECT_FALSE(c->proxy_read_only_fallback_to_primary);
}

TEST(Config, BadProxyValuesAreRefusedAndNamed) {
  const std::string base = std::string(kMinimal) + "proxy:\n";
  EXPECT_NE(ErrorOf(base + "  max_connections: 0\n").find("proxy.max_connections"),
            std::string::npos);
  EXPECT_NE(ErrorOf(base + "  idle_timeout: soon\n").find("proxy.idle_timeout"), std::string::npos);
  EXPECT_NE(ErrorOf(base + "  listen: example.com\n").find("proxy.listen"), std::string::npos);
  EXPECT_NE(ErrorOf(base + "  read_only_fallback_to_primary: maybe\n")
                .find("proxy.read_only_fallback_to_primary"),
            std::string::npos);
  EXPECT_NE(ErrorOf(base + "  read_write_port: 70000\n").find("proxy.read_write_port"),
            std::string::npos);
  EXPECT_NE(ErrorOf(base + "  read_write_port: 5432\n").find("both use port 5432"),
            std::string::npos);
}

}  // namespace
}  // namespace tandem::agent

namespace tandem::agent {
namespace {

std::string VipError(const std::string& section) {
  return ErrorOf(std::string(kMinimal) + section);
}

TEST(ConfigVip, OffByDefault) {
  auto c = ParseConfig(kMinimal, "t.yaml");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->vip.enabled());
}

TEST(ConfigVip, AddressWithPrefixAndAnExistingInterface) {
  auto c = ParseConfig(std::string(kMinimal) + "vip:\n  address: 10.0.0.50/24\n  interface: lo\n",
                       "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_TRUE(c->vip.enabled());
  EXPECT_EQ(c->vip.address, "10.0.0.50");
  EXPECT_EQ(c->vip.prefix_len, 24);
  EXPECT_EQ(c->vip.interface, "lo");
  EXPECT_EQ(c->vip.cidr(), "10.0.0.50/24");
}

TEST(ConfigVip, BadValuesNameTheKeyAndTheFix) {
  EXPECT_NE(VipError("vip:\n  interface: lo\n").find("'vip.address' is required"),
            std::string::npos);
  EXPECT_NE(VipError("vip:\n  address: 10.0.0.50\n  interface: lo\n").find("prefix length"),
            std::string::npos);
  EXPECT_NE(VipError("vip:\n  address: 10.0.0.50/33\n  interface: lo\n").find("1 to 32"),
            std::string::npos);
  EXPECT_NE(VipError("vip:\n  address: fe80::1/64\n  interface: lo\n").find("IPv4"),
            std::string::npos);
  EXPECT_NE(VipError("vip:\n  address: banana/24\n  interface: lo\n").find("'vip.address'"),
            std::string::npos);
  EXPECT_NE(VipError("vip:\n  address: 127.0.0.5/8\n  interface: lo\n").find("unicast"),
            std::string::npos);
  EXPECT_NE(VipError("vip:\n  address: 10.0.0.50/24\n").find("'vip.interface' is required"),
            std::string::npos);
  EXPECT_NE(VipError("vip:\n  address: 10.0.0.50/24\n  interface: nosuchif0\n")
                .find("not a network interface on this node"),
            std::string::npos);
  EXPECT_NE(VipError("vip:\n  address: 10.0.0.1/24\n  interface: lo\n").find("own address"),
            std::string::npos);
  EXPECT_NE(VipError("vip:\n  address: 10.0.0.50/24\n  interface: lo\n  mac: x\n")
                .find("unknown key 'vip.mac'"),
            std::string::npos);
}

}  // namespace
}  // namespace tandem::agent

// ---- the configuration reference (README.md) and the loader's table agree

namespace tandem::agent {
namespace {

// README.md's configuration reference: each key's path and the value it
// shows, from the yaml block of the "## Configuration reference" section.
std::map<std::string, std::string> ReferenceKeys() {
  const std::string readme = std::string(TANDEM_SOURCE_DIR) + "/README.md";
  std::ifstream in(readme);
  EXPECT_TRUE(in.good()) << "cannot read " << readme;
  std::map<std::string, std::string> keys;
  std::string line, section;
  bool in_section = false, in_block = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) in_section = line == "## Configuration reference";
    if (!in_section) continue;
    if (line.rfind("```", 0) == 0) {
      if (in_block) break;
      in_block = line == "```yaml";
      continue;
    }
    if (!in_block) continue;
    // Cut the comment: a '#' after whitespace.
    const auto hash = line.find(" #");
    std::string text = hash == std::string::npos ? line : line.substr(0, hash);
    while (!text.empty() && text.back() == ' ') text.pop_back();
    if (text.find_first_not_of(' ') == std::string::npos) continue;  // a comment line
    const size_t indent = text.find_first_not_of(' ');
    const auto colon = text.find(':');
    EXPECT_NE(colon, std::string::npos) << line;
    const std::string key = text.substr(indent, colon - indent);
    std::string value = text.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    if (indent == 0 && value.empty()) {
      section = key;
    } else {
      const std::string path = indent == 0 ? key : section + "." + key;
      EXPECT_EQ(keys.count(path), 0u) << path << " is listed twice";
      keys[path] = value;
    }
  }
  return keys;
}

TEST(ConfigReference, TheReadmeListsExactlyTheLoadersKeys) {
  const auto reference = ReferenceKeys();
  ASSERT_FALSE(reference.empty());
  std::set<std::string> table;
  for (const auto& k : ConfigKeys()) {
    table.insert(k.path);
    EXPECT_EQ(reference.count(k.path), 1u)
        << k.path << " is a key of the loader but missing from README.md's reference";
  }
  for (const auto& [path, value] : reference) {
    EXPECT_EQ(table.count(path), 1u)
        << path << " is in README.md's reference but the loader does not know it";
  }
}

TEST(ConfigReference, TheReadmeStatesTheLoadersDefaults) {
  const auto reference = ReferenceKeys();
  for (const auto& k : ConfigKeys()) {
    if (k.default_value.empty() || reference.count(k.path) == 0) continue;  // no default
    EXPECT_EQ(reference.at(k.path), k.default_value) << k.path;
  }
}

TEST(ConfigReference, TheStatedDefaultsAreTheLoadedOnes) {
  auto c = ParseConfig(kMinimal, "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  for (const auto& k : ConfigKeys()) {
    if (k.default_value.empty() || k.default_value[0] == '<') continue;
    EXPECT_EQ(ConfigValueText(*c, k.path), k.default_value) << k.path;
  }
  // The two defaults the reference writes as derived from other keys.
  EXPECT_EQ(ConfigValueText(*c, "postgresql.data_dir"), c->state_dir + "/pgdata");
  EXPECT_EQ(c->proxy_read_only_max_lag_bytes, c->ha.max_lag_bytes);
  // And stating a default changes nothing.
  auto explicit_defaults = ParseConfig(std::string(kMinimal) +
                                           "dcs:\n  ttl: 2s\n  loop_interval: 250ms\n"
                                           "proxy:\n  idle_timeout: 0\n  connect_timeout: 3s\n",
                                       "t.yaml");
  ASSERT_TRUE(explicit_defaults.ok()) << explicit_defaults.error().message();
  for (const auto& k : ConfigKeys()) {
    EXPECT_EQ(ConfigValueText(*explicit_defaults, k.path), ConfigValueText(*c, k.path)) << k.path;
  }
}

TEST(ConfigReference, EveryKeyHasAType) {
  for (const auto& k : ConfigKeys()) EXPECT_FALSE(k.type.empty()) << k.path;
}

}  // namespace
}  // namespace tandem::agent
