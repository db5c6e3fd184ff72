// The REST API refuses bad requests clearly, and health endpoints answer
// Patroni-style (200 when true, 503 otherwise). The agent behind it is not a
// cluster member and starts nothing.
#include "api/server.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>

#include "api/routes.h"
#include "base/file.h"
#include "net/http_client.h"
#include "support/ports.h"

namespace tandem::api {
namespace {
using nlohmann::json;

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tandem-api-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    port_ = test_ports::FreeLoopbackPort();
    ASSERT_GT(port_, 0);
    auto cfg = agent::ParseConfig("node:\n  name: n1\n  address: 127.0.0.1\n  state_dir: " + dir_ +
                                      "\napi:\n  port: " + std::to_string(port_) + "\n",
                                  "t.yaml");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message();
    agent::AgentDeps deps;
    deps.clock = &clock_;
    agent_ = std::make_unique<agent::Agent>(*cfg, std::move(deps));
    server_ = std::make_unique<ApiServer>(*agent_);
    ASSERT_TRUE(server_->Start("127.0.0.1", port_).ok());
  }
  void TearDown() override {
    server_.reset();
    agent_.reset();
    (void)RemoveAll(dir_);
  }
  net::HttpResponse Call(const std::string& method, const std::string& path,
                         const std::string& body = "") {
    auto r = net::HttpCall(method, "http://127.0.0.1:" + std::to_string(port_) + path, body, 5000);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
    return r.ok() ? *r : net::HttpResponse{};
  }

  std::string dir_;
  int port_ = 0;
  ManualClock clock_;
  std::unique_ptr<agent::Agent> agent_;
  std::unique_ptr<ApiServer> server_;
};

TEST_F(ApiServerTest, UnknownPathsAndMethodsAnswerJsonWithAFix) {
  auto r = Call("GET", "/v1/no-such-thing");
  ASSERT_EQ(r.status, 404);
  auto j = json::parse(r.body);
  EXPECT_NE(j.value("error", "").find("/v1/no-such-thing"), std::string::npos) << r.body;
  EXPECT_FALSE(j.value("fix", "").empty()) << r.body;
  r = Call("GET", "/v1/cluster/remove");
  ASSERT_EQ(r.status, 405);
  j = json::parse(r.body);
  EXPECT_NE(j.value("fix", "").find("POST"), std::string::npos) << r.body;
  r = Call("DELETE", "/v1/status");
  EXPECT_EQ(r.status, 405);
}

TEST_F(ApiServerTest, StatusOfANonMemberIsDisabled) {
  auto r = Call("GET", "/v1/status");
  ASSERT_EQ(r.status, 200);
  auto j = json::parse(r.body);
  EXPECT_EQ(j["status"], "Disabled");
  EXPECT_EQ(j["member"], false);
  EXPECT_TRUE(j["primary"].is_null());
  EXPECT_TRUE(j["members"].empty());
}

TEST_F(ApiServerTest, BadJsonIsRefused) {
  auto r = Call("POST", "/v1/cluster/join", "{\"address\": ");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("not a JSON object"), std::string::npos) << r.body;
  r = Call("POST", "/v1/cluster/join", "[1,2]");
  EXPECT_EQ(r.status, 400);
}

TEST_F(ApiServerTest, JoinWithoutAddressIsRefused) {
  auto r = Call("POST", "/v1/cluster/join", "{}");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("address"), std::string::npos);
  r = Call("POST", "/v1/cluster/join", R"({"address": 42})");
  EXPECT_EQ(r.status, 400);
}

TEST_F(ApiServerTest, HugeBodyIsRefused) {
  auto r = Call("POST", "/v1/cluster/join", std::string(2 << 20, 'x'));
  EXPECT_EQ(r.status, 413);
}

TEST_F(ApiServerTest, RemoveOnANonMemberIsRefused) {
  auto r = Call("POST", "/v1/cluster/remove", R"({"node": "n1"})");
  EXPECT_EQ(r.status, 409);
  EXPECT_NE(r.body.find("not a cluster member"), std::string::npos) << r.body;
}

TEST_F(ApiServerTest, JoinRequestFromAnotherNodeToANonMemberIsRefused) {
  auto r = Call("POST", "/v1/internal/join", "garbage");
  EXPECT_EQ(r.status, 400);
  r = Call("POST", "/v1/internal/join",
           R"({"name":"n2","host":"127.0.0.1","pg_port":5432,"etcd_member_id":"0"})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body.find("password"), std::string::npos) << "no secret in a refusal";
}

TEST_F(ApiServerTest, HealthEndpointsArePatroniStyle) {
  EXPECT_EQ(Call("GET", "/liveness").status, 200);
  for (const char* p :
       {"/", "/primary", "/read-write", "/leader", "/replica", "/read-only", "/health",
        "/readiness", "/sync", "/synchronous", "/async", "/asynchronous"}) {
    for (const char* method : {"GET", "HEAD", "OPTIONS"}) {
      EXPECT_EQ(Call(method, p).status, 503) << method << " " << p << ": no PostgreSQL runs here";
    }
  }
  EXPECT_EQ(Call("HEAD", "/liveness").status, 200);
  EXPECT_EQ(Call("OPTIONS", "/liveness").status, 200);
  EXPECT_EQ(Call("GET", "/replica?lag=abc").status, 503);
  EXPECT_EQ(Call("GET", "/replica?lag=16MB").status, 503);
}

TEST(HttpStatusFor, MapsEveryCode) {
  EXPECT_EQ(HttpStatusFor(ErrorCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kConflict), 409);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kFailedPrecondition), 409);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kTimeout), 504);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kInternal), 500);
}

}  // namespace
}  // namespace tandem::api
