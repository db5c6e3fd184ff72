// The certificates `tandem pki issue` makes work with real PostgreSQL 15: the server
// certificate passes libpq's sslmode=verify-full by IP and by DNS name, and the client
// certificate (CN=postgres) logs in through `cert` authentication. Tandem does not
// configure TLS yet: this test writes the few settings by hand.
//
// Port: TestBasePort(27400), on 127.0.0.1 and 127.0.0.2.
#include <gtest/gtest.h>

#include "base/file.h"
#include "integration/harness/harness.h"
#include "pg/postgres.h"

namespace tandem {
namespace {

using testing::RunCmd;
using testing::RunTandem;
using testing::ServiceUser;
using testing::TempDir;
using testing::TestBasePort;

bool Has(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

// argv, run as the service user when we are root (PostgreSQL refuses root).
std::vector<std::string> AsService(std::vector<std::string> argv) {
  if (ServiceUser().empty()) return argv;
  std::vector<std::string> out = {"runuser", "-u", ServiceUser(), "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

class PkiPostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto bin = pg::FindBinDir();
    if (!bin) GTEST_SKIP() << bin.error().ToString();
    bin_ = *bin;
    port_ = TestBasePort(27400);
    dir_ = std::make_unique<TempDir>("tandem-pki-pg");
    const std::string d = dir_->path();
    ASSERT_EQ(RunTandem({"pki", "ca", "init", "--dir", d + "/ca"}).exit_code, 0);
    auto issue = RunTandem({"pki", "issue", "node1", "--ca-dir", d + "/ca", "--address",
                            "127.0.0.1", "--dns", "localhost", "--out", d + "/tls"});
    ASSERT_EQ(issue.exit_code, 0) << issue.output;
    // A client certificate from another CA, for the refusal.
    ASSERT_EQ(RunTandem({"pki", "ca", "init", "--dir", d + "/other"}).exit_code, 0);
    ASSERT_EQ(RunTandem({"pki", "issue", "node1", "--ca-dir", d + "/other", "--address",
                         "127.0.0.1", "--out", d + "/other-tls"})
                  .exit_code,
              0);
    // PostgreSQL wants its key owned by its own user, mode 0600.
    ASSERT_TRUE(ChownRecursive(d, ServiceUser()).ok());

    auto init = RunCmd(
        AsService({bin_ + "/initdb", "-D", d + "/data", "-U", "postgres", "--auth-local=trust"}));
    ASSERT_EQ(init.exit_code, 0) << init.output;
    std::string conf = *ReadFile(d + "/data/postgresql.conf");
    conf += "port = " + std::to_string(port_) +
            "\nlisten_addresses = '127.0.0.1,127.0.0.2'\nunix_socket_directories = '" + d +
            "'\nssl = on\nssl_cert_file = '" + d + "/tls/server.crt'\nssl_key_file = '" + d +
            "/tls/server.key'\nssl_ca_file = '" + d + "/tls/ca.crt'\n";
    ASSERT_TRUE(WriteFileAtomic(d + "/data/postgresql.conf", conf).ok());
    ASSERT_TRUE(WriteFileAtomic(d + "/data/pg_hba.conf",
                                "local all all trust\n"
                                "hostssl all postgres 127.0.0.1/32 cert\n"
                                "hostssl all postgres 127.0.0.2/32 cert\n")
                    .ok());
    ASSERT_TRUE(ChownRecursive(d + "/data", ServiceUser()).ok());
    auto start = RunCmd(AsService(
        {bin_ + "/pg_ctl", "-D", d + "/data", "-l", d + "/pg.log", "-w", "-t", "60", "start"}));
    ASSERT_EQ(start.exit_code, 0) << start.output << ReadFile(d + "/pg.log").value();
    started_ = true;
  }

  void TearDown() override {
    if (started_) {
      (void)RunCmd(AsService(
          {bin_ + "/pg_ctl", "-D", dir_->path() + "/data", "-m", "immediate", "-w", "stop"}));
    }
  }

  // psql over TLS with verify-full; tls = the directory of the client pair ("" = none).
  testing::CommandResult Connect(const std::string& host, const std::string& tls) {
    const std::string d = dir_->path();
    std::string conninfo = "host=" + host + " port=" + std::to_string(port_) +
                           " user=postgres dbname=postgres connect_timeout=5"
                           " sslmode=verify-full sslrootcert=" +
                           d + "/tls/ca.crt";
    if (!tls.empty()) conninfo += " sslcert=" + tls + "/client.crt sslkey=" + tls + "/client.key";
    return RunCmd(AsService({"psql", "-X", "-At", conninfo, "-c",
                             "SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = "
                             "pg_backend_pid()"}),
                  30'000);
  }

  std::string bin_;
  int port_ = 0;
  std::unique_ptr<TempDir> dir_;
  bool started_ = false;
};

TEST_F(PkiPostgresTest, IssuedPairsPassVerifyFullAndCertAuthentication) {
  const std::string tls = dir_->path() + "/tls";
  auto by_ip = Connect("127.0.0.1", tls);
  EXPECT_EQ(by_ip.exit_code, 0) << by_ip.output;
  EXPECT_EQ(by_ip.output, "t|/CN=postgres\n");
  auto by_name = Connect("localhost", tls);
  EXPECT_EQ(by_name.exit_code, 0) << by_name.output;

  auto inspect = RunTandem({"pki", "inspect", tls + "/server.crt", "--key", tls + "/server.key",
                            "--ca", tls + "/ca.crt", "--role", "server", "--host", "127.0.0.1"});
  EXPECT_EQ(inspect.exit_code, 0) << inspect.output;
}

TEST_F(PkiPostgresTest, NoClientCertificateOrOneFromAnotherCaIsRefused) {
  auto none = Connect("127.0.0.1", "");
  EXPECT_NE(none.exit_code, 0);
  EXPECT_TRUE(Has(none.output, "connection requires a valid client certificate")) << none.output;

  const std::string other = dir_->path() + "/other-tls";
  auto stranger = Connect("127.0.0.1", other);
  EXPECT_NE(stranger.exit_code, 0) << stranger.output;
  auto inspect =
      RunTandem({"pki", "inspect", other + "/client.crt", "--ca", dir_->path() + "/tls/ca.crt"});
  EXPECT_EQ(inspect.exit_code, 1);
  EXPECT_TRUE(Has(inspect.output, "is signed by another CA")) << inspect.output;
}

// libpq and `pki inspect --host` agree on a host the certificate is not for.
TEST_F(PkiPostgresTest, AHostOutsideTheSansIsRefusedByLibpqAndByInspect) {
  const std::string tls = dir_->path() + "/tls";
  auto wrong = Connect("127.0.0.2", tls);
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_TRUE(Has(wrong.output, "does not match host name \"127.0.0.2\"")) << wrong.output;
  auto inspect = RunTandem({"pki", "inspect", tls + "/server.crt", "--host", "127.0.0.2"});
  EXPECT_EQ(inspect.exit_code, 1);
  EXPECT_TRUE(Has(inspect.output, "does not match host '127.0.0.2'")) << inspect.output;
}

}  // namespace
}  // namespace tandem
