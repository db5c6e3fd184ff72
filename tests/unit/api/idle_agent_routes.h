// The fixture the routes tests share: the real routes (AddApiRoutes,
// AddHealthRoutes) called directly, with no socket, on an idle agent that is
// not a cluster member (ManualClock; no store, no HTTP to other agents: both
// refuse), and what the agent shows and keeps, to compare before and after.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>

#include "api/routes.h"
#include "base/file.h"
#include "base/strings.h"

namespace tandem::api::routes_testing {
using nlohmann::json;

class RoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tandem-routes-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // An external store (no etcd member is ever started) that cannot be
    // reached, and no HTTP: a command that passes its schema is refused.
    auto cfg = agent::ParseConfig("node:\n  name: n1\n  address: 127.0.0.1\n  state_dir: " + dir_ +
                                      "\ndcs:\n  endpoints: [http://127.0.0.1:1]\n",
                                  "t.yaml");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message();
    agent::AgentDeps deps;
    deps.clock = &clock_;
    deps.connect_store = [](const std::vector<std::string>&) -> Result<std::shared_ptr<dcs::Dcs>> {
      return Error(ErrorCode::kUnavailable, "no store in this test");
    };
    deps.http = [](const std::string&, const std::string& url, const std::string&,
                   int64_t) -> Result<net::HttpResponse> {
      return Error(ErrorCode::kUnavailable, "no network in this test: " + url);
    };
    agent_ = std::make_unique<agent::Agent>(*cfg, std::move(deps));
    AddApiRoutes(routes_, *agent_);
    AddHealthRoutes(routes_, *agent_);
  }
  void TearDown() override {
    agent_.reset();
    (void)RemoveAll(dir_);
  }

  HttpAnswer Call(const std::string& method, const std::string& target,
                  const std::string& body = "") {
    HttpRequest req;
    req.method = method;
    const auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) {
      for (const auto& kv : Split(target.substr(q + 1), '&')) {
        const auto eq = kv.find('=');
        req.query[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
      }
    }
    req.body = body;
    req.remote_addr = "127.0.0.1";
    auto m = routes_.Find(method, req.path);
    EXPECT_NE(m.handler, nullptr) << method << " " << req.path;
    if (m.handler == nullptr) return HttpAnswer{};
    return (*m.handler)(req);
  }
  // What the agent shows and keeps: the status document and the state file.
  std::string Snapshot() {
    auto file = ReadFile(agent_->config().state_path());
    return agent_->StatusJson().dump() + "\n" + (file ? *file : std::string("(no state file)"));
  }

  std::string dir_;
  ManualClock clock_;
  std::unique_ptr<agent::Agent> agent_;
  Routes routes_;
};

// An error answer is JSON with "error", "fix" and "code".
inline void ExpectJsonError(const HttpAnswer& a, const std::string& what) {
  auto j = json::parse(a.body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << what << ": " << a.body;
  EXPECT_FALSE(j.value("error", "").empty()) << what << ": " << a.body;
  EXPECT_FALSE(j.value("fix", "").empty()) << what << ": " << a.body;
  EXPECT_FALSE(j.value("code", "").empty()) << what << ": " << a.body;
}

// The findings of issue #19 and each rule, one row each.

// Routes whose accepted request would set off real work (initialize starts
// etcd or initdb; position queries PostgreSQL): only their refusals are sent.
inline bool ActsWhenAccepted(const RequestSchema& s) {
  return s.path == "/v1/cluster/initialize" || s.path == "/v1/position";
}

}  // namespace tandem::api::routes_testing
