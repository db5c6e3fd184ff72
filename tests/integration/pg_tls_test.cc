// PostgreSQL over TLS on real etcd and PostgreSQL 15: a 3-node sandbox (TLS,
// enforce, by default). Every walsender runs over TLS with the client
// certificate CN=postgres; a plain replication connection and a client
// certificate from another CA are refused; an agent with bad certificates
// refuses to start and the running cluster goes on; no key material shows in
// the logs or the status. The tests share one sandbox and run in order.
//
// Port: TestBasePort(32400).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/process.h"
#include "base/strings.h"
#include "integration/harness/harness.h"

namespace tandem::testing {
namespace {
using nlohmann::json;

bool Has(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
    s.replace(p, from.size(), to);
  }
  return s;
}

class PgTlsTest : public SandboxSuite<PgTlsTest> {
 protected:
  static void SetUpTestSuite() { UpSandbox("tandem-pg-tls", 32400); }
  static void TearDownTestSuite() {
    DownSandbox();
    RemoveSandboxDir();
  }
  static int PgPort(int i) { return base_ + 10 * i; }
  static std::string Pgpass() { return Dir() + "/pgpass"; }

  static int PrimaryPort() {
    auto s = ClusterStatusJson(Config(1));
    if (!s) return 0;
    for (const auto& m : (*s)["members"]) {
      if (m["role"] == "primary") return m.value("port", 0);
    }
    return 0;
  }
  static bool Healthy() {
    auto s = ClusterStatusJson(Config(1));
    return s && UnhealthyBecause(*s, 3, /*failover_ready=*/false).empty();
  }
  // psql with a whole conninfo string.
  static CommandResult PsqlConninfo(const std::string& conninfo, const std::string& sql) {
    return RunCmd({"psql", "-X", "-At", conninfo, "-c", sql}, 30'000,
                  {{"PGPASSFILE", Pgpass()}, {"PGCONNECT_TIMEOUT", "5"}});
  }
};

TEST_F(PgTlsTest, EveryWalsenderRunsOverTlsWithTheClientCertificate) {
  const int port = PrimaryPort();
  ASSERT_NE(port, 0);
  std::string out;
  bool ok = WaitUntil(
      [&] {
        auto r = Psql(port, Pgpass(),
                      "SELECT r.application_name || '|' || s.ssl || '|' || "
                      "coalesce(s.client_dn, '') FROM pg_stat_replication r JOIN pg_stat_ssl s "
                      "ON s.pid = r.pid ORDER BY 1");
        out = r.output;
        return r.exit_code == 0 && out == "node2|true|/CN=postgres\nnode3|true|/CN=postgres\n";
      },
      60'000);
  EXPECT_TRUE(ok) << out;
  // Every walsender, not only those two: none without TLS.
  auto plain = Psql(port, Pgpass(),
                    "SELECT count(*) FROM pg_stat_replication r JOIN pg_stat_ssl s ON s.pid = "
                    "r.pid WHERE NOT s.ssl");
  EXPECT_EQ(plain.output, "0\n");
}

TEST_F(PgTlsTest, APlainReplicationConnectionIsRefused) {
  const int port = PrimaryPort();
  ASSERT_NE(port, 0);
  auto r = PsqlConninfo("host=127.0.0.1 port=" + std::to_string(port) +
                            " user=replicator dbname=replication replication=true "
                            "sslmode=disable",
                        "IDENTIFY_SYSTEM");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_TRUE(Has(r.output,
                  "pg_hba.conf rejects replication connection for host \"127.0.0.1\", "
                  "user \"replicator\", no encryption"))
      << r.output;
  // The superuser from a peer address without TLS: refused too.
  auto su = PsqlConninfo("host=127.0.0.1 port=" + std::to_string(port) +
                             " user=postgres dbname=postgres sslmode=disable",
                         "SELECT 1");
  EXPECT_NE(su.exit_code, 0) << su.output;
  EXPECT_TRUE(Has(su.output, "pg_hba.conf rejects connection")) << su.output;
  // Over TLS without a client certificate, replication is refused as well
  // (cert authentication), even with the right password.
  auto nocert = PsqlConninfo("host=127.0.0.1 port=" + std::to_string(port) +
                                 " user=replicator dbname=replication replication=true "
                                 "sslmode=require",
                             "IDENTIFY_SYSTEM");
  EXPECT_NE(nocert.exit_code, 0) << nocert.output;
  EXPECT_TRUE(Has(nocert.output, "connection requires a valid client certificate"))
      << nocert.output;
}

TEST_F(PgTlsTest, AClientCertificateFromAnotherCaIsRefused) {
  const std::string other = dir_->path() + "/other";
  ASSERT_EQ(RunTandem({"pki", "ca", "init", "--dir", other + "/ca"}).exit_code, 0);
  auto issue = RunTandem({"pki", "issue", "node1", "--ca-dir", other + "/ca", "--address",
                          "127.0.0.1", "--out", other + "/tls"});
  ASSERT_EQ(issue.exit_code, 0) << issue.output;
  const int port = PrimaryPort();
  ASSERT_NE(port, 0);
  const std::string conninfo =
      "host=127.0.0.1 port=" + std::to_string(port) +
      " user=replicator dbname=replication replication=true sslmode=verify-full sslrootcert=" +
      NodeDir(2) + "/certs/ca.crt sslcert=" + other + "/tls/client.crt sslkey=" + other +
      "/tls/client.key";
  auto r = PsqlConninfo(conninfo, "IDENTIFY_SYSTEM");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_TRUE(Has(r.output, "unknown ca") || Has(r.output, "certificate verify failed"))
      << r.output;
  // The sandbox's own client pair gets in: the refusal is about the CA.
  auto own = PsqlConninfo("host=127.0.0.1 port=" + std::to_string(port) +
                              " user=replicator dbname=replication replication=true "
                              "sslmode=verify-full sslrootcert=" +
                              NodeDir(2) + "/certs/ca.crt sslcert=" + NodeDir(2) +
                              "/certs/client.crt sslkey=" + NodeDir(2) + "/certs/client.key",
                          "IDENTIFY_SYSTEM");
  EXPECT_EQ(own.exit_code, 0) << own.output;
}

TEST_F(PgTlsTest, AnAgentWithBadCertificatesRefusesToStartAndTheClusterGoesOn) {
  const std::string d = dir_->path() + "/bad";
  // A client certificate with the wrong CN, signed by the sandbox's CA.
  auto issue = RunTandem({"pki", "issue", "node3", "--ca-dir", Dir() + "/ca", "--address",
                          "127.0.0.1", "--out", d + "/cn"});
  ASSERT_EQ(issue.exit_code, 0) << issue.output;
  auto csr = RunTandem({"pki", "csr", "app", "--cn", "app", "--dir", d + "/cn"});
  ASSERT_EQ(csr.exit_code, 0) << csr.output;
  auto sign = RunTandem({"pki", "sign", d + "/cn/app.csr", "--ca-dir", Dir() + "/ca", "--client"});
  ASSERT_EQ(sign.exit_code, 0) << sign.output;
  const std::string yaml = *ReadFile(Config(3));
  struct Case {
    std::string name, from, to, expect;
  };
  const std::vector<Case> cases = {
      {"wrong CN", NodeDir(3) + "/certs/client.crt", d + "/cn/app.crt", "has Common Name 'app'"},
      {"other CA", NodeDir(3) + "/certs/ca.crt", dir_->path() + "/other/ca/ca.crt",
       "signed by another CA"},
      {"missing", NodeDir(3) + "/certs/server.key", d + "/none.key", d + "/none.key"},
  };
  for (const auto& c : cases) {
    std::string bad = yaml;
    if (c.name == "wrong CN") {
      // client_cert and client_key both: the key must match the certificate.
      bad = ReplaceAll(bad, NodeDir(3) + "/certs/client.key", d + "/cn/app.key");
    }
    // The other CA only exists after the previous test; make sure it does.
    if (c.name == "other CA" && !PathExists(c.to)) {
      ASSERT_EQ(RunTandem({"pki", "ca", "init", "--dir", dir_->path() + "/other/ca"}).exit_code, 0);
    }
    bad = ReplaceAll(bad, c.from, c.to);
    ASSERT_NE(bad, yaml) << c.name;
    const std::string path = d + "/" + ReplaceAll(c.name, " ", "_") + ".yaml";
    ASSERT_TRUE(WriteFileAtomic(path, bad).ok());
    // Same ports and state directory as the running node3: refusing must come
    // before anything binds or touches them.
    auto r = RunTandem({"agent", "-c", path}, 60'000);
    EXPECT_EQ(r.exit_code, 2) << c.name << ": " << r.output;
    EXPECT_TRUE(Has(r.output, c.expect)) << c.name << ": " << r.output;
    EXPECT_TRUE(Has(r.output, "nothing was started")) << c.name << ": " << r.output;
  }
  EXPECT_TRUE(WaitUntil([] { return Healthy(); }, 60'000));
  const int port = PrimaryPort();
  ASSERT_NE(port, 0);
  auto w = Psql(port, Pgpass(),
                "CREATE TABLE IF NOT EXISTS tls_probe(x int); INSERT INTO tls_probe VALUES (1)");
  EXPECT_EQ(w.exit_code, 0) << w.output;
}

TEST_F(PgTlsTest, StatusShowsEveryNodesCertificate) {
  auto s = ClusterStatusJson(Config(2));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ((*s)["tls"]["mode"], "enforce") << s->dump(2);
  EXPECT_EQ((*s)["tls"]["certificate"], "Valid") << s->dump(2);
  for (const char* c : {"server", "client", "ca"}) {
    EXPECT_EQ((*s)["tls"]["certificates"][c]["text"], "Valid") << c << s->dump(2);
  }
  bool all = WaitUntil(
      [] {
        auto st = ClusterStatusJson(Config(2));
        if (!st) return false;
        for (const auto& m : (*st)["members"]) {
          if (m.value("certificate", "") != "Valid") return false;
        }
        return (*st)["members"].size() == 3;
      },
      30'000);
  EXPECT_TRUE(all);
  auto text = RunTandem({"-c", Config(2), "cluster", "status"});
  EXPECT_TRUE(Has(text.output, "Certificate: Valid")) << text.output;
  EXPECT_TRUE(Has(text.output, "/certs/server.crt (Valid)")) << text.output;
}

TEST_F(PgTlsTest, NoKeyMaterialInLogsOrStatus) {
  std::vector<std::string> keys = {Dir() + "/ca/ca.key"};
  for (int i = 1; i <= 3; ++i) {
    for (const char* k :
         {"/certs/server.key", "/certs/client.key", "/tls/server.key", "/tls/client.key"}) {
      keys.push_back(NodeDir(i) + k);
    }
  }
  std::string haystack;
  for (int i = 1; i <= 3; ++i) {
    for (const char* log : {"/agent.log", "/log/postgresql.log"}) {
      auto text = ReadFile(NodeDir(i) + log);
      if (text) haystack += *text;
    }
    haystack += RunTandem({"-c", Config(i), "cluster", "status", "--json"}).output;
    haystack += RunTandem({"-c", Config(i), "cluster", "status"}).output;
  }
  ASSERT_FALSE(haystack.empty());
  int lines = 0;
  for (const auto& key : keys) {
    auto pem = ReadFile(key);
    ASSERT_TRUE(pem.ok()) << key;
    for (const auto& line : Split(*pem, '\n')) {
      if (line.empty() || line[0] == '-') continue;
      ++lines;
      EXPECT_FALSE(Has(haystack, line)) << "a line of " << key << " appears in a log or status";
    }
  }
  EXPECT_GT(lines, 0);
}

}  // namespace
}  // namespace tandem::testing
