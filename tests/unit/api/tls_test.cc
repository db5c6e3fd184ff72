// With TLS the API is HTTPS: reads need no client certificate, anything that
// changes something needs one signed by the cluster CA (401 without, 403 with
// another CA's), and the optional health port answers plain HTTP.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "agent/http_client.h"
#include "api/server.h"
#include "base/file.h"
#include "pki/ca.h"

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
    port_ = 19000 + static_cast<int>(getpid() % 90) * 2;
    const auto v = pki::ValidFor(::time(nullptr), 30);
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
            "\n  health_port: " + std::to_string(port_ + 1) + "\ntls:\n  server_key: " + n +
            "/server.key\n  server_cert: " + n + "/server.crt\n  client_key: " + n +
            "/client.key\n  client_cert: " + n + "/client.crt\n  ca_cert: " + n + "/ca.crt\n",
        "t.yaml");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message();
    cfg_ = *cfg;
    agent_ = std::make_unique<agent::Agent>(cfg_);
    server_ = std::make_unique<ApiServer>(*agent_);
    auto st = server_->Start("127.0.0.1", port_, ApiTlsFor(cfg_), cfg_.api_health_port);
    ASSERT_TRUE(st.ok()) << st.error().message();
  }
  void TearDown() override {
    agent::SetHttpClientTls({});
    server_.reset();
    agent_.reset();
    (void)RemoveAll(dir_);
  }
  // A call with the given client settings.
  Result<agent::HttpResponse> Call(const dcs::TlsClientOptions& tls, const std::string& method,
                                   const std::string& url, const std::string& body = "") {
    agent::SetHttpClientTls(tls);
    return agent::HttpCall(method, url, body, 5000);
  }
  std::string Api() const { return "https://127.0.0.1:" + std::to_string(port_); }

  std::string dir_;
  int port_ = 0;
  agent::Config cfg_;
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
  r = Call({}, "GET", "http://127.0.0.1:" + std::to_string(port_ + 1) + "/liveness");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->status, 200);
  // Only health endpoints there.
  r = Call({}, "GET", "http://127.0.0.1:" + std::to_string(port_ + 1) + "/v1/status");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  r = Call({}, "POST", "http://127.0.0.1:" + std::to_string(port_ + 1) + "/v1/cluster/pause", "{}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
}

}  // namespace
}  // namespace tandem::api
