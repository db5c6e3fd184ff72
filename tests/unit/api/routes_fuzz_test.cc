// A seeded random fuzz over the routes' JSON bodies (issue #19, item 6): random
// JSON values, random field names with near misses of the real ones, bodies
// cut short or trailed by junk, fields given twice. An oracle built with each
// body knows whether the schema must accept it. Asserted: never a crash, never
// a 200 for a body the schema refuses (always a 400 JSON error), no change to
// the idle agent's status or state file. TANDEM_FUZZ_SEED=N repeats a run.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "api/routes.h"
#include "unit/api/idle_agent_routes.h"

namespace tandem::api {
namespace {
using nlohmann::json;
using routes_testing::ActsWhenAccepted;
using routes_testing::ExpectJsonError;
using routes_testing::RoutesTest;

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
  int refused = 0, accepted = 0, recorded = 0;
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
      // Every 8th goes on to the agent; of those that record a command (and
      // write the state file, with an fsync), the first few.
      const bool records = s.path == "/v1/cluster/remove" || s.path == "/v1/cluster/join" ||
                           s.path == "/v1/cluster/clear-error";
      if (ActsWhenAccepted(s) || accepted % 8 != 0 || (records && ++recorded > 8)) continue;
      auto a = Call(s.method, s.path, body);
      // The one 400 a well-formed body may still earn is the agent's own
      // judgement of a value against the clock: a switchover time beyond the
      // scheduling horizon (the schema cannot know "now").
      const bool beyond_horizon = s.path == "/v1/cluster/switchover" &&
                                  a.body.find("can be scheduled at most") != std::string::npos;
      if (!beyond_horizon) EXPECT_NE(a.status, 400) << what << ": " << a.body;
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
