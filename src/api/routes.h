// The API's routes: which handler answers which method and path, and what
// each handler does with the agent. Transport-free (http_types.h): the server
// parses a request, finds its route here and sends the answer.
#pragma once

#include <vector>

#include "agent/agent.h"
#include "api/http_types.h"
#include "api/request_schema.h"
#include "base/result.h"

namespace tandem::api {

// HTTP status for an error code (400, 404, 409, 503, 504, 500).
int HttpStatusFor(ErrorCode code);

// The request schema of every route AddApiRoutes adds (its body fields and
// query parameters): a handler runs only on a request its schema accepts,
// and every other request is a 400 naming the problem (request_schema.h).
const std::vector<RequestSchema>& ApiRequestSchemas();

// Operator commands, status, history, positions, GET /metrics (metrics.h) and
// the internal join call.
// Destructive ones name their target: remove and clear-error need "node"
// (clear-error only this node's own: another's is a 409), failover "to".
void AddApiRoutes(Routes& routes, agent::Agent& agent);

// Patroni-compatible health checks (200 when true, 503 otherwise) on GET,
// HEAD and OPTIONS. They read the agent's last observation only and never
// block, so a transport may run them on its event thread. Their only query
// parameter is "lag"; any other is a 400 naming it.
void AddHealthRoutes(Routes& routes, agent::Agent& agent);

}  // namespace tandem::api
