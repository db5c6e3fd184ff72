// The request parser (pure): the request line, the header lines and the
// Content-Length rule. The limits and statuses are http_parse.h's contract.
#include "api/http_parse.h"

#include <array>

#include "base/strings.h"

namespace tandem::api {
namespace {

constexpr std::array<std::string_view, 7> kMethods = {"GET",    "HEAD",  "POST",   "PUT",
                                                      "DELETE", "PATCH", "OPTIONS"};

// RFC 9110 tchar: the characters of a method or a header name.
bool IsTokenChar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

HeadParse Fail(int status, std::string error, std::string fix) {
  HeadParse p;
  p.state = HeadParse::State::kError;
  p.error = ParseError{status, std::move(error), std::move(fix)};
  return p;
}

HeadParse Malformed(const std::string& what) {
  return Fail(400, "malformed HTTP request: " + what,
              "send an HTTP/1.1 request: \"METHOD /path HTTP/1.1\", then \"Name: value\" header "
              "lines, a blank line, and a body of Content-Length bytes");
}

// Where the head ends (just after its blank line), or npos. Leading blank
// lines before the request line are skipped as RFC 9112 allows.
size_t HeadEnd(std::string_view b, size_t* start) {
  size_t i = 0;
  while (i < b.size() && (b[i] == '\r' || b[i] == '\n')) {
    if (b[i] == '\r' && (i + 1 >= b.size() || b[i + 1] != '\n')) break;
    i += b[i] == '\r' ? 2 : 1;
  }
  *start = i;
  for (size_t n = b.find('\n', i); n != std::string_view::npos; n = b.find('\n', n + 1)) {
    if (n + 1 < b.size() && b[n + 1] == '\n') return n + 2;
    if (n + 2 < b.size() && b[n + 1] == '\r' && b[n + 2] == '\n') return n + 3;
  }
  return std::string_view::npos;
}

// Fills request.path and request.query from an origin-form target.
bool ParseTarget(std::string_view target, HttpRequest* r, std::string* what) {
  if (target.empty() || target[0] != '/') {
    *what = "the target '" + std::string(target.substr(0, 64)) + "' is not a path starting with /";
    return false;
  }
  for (unsigned char c : target) {
    if (c <= 0x20 || c >= 0x7f || c == '#') {
      *what = "the target contains a character that is not allowed in a URL";
      return false;
    }
  }
  const size_t q = target.find('?');
  if (!PercentDecode(target.substr(0, q), false, &r->path)) {
    *what = "the path has a '%' that is not followed by two hex digits";
    return false;
  }
  for (unsigned char c : r->path) {
    if (c < 0x20 || c == 0x7f) {
      *what = "the decoded path contains a control character";
      return false;
    }
  }
  if (q == std::string_view::npos) return true;
  for (std::string_view rest = target.substr(q + 1); !rest.empty();) {
    const size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::string name, value;
    if (!PercentDecode(pair.substr(0, eq), true, &name) ||
        (eq != std::string_view::npos && !PercentDecode(pair.substr(eq + 1), true, &value))) {
      *what = "the query has a '%' that is not followed by two hex digits";
      return false;
    }
    r->query[name] = value;
  }
  return true;
}

HeadParse ParseRequestLine(std::string_view line, HeadParse p) {
  const size_t s1 = line.find(' ');
  const size_t s2 = s1 == std::string_view::npos ? s1 : line.find(' ', s1 + 1);
  if (s2 == std::string_view::npos || line.find(' ', s2 + 1) != std::string_view::npos) {
    return Malformed("the request line is not \"METHOD /path HTTP/1.1\"");
  }
  const std::string_view method = line.substr(0, s1);
  const std::string_view target = line.substr(s1 + 1, s2 - s1 - 1);
  const std::string_view version = line.substr(s2 + 1);
  if (!IsToken(method)) return Malformed("the method is not a word");
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return Fail(400, "unsupported HTTP version '" + std::string(version.substr(0, 16)) + "'",
                "send HTTP/1.1 (or HTTP/1.0) requests");
  }
  bool known = false;
  for (auto m : kMethods) known = known || m == method;
  if (!known) {
    return Fail(501, "the method " + std::string(method.substr(0, 32)) + " is not implemented",
                "use GET, HEAD or OPTIONS to read and POST to change something");
  }
  p.request.method = std::string(method);
  std::string what;
  if (!ParseTarget(target, &p.request, &what)) return Malformed(what);
  return p;
}

// One "Name: value" line into p.request.headers.
bool ParseHeaderLine(std::string_view line, HeadParse* p, std::string* what) {
  if (line[0] == ' ' || line[0] == '\t') {
    *what = "a header line starts with white space (folded headers are not accepted)";
    return false;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) {
    *what = "a header line is not \"Name: value\"";
    return false;
  }
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  for (unsigned char c : value) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      *what = "a header value contains a control character";
      return false;
    }
  }
  const std::string name = ToLower(line.substr(0, colon));
  auto [it, fresh] = p->request.headers.emplace(name, std::string(value));
  if (fresh) return true;
  if (name == "content-length") {
    if (it->second == value) return true;
    *what = "Content-Length is sent twice with different values";
    return false;
  }
  it->second += ", ";
  it->second += value;
  return true;
}

// The body rules: Transfer-Encoding refused, Content-Length checked.
HeadParse CheckBody(HeadParse p, size_t max_body) {
  const auto& h = p.request.headers;
  if (h.count("transfer-encoding") != 0) {
    return Fail(411,
                "Transfer-Encoding '" + h.at("transfer-encoding").substr(0, 32) +
                    "' is not accepted: this API reads only bodies of a known length",
                "send Content-Length (the whole body at once) instead of a chunked body");
  }
  if (auto cl = h.find("content-length"); cl != h.end()) {
    const std::string& v = cl->second;
    if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos) {
      return Malformed("Content-Length '" + v.substr(0, 32) + "' is not a number of bytes");
    }
    const size_t n = std::stoull(v);
    if (n > max_body) {
      return Fail(
          413,
          "the body of " + v + " bytes is over the limit of " + std::to_string(max_body) + " bytes",
          "send a smaller body (API requests are small JSON documents)");
    }
    p.body_length = n;
  } else if (p.request.method == "POST" || p.request.method == "PUT" ||
             p.request.method == "PATCH") {
    // A request that changes something says how long its body is, even when
    // it is empty: a missing length is a client that did not mean this call.
    return Fail(411, p.request.method + " without Content-Length",
                "send Content-Length (0 for an empty body; curl -d '{}' sets it)");
  }
  if (auto e = h.find("expect"); e != h.end())
    p.expect_continue = ToLower(e->second) == "100-continue";
  return p;
}

}  // namespace

bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      const int hi = i + 1 < in.size() ? HexValue(in[i + 1]) : -1;
      const int lo = i + 2 < in.size() ? HexValue(in[i + 2]) : -1;
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out->push_back(plus_is_space && c == '+' ? ' ' : c);
    }
  }
  return true;
}

HeadParse ParseRequestHead(std::string_view bytes, size_t max_head, size_t max_body) {
  size_t start = 0;
  const size_t end = HeadEnd(bytes, &start);
  if (end == std::string_view::npos ? bytes.size() >= max_head : end > max_head) {
    return Fail(431, "the request head is over the limit of " + std::to_string(max_head) + " bytes",
                "send fewer or shorter headers and a shorter URL");
  }
  if (end == std::string_view::npos) return HeadParse{};
  HeadParse p;
  p.state = HeadParse::State::kDone;
  p.head_bytes = end;
  bool first = true;
  for (size_t pos = start; pos < end;) {
    const size_t nl = bytes.find('\n', pos);
    std::string_view line = bytes.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // the blank line that ends the head
    if (line.find('\r') != std::string_view::npos || line.find('\0') != std::string_view::npos) {
      return Malformed("a line contains a stray CR or NUL byte");
    }
    if (first) {
      p = ParseRequestLine(line, std::move(p));
      if (p.state == HeadParse::State::kError) return p;
      first = false;
      continue;
    }
    std::string what;
    if (!ParseHeaderLine(line, &p, &what)) return Malformed(what);
  }
  if (first) return Malformed("no request line");
  return CheckBody(std::move(p), max_body);
}

RequestParse ParseRequest(std::string_view bytes, size_t max_head, size_t max_body) {
  RequestParse r;
  HeadParse h = ParseRequestHead(bytes, max_head, max_body);
  if (h.state == HeadParse::State::kError) {
    r.error = h.error;
    return r;
  }
  if (h.state == HeadParse::State::kIncomplete || bytes.size() - h.head_bytes < h.body_length) {
    r.error = ParseError{
        408,
        "the request ended before its " +
            std::string(h.state == HeadParse::State::kIncomplete ? "head" : "body") + " did",
        "send the whole request at once, within the server's deadline"};
    return r;
  }
  r.ok = true;
  r.request = std::move(h.request);
  r.request.body = std::string(bytes.substr(h.head_bytes, h.body_length));
  return r;
}

HttpAnswer AnswerFor(const ParseError& e) {
  static const std::pair<int, const char*> kCodes[] = {{400, "bad request"},
                                                       {408, "request timeout"},
                                                       {411, "length required"},
                                                       {413, "payload too large"},
                                                       {431, "headers too large"},
                                                       {501, "not implemented"},
                                                       {503, "busy"}};
  std::string code = "bad request";
  for (const auto& [s, c] : kCodes) {
    if (s == e.status) code = c;
  }
  return JsonError(e.status, e.error, e.fix, code);
}

}  // namespace tandem::api
