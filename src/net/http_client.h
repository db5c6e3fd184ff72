// A small blocking HTTP client for agent-to-agent and CLI-to-agent calls.
//
// Library placement (src/net): below the agent and the CLI, which both use
// it; it knows nothing of the node's config (agent/tls_files.h turns a
// Config into the TlsClientOptions set here). Waits are the socket's own
// timeouts (timeout_ms); it reads no clock.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"
#include "dcs/tls_client.h"

namespace tandem::net {

struct HttpResponse {
  int status = 0;
  std::string body;
};

// method: "GET", "POST", "DELETE", "HEAD" or "OPTIONS". url: "http://host:port/path"
// or https. Connection failures (a TLS handshake that fails verification
// included) -> kUnavailable naming the address; timeouts -> kTimeout.
// Any HTTP status is a success here: the caller interprets it.
Result<HttpResponse> HttpCall(const std::string& method, const std::string& url,
                              const std::string& body = "", int64_t timeout_ms = 10'000);

// The TLS settings every https:// HttpCall of this process uses (the agent and
// the CLI set them once from the node's config; thread-safe).
void SetHttpClientTls(const dcs::TlsClientOptions& tls);

}  // namespace tandem::net
