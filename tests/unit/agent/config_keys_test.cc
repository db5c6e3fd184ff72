// Every key of the table checks its type and range at load: addresses that
// parse, paths on one line, user and interface names, endpoint URLs. Each
// refusal names the key and what is expected.
#include <gtest/gtest.h>

#include "agent/config.h"

namespace tandem::agent {
namespace {

std::string Yaml(const std::string& section, const std::string& key, const std::string& value) {
  std::string node = "node:\n  name: node1\n  address: 10.0.0.1\n  state_dir: /var/lib/tandem\n";
  if (section == "node") {
    // Replace or add the key in the node section.
    const std::string line = "  " + key + ": ";
    const auto at = node.find(line);
    if (at != std::string::npos) {
      node.erase(at, node.find('\n', at) - at + 1);
    }
    return node + "  " + key + ": " + value + "\n";
  }
  return node + section + ":\n  " + key + ": " + value + "\n";
}

struct Case {
  const char* section;
  const char* key;
  const char* value;
  const char* expect;  // "" = accepted; else in the message
};

TEST(ConfigKeys, EachKeyChecksItsTypeAndNamesIt) {
  const Case cases[] = {
      {"api", "listen", "0.0.0.0", ""},
      {"api", "listen", "::1", ""},
      {"api", "listen", "localhost", ""},
      {"api", "listen", "not a host!", "'api.listen' must be an IP address or a host name"},
      {"api", "listen", "-bad-.example", "'api.listen' must be an IP address or a host name"},
      {"api", "port", "0", "'api.port' must be a TCP port between 1 and 65535"},
      {"api", "port", "65536", "'api.port' must be a TCP port"},
      {"api", "port", "http", "'api.port' must be a TCP port"},
      {"api", "health_port", "-1", "'api.health_port' must be a TCP port"},
      {"node", "address", "db1.example", "'node.address' must be an IP address"},
      {"node", "address", "10.0.0.256", "'node.address' must be an IP address"},
      {"node", "run_as_user", "Post Gres", "'node.run_as_user' must be a user name"},
      {"node", "run_as_user", "postgres", ""},
      {"node", "interface", "eth0/1", "'node.interface' must be a network interface name"},
      {"node", "name", "Node One", "'node.name' must be 1-63 characters"},
      {"node", "state_dir", "\"/var/lib/\\ntandem\"",
       "'node.state_dir' must be a path on one line"},
      {"postgresql", "bin_dir", "usr/lib/postgresql/15/bin",
       "'postgresql.bin_dir' must be an absolute path"},
      {"postgresql", "port", "99999", "'postgresql.port' must be a TCP port"},
      {"postgresql", "sync_count", "0", "'postgresql.sync_count' must be an integer from 1 to 16"},
      {"postgresql", "sync_mode", "sometimes", "'postgresql.sync_mode' is 'sometimes'; use off"},
      {"postgresql", "sync_reconnect_grace", "0s",
       "'postgresql.sync_reconnect_grace' must be a duration"},
      {"postgresql", "parameters", "[a]", "'postgresql.parameters' must be a mapping"},
      {"dcs", "endpoints", "[http://10.0.0.1:2379, https://etcd.example:2379]", ""},
      {"dcs", "endpoints", "[http://10.0.0.1]",
       "'dcs.endpoints' entry 'http://10.0.0.1' must be a URL"},
      {"dcs", "endpoints", "[http://10.0.0.1:0]", "must be a URL such as http://10.0.0.1:2379"},
      {"dcs", "endpoints", "[\"http://a b:1\"]", "'dcs.endpoints' entry"},
      {"dcs", "endpoints", "[[x]]", "'dcs.endpoints' must be a list of URLs"},
      {"dcs", "endpoints", "http://10.0.0.1:2379", "'dcs.endpoints' must be a list of URLs"},
      {"dcs", "etcd_bin", "''", "'dcs.etcd_bin' must name the etcd program"},
      {"dcs", "ttl", "2h", "'dcs.ttl' must be a duration such as 500ms, 2s or 1m (at most 1h)"},
      {"dcs", "loop_interval", "-5ms", "'dcs.loop_interval' must be a duration"},
      {"dcs", "max_lag_bytes", "-1", "'dcs.max_lag_bytes' must be a non-negative integer"},
      {"proxy", "listen", "proxy.example", "'proxy.listen' must be an IP address"},
      {"proxy", "threads", "65", "'proxy.threads' must be an integer from 0"},
      {"proxy", "idle_timeout", "8d", "'proxy.idle_timeout' must be a duration"},
      {"proxy", "read_only_fallback_to_primary", "maybe", "must be true or false"},
      {"tls", "mode", "strict", "'tls.mode' is 'strict'; use enforce"},
      {"tls", "verify_hostname", "1", "'tls.verify_hostname' must be true or false"},
      {"log", "level", "verbose", "'log.level' must be one of debug, info, warn, error"},
  };
  for (const auto& c : cases) {
    auto r = ParseConfig(Yaml(c.section, c.key, c.value), "/etc/tandem/tandem.yaml");
    const std::string what = std::string(c.section) + "." + c.key + " = " + c.value;
    if (*c.expect == '\0') {
      EXPECT_TRUE(r.ok()) << what << ": " << r.error().message();
      continue;
    }
    ASSERT_FALSE(r.ok()) << what << " was accepted";
    EXPECT_NE(r.error().message().find(c.expect), std::string::npos)
        << what << ": " << r.error().message();
    EXPECT_EQ(r.error().message().rfind("/etc/tandem/tandem.yaml: ", 0), 0u);
  }
}

}  // namespace
}  // namespace tandem::agent
