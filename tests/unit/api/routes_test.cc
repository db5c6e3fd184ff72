// The real routes (AddApiRoutes, AddHealthRoutes) called directly, with no
// socket, on an idle agent that is not a cluster member (ManualClock; no
// store, no HTTP to other agents: both refuse). Every rule of every route's
// schema, the findings of issue #19 as rows, and a seeded random fuzz over the
// bodies: never a crash, never a 200 for a body the schema refuses, and no
// change to the agent's status or state file.
#include "api/routes.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "base/file.h"
#include "base/strings.h"

namespace tandem::api {
namespace {
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
void ExpectJsonError(const HttpAnswer& a, const std::string& what) {
  auto j = json::parse(a.body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << what << ": " << a.body;
  EXPECT_FALSE(j.value("error", "").empty()) << what << ": " << a.body;
  EXPECT_FALSE(j.value("fix", "").empty()) << what << ": " << a.body;
  EXPECT_FALSE(j.value("code", "").empty()) << what << ": " << a.body;
}

// The findings of issue #19 and each rule, one row each.
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

// Routes whose accepted request would set off real work (initialize starts
// etcd or initdb; position queries PostgreSQL): only their refusals are sent.
bool ActsWhenAccepted(const RequestSchema& s) {
  return s.path == "/v1/cluster/initialize" || s.path == "/v1/position";
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

// ---- the fuzz: random bodies, with an oracle that knows, case by case,
// whether the body it built is one the schema must accept.

struct Labelled {
  json value;
  bool valid;
};

class BodyFuzzer {
 public:
  explicit BodyFuzzer(uint64_t seed) : rng_(seed) {}

  // A body for s and whether the schema must accept it.
  std::pair<std::string, bool> Make(const RequestSchema& s) {
    switch (Pick(12)) {
      case 0:
        return {Garbage(), false};
      case 1: {  // any JSON value but an object
        json v = RandomValue(2);
        return {(v.is_object() ? json::array({v}) : v).dump(), false};
      }
      case 2:
        return {"", Required(s) == 0};
      default:
        break;
    }
    std::vector<std::pair<std::string, Labelled>> fields;
    bool valid = true;
    std::set<std::string> keys;
    for (const auto& f : s.fields) {
      if (!f.required && Pick(2) == 0) continue;
      if (f.required && Pick(12) == 0) continue;  // a required field left out
      Labelled v = Value(f);
      valid = valid && v.valid;
      fields.push_back({f.name, v});
      keys.insert(f.name);
    }
    const int extra = Pick(4) == 0 ? 1 + Pick(3) : 0;
    for (int i = 0; i < extra; ++i) {
      std::string name = Name(s);
      const bool known = std::any_of(s.fields.begin(), s.fields.end(),
                                     [&](const FieldSpec& f) { return f.name == name; });
      Labelled v = known ? Value(Spec(s, name)) : Labelled{RandomValue(2), false};
      // A known name again is a duplicate; an unknown one is refused.
      valid = valid && known && keys.count(name) == 0 && v.valid;
      fields.push_back({name, v});
      keys.insert(name);
    }
    for (const auto& f : s.fields) valid = valid && (!f.required || keys.count(f.name) != 0);
    std::shuffle(fields.begin(), fields.end(), rng_);
    std::string text = "{";
    for (size_t i = 0; i < fields.size(); ++i) {
      if (i > 0) text += Pick(2) ? "," : " , ";
      text += json(fields[i].first).dump() + ":" + fields[i].second.value.dump();
    }
    text += "}";
    if (Pick(20) == 0 && text.size() > 1) {  // truncated: never a JSON object
      return {text.substr(0, 1 + Pick(static_cast<int>(text.size()) - 1)), false};
    }
    if (Pick(30) == 0) return {text + "x", false};  // trailing junk
    return {text, valid};
  }

 private:
  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

  static int Required(const RequestSchema& s) {
    return static_cast<int>(std::count_if(s.fields.begin(), s.fields.end(),
                                          [](const FieldSpec& f) { return f.required; }));
  }
  static const FieldSpec& Spec(const RequestSchema& s, const std::string& name) {
    for (const auto& f : s.fields) {
      if (f.name == name) return f;
    }
    return s.fields.front();
  }

  // Starts with a byte that no JSON object can start with.
  std::string Garbage() {
    std::string out(1, "x]}\"1-nt\x01\xff"[Pick(10)]);
    const int n = Pick(40);
    for (int i = 0; i < n; ++i) out += static_cast<char>(Pick(256));
    return out;
  }

  std::string RandomString() {
    static const std::vector<std::string> pieces = {
        "a",    "Z",    "0",  "-",    "_",  ".",        " ",
        "/",    ":",    "\"", "\\",   "\n", "\xc3\xa9", "\xe2\x82\xac",
        "true", "null", "n1", "node", "[",  "{"};
    std::string out;
    const int n = Pick(8);
    for (int i = 0; i < n; ++i) out += pieces[Pick(static_cast<int>(pieces.size()))];
    if (Pick(50) == 0) out += std::string(2000, 'y');
    return out;
  }

  json RandomValue(int depth) {
    switch (Pick(depth > 0 ? 9 : 7)) {
      case 0:
        return nullptr;
      case 1:
        return Pick(2) == 0;
      case 2:
        return std::uniform_int_distribution<int64_t>(-1'000'000, 1'000'000)(rng_);
      case 3:
        return json(std::numeric_limits<uint64_t>::max() - Pick(3));
      case 4:
        return std::uniform_real_distribution<double>(-1e6, 1e6)(rng_);
      case 5:
      case 6:
        return RandomString();
      case 7: {
        json a = json::array();
        for (int i = Pick(3); i > 0; --i) a.push_back(RandomValue(depth - 1));
        return a;
      }
      default: {
        json o = json::object();
        for (int i = Pick(3); i > 0; --i) o[RandomString()] = RandomValue(depth - 1);
        return o;
      }
    }
  }

  // A field name: a known one, a near miss of one, or anything.
  std::string Name(const RequestSchema& s) {
    const int k = Pick(4);
    if (s.fields.empty() || k == 3) return RandomString();
    std::string n = s.fields[Pick(static_cast<int>(s.fields.size()))].name;
    if (k == 0) return n;
    switch (Pick(6)) {
      case 0:
        return n.substr(0, n.size() - 1);
      case 1:
        return n + "s";
      case 2:
        for (auto& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        return n;
      case 3:
        return " " + n;
      case 4:
        return n.size() > 1 ? std::string(1, n[1]) + n[0] + n.substr(2) : n + n;
      default:
        return n.substr(0, n.find('_'));
    }
  }

  // Values with a known verdict: from lists of good and bad ones per check.
  Labelled Value(const FieldSpec& f) {
    if (Pick(4) == 0) {  // of another JSON type
      json v = RandomValue(1);
      const bool right_type = (f.type == JsonType::kString && v.is_string()) ||
                              (f.type == JsonType::kBoolean && v.is_boolean()) ||
                              (f.type == JsonType::kInteger && v.is_number_integer());
      if (!right_type) return {v, false};
    }
    if (f.type == JsonType::kBoolean) return {Pick(2) == 0, true};
    if (f.type == JsonType::kInteger) {
      switch (Pick(5)) {
        case 0:
          return {f.min, true};
        case 1:
          return {f.max, true};
        case 2:
          return {f.min == std::numeric_limits<int64_t>::min() ? json(0.5) : json(f.min - 1),
                  false};
        case 3:
          return {f.max == std::numeric_limits<int64_t>::max()
                      ? json(static_cast<uint64_t>(f.max) + 1)
                      : json(f.max + 1),
                  false};
        default:
          return {json(std::to_string(f.min)), false};
      }
    }
    static const std::map<StringCheck,
                          std::pair<std::vector<std::string>, std::vector<std::string>>>
        pools = {
            {StringCheck::kNodeName,
             {{"n1", "n2", "node3", "a", "db-1.x_y"},
              {"", "Node3", "-n", "a b", "n/1", std::string(64, 'a'), "\xc3\xa9", "n1 "}}},
            {StringCheck::kNodeNameOrNone,
             {{"", "n2", "node3"}, {"N", "a b", "n\\1", std::string(64, 'b')}}},
            {StringCheck::kAgentAddress,
             {{"127.0.0.1:1", "https://10.0.0.1:8008", "db1", "[::1]:8008"},
              {"", "a b:1", "h:0", "h:99999", "h:x", "/path", "http://", "h:1/x"}}},
            {StringCheck::kUrl,
             {{"", "http://127.0.0.1:2380", "https://[::1]:1"},
              {"127.0.0.1:2380", "ftp://x:1", "http://x", "http://x:1/a b"}}},
            {StringCheck::kDigits,
             {{"0", "42", "18446744073709551615"},
              {"", "-1", "1e3", "18446744073709551616", " 1"}}},
            {StringCheck::kNonEmpty, {{"127.0.0.1", "x"}, {""}}},
            {StringCheck::kHostPort, {{"127.0.0.1:1", "[::1]:2"}, {"127.0.0.1", "x:0", ":1"}}},
        };
    auto it = pools.find(f.check);
    if (it == pools.end()) return {RandomString(), true};
    const auto& [good, bad] = it->second;
    if (Pick(2) == 0) return {good[Pick(static_cast<int>(good.size()))], true};
    return {bad[Pick(static_cast<int>(bad.size()))], false};
  }

  std::mt19937_64 rng_;
};

TEST_F(RoutesTest, FuzzedBodiesNeverPassTheSchemaWrongly) {
  const char* env = std::getenv("TANDEM_FUZZ_SEED");
  const uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 10) : 19'2026;
  const int cases = 20'000;
  std::printf("fuzz seed %llu (TANDEM_FUZZ_SEED=%llu repeats it), %d cases\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed), cases);
  BodyFuzzer fuzz(seed);
  const auto& schemas = ApiRequestSchemas();
  std::mt19937_64 pick(seed + 1);
  int refused = 0, accepted = 0;
  std::string before = Snapshot();
  for (int i = 0; i < cases; ++i) {
    const auto& s = schemas[pick() % schemas.size()];
    auto [body, valid] = fuzz.Make(s);
    const std::string what = "case " + std::to_string(i) + ": " + s.method + " " + s.path +
                             " body " +
                             json(body).dump(-1, ' ', false, json::error_handler_t::replace);
    if (valid) {
      ++accepted;
      EXPECT_FALSE(CheckBody(s, body, nullptr)) << "a valid body was refused, " << what;
      // Every 8th goes on to the agent (whose refusals write its state file).
      if (ActsWhenAccepted(s) || accepted % 8 != 0) continue;
      auto a = Call(s.method, s.path, body);
      EXPECT_NE(a.status, 400) << what << ": " << a.body;
      before = Snapshot();  // an accepted command may record itself
      continue;
    }
    ++refused;
    auto a = Call(s.method, s.path, body);
    ASSERT_EQ(a.status, 400) << what << ": " << a.body;
    ExpectJsonError(a, what);
    ASSERT_EQ(Snapshot(), before) << what << ": a refused request changed the agent's state";
  }
  EXPECT_EQ(Snapshot(), before);
  std::printf("%d refused, %d valid\n", refused, accepted);
  EXPECT_GT(refused, cases / 2);
  EXPECT_GT(accepted, cases / 20);
}

}  // namespace
}  // namespace tandem::api
