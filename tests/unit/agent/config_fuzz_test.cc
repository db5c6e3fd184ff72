// A standing fuzz of config loading: seeded random mutations of a valid
// config (key names, values, YAML punctuation, any byte, lines, indentation). Never a
// crash or a hang, and every refusal names a key or a line. The seed is
// printed; TANDEM_FUZZ_SEED=<n> replays a run, TANDEM_FUZZ_CASES=<n> runs more.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "agent/config.h"
#include "base/strings.h"
#include "pg/parameter_catalog.h"

namespace tandem::agent {
namespace {

constexpr const char* kValid = R"(cluster: tandem
node:
  name: node1
  address: 10.0.0.1
  state_dir: /var/lib/tandem
  run_as_user: postgres
api:
  listen: 127.0.0.1
  port: 8008
  health_port: 8009
postgresql:
  port: 5432
  max_connections: 200
  bin_dir: /usr/lib/postgresql/15/bin
  parameters:
    shared_buffers: 128MB
    work_mem: 4MB
    enable_seqscan: on
    random_page_cost: 1.1
    log_min_messages: warning
  sync_mode: quorum
  sync_count: 1
  sync_reconnect_grace: 2s
dcs:
  endpoints: []
  etcd_client_port: 2379
  etcd_peer_port: 2380
  ttl: 2s
  loop_interval: 250ms
  safety_margin: 500ms
  max_lag_bytes: 16777216
proxy:
  read_write_port: 6432
  read_only_port: 6433
  listen: 0.0.0.0
  max_connections: 1000
  idle_timeout: 30m
  connect_timeout: 3s
  threads: 2
tls:
  server_key: /etc/tandem/node.key
  server_cert: /etc/tandem/node.crt
  client_key: /etc/tandem/client.key
  client_cert: /etc/tandem/client.crt
  ca_cert: /etc/tandem/ca.crt
  mode: enforce
  verify_hostname: true
log:
  level: info
)";

const char* const kValues[] = {"0",
                               "-1",
                               "65536",
                               "99999999999999999999",
                               "1e999",
                               "0x10",
                               "1.5",
                               "",
                               "''",
                               "\"\"",
                               "~",
                               "null",
                               "yes",
                               "off",
                               "2s",
                               "0s",
                               "25h",
                               "-5ms",
                               "1GB",
                               "1gb",
                               "[1, 2]",
                               "{a: b}",
                               "&a x",
                               "*a",
                               "!!binary aGk=",
                               "|\n  multi\n  line",
                               "\"\\n\"",
                               "'it''s'",
                               "10.0.0.300",
                               "::1",
                               "host.example",
                               "http://x",
                               "http://10.0.0.1:0",
                               "é",
                               "\t",
                               "lots",
                               "quorum",
                               "permissive",
                               "[",
                               "{",
                               "}",
                               "]",
                               ":",
                               "- a",
                               "? x",
                               "%TAG",
                               "@",
                               "`",
                               "#x"};
const char* const kKeys[] = {"nmae",
                             "port",
                             "max_connections",
                             "shared_buffer",
                             "wal_level",
                             "ssl",
                             "listen_addresses",
                             "x",
                             "",
                             "node",
                             "tls",
                             "<<",
                             "? k",
                             "a.b",
                             "1",
                             "- item"};
const char kPunct[] = ":-[]{},&*!|>#'\"\t\n %@`?";

std::string Mutate(const std::string& base, std::mt19937_64& rng) {
  std::vector<std::string> lines = Split(base, '\n');
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  const int mutations = 1 + static_cast<int>(pick(3));
  for (int m = 0; m < mutations && !lines.empty(); ++m) {
    std::string& line = lines[pick(lines.size())];
    const auto colon = line.find(':');
    switch (pick(8)) {
      case 0:  // a value replaced
        if (colon != std::string::npos) {
          line = line.substr(0, colon + 1) + " " + kValues[pick(std::size(kValues))];
        }
        break;
      case 1: {  // a key renamed
        const auto indent = line.find_first_not_of(' ');
        if (colon != std::string::npos && indent != std::string::npos && indent < colon) {
          line = line.substr(0, indent) + kKeys[pick(std::size(kKeys))] + line.substr(colon);
        }
        break;
      }
      case 2:  // punctuation inserted
        line.insert(pick(line.size() + 1), 1, kPunct[pick(sizeof kPunct - 1)]);
        break;
      case 3:  // a character deleted
        if (!line.empty()) line.erase(pick(line.size()), 1);
        break;
      case 4:  // indentation changed
        line = (pick(2) ? std::string(pick(6), ' ') : std::string()) + Trim(line);
        break;
      case 5:  // a line duplicated or dropped
        if (pick(2)) {
          lines.push_back(line);
        } else {
          line.clear();
        }
        break;
      case 6:  // truncated
        line.resize(pick(line.size() + 1));
        break;
      case 7:  // any byte (control characters, invalid UTF-8)
        line.insert(pick(line.size() + 1), 1, static_cast<char>(1 + pick(255)));
        break;
    }
  }
  return Join(lines, "\n");
}

// A refusal names a key (quoted, or a section.key path) or a line.
bool NamesAKeyOrALine(const std::string& message) {
  if (message.find("line ") != std::string::npos) return true;
  if (message.find("key '") != std::string::npos) return true;  // an unknown key, named
  for (const auto& k : ConfigKeys()) {
    const std::string section = k.path.substr(0, k.path.find('.'));
    if (message.find(k.path) != std::string::npos) return true;
    if (message.find("'" + section) != std::string::npos) return true;  // 'tls', 'tls.x'
  }
  if (std::getenv("TANDEM_FUZZ_SHOW")) std::cout << message << "\n";
  return false;
}

uint64_t FromEnv(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

TEST(ConfigFuzz, MutatedConfigsNeverCrashAndEveryRefusalNamesAKeyOrALine) {
  std::ifstream in(std::string(TANDEM_SOURCE_DIR) +
                   "/tests/unit/pg/testdata/describe_config_pg15.txt");
  std::stringstream sample;
  sample << in.rdbuf();
  auto catalog = pg::ParseDescribeConfig(sample.str());
  ASSERT_TRUE(catalog.ok());
  ASSERT_TRUE(ParseConfig(kValid, "fuzz.yaml", &*catalog).ok());

  const uint64_t seed = FromEnv("TANDEM_FUZZ_SEED", 19);
  const uint64_t cases = FromEnv("TANDEM_FUZZ_CASES", 5000);
  std::cout << "config fuzz: seed " << seed << ", " << cases << " cases\n";
  std::mt19937_64 rng(seed);
  int refused = 0;
  for (uint64_t i = 0; i < cases; ++i) {
    const std::string text = Mutate(kValid, rng);
    auto r = ParseConfig(text, "fuzz.yaml", &*catalog);
    if (r.ok()) continue;
    ++refused;
    const std::string& e = r.error().message();
    ASSERT_EQ(e.rfind("fuzz.yaml: ", 0), 0u) << "case " << i << ":\n" << text << "\n-> " << e;
    ASSERT_TRUE(NamesAKeyOrALine(e)) << "case " << i << " (seed " << seed << "):\n"
                                     << text << "\n-> " << e;
  }
  EXPECT_GT(refused, static_cast<int>(cases / 4));  // the mutations do reach the checks
}

}  // namespace
}  // namespace tandem::agent
