// The API's HTTP/1.1 request parser: bytes in, a request or an error status
// out. Pure (no socket, no clock, no allocation beyond the result), so the
// unit tests drive it from tables and a seeded fuzzer; http_server.cc feeds
// it what a connection has read so far.
//
// What it accepts (the API's clients are the tandem CLI, peer agents, load
// balancers and curl): "METHOD /path?query HTTP/1.1" (or HTTP/1.0), header
// lines "Name: value", CRLF or bare LF line ends, then exactly Content-Length
// bytes of body. What it refuses, each with a JSON-ready reason and fix:
//   400 a malformed request line, target, header line or Content-Length
//   411 Transfer-Encoding (chunked bodies are not read: send Content-Length)
//   413 a Content-Length over the body limit
//   431 a request head (request line + headers) over the head limit
//   501 a method this server does not implement (CONNECT, TRACE, "FOO")
// Thread safety: stateless functions, callable from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "api/http_types.h"

namespace tandem::api {

// The limits the API enforces (the server's named constants).
inline constexpr size_t kMaxRequestHead = 16 * 1024;  // request line + headers
inline constexpr size_t kMaxRequestBody = 1 << 20;    // 1 MiB

struct ParseError {
  int status = 0;     // 400, 408, 411, 413, 431 or 501
  std::string error;  // what was wrong, for the answer's "error"
  std::string fix;    // what to send instead, for its "fix"
};

// The result of parsing the bytes of a request head received so far.
struct HeadParse {
  enum class State { kIncomplete, kDone, kError };
  State state = State::kIncomplete;
  HttpRequest request;           // kDone: method, path, query, headers (body empty)
  size_t head_bytes = 0;         // kDone: bytes of the head, its blank line included
  size_t body_length = 0;        // kDone: Content-Length (0 when absent)
  bool expect_continue = false;  // kDone: "Expect: 100-continue" was sent
  ParseError error;              // kError
};

// Parses the head at the start of `bytes`. kIncomplete: no blank line yet
// and fewer than max_head bytes (read more). Anything after the head is the
// body's start and is not looked at.
HeadParse ParseRequestHead(std::string_view bytes, size_t max_head = kMaxRequestHead,
                           size_t max_body = kMaxRequestBody);

// A whole request at once (the fuzzer's and the tests' entry point): the head
// and then body_length bytes. `bytes` that end before the request does are a
// 408 (the server's deadline would end that connection); bytes after it are
// ignored (each connection carries one request).
struct RequestParse {
  bool ok = false;
  HttpRequest request;  // ok
  ParseError error;     // !ok
};
RequestParse ParseRequest(std::string_view bytes, size_t max_head = kMaxRequestHead,
                          size_t max_body = kMaxRequestBody);

// The JSON answer for a parse error (api::JsonError with its error and fix).
HttpAnswer AnswerFor(const ParseError& e);

// Percent-decoding of a path ('+' is kept) or a query component ('+' is a
// space); false when a '%' is not followed by two hex digits.
bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out);

}  // namespace tandem::api
