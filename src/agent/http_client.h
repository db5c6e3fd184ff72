// A small blocking HTTP client for agent-to-agent and CLI-to-agent calls.
#pragma once

#include <string>

#include "base/result.h"

namespace tandem::agent {

struct HttpResponse {
  int status = 0;
  std::string body;
};

// method: "GET", "POST" or "DELETE". url: "http://host:port/path".
// Connection failures -> kUnavailable naming the address; timeouts -> kTimeout.
// Any HTTP status is a success here: the caller interprets it.
Result<HttpResponse> HttpCall(const std::string& method, const std::string& url,
                              const std::string& body = "", int64_t timeout_ms = 10'000);

}  // namespace tandem::agent
