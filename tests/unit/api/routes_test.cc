// The real routes on an idle agent (idle_agent_routes.h): every rule of every
// route's schema, derived from the table, and the findings of issue #19 as
// rows; a refused request never changes the agent's status or state file.
// The fuzz over the bodies is routes_fuzz_test.cc.
#include "api/routes.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "unit/api/idle_agent_routes.h"

namespace tandem::api {
namespace {
using nlohmann::json;
using routes_testing::ActsWhenAccepted;
using routes_testing::ExpectJsonError;
using routes_testing::RoutesTest;

TEST_F(RoutesTest, BadRequestsAreRefusedNamingTheProblem) {
  struct Row {
    std::string method, target, body;
    int status;
    std::string has;  // in the answer's body (JSON-escaped)
  };
  const std::vector<Row> rows = {
      {"POST", "/v1/cluster/remove", R"({"node": 3})", 400, R"(\"node\" must be a node name)"},
      {"POST", "/v1/cluster/remove", R"({"nodename": "node3"})", 400,
       R"(unknown field \"nodename\")"},
      {"POST", "/v1/cluster/remove", "{}", 400, R"(\"node\" is required)"},
      {"POST", "/v1/cluster/remove", "", 400, R"(\"node\" is required)"},
      {"POST", "/v1/cluster/remove", R"({"force": true})", 400, R"(\"node\" is required)"},
      {"POST", "/v1/cluster/remove", R"({"node": "n1", "force": "true"})", 400,
       R"(\"force\" must be true or false (a JSON boolean), got the string \"true\")"},
      {"POST", "/v1/cluster/remove", R"({"node": "n1", "node": "n3"})", 400, "more than once"},
      {"POST", "/v1/cluster/switchover", R"({"at": 1795000000000})", 400,
       R"(unknown field \"at\" in the body of POST /v1/cluster/switchover (did you mean \"at_ms\"?))"},
      {"POST", "/v1/cluster/switchover", R"({"at_ms": "1795000000000"})", 400,
       R"(\"at_ms\" must be a non-negative integer)"},
      {"POST", "/v1/cluster/switchover", R"({"at_ms": 1.5})", 400, "got the number 1.5"},
      {"POST", "/v1/cluster/switchover", R"({"at_ms": -1})", 400, "got the number -1"},
      {"POST", "/v1/cluster/switchover", R"({"to": "Node2"})", 400, R"(got \"Node2\")"},
      {"POST", "/v1/cluster/switchover", R"({"target": "n2"})", 400, R"(unknown field \"target\")"},
      {"POST", "/v1/cluster/failover", "{}", 400, R"(\"to\" is required)"},
      {"POST", "/v1/cluster/failover", R"({"to": ""})", 400, R"(\"to\" must be a node name)"},
      {"POST", "/v1/cluster/failover", R"({"to": "n2", "accept_data_loss": "yes"})", 400,
       R"(\"accept_data_loss\" must be true or false)"},
      {"POST", "/v1/cluster/failover", R"({"to": "n2", "force": true})", 400,
       R"(unknown field \"force\")"},
      {"POST", "/v1/cluster/join", "{}", 400, R"(\"address\" is required)"},
      {"POST", "/v1/cluster/join", R"({"address": 42})", 400, "got the number 42"},
      {"POST", "/v1/cluster/join", R"({"address": "10.0.0.1:99999"})", 400,
       R"(\"address\" must be HOST:PORT)"},
      {"POST", "/v1/cluster/join", R"({"address": "10.0.0.1:8008", "addr": "x"})", 400,
       R"(unknown field \"addr\")"},
      {"POST", "/v1/cluster/join", R"({"address": )", 400, "not a JSON object"},
      {"POST", "/v1/cluster/initialize", R"({"force": true})", 400, "takes no fields"},
      {"POST", "/v1/cluster/initialize", "[]", 400, "not a JSON object"},
      {"POST", "/v1/cluster/pause", "null", 400, "not a JSON object (got null)"},
      {"POST", "/v1/cluster/pause", R"({"reason": "x"})", 400, R"(unknown field \"reason\")"},
      {"POST", "/v1/cluster/resume", "garbage", 400, "not valid JSON"},
      {"POST", "/v1/cluster/clear-error", "", 400, R"(\"node\" is required)"},
      {"POST", "/v1/cluster/clear-error", R"({"node": "n2"})", 409, "send it to n2's own API"},
      {"POST", "/v1/cluster/clear-error", R"({"node": true})", 400, "got the boolean true"},
      {"GET", "/v1/status", "junk", 400, "not valid JSON"},
      {"GET", "/v1/status?verbose=1", "", 400, R"(unknown query parameter \"verbose\")"},
      {"GET", "/v1/cluster/history?limit=5", "", 400, R"(unknown query parameter \"limit\")"},
      {"GET", "/v1/position?x", "", 400, R"(unknown query parameter \"x\")"},
      {"GET", "/replica?lagg=1MB", "", 400, R"(did you mean \"lag\"?)"},
      {"OPTIONS", "/primary?tag_a=b", "", 400, R"(unknown query parameter \"tag_a\")"},
      {"POST", "/v1/internal/join", "garbage", 400, "not valid JSON"},
      {"POST", "/v1/internal/join", R"({"name": "n2", "host": "h", "pg_port": "5432"})", 400,
       R"(\"pg_port\" must be an integer from 0 to 65535)"},
      {"POST", "/v1/internal/join", R"({"name": "n2", "host": "h", "pg_port": 1, "role": "x"})",
       400, R"(unknown field \"role\")"},
      {"POST", "/v1/internal/join", R"({"name": "n2", "host": "h", "pg_port": 1,
        "etcd_member_id": 7})",
       400, R"(\"etcd_member_id\" must be a decimal number)"},
      {"POST", "/v1/internal/join", R"({"name": "N 2", "host": "h", "pg_port": 1})", 400,
       R"(\"name\" must be a node name)"},
      {"POST", "/v1/internal/join", R"({"host": "h", "pg_port": 1})", 400,
       R"(\"name\" is required)"},
      // Accepted by the schema: the agent's own refusal (not a member).
      {"POST", "/v1/cluster/remove", R"({"node": "n1"})", 409, "not a cluster member"},
      {"POST", "/v1/internal/join", R"({"name": "n2", "host": "h", "pg_port": 5432})", 409,
       "not a cluster member"},
      {"GET", "/replica?lag=16MB", "", 503, "no"},
  };
  for (const auto& r : rows) {
    const std::string before = Snapshot();
    auto a = Call(r.method, r.target, r.body);
    const std::string what = r.method + " " + r.target + " " + r.body;
    EXPECT_EQ(a.status, r.status) << what << "\n" << a.body;
    EXPECT_NE(a.body.find(r.has), std::string::npos)
        << what << "\n  answer: " << a.body << "\n  wanted: " << r.has;
    if (a.status == 400) {
      ExpectJsonError(a, what);
      EXPECT_EQ(Snapshot(), before) << what << ": a refused request changed the agent's state";
    }
    if (a.status == 409) ExpectJsonError(a, what);
  }
}

TEST_F(RoutesTest, ClearErrorOfThisNodeIsAccepted) {
  auto a = Call("POST", "/v1/cluster/clear-error", R"({"node": "n1"})");
  EXPECT_EQ(a.status, 200) << a.body;
}

// A JSON value of every type but `type`.
std::vector<json> WrongTypes(JsonType type) {
  std::vector<json> out = {nullptr, json::array(), json::object(), 2.5};
  if (type != JsonType::kString) out.push_back("true");
  if (type != JsonType::kBoolean) out.push_back(true);
  if (type != JsonType::kInteger) out.push_back(7);
  return out;
}

// A value of the right type that passes the field's check.
json GoodValue(const FieldSpec& f) {
  if (f.type == JsonType::kBoolean) return false;
  if (f.type == JsonType::kInteger) return f.min < 1 && f.max >= 1 ? 1 : f.min;
  switch (f.check) {
    case StringCheck::kHostPort:
    case StringCheck::kAgentAddress:
      return "127.0.0.1:1";
    case StringCheck::kUrl:
      return "http://127.0.0.1:1";
    case StringCheck::kDigits:
      return "0";
    default:
      return "n1";
  }
}

// Every schema's rules, derived from the table, against the real route.
TEST_F(RoutesTest, EveryRouteEnforcesItsSchema) {
  ASSERT_GE(ApiRequestSchemas().size(), 12u);
  for (const auto& s : ApiRequestSchemas()) {
    SCOPED_TRACE(s.method + " " + s.path);
    ASSERT_NE(routes_.Find(s.method, s.path).handler, nullptr);
    json good = json::object();
    for (const auto& f : s.fields) {
      if (f.required) good[f.name] = GoodValue(f);
    }
    const std::string before = Snapshot();
    auto expect_400 = [&](const std::string& target, const std::string& body,
                          const std::string& has) {
      auto a = Call(s.method, target, body);
      EXPECT_EQ(a.status, 400) << body << ": " << a.body;
      EXPECT_NE(a.body.find(has), std::string::npos)
          << body << ": " << a.body << "\n  wanted " << has;
      ExpectJsonError(a, body);
    };
    json unknown = good;
    unknown["zz_unknown"] = 1;
    expect_400(s.path, unknown.dump(), R"(unknown field \"zz_unknown\")");
    expect_400(s.path + "?zz_param=1", good.dump(), R"(unknown query parameter \"zz_param\")");
    expect_400(s.path, "[" + good.dump() + "]", "not a JSON object");
    for (const auto& f : s.fields) {
      for (const auto& wrong : WrongTypes(f.type)) {
        json b = good;
        b[f.name] = wrong;
        expect_400(s.path, b.dump(), "\\\"" + f.name + "\\\" must be");
      }
      if (f.required) {
        json b = good;
        b.erase(f.name);
        expect_400(s.path, b.dump(), "\\\"" + f.name + "\\\" is required");
      }
    }
    EXPECT_EQ(Snapshot(), before);
    if (!ActsWhenAccepted(s)) {
      auto a = Call(s.method, s.path, good.dump());
      EXPECT_NE(a.status, 400) << "a valid body was refused: " << good.dump() << ": " << a.body;
    }
  }
}

}  // namespace
}  // namespace tandem::api
