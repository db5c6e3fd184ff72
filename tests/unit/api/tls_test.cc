// With TLS the API is HTTPS: reads need no client certificate, anything that
// changes something needs one signed by the cluster CA (401 without, 403 with
// another CA's), and the optional health port answers plain HTTP.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "agent/tls_files.h"
#include "api/server.h"
#include "base/clock.h"
#include "base/file.h"
#include "net/http_client.h"
#include "net/peer_certs.h"
#include "pki/ca.h"
#include "pki/inspect.h"
#include "support/ports.h"

namespace tandem::api {
namespace {
using nlohmann::json;

TEST(ClientCertificateRule, ReadsNeedNoCertificate) {
  for (const char* m : {"GET", "HEAD", "OPTIONS"}) {
    EXPECT_FALSE(ChangesSomething(m)) << m;
    EXPECT_FALSE(CheckClientCertificate(m, "/v1/status", {}).has_value()) << m;
  }
}

TEST(ClientCertificateRule, EveryOtherMethodNeedsAVerifiedCertificate) {
  for (const char* m : {"POST", "PUT", "DELETE", "PATCH"}) {
    EXPECT_TRUE(ChangesSomething(m)) << m;
    auto none = CheckClientCertificate(m, "/v1/cluster/switchover", {});
    ASSERT_TRUE(none.has_value()) << m;
    EXPECT_EQ(none->http_status, 401);
    EXPECT_NE(none->error.find("needs a client certificate signed by the cluster CA"),
              std::string::npos)
        << none->error;
    ClientCertificate foreign{true, false, "CN=postgres", "unable to get local issuer certificate"};
    auto bad = CheckClientCertificate(m, "/v1/cluster/switchover", foreign);
    ASSERT_TRUE(bad.has_value());
    EXPECT_EQ(bad->http_status, 403);
    EXPECT_NE(bad->error.find("'CN=postgres' was not accepted (unable to get local issuer"),
              std::string::npos)
        << bad->error;
    ClientCertificate good{true, true, "CN=postgres", ""};
    EXPECT_FALSE(CheckClientCertificate(m, "/v1/cluster/switchover", good).has_value());
  }
}

class ApiTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tandem-apitls-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    port_ = test_ports::FreeLoopbackPort();
    health_port_ = test_ports::FreeLoopbackPort();
    ASSERT_GT(port_, 0);
    ASSERT_GT(health_port_, 0);
    // One "now" for the whole test: the certificates are issued from it and
    // judged at it, so a second passing in between cannot change a verdict
    // (a 30-day certificate judged a second later is "Expiring in 29 days").
    // It is the real time because the TLS handshakes check validity too.
    now_ = SystemClock::Get().WallSeconds();
    const auto v = pki::ValidFor(now_, 30);
    for (const char* ca : {"ca", "other"}) {
      ASSERT_TRUE(pki::InitCa(dir_ + "/" + ca, std::string("CA ") + ca, v).ok());
      pki::NodeRequest r;
      r.node = "n1";
      r.address = "127.0.0.1";
      r.out_dir = dir_ + "/" + ca + "-node";
      ASSERT_TRUE(pki::IssueNode(dir_ + "/" + ca, r, v).ok());
    }
    const std::string n = dir_ + "/ca-node";
    auto cfg = agent::ParseConfig(
        "node:\n  name: n1\n  address: 127.0.0.1\n  state_dir: " + dir_ +
            "\napi:\n  port: " + std::to_string(port_) +
            "\n  health_port: " + std::to_string(health_port_) + "\ntls:\n  server_key: " + n +
            "/server.key\n  server_cert: " + n + "/server.crt\n  client_key: " + n +
            "/client.key\n  client_cert: " + n + "/client.crt\n  ca_cert: " + n + "/ca.crt\n",
        "t.yaml");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message();
    cfg_ = *cfg;
    // The API serves the agent's private copies (Agent::Start makes them).
    auto copied = agent::InstallTlsCopies(cfg_, "");
    ASSERT_TRUE(copied.ok()) << copied.error().message();
    // The agent judges certificates at the very instant they were issued
    // (a second read of the real clock could fall in the next second).
    clock_.SetWall(now_ * 1000);
    agent::AgentDeps deps;
    deps.clock = &clock_;
    agent_ = std::make_unique<agent::Agent>(cfg_, std::move(deps));
    server_ = std::make_unique<ApiServer>(*agent_);
    auto st = server_->Start("127.0.0.1", port_, ApiTlsFor(cfg_), cfg_.api_health_port);
    ASSERT_TRUE(st.ok()) << st.error().message();
  }
  void TearDown() override {
    net::SetHttpClientTls({});
    server_.reset();
    agent_.reset();
    (void)RemoveAll(dir_);
  }
  // A call with the given client settings.
  Result<net::HttpResponse> Call(const dcs::TlsClientOptions& tls, const std::string& method,
                                 const std::string& url, const std::string& body = "") {
    net::SetHttpClientTls(tls);
    return net::HttpCall(method, url, body, 5000);
  }
  std::string Api() const { return "https://127.0.0.1:" + std::to_string(port_); }

  std::string dir_;
  int port_ = 0;
  int health_port_ = 0;
  int64_t now_ = 0;  // Unix seconds, fixed in SetUp
  agent::Config cfg_;
  ManualClock clock_;
  std::unique_ptr<agent::Agent> agent_;
  std::unique_ptr<ApiServer> server_;
};

TEST_F(ApiTlsTest, ReadsWorkWithoutAClientCertificate) {
  dcs::TlsClientOptions anon;
  anon.ca_file = cfg_.tls_ca_cert;  // verifies the server, presents nothing
  auto r = Call(anon, "GET", Api() + "/v1/status");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->status, 200);
  r = Call(anon, "GET", Api() + "/liveness");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST_F(ApiTlsTest, AChangeWithoutACertificateIsRefusedWith401) {
  dcs::TlsClientOptions anon;
  anon.ca_file = cfg_.tls_ca_cert;
  auto r = Call(anon, "POST", Api() + "/v1/cluster/switchover", "{}");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->status, 401);
  EXPECT_NE(json::parse(r->body)["error"].get<std::string>().find("none was presented"),
            std::string::npos)
      << r->body;
}

TEST_F(ApiTlsTest, AChangeWithAnotherCasCertificateIsRefusedWith403) {
  dcs::TlsClientOptions foreign;
  foreign.ca_file = cfg_.tls_ca_cert;
  foreign.cert_file = dir_ + "/other-node/client.crt";
  foreign.key_file = dir_ + "/other-node/client.key";
  auto r = Call(foreign, "POST", Api() + "/v1/cluster/pause", "{}");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->status, 403);
  EXPECT_NE(r->body.find("was not accepted"), std::string::npos) << r->body;
}

TEST_F(ApiTlsTest, AChangeWithTheNodesCertificateReachesTheHandler) {
  auto r = Call(agent::ClientTlsFor(cfg_), "POST", Api() + "/v1/cluster/join", "{}");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->status, 400);  // the handler's own answer: no address given
  EXPECT_NE(r->body.find("address"), std::string::npos) << r->body;
}

TEST_F(ApiTlsTest, TheClientRefusesAServerFromAnotherCa) {
  dcs::TlsClientOptions other;
  other.ca_file = dir_ + "/other/ca.crt";
  auto r = Call(other, "GET", Api() + "/v1/status");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("TLS with"), std::string::npos) << r.error().message();
  other.verify_peer = false;  // permissive: encrypted, not verified
  r = Call(other, "GET", Api() + "/v1/status");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->status, 200);
}

TEST_F(ApiTlsTest, TheClientChecksTheHostName) {
  dcs::TlsClientOptions t = agent::ClientTlsFor(cfg_);
  // 127.0.0.2 reaches the same listener only if it is bound there; use
  // localhost instead, which the certificate (IP:127.0.0.1 only) does not name.
  auto r = Call(t, "GET", "https://localhost:" + std::to_string(port_) + "/v1/status");
  ASSERT_FALSE(r.ok());
  t.verify_hostname = false;
  r = Call(t, "GET", "https://localhost:" + std::to_string(port_) + "/v1/status");
  ASSERT_TRUE(r.ok()) << r.error().message();
}

TEST_F(ApiTlsTest, PlainHttpToTheApiPortFailsAndTheHealthPortIsPlain) {
  auto r = Call({}, "GET", "http://127.0.0.1:" + std::to_string(port_) + "/health");
  EXPECT_TRUE(!r.ok() || r->status != 200);
  r = Call({}, "GET", "http://127.0.0.1:" + std::to_string(health_port_) + "/liveness");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->status, 200);
  // Only health endpoints there.
  r = Call({}, "GET", "http://127.0.0.1:" + std::to_string(health_port_) + "/v1/status");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  r = Call({}, "POST", "http://127.0.0.1:" + std::to_string(health_port_) + "/v1/cluster/pause",
           "{}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
}

// A connection that never starts its TLS handshake holds nothing: it is
// closed once the head deadline (handshake included) passes on the clock.
TEST_F(ApiTlsTest, AHandshakeThatNeverStartsIsClosedOnceTheHeadDeadlinePasses) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port_));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  dcs::TlsClientOptions anon;
  anon.ca_file = cfg_.tls_ca_cert;
  auto r = Call(anon, "GET", Api() + "/liveness");  // accepted after `fd`: fd is in
  ASSERT_TRUE(r.ok()) << r.error().message();
  pollfd p{fd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "closed before its deadline";
  clock_.Advance(kHeadDeadlineMs);
  ASSERT_EQ(::poll(&p, 1, 10'000), 1) << "still open after the deadline";
  char byte;
  EXPECT_LE(::recv(fd, &byte, 1, 0), 0) << "closed without an answer";
  ::close(fd);
}

}  // namespace
}  // namespace tandem::api

namespace tandem::api {
namespace {

std::string SerialOf(const std::string& pem) {
  auto in = pki::InspectPem("served", pem, {});
  return in.cert ? in.cert->serial : "";
}

// Rotation: ReloadTls makes new handshakes present the new pair; a pair that
// does not load is refused and the current one stays in use.
TEST_F(ApiTlsTest, ReloadServesTheNewPairAndABadOneKeepsTheOld) {
  auto before =
      net::FetchServerCertificate("127.0.0.1", port_, net::TlsService::kHttps, "", "", 3000);
  ASSERT_TRUE(before.ok()) << before.error().message();
  const std::string old_serial = SerialOf(*before);
  ASSERT_FALSE(old_serial.empty());

  pki::NodeRequest r;
  r.node = "n1";
  r.address = "127.0.0.1";
  r.out_dir = dir_ + "/ca-node-renewed";
  ASSERT_TRUE(pki::IssueNode(dir_ + "/ca", r, pki::ValidFor(now_, 30)).ok());
  agent::Config renewed = cfg_;
  renewed.tls_server_key = r.out_dir + "/server.key";
  renewed.tls_server_cert = r.out_dir + "/server.crt";
  renewed.tls_client_key = r.out_dir + "/client.key";
  renewed.tls_client_cert = r.out_dir + "/client.crt";
  auto copied = agent::InstallTlsCopies(renewed, "");
  ASSERT_TRUE(copied.ok() && *copied);
  ASSERT_TRUE(server_->ReloadTls(ApiTlsFor(cfg_)).ok());
  auto after =
      net::FetchServerCertificate("127.0.0.1", port_, net::TlsService::kHttps, "", "", 3000);
  ASSERT_TRUE(after.ok()) << after.error().message();
  const std::string new_serial = SerialOf(*after);
  EXPECT_NE(new_serial, old_serial);
  EXPECT_EQ(new_serial, SerialOf(*ReadFile(renewed.tls_server_cert)));
  // A change with the new pair still passes the client-certificate rule.
  auto ok = Call(agent::ClientTlsFor(renewed), "POST", Api() + "/v1/cluster/join", "{}");
  ASSERT_TRUE(ok.ok()) << ok.error().message();
  EXPECT_EQ(ok->status, 400);

  // A key that does not match: refused, the renewed pair stays.
  ApiTls bad = ApiTlsFor(cfg_);
  bad.key_file = dir_ + "/other-node/server.key";
  auto st = server_->ReloadTls(bad);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("keeps its current certificates"), std::string::npos)
      << st.error().message();
  auto still =
      net::FetchServerCertificate("127.0.0.1", port_, net::TlsService::kHttps, "", "", 3000);
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(SerialOf(*still), new_serial);
}

// This node's check of a peer's server certificate, as enforce judges it.
TEST_F(ApiTlsTest, APeersCertificateIsJudgedAsEnforceWould) {
  const auto copies = agent::TlsCopies(cfg_);
  auto good = net::CheckPeerCertificate("n1's API certificate", "127.0.0.1", port_,
                                        net::TlsService::kHttps, copies.ca_cert, copies.client_cert,
                                        copies.client_key, true, now_, 3000);
  EXPECT_TRUE(good.reached);
  EXPECT_EQ(good.summary.text, "Valid") << good.detail;
  // The same server reached under a name its certificate does not carry.
  auto pem = net::FetchServerCertificate("127.0.0.1", port_, net::TlsService::kHttps, "", "", 3000);
  ASSERT_TRUE(pem.ok());
  auto wrong_host = net::JudgePeerCertificate("n2's API certificate", *pem, copies.ca_cert,
                                              "127.0.0.9", true, now_);
  EXPECT_EQ(wrong_host.summary.state, pki::CertState::kInvalid);
  EXPECT_NE(wrong_host.summary.text.find("does not match host 127.0.0.9"), std::string::npos)
      << wrong_host.summary.text;
  EXPECT_NE(wrong_host.detail.find("n2's API certificate"), std::string::npos) << wrong_host.detail;
  // verify_hostname false (seed 1's verify-ca): the name is not checked.
  EXPECT_EQ(
      net::JudgePeerCertificate("n2", *pem, copies.ca_cert, "127.0.0.9", false, now_).summary.text,
      "Valid");
  // Another CA's trust anchor.
  auto foreign =
      net::JudgePeerCertificate("n2", *pem, dir_ + "/other/ca.crt", "127.0.0.1", true, now_);
  EXPECT_EQ(foreign.summary.text, "Invalid (signed by another CA)");
  // Nothing listening (a port held bound, so no parallel test can take it).
  test_ports::RefusingPort closed;
  auto down = net::CheckPeerCertificate("n3", "127.0.0.1", closed.port(), net::TlsService::kHttps,
                                        copies.ca_cert, "", "", true, now_, 1000);
  EXPECT_FALSE(down.reached);
  EXPECT_EQ(down.summary.text, "Unknown (cannot connect)");
}

TEST(HostPortOfUrl, SplitsHostAndPort) {
  EXPECT_EQ(net::HostPortOfUrl("https://127.0.0.2:8008"),
            std::make_pair(std::string("127.0.0.2"), 8008));
  EXPECT_EQ(net::HostPortOfUrl("http://node1.example:80/v1/status"),
            std::make_pair(std::string("node1.example"), 80));
  EXPECT_EQ(net::HostPortOfUrl("https://[::1]:8443"), std::make_pair(std::string("::1"), 8443));
  EXPECT_EQ(net::HostPortOfUrl("https://host").second, 0);
  EXPECT_EQ(net::HostPortOfUrl("https://host:99999").second, 0);
}

}  // namespace
}  // namespace tandem::api
