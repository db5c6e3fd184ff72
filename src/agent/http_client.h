// Transitional: the HTTP client moved to src/net (net/http_client.h), below
// the agent and the CLI; a node's client TLS settings (ClientTlsFor,
// AgentClientTls) are in agent/tls_files.h. This header keeps the agent's
// existing `agent::HttpCall` spellings compiling; new code includes those two
// headers instead, and this one goes once the agent's files do.
#pragma once

#include "agent/tls_files.h"
#include "net/http_client.h"

namespace tandem::agent {
using net::HttpCall;
using net::HttpResponse;
using net::SetHttpClientTls;
}  // namespace tandem::agent
