// A small blocking HTTP client for agent-to-agent and CLI-to-agent calls.
#pragma once

#include <string>

#include "agent/config.h"
#include "base/result.h"
#include "dcs/tls_client.h"

namespace tandem::agent {

struct HttpResponse {
  int status = 0;
  std::string body;
};

// method: "GET", "POST" or "DELETE". url: "http://host:port/path" or https.
// Connection failures (a TLS handshake that fails verification included) ->
// kUnavailable naming the address; timeouts -> kTimeout.
// Any HTTP status is a success here: the caller interprets it.
Result<HttpResponse> HttpCall(const std::string& method, const std::string& url,
                              const std::string& body = "", int64_t timeout_ms = 10'000);

// The TLS settings every https:// HttpCall of this process uses (the agent and
// the CLI set them once from the node's config; thread-safe).
void SetHttpClientTls(const dcs::TlsClientOptions& tls);

// A node's TLS client settings: its client pair, the cluster CA, and the
// mode's checks (enforce: chain, and the host with tls.verify_hostname;
// permissive: none). Empty when cfg has no tls section.
dcs::TlsClientOptions ClientTlsFor(const Config& cfg);
// The same from the agent's private copies (<state_dir>/tls), which follow a
// certificate rotation: what the agent's own connections present and trust.
dcs::TlsClientOptions AgentClientTls(const Config& cfg);

}  // namespace tandem::agent
