// The request schema check on its own (no routes, no agent): what each rule
// refuses and how the refusal names the problem and the fix.
#include "api/request_schema.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace tandem::api {
namespace {
using nlohmann::json;

const RequestSchema kRemove{"POST",
                            "/v1/x/remove",
                            {{"node", JsonType::kString, true, StringCheck::kNodeName, 0, 0, "who"},
                             {"force", JsonType::kBoolean, false, StringCheck::kAny, 0, 0, ""},
                             {"n", JsonType::kInteger, false, StringCheck::kAny, 1, 9, ""}},
                            {"lag"},
                            R"({"node": "n1"})"};
const RequestSchema kNoBody{"POST", "/v1/x/pause", {}, {}, ""};

// The refusal for body text (nullopt: accepted).
std::optional<json> Refusal(const RequestSchema& s, const std::string& text) {
  auto bad = CheckBody(s, text, nullptr);
  if (!bad) return std::nullopt;
  EXPECT_EQ(bad->status, 400);
  auto j = json::parse(bad->body);
  EXPECT_FALSE(j.value("error", "").empty()) << bad->body;
  EXPECT_FALSE(j.value("fix", "").empty()) << bad->body;
  EXPECT_EQ(j.value("code", ""), "invalid argument") << bad->body;
  return j;
}

std::string ErrorOf(const RequestSchema& s, const std::string& text) {
  auto j = Refusal(s, text);
  return j ? (*j)["error"].get<std::string>() : "(accepted)";
}

TEST(RequestSchema, AValidBodyIsParsed) {
  json body;
  EXPECT_FALSE(CheckBody(kRemove, R"({"node": "n3", "force": true, "n": 9})", &body));
  EXPECT_EQ(body["node"], "n3");
  EXPECT_EQ(body["force"], true);
  EXPECT_FALSE(CheckBody(kNoBody, "", &body));
  EXPECT_TRUE(body.is_object() && body.empty());
  EXPECT_FALSE(CheckBody(kNoBody, " {} ", &body));
}

TEST(RequestSchema, EachRuleNamesTheProblem) {
  struct Row {
    const RequestSchema* schema;
    std::string body;
    std::string error_has;
  };
  const std::vector<Row> rows = {
      {&kRemove, "", R"("node" is required in the body of POST /v1/x/remove (who))"},
      {&kRemove, "{}", R"("node" is required)"},
      {&kRemove, R"({"node": 3})", R"("node" must be a node name)"},
      {&kRemove, R"({"node": 3})", "got the number 3"},
      {&kRemove, R"({"nodename": "n3"})", R"(unknown field "nodename")"},
      {&kRemove, R"({"nodename": "n3"})", R"(did you mean "node"?)"},
      {&kRemove, R"({"Node": "n3"})", R"(did you mean "node"?)"},
      {&kRemove, R"({"node": "n1", "force": "true"})",
       R"("force" must be true or false (a JSON boolean), got the string "true")"},
      {&kRemove, R"({"node": "n1", "force": 1})", "got the number 1"},
      {&kRemove, R"({"node": "n1", "force": null})", "got null"},
      {&kRemove, R"({"node": "Node 1"})", R"(got "Node 1")"},
      {&kRemove, R"({"node": ""})", R"(got "")"},
      {&kRemove, R"({"node": ["n1"]})", "got an array"},
      {&kRemove, R"({"node": {"name": "n1"}})", "got an object"},
      {&kRemove, R"({"node": "n1", "n": 10})", R"("n" must be an integer from 1 to 9)"},
      {&kRemove, R"({"node": "n1", "n": 0})", "got the number 0"},
      {&kRemove, R"({"node": "n1", "n": 2.5})", "got the number 2.5"},
      {&kRemove, R"({"node": "n1", "n": "5"})", R"(got the string "5")"},
      {&kRemove, R"({"node": "n1", "n": 18446744073709551615})", "18446744073709551615"},
      {&kRemove, R"({"node": "n1", "node": "n3"})", R"(the field "node" appears more than once)"},
      {&kRemove, "[]", "is not a JSON object (got an array)"},
      {&kRemove, "null", "is not a JSON object (got null)"},
      {&kRemove, R"("n1")", R"(got the string "n1")"},
      {&kRemove, R"({"node": )", "is not valid JSON"},
      {&kRemove, R"({"node": "n1"} x)", "is not valid JSON"},
      {&kRemove, std::string(100, '[') + std::string(100, ']'), "nests more than"},
      {&kNoBody, R"({"x": 1})", R"(unknown field "x" in the body of POST /v1/x/pause)"},
      {&kNoBody, "[]", "is not a JSON object"},
  };
  for (const auto& r : rows) {
    EXPECT_NE(ErrorOf(*r.schema, r.body).find(r.error_has), std::string::npos)
        << "body " << r.body << "\n  error: " << ErrorOf(*r.schema, r.body)
        << "\n  wanted: " << r.error_has;
  }
}

TEST(RequestSchema, TheFixListsTheAcceptedFields) {
  auto j = Refusal(kRemove, R"({"nodename": "n3"})");
  ASSERT_TRUE(j);
  const std::string fix = (*j)["fix"];
  EXPECT_NE(fix.find(R"("node" (a node name, required: who))"), std::string::npos) << fix;
  EXPECT_NE(fix.find(R"("force" (true or false, optional))"), std::string::npos) << fix;
  EXPECT_NE(fix.find(R"(for example {"node": "n1"})"), std::string::npos) << fix;
  auto none = Refusal(kNoBody, R"({"x": 1})");
  ASSERT_TRUE(none);
  EXPECT_NE((*none)["fix"].get<std::string>().find("send an empty body or {}"), std::string::npos);
}

TEST(RequestSchema, EchoedValuesAreCutShortAndStayUtf8) {
  const std::string long_name(100'000, 'k');
  auto j = Refusal(kRemove, "{\"" + long_name + "\": 1}");
  ASSERT_TRUE(j);
  EXPECT_LT((*j)["error"].get<std::string>().size(), 300u);
  // A cut inside a multi-byte character would make the answer invalid JSON.
  std::string wide;
  for (int i = 0; i < 40; ++i) wide += "\xc3\xa9";  // é
  auto w = CheckBody(kRemove, json{{"node", wide}}.dump(), nullptr);
  ASSERT_TRUE(w);
  EXPECT_FALSE(json::parse(w->body, nullptr, false).is_discarded()) << w->body;
}

TEST(RequestSchema, UnknownQueryParametersAreRefused) {
  HttpRequest req;
  req.query["lag"] = "1MB";
  EXPECT_FALSE(CheckQuery(kRemove, req));
  req.query["lagg"] = "1";
  auto bad = CheckQuery(kRemove, req);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find(R"(unknown query parameter \"lagg\")"), std::string::npos) << bad->body;
  EXPECT_NE(bad->body.find(R"(did you mean \"lag\"?)"), std::string::npos) << bad->body;
  HttpRequest none;
  none.query["verbose"] = "";
  auto b2 = CheckQuery(kNoBody, none);
  ASSERT_TRUE(b2);
  EXPECT_NE(b2->body.find("takes no query parameters"), std::string::npos) << b2->body;
}

TEST(RequestSchema, StringChecks) {
  struct Row {
    StringCheck check;
    std::string value;
    bool ok;
  };
  const std::vector<Row> rows = {
      {StringCheck::kNodeName, "node3", true},
      {StringCheck::kNodeName, "", false},
      {StringCheck::kNodeName, "Node3", false},
      {StringCheck::kNodeName, "n/1", false},
      {StringCheck::kNodeNameOrNone, "", true},
      {StringCheck::kNodeNameOrNone, "n 1", false},
      {StringCheck::kHostPort, "10.0.0.1:8008", true},
      {StringCheck::kHostPort, "[::1]:8008", true},
      {StringCheck::kHostPort, "db1.example:1", true},
      {StringCheck::kHostPort, "10.0.0.1", false},
      {StringCheck::kHostPort, "10.0.0.1:0", false},
      {StringCheck::kHostPort, "10.0.0.1:65536", false},
      {StringCheck::kHostPort, "::1:8008", false},
      {StringCheck::kHostPort, "a b:1", false},
      {StringCheck::kAgentAddress, "10.0.0.1", true},
      {StringCheck::kAgentAddress, "https://10.0.0.1:8008/", true},
      {StringCheck::kAgentAddress, "http://", false},
      {StringCheck::kAgentAddress, "10.0.0.1:8008/v1", false},
      {StringCheck::kAgentAddress, "10.0.0.1:x", false},
      {StringCheck::kUrl, "", true},
      {StringCheck::kUrl, "https://10.0.0.1:2380", true},
      {StringCheck::kUrl, "http://fd00::1:2380", true},  // Config::api_url of an IPv6 node
      {StringCheck::kUrl, "10.0.0.1:2380", false},
      {StringCheck::kUrl, "http://a b:1", false},
      {StringCheck::kUrl, "http://10.0.0.1", false},
      {StringCheck::kDigits, "0", true},
      {StringCheck::kDigits, "18446744073709551615", true},
      {StringCheck::kDigits, "18446744073709551616", false},
      {StringCheck::kDigits, "-1", false},
      {StringCheck::kDigits, "", false},
      {StringCheck::kNonEmpty, "", false},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(PassesCheck(r.check, r.value), r.ok) << "'" << r.value << "'";
  }
}

}  // namespace
}  // namespace tandem::api
