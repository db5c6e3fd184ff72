// GET /v1/events on an idle agent (idle_agent_routes.h): the query's refusals
// (a since or limit that is not a number in range, an unknown parameter) are
// JSON 400s naming the parameter; a well-formed query on a node in no cluster
// is a 409 that says so, not a crash or an empty log.
#include "api/events_route.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "unit/api/idle_agent_routes.h"

namespace tandem::api {
namespace {
using nlohmann::json;
using routes_testing::ExpectJsonError;
using routes_testing::RoutesTest;

TEST(EventQuery, DefaultsAndRanges) {
  std::string error;
  HttpRequest req;
  auto f = ParseEventQuery(req, &error);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->since_seq, 0);
  EXPECT_EQ(f->limit, static_cast<size_t>(core::kEventPageLimit));
  req.query = {{"since", "42"}, {"limit", "7"}};
  f = ParseEventQuery(req, &error);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->since_seq, 42);
  EXPECT_EQ(f->limit, 7u);
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"since", "-1"},
                                                        {"since", "abc"},
                                                        {"since", ""},
                                                        {"limit", "0"},
                                                        {"limit", "501"},
                                                        {"limit", "1e3"}}) {
    req.query = {{name, value}};
    error.clear();
    EXPECT_FALSE(ParseEventQuery(req, &error).has_value()) << name << "=" << value;
    EXPECT_NE(error.find(name), std::string::npos) << error;
  }
}

TEST_F(RoutesTest, EventsRefuseBadQueriesAndAnswerOutsideACluster) {
  for (const char* target : {"/v1/events?since=x", "/v1/events?limit=0", "/v1/events?from=3"}) {
    const HttpAnswer a = Call("GET", target);
    EXPECT_EQ(a.status, 400) << target << ": " << a.body;
    ExpectJsonError(a, target);
  }
  const HttpAnswer a = Call("GET", "/v1/events?since=0&limit=10");
  EXPECT_EQ(a.status, 409) << a.body;
  ExpectJsonError(a, "not a member");
  EXPECT_NE(a.body.find("not in a cluster"), std::string::npos) << a.body;
}

}  // namespace
}  // namespace tandem::api
