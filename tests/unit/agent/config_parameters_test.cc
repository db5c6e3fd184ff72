// postgresql.parameters at load: what Tandem writes itself is refused with
// the key that sets it; every other name and value is checked against the
// PostgreSQL binary's catalog (a sample of `postgres --describe-config`).
#include "agent/config_parameters.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

#include "agent/config.h"
#include "base/strings.h"
#include "pg/conf.h"
#include "unit/agent/config_text.h"

namespace tandem::agent {
namespace {

constexpr const char* kNode = config_testing::kMinimalNode;
constexpr const char* kTls =
    "tls:\n  server_key: /k\n  server_cert: /c\n  client_key: /ck\n  client_cert: /cc\n"
    "  ca_cert: /ca\n";

const pg::ParameterCatalog& Sample() {
  static const pg::ParameterCatalog catalog = [] {
    std::ifstream in(std::string(TANDEM_SOURCE_DIR) +
                     "/tests/unit/pg/testdata/describe_config_pg15.txt");
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = pg::ParseDescribeConfig(text.str());
    EXPECT_TRUE(parsed.ok());
    return parsed.ok() ? *parsed : pg::ParameterCatalog{};
  }();
  return catalog;
}

std::string WithParameter(const std::string& name, const std::string& value,
                          const std::string& extra = "") {
  return std::string(kNode) + "postgresql:\n  parameters:\n    " + name + ": " + value + "\n" +
         extra;
}

std::string ErrorOf(const std::string& yaml, const pg::ParameterCatalog* catalog = &Sample()) {
  auto r = ParseConfig(yaml, "/etc/tandem/tandem.yaml", catalog);
  return r.ok() ? "" : r.error().message();
}

TEST(ConfigParameters, EveryManagedParameterIsRefusedNamingItsKey) {
  for (const auto& name : config_internal::ManagedParameterNames()) {
    const std::string e = ErrorOf(WithParameter(name, "x", kTls), nullptr);
    EXPECT_NE(e.find("'postgresql.parameters." + name + "' is managed by Tandem"),
              std::string::npos)
        << name << ": " << e;
    EXPECT_NE(e.find("remove it from postgresql.parameters"), std::string::npos) << e;
  }
}

TEST(ConfigParameters, TheMessageSaysWhatSetsItInstead) {
  EXPECT_NE(ErrorOf(WithParameter("port", "5433")).find("set postgresql.port instead"),
            std::string::npos);
  const std::string mc = ErrorOf(WithParameter("max_connections", "500"));
  EXPECT_NE(mc.find("set postgresql.max_connections instead, to the same value on every node"),
            std::string::npos)
      << mc;
  EXPECT_NE(ErrorOf(WithParameter("listen_addresses", "'*'")).find("node.address"),
            std::string::npos);
  EXPECT_NE(ErrorOf(WithParameter("synchronous_standby_names", "'*'")).find("sync_mode"),
            std::string::npos);
  // PostgreSQL's names are case-insensitive, and so is the refusal.
  EXPECT_NE(ErrorOf(WithParameter("Max_Connections", "500")).find("managed by Tandem"),
            std::string::npos);
}

TEST(ConfigParameters, TheSslParametersAreTandemsOnlyWithATlsSection) {
  EXPECT_EQ(ErrorOf(WithParameter("ssl", "on")), "");
  EXPECT_NE(ErrorOf(WithParameter("ssl", "on", kTls)).find("from the tls section"),
            std::string::npos);
}

TEST(ConfigParameters, SynchronousCommitIsTandemsUnlessSyncModeIsOff) {
  EXPECT_NE(ErrorOf(WithParameter("synchronous_commit", "local")).find("sync_mode"),
            std::string::npos);
  EXPECT_EQ(ErrorOf(WithParameter("synchronous_commit", "local") + "  sync_mode: off\n"), "");
}

TEST(ConfigParameters, MaxConnectionsHasItsOwnKey) {
  auto c = ParseConfig(std::string(kNode) + "postgresql:\n  max_connections: 500\n", "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->pg_max_connections, 500);
  EXPECT_NE(ErrorOf(std::string(kNode) + "postgresql:\n  max_connections: 0\n")
                .find("'postgresql.max_connections' must be an integer from 1 to 262143"),
            std::string::npos);
}

// Every key pg::RenderConfig writes into tandem.conf is in the managed table
// or is one of the defaults an operator may override: a new line written by
// Tandem cannot be forgotten here (it would be accepted at load and then
// refused when tandem.conf is rendered, and PostgreSQL never starts).
TEST(ConfigParameters, TheTableCoversEveryKeyTandemConfWrites) {
  pg::Settings s;
  s.tls.mode = pg::TlsMode::kEnforce;
  s.tls.server_cert = s.tls.server_key = s.tls.ca_cert = s.tls.client_cert = s.tls.client_key =
      "/x";
  pg::Source src;
  src.host = "10.0.0.2";
  src.user = "replicator";
  src.slot_name = "tandem_node2";
  auto conf = pg::RenderConfig(s, "/run", src, "/pass");
  ASSERT_TRUE(conf.ok()) << conf.error().message();
  const auto managed = config_internal::ManagedParameterNames();
  const std::set<std::string> table(managed.begin(), managed.end());
  const std::set<std::string> overridable = {"wal_retrieve_retry_interval", "wal_sender_timeout",
                                             "wal_receiver_timeout", "recovery_init_sync_method"};
  int keys = 0;
  for (const auto& line : Split(*conf, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const std::string key = Trim(line.substr(0, line.find('=')));
    ++keys;
    EXPECT_TRUE(table.count(key) || overridable.count(key)) << key << " is written by Tandem";
  }
  EXPECT_GT(keys, 20);
}

struct Bad {
  const char* name;
  const char* value;
  const char* expect;  // in the message
};

TEST(ConfigParameters, NamesAndValuesAreCheckedAgainstTheCatalog) {
  const Bad cases[] = {
      {"shared_buffer", "1GB", "did you mean shared_buffers"},
      {"max_conections", "10", "did you mean max_connections"},
      {"block_size", "8192", "is not a parameter of this node's PostgreSQL"},
      {"shared_buffers", "lots", "must be an integer from 16 to 1073741823"},
      {"shared_buffers", "8", "(got '8')"},
      {"work_mem", "64mb", "must be an integer"},
      {"enable_seqscan", "maybe", "must be a boolean: on, off"},
      {"random_page_cost", "fast", "must be a number from 0 to"},
      {"log_min_messages", "''", "must be one of the parameter's words"},
      {"1bad", "x", "is not a valid parameter name"},
  };
  for (const auto& c : cases) {
    const std::string e = ErrorOf(WithParameter(c.name, c.value));
    EXPECT_NE(e.find("'postgresql.parameters." + std::string(c.name) + "'"), std::string::npos)
        << c.name << ": " << e;
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.name << ": " << e;
  }
}

TEST(ConfigParameters, GoodValuesExtensionsAndDeveloperOptionsPass) {
  const char* good[][2] = {{"shared_buffers", "1GB"},
                           {"work_mem", "64MB"},
                           {"enable_seqscan", "off"},
                           {"random_page_cost", "1.1"},
                           {"log_min_messages", "warning"},
                           {"search_path", "'\"$user\", public'"},
                           {"pg_stat_statements.max", "10000"},
                           {"zero_damaged_pages", "on"},
                           {"Work_Mem", "4MB"}};
  for (const auto& g : good) {
    EXPECT_EQ(ErrorOf(WithParameter(g[0], g[1])), "") << g[0];
  }
}

TEST(ConfigParameters, ValuesMustBeSingleScalars) {
  EXPECT_NE(ErrorOf(WithParameter("work_mem", "[1, 2]")).find("must be a single value"),
            std::string::npos);
  EXPECT_NE(ErrorOf(WithParameter("work_mem", "")).find("'postgresql.parameters.work_mem'"),
            std::string::npos);
  EXPECT_NE(ErrorOf(WithParameter("search_path", "\"a\\nb\"")).find("single line"),
            std::string::npos);
}

std::string WriteConfig(const std::string& yaml) {
  static int n = 0;
  const std::string path = "/tmp/tandem_config_parameters_" + std::to_string(::getpid()) + "_" +
                           std::to_string(++n) + ".yaml";
  std::ofstream(path) << yaml;
  return path;
}

TEST(ConfigParameters, WithoutABinaryTheCatalogCheckIsSkippedButManagedOnesAreRefused) {
  const std::string bin = "  bin_dir: /nonexistent/bin\n";
  const std::string skipped = WriteConfig(std::string(kNode) + "postgresql:\n" + bin +
                                          "  parameters:\n    shared_buffer: lots\n");
  auto loaded = LoadConfig(skipped);
  EXPECT_TRUE(loaded.ok()) << loaded.error().message();
  const std::string managed =
      WriteConfig(std::string(kNode) + "postgresql:\n" + bin + "  parameters:\n    port: 5433\n");
  auto refused = LoadConfig(managed);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("postgresql.port"), std::string::npos);
  ::unlink(skipped.c_str());
  ::unlink(managed.c_str());
}

TEST(ConfigParameters, LoadConfigChecksAgainstTheInstalledBinary) {
  const std::string bin = "/usr/lib/postgresql/15/bin";
  if (::access((bin + "/postgres").c_str(), X_OK) != 0) GTEST_SKIP() << "no PostgreSQL 15";
  const std::string path = WriteConfig(std::string(kNode) + "postgresql:\n  bin_dir: " + bin +
                                       "\n  parameters:\n    work_mem: lots\n");
  auto r = LoadConfig(path);
  ::unlink(path.c_str());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("'postgresql.parameters.work_mem' must be an integer"),
            std::string::npos)
      << r.error().message();
}

}  // namespace
}  // namespace tandem::agent
