// The API's routes: which handler answers which method and path, and what
// each handler does with the agent. Transport-free (http_types.h): the server
// parses a request, finds its route here and sends the answer.
#pragma once

#include "agent/agent.h"
#include "api/http_types.h"
#include "base/result.h"

namespace tandem::api {

// HTTP status for an error code (400, 404, 409, 503, 504, 500).
int HttpStatusFor(ErrorCode code);

// Operator commands, status, history, positions and the internal join call.
void AddApiRoutes(Routes& routes, agent::Agent& agent);

// Patroni-compatible health checks (200 when true, 503 otherwise) on GET,
// HEAD and OPTIONS. They read the agent's last observation only and never
// block, so a transport may run them on its event thread.
void AddHealthRoutes(Routes& routes, agent::Agent& agent);

}  // namespace tandem::api
