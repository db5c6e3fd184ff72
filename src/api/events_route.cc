// GET /v1/events (api/events_route.h): the query checked, the agent's page
// answered as {"events": [...], "next": SEQ}. Runs on an API worker.
#include "api/events_route.h"

#include <nlohmann/json.hpp>

#include "api/request_schema.h"
#include "api/routes.h"
#include "base/strings.h"

namespace tandem::api {

std::optional<core::EventFilter> ParseEventQuery(const HttpRequest& req, std::string* error) {
  core::EventFilter f;
  if (req.HasParam("since")) {
    auto v = ParseInt(req.Param("since"));
    if (!v || *v < 0) {
      *error = "query parameter since='" + req.Param("since") +
               "' is not a sequence number; use the \"next\" of the previous answer (0 = from "
               "the oldest)";
      return std::nullopt;
    }
    f.since_seq = *v;
  }
  if (req.HasParam("limit")) {
    auto v = ParseInt(req.Param("limit"));
    if (!v || *v < 1 || *v > core::kEventPageLimit) {
      *error = "query parameter limit='" + req.Param("limit") + "' is not a number from 1 to " +
               std::to_string(core::kEventPageLimit);
      return std::nullopt;
    }
    f.limit = static_cast<size_t>(*v);
  }
  return f;
}

void AddEventsRoute(Routes& routes, agent::Agent& agent) {
  const RequestSchema* schema = nullptr;
  for (const auto& s : ApiRequestSchemas()) {
    if (s.method == "GET" && s.path == "/v1/events") schema = &s;
  }
  TANDEM_CHECK(schema != nullptr, "no request schema for GET /v1/events");
  routes.Add("GET", "/v1/events", [&agent, schema](const HttpRequest& req) {
    if (auto bad = CheckRequest(*schema, req, nullptr)) return *bad;
    std::string error;
    auto filter = ParseEventQuery(req, &error);
    if (!filter) {
      return JsonError(400, error, "correct the query; nothing was changed",
                       ErrorCodeName(ErrorCode::kInvalidArgument));
    }
    auto page = agent.EventsJson(*filter);
    if (!page) {
      const ErrorCode code = page.error().code();
      return JsonError(HttpStatusFor(code), page.error().message(), "see `tandem cluster status`",
                       ErrorCodeName(code));
    }
    HttpAnswer a;
    a.status = 200;
    a.body = page->dump() + "\n";
    return a;
  });
}

}  // namespace tandem::api
