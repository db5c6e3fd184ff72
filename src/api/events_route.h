// GET /v1/events?since=SEQ&limit=N: the cluster event log (docs/logging.md,
// "The cluster event log"), oldest first, read from the store on any node.
// Read-only, like GET /v1/status (the server's method rule).
#pragma once

#include <optional>
#include <string>

#include "agent/agent.h"
#include "api/http_types.h"
#include "core/events.h"

namespace tandem::api {

// The query parameters as a filter (since: a seq >= 0, default 0; limit:
// 1..core::kEventPageLimit, default that); nullopt and *error naming the
// parameter and its range when one is not a number in range. Pure.
std::optional<core::EventFilter> ParseEventQuery(const HttpRequest& req, std::string* error);

void AddEventsRoute(Routes& routes, agent::Agent& agent);

}  // namespace tandem::api
