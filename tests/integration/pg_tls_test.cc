// PostgreSQL over TLS on real etcd and PostgreSQL 15: a 3-node sandbox (TLS,
// enforce, by default). Every walsender runs over TLS with the client
// certificate CN=postgres; a plain replication connection and a client
// certificate from another CA are refused; an agent with bad certificates
// refuses to start and the running cluster goes on; no key material shows in
// the logs or the status. Each node checks its peers' certificates; switching
// to enforce checks every peer first; certificates are rotated node by node
// while the cluster runs (no PostgreSQL restart, no failover), and a bad set
// offered for rotation is refused. The tests share one sandbox and run in
// order.
//
// Port: TestBasePort(32400).
#include <gtest/gtest.h>
#include <openssl/bn.h>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/process.h"
#include "base/strings.h"
#include "integration/harness/harness.h"
#include "net/peer_certs.h"
#include "pki/inspect.h"

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
  // Healthy, and every node's PostgreSQL answers (right after a node was
  // killed the store may still show it for up to a lease TTL).
  static bool AllUp() {
    for (int i = 1; i <= 3; ++i) {
      if (Psql(PgPort(i), Pgpass(), "SELECT 1").exit_code != 0) return false;
    }
    return Healthy();
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

// The serial of the certificate a server presents now ("" when none).
std::string ServedSerial(int port, net::TlsService service) {
  auto pem = net::FetchServerCertificate("127.0.0.1", port, service, "", "", 3000);
  if (!pem) return "";
  auto in = pki::InspectPem("served", *pem, {});
  return in.cert ? in.cert->serial : "";
}

std::string FileSerial(const std::string& path) {
  auto in = pki::Inspect(path, {});
  return in.cert ? in.cert->serial : "";
}

// "4A:1F" -> "18975" (pg_stat_ssl.client_serial is a decimal number).
std::string SerialAsDecimal(std::string hex) {
  hex = ReplaceAll(hex, ":", "");
  BIGNUM* bn = nullptr;
  if (BN_hex2bn(&bn, hex.c_str()) == 0) return "";
  char* dec = BN_bn2dec(bn);
  std::string out = dec != nullptr ? dec : "";
  OPENSSL_free(dec);
  BN_free(bn);
  return out;
}

TEST_F(PgTlsTest, EachNodeChecksItsPeersCertificates) {
  bool all = WaitUntil(
      [] {
        auto st = ClusterStatusJson(Config(1));
        if (!st) return false;
        int checked = 0;
        for (const auto& m : (*st)["members"]) {
          if (!m.contains("certificate_checked_here")) continue;
          if (m["certificate_checked_here"].value("text", "") != "Valid") return false;
          ++checked;
        }
        return checked == 2;  // both peers, not itself
      },
      60'000);
  auto st = ClusterStatusJson(Config(1));
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(all) << st->dump(2);
}

// Switching to enforce checks every peer's API and PostgreSQL certificates
// first. A node in permissive (a copy of node1's config) may switch while every
// peer passes; with node3 down it cannot be checked, and the switch is refused,
// naming it, unless --force.
TEST_F(PgTlsTest, SwitchingToEnforceChecksEveryPeerFirst) {
  const std::string copy = dir_->path() + "/node1-permissive.yaml";
  std::string yaml = *ReadFile(Config(1));
  ASSERT_TRUE(Has(yaml, "mode: enforce")) << yaml;
  yaml = ReplaceAll(yaml, "mode: enforce", "mode: permissive");
  ASSERT_TRUE(WriteFileAtomic(copy, yaml).ok());

  auto ok = RunTandem({"-c", copy, "cluster", "tls-mode", "enforce"});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_TRUE(Has(ok.output, "node2 (127.0.0.1)  API: Valid  PostgreSQL: Valid")) << ok.output;
  EXPECT_TRUE(Has(ok.output, "node3 (127.0.0.1)  API: Valid  PostgreSQL: Valid")) << ok.output;
  EXPECT_TRUE(Has(ok.output, "Every peer passes")) << ok.output;
  EXPECT_TRUE(Has(*ReadFile(copy), "mode: \"enforce\"")) << *ReadFile(copy);
  auto again = RunTandem({"-c", copy, "cluster", "tls-mode", "enforce"});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_TRUE(Has(again.output, "already enforce")) << again.output;

  ASSERT_TRUE(WriteFileAtomic(copy, yaml).ok());
  ASSERT_EQ(RunTandem({"sandbox", "kill", "node3", "--dir", Dir()}).exit_code, 0);
  auto refused = RunTandem({"-c", copy, "cluster", "tls-mode", "enforce"});
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_TRUE(Has(refused.output, "not switching to enforce")) << refused.output;
  EXPECT_TRUE(Has(refused.output, "node3 API: Unknown (cannot connect)")) << refused.output;
  EXPECT_TRUE(Has(refused.output, "node3 PostgreSQL: Unknown (cannot connect)")) << refused.output;
  EXPECT_FALSE(Has(refused.output, "node2 API")) << refused.output;
  EXPECT_EQ(*ReadFile(copy), yaml) << "a refused switch must not touch the config";
  auto forced = RunTandem({"-c", copy, "cluster", "tls-mode", "enforce", "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced.output;
  EXPECT_TRUE(Has(forced.output, "failing peers (--force)")) << forced.output;
  EXPECT_TRUE(Has(*ReadFile(copy), "mode: \"enforce\""));

  ASSERT_EQ(RunTandem({"sandbox", "start", "node3", "--dir", Dir()}).exit_code, 0);
  EXPECT_TRUE(WaitUntil([] { return AllUp(); }, 120'000));
}

// Rotation node by node while the cluster runs: a bad set is refused and the
// node keeps serving its old certificate; a good one reaches PostgreSQL, etcd
// and the API of that node without a restart; node1 gets its new files by an
// edit of its config (the agent follows the new paths), node2 and node3 by
// `tandem cluster certs`. No PostgreSQL restarts, the primary stays, and the
// replicas' next replication connections present their new client
// certificates.
TEST_F(PgTlsTest, CertificatesRotateNodeByNodeWithoutARestart) {
  ASSERT_TRUE(WaitUntil([] { return AllUp(); }, 120'000));
  auto before = ClusterStatusJson(Config(1));
  ASSERT_TRUE(before.has_value());
  const std::string primary = before->value("primary", "");
  ASSERT_FALSE(primary.empty()) << before->dump(2);
  auto history_before = RunTandem({"-c", Config(1), "cluster", "history", "--json"});
  ASSERT_EQ(history_before.exit_code, 0);
  std::vector<std::string> started(4);
  for (int i = 1; i <= 3; ++i) {
    auto r = Psql(PgPort(i), Pgpass(), "SELECT pg_postmaster_start_time()");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    started[i] = r.output;
  }
  const std::string d = dir_->path() + "/rotate";
  for (int i = 1; i <= 3; ++i) {
    const std::string node = "node" + std::to_string(i);
    const std::string out = d + "/" + node;
    auto issue = RunTandem({"pki", "issue", node, "--ca-dir", Dir() + "/ca", "--address",
                            "127.0.0.1", "--dns", "localhost", "--out", out});
    ASSERT_EQ(issue.exit_code, 0) << issue.output;
  }
  for (int i = 1; i <= 3; ++i) {
    const std::string node = "node" + std::to_string(i);
    const std::string out = d + "/" + node;
    const int p = PgPort(i);
    const std::string old_serial = ServedSerial(p + 1, net::TlsService::kHttps);
    ASSERT_FALSE(old_serial.empty());
    const std::string new_serial = FileSerial(out + "/server.crt");
    ASSERT_NE(new_serial, old_serial);
    // A bad set first: the new server certificate with another node's key.
    const std::string other = d + "/node" + std::to_string(i % 3 + 1);
    auto bad =
        RunTandem({"-c", Config(i), "cluster", "certs", other + "/server.key", out + "/server.crt",
                   out + "/client.key", out + "/client.crt", out + "/ca.crt"});
    EXPECT_NE(bad.exit_code, 0) << bad.output;
    EXPECT_TRUE(Has(bad.output, "does not match the certificate")) << bad.output;
    EXPECT_EQ(ServedSerial(p + 1, net::TlsService::kHttps), old_serial);
    if (i == 1) {
      // An operator's edit of the config's paths.
      std::string yaml = *ReadFile(Config(1));
      yaml = ReplaceAll(yaml, NodeDir(1) + "/certs/", out + "/");
      ASSERT_TRUE(WriteFileAtomic(Config(1), yaml).ok());
    } else {
      auto good =
          RunTandem({"-c", Config(i), "cluster", "certs", out + "/server.key", out + "/server.crt",
                     out + "/client.key", out + "/client.crt", out + "/ca.crt"});
      ASSERT_EQ(good.exit_code, 0) << good.output;
    }
    std::string api, pg, etcd;
    bool rotated = WaitUntil(
        [&] {
          api = ServedSerial(p + 1, net::TlsService::kHttps);
          pg = ServedSerial(p, net::TlsService::kPostgres);
          etcd = ServedSerial(p + 4, net::TlsService::kHttps);
          return api == new_serial && pg == new_serial && etcd == new_serial;
        },
        60'000);
    EXPECT_TRUE(rotated) << node << " serves api " << api << ", postgres " << pg << ", etcd "
                         << etcd << "; want " << new_serial;
    EXPECT_TRUE(WaitUntil([] { return Healthy(); }, 60'000)) << "after rotating " << node;
  }
  // The same primary, no failover, no PostgreSQL restart.
  auto after = ClusterStatusJson(Config(2));
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->value("primary", ""), primary);
  EXPECT_EQ(RunTandem({"-c", Config(1), "cluster", "history", "--json"}).output,
            history_before.output);
  for (int i = 1; i <= 3; ++i) {
    auto r = Psql(PgPort(i), Pgpass(), "SELECT pg_postmaster_start_time()");
    EXPECT_EQ(r.output, started[i]) << "node" << i << "'s PostgreSQL restarted";
  }
  auto st = ClusterStatusJson(Config(1));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ((*st)["tls"]["certificates"]["server"]["path"], d + "/node1/server.crt") << st->dump(2);
  EXPECT_EQ((*st)["tls"]["certificates"]["server"]["text"], "Valid");
  // New replication connections present the new client certificates.
  int pport = 0;
  for (const auto& m : (*after)["members"]) {
    if (m.value("name", "") == primary) pport = m.value("port", 0);
  }
  ASSERT_NE(pport, 0);
  std::string want;
  for (int i = 1; i <= 3; ++i) {
    const std::string node = "node" + std::to_string(i);
    if (node == primary) continue;
    want += node + "|" + SerialAsDecimal(FileSerial(d + "/" + node + "/client.crt")) + "\n";
  }
  ASSERT_EQ(
      Psql(pport, Pgpass(), "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_replication")
          .exit_code,
      0);
  std::string got;
  bool reconnected = WaitUntil(
      [&] {
        auto r = Psql(pport, Pgpass(),
                      "SELECT r.application_name || '|' || s.client_serial FROM "
                      "pg_stat_replication r JOIN pg_stat_ssl s ON s.pid = r.pid ORDER BY 1");
        got = r.output;
        return got == want;
      },
      60'000);
  EXPECT_TRUE(reconnected) << "walsenders: " << got << "want: " << want;
  EXPECT_TRUE(WaitUntil([] { return Healthy(); }, 60'000));
}

TEST_F(PgTlsTest, NoKeyMaterialInLogsOrStatus) {
  std::vector<std::string> keys = {Dir() + "/ca/ca.key"};
  for (int i = 1; i <= 3; ++i) {
    for (const char* k : {"/server.key", "/client.key"}) {
      const std::string rotated = dir_->path() + "/rotate/node" + std::to_string(i) + k;
      if (PathExists(rotated)) keys.push_back(rotated);
    }
  }
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
