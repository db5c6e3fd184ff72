// The declarative schema of an API request: which JSON fields a route's body
// takes (name, JSON type, required or optional, a check for strings, a range
// for integers) and which query parameters its URL takes; and the one check
// every route runs before its handler sees the request. Pure: no agent, no
// I/O, callable from any thread.
//
// The rules (issue #19: bad input never harms):
//   - the body is empty or a JSON object; an empty body is {} (so a route
//     with a required field refuses it, naming the field);
//   - an unknown field is refused, naming it and listing the accepted ones
//     (with the nearest one when it looks like a misspelling);
//   - a field given twice is refused (which one counts would be a guess);
//   - a value of the wrong JSON type is refused, never coerced:
//     "force": "true" is a string, not true;
//   - a string with a check (a node name, HOST:PORT, digits) must pass it;
//     an integer with a range must lie in it;
//   - an unknown query parameter is refused, naming it.
// Every refusal is a 400 JSON answer with "error", "fix" and "code"
// (api::JsonError). Echoed values are cut short (a 1 MB field name is not
// sent back whole) at a UTF-8 boundary.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/http_types.h"

namespace tandem::api {

enum class JsonType { kString, kBoolean, kInteger };

// What a string field must look like.
enum class StringCheck {
  kAny,             // any string, the empty one included
  kNonEmpty,        // any string but ""
  kNodeName,        // base/strings IsValidName: "node3"
  kNodeNameOrNone,  // a node name, or "" for "none named" (switchover's "to")
  kHostPort,        // "10.0.0.1:8008", "[::1]:8008", "db1.example:8008"
  kAgentAddress,    // HOST[:PORT], optionally with http:// or https:// (cluster join)
  kUrl,             // "" or http(s)://HOST:PORT (a registration's URLs)
  kDigits,          // a decimal unsigned 64-bit number as a string: "0", "1234"
};

struct FieldSpec {
  std::string name;
  JsonType type = JsonType::kString;
  bool required = false;
  StringCheck check = StringCheck::kAny;              // kString only
  int64_t min = std::numeric_limits<int64_t>::min();  // kInteger only
  int64_t max = std::numeric_limits<int64_t>::max();
  std::string meaning;  // "the node to remove": for the accepted-fields list
};

struct RequestSchema {
  std::string method;               // "POST"
  std::string path;                 // "/v1/cluster/remove"
  std::vector<FieldSpec> fields;    // empty: the route takes no body (empty or {})
  std::vector<std::string> params;  // accepted query parameters
  std::string example;              // a valid body, for the fix: {"node": "NAME"}
};

// Checks req's query parameters and body against schema. nullopt = the
// request passes and *body (when non-null) holds the parsed object ({} for an
// empty body); otherwise the 400 answer that names the first problem found.
std::optional<HttpAnswer> CheckRequest(const RequestSchema& schema, const HttpRequest& req,
                                       nlohmann::json* body);

// The parts, for tests and for routes with no body schema of their own.
std::optional<HttpAnswer> CheckQuery(const RequestSchema& schema, const HttpRequest& req);
std::optional<HttpAnswer> CheckBody(const RequestSchema& schema, const std::string& text,
                                    nlohmann::json* body);

// Whether a string passes a check (pure; exposed for tests).
bool PassesCheck(StringCheck check, const std::string& value);

// "the string \"true\"", "the number 3", "null", "an object": how a refusal
// names the value it got (cut to a few dozen characters).
std::string DescribeJsonValue(const nlohmann::json& v);

}  // namespace tandem::api
