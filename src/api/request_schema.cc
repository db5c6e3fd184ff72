// The request schema check (request_schema.h): parse once, then walk the
// schema's rules in a fixed order so the first problem named is always the
// same for the same request.
#include "api/request_schema.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "base/result.h"
#include "base/strings.h"

namespace tandem::api {
using nlohmann::json;

namespace {

constexpr size_t kEchoMax = 48;  // characters of a value echoed in a refusal
constexpr int kMaxDepth = 8;     // no route takes a nested value at all

// s cut to at most n bytes at a UTF-8 character boundary, "..." marking a cut.
std::string Cut(const std::string& s, size_t n = kEchoMax) {
  if (s.size() <= n) return s;
  size_t end = n;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end) + "...";
}

std::string Dump(const json& v) {
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string Quote(const std::string& s) {
  return Dump(json(Cut(s)));
}

HttpAnswer Refuse(const std::string& what, const std::string& fix) {
  return JsonError(400, what, fix, ErrorCodeName(ErrorCode::kInvalidArgument));
}

std::string Route(const RequestSchema& s) {
  return s.method + " " + s.path;
}

bool ParsePort(const std::string& s, bool allow_empty) {
  if (s.empty()) return allow_empty;
  if (s.size() > 5 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  const int p = std::stoi(s);
  return p >= 1 && p <= 65535;
}

bool HostChars(const std::string& h) {
  return !h.empty() && h.size() <= 253 && std::all_of(h.begin(), h.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

// HOST:PORT (port_required) or HOST[:PORT]; HOST a name, IPv4 or [IPv6].
bool HostPort(const std::string& s, bool port_required) {
  if (!s.empty() && s[0] == '[') {
    const auto close = s.find(']');
    if (close == std::string::npos || close == 1) return false;
    const std::string inner = s.substr(1, close - 1);
    if (!std::all_of(inner.begin(), inner.end(), [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
        })) {
      return false;
    }
    const std::string rest = s.substr(close + 1);
    if (rest.empty()) return !port_required;
    return rest[0] == ':' && ParsePort(rest.substr(1), false);
  }
  const auto colon = s.find(':');
  if (colon == std::string::npos) return !port_required && HostChars(s);
  return HostChars(s.substr(0, colon)) && ParsePort(s.substr(colon + 1), false);
}

std::string StripScheme(const std::string& s, bool* had) {
  for (const char* scheme : {"http://", "https://"}) {
    if (StartsWith(s, scheme)) {
      *had = true;
      return s.substr(std::string(scheme).size());
    }
  }
  *had = false;
  return s;
}

// What a field must be, as a refusal says it.
std::string Expected(const FieldSpec& f) {
  switch (f.type) {
    case JsonType::kBoolean:
      return "true or false (a JSON boolean)";
    case JsonType::kInteger:
      if (f.min == 0 && f.max == std::numeric_limits<int64_t>::max()) {
        return "a non-negative integer (a JSON number without a fraction)";
      }
      if (f.min != std::numeric_limits<int64_t>::min() ||
          f.max != std::numeric_limits<int64_t>::max()) {
        return "an integer from " + std::to_string(f.min) + " to " + std::to_string(f.max) +
               " (a JSON number without a fraction)";
      }
      return "an integer (a JSON number without a fraction)";
    case JsonType::kString:
      break;
  }
  switch (f.check) {
    case StringCheck::kNodeName:
      return "a node name (a JSON string of 1 to 63 lower-case letters, digits, '-', '_' or '.', "
             "starting with a letter or digit)";
    case StringCheck::kNodeNameOrNone:
      return "a node name (a JSON string of 1 to 63 lower-case letters, digits, '-', '_' or '.', "
             "starting with a letter or digit) or \"\" for none";
    case StringCheck::kHostPort:
      return "HOST:PORT (a JSON string, port 1 to 65535)";
    case StringCheck::kAgentAddress:
      return "HOST:PORT of a member's API (a JSON string; http:// or https:// may lead)";
    case StringCheck::kUrl:
      return "a URL http(s)://HOST:PORT (a JSON string) or \"\"";
    case StringCheck::kDigits:
      return "a decimal number in a JSON string (\"1234\")";
    case StringCheck::kNonEmpty:
      return "a non-empty JSON string";
    case StringCheck::kAny:
      break;
  }
  return "a JSON string";
}

std::string Brief(const FieldSpec& f) {
  std::string t =
      f.type == JsonType::kBoolean   ? "true or false"
      : f.type == JsonType::kInteger ? "an integer"
      : f.check == StringCheck::kNodeName || f.check == StringCheck::kNodeNameOrNone ? "a node name"
      : f.check == StringCheck::kHostPort || f.check == StringCheck::kAgentAddress   ? "HOST:PORT"
                                                                                     : "a string";
  return Quote(f.name) + " (" + t + ", " + (f.required ? "required" : "optional") +
         (f.meaning.empty() ? "" : ": " + f.meaning) + ")";
}

std::string Accepted(const RequestSchema& s) {
  if (s.fields.empty()) return "send an empty body or {}: " + Route(s) + " takes no fields";
  std::vector<std::string> parts;
  for (const auto& f : s.fields) parts.push_back(Brief(f));
  std::string out = "the accepted fields are " + Join(parts, ", ");
  if (!s.example.empty()) out += "; for example " + s.example;
  return out;
}

// The accepted name an unknown one most likely meant ("" = none close).
std::string Nearest(const std::vector<std::string>& accepted, const std::string& got) {
  std::string best;
  size_t best_d = 3;
  const std::string g = ToLower(got);
  for (const auto& a : accepted) {
    size_t d = EditDistance(a, got);
    // "at" for "at_ms", "nodename" for "node": a strong hint, whatever the distance.
    if (g.size() >= 2 && (g.find(a) != std::string::npos || a.find(g) == 0))
      d = std::min<size_t>(d, 1);
    if (d < best_d) {
      best_d = d;
      best = a;
    }
  }
  return best;
}

std::string CheckFailure(const FieldSpec& f, const std::string& v) {
  return Quote(f.name) + " must be " + Expected(f) + ", got " + Quote(v);
}

// The first problem with one field's value ("" = none).
std::string FieldProblem(const FieldSpec& f, const json& v) {
  const std::string wrong =
      Quote(f.name) + " must be " + Expected(f) + ", got " + DescribeJsonValue(v);
  switch (f.type) {
    case JsonType::kBoolean:
      return v.is_boolean() ? "" : wrong;
    case JsonType::kInteger: {
      if (!v.is_number_integer()) return wrong;
      if (v.is_number_unsigned() &&
          v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return wrong;
      }
      const int64_t n = v.get<int64_t>();
      return n < f.min || n > f.max ? wrong : "";
    }
    case JsonType::kString:
      if (!v.is_string()) return wrong;
      return PassesCheck(f.check, v.get<std::string>()) ? ""
                                                        : CheckFailure(f, v.get<std::string>());
  }
  return wrong;
}

// Deeper than kMaxDepth outside strings (bounds the parser's work on a
// hostile "[[[[...").
bool TooDeep(const std::string& text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxDepth) return true;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}

}  // namespace

std::string DescribeJsonValue(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return std::string("the boolean ") + (v.get<bool>() ? "true" : "false");
    case json::value_t::string:
      return "the string " + Quote(v.get<std::string>());
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "the number " + Cut(Dump(v));
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    default:
      return "a value of another kind";
  }
}

bool PassesCheck(StringCheck check, const std::string& v) {
  switch (check) {
    case StringCheck::kAny:
      return true;
    case StringCheck::kNonEmpty:
      return !v.empty();
    case StringCheck::kNodeName:
      return IsValidName(v);
    case StringCheck::kNodeNameOrNone:
      return v.empty() || IsValidName(v);
    case StringCheck::kHostPort:
      return HostPort(v, /*port_required=*/true);
    case StringCheck::kAgentAddress: {
      bool had = false;
      std::string rest = StripScheme(v, &had);
      if (!rest.empty() && rest.back() == '/') rest.pop_back();
      return HostPort(rest, /*port_required=*/false);
    }
    case StringCheck::kUrl: {
      if (v.empty()) return true;
      bool had = false;
      const std::string rest = StripScheme(v, &had);
      // The port after the last ':' (Config::api_url writes an IPv6
      // node.address unbracketed).
      const auto colon = rest.rfind(':');
      if (!had || colon == std::string::npos || colon == 0) return false;
      const std::string host = rest.substr(0, colon);
      return ParsePort(rest.substr(colon + 1), false) &&
             std::all_of(host.begin(), host.end(), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ||
                      c == '_' || c == ':' || c == '[' || c == ']';
             });
    }
    case StringCheck::kDigits:
      if (v.empty() || v.size() > 20) return false;
      if (!std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return false;
      }
      return v.size() < 20 || v <= "18446744073709551615";
  }
  return false;
}

std::optional<HttpAnswer> CheckQuery(const RequestSchema& s, const HttpRequest& req) {
  for (const auto& [name, value] : req.query) {
    if (std::find(s.params.begin(), s.params.end(), name) != s.params.end()) continue;
    std::string what = "unknown query parameter " + Quote(name) + " on " + Route(s);
    const std::string near = Nearest(s.params, name);
    if (!near.empty()) what += " (did you mean " + Quote(near) + "?)";
    std::vector<std::string> quoted;
    for (const auto& p : s.params) quoted.push_back(Quote(p));
    return Refuse(what, s.params.empty()
                            ? "remove it: " + Route(s) + " takes no query parameters"
                            : "remove it; the accepted ones are " + Join(quoted, ", "));
  }
  return std::nullopt;
}

namespace {

// Parses a non-empty body into *out: a JSON object, no field twice, not
// nested deeper than any body of ours could be.
std::optional<HttpAnswer> ParseObject(const RequestSchema& s, const std::string& text, json* out) {
  if (TooDeep(text)) {
    return Refuse("the body of " + Route(s) + " is not a JSON object of plain fields " +
                      "(it nests more than " + std::to_string(kMaxDepth) + " levels deep)",
                  Accepted(s));
  }
  std::set<std::string> seen;
  std::string duplicate;
  auto on_event = [&](int depth, json::parse_event_t event, json& value) {
    if (event == json::parse_event_t::key && depth == 1 && duplicate.empty() &&
        !seen.insert(value.get<std::string>()).second) {
      duplicate = value.get<std::string>();
    }
    return true;
  };
  try {
    *out = json::parse(text, on_event);
  } catch (const json::parse_error& e) {
    return Refuse("the body of " + Route(s) + " is not a JSON object (it is not valid JSON: " +
                      "syntax error at byte " + std::to_string(e.byte) + ")",
                  Accepted(s));
  } catch (const json::exception& e) {
    return Refuse("the body of " + Route(s) + " is not a JSON object (" + e.what() + ")",
                  Accepted(s));
  }
  if (!out->is_object()) {
    return Refuse(
        "the body of " + Route(s) + " is not a JSON object (got " + DescribeJsonValue(*out) + ")",
        Accepted(s));
  }
  if (!duplicate.empty()) {
    return Refuse(
        "the field " + Quote(duplicate) + " appears more than once in the body of " + Route(s),
        "send each field once; " + Accepted(s));
  }
  return std::nullopt;
}

}  // namespace

std::optional<HttpAnswer> CheckBody(const RequestSchema& s, const std::string& text, json* body) {
  json parsed = json::object();
  if (!text.empty()) {
    if (auto bad = ParseObject(s, text, &parsed)) return bad;
  }
  std::vector<std::string> names;
  for (const auto& f : s.fields) names.push_back(f.name);
  for (const auto& [key, value] : parsed.items()) {
    if (std::find(names.begin(), names.end(), key) != names.end()) continue;
    std::string what = "unknown field " + Quote(key) + " in the body of " + Route(s);
    const std::string near = Nearest(names, key);
    if (!near.empty()) what += " (did you mean " + Quote(near) + "?)";
    return Refuse(what, Accepted(s));
  }
  for (const auto& f : s.fields) {
    auto it = parsed.find(f.name);
    if (it == parsed.end()) {
      if (!f.required) continue;
      return Refuse(Quote(f.name) + " is required in the body of " + Route(s) +
                        (f.meaning.empty() ? "" : " (" + f.meaning + ")"),
                    Accepted(s));
    }
    const std::string problem = FieldProblem(f, *it);
    if (!problem.empty()) return Refuse(problem, Accepted(s));
  }
  if (body != nullptr) *body = std::move(parsed);
  return std::nullopt;
}

std::optional<HttpAnswer> CheckRequest(const RequestSchema& s, const HttpRequest& req, json* body) {
  if (auto bad = CheckQuery(s, req)) return bad;
  return CheckBody(s, req.body, body);
}

}  // namespace tandem::api
