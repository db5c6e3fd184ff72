// The API's handlers: each checks its request against the route's schema
// (ApiRequestSchemas, request_schema.h), calls the agent and answers JSON.
// Registered into a Routes table by AddApiRoutes / AddHealthRoutes. Runs on
// the transport's worker threads; touches nothing but the agent's public
// methods.
#include "api/routes.h"

#include <limits>
#include <memory>
#include <nlohmann/json.hpp>

#include "api/events_route.h"
#include "api/metrics.h"
#include "base/strings.h"

namespace tandem::api {
using nlohmann::json;

int HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kConflict:
    case ErrorCode::kFailedPrecondition:
      return 409;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kTimeout:
      return 504;
    default:
      return 500;
  }
}

namespace {

HttpAnswer Json(int status, const json& body) {
  HttpAnswer a;
  a.status = status;
  a.body = body.dump(2) + "\n";
  return a;
}

// A fix for an agent's refusal, by its code (the message names the problem
// and, usually, what to do; the fix says where to look next).
std::string FixFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "correct the request as the error says; nothing was changed";
    case ErrorCode::kNotFound:
      return "check the name against `tandem cluster status`";
    case ErrorCode::kConflict:
    case ErrorCode::kFailedPrecondition:
      return "see `tandem cluster status`: the error says what must change first";
    case ErrorCode::kUnavailable:
      return "check that the store and the other agents are reachable (`tandem cluster "
             "status`), then try again";
    case ErrorCode::kTimeout:
      return "see `tandem cluster status` for what was done, then try again";
    default:
      return "see the agent's log (journalctl or the sandbox's agent.log)";
  }
}

HttpAnswer FromStatus(const Status& st) {
  if (st.ok()) return Json(200, {{"result", "ok"}});
  const ErrorCode code = st.error().code();
  return JsonError(HttpStatusFor(code), st.error().message(), FixFor(code), ErrorCodeName(code));
}

HttpAnswer FromMessage(const Result<std::string>& r) {
  if (r) return Json(200, {{"result", "ok"}, {"message", *r}});
  return FromStatus(r.error());
}

// The schema of one route (ApiRequestSchemas); a broken table is our bug.
const RequestSchema& SchemaOf(const std::string& method, const std::string& path) {
  for (const auto& s : ApiRequestSchemas()) {
    if (s.method == method && s.path == path) return s;
  }
  CheckFailed(__FILE__, __LINE__, "SchemaOf", "no request schema for " + method + " " + path);
}

// A handler that runs only on a request its schema accepts (body parsed).
using CheckedHandler = std::function<HttpAnswer(const HttpRequest&, const json&)>;
void AddChecked(Routes& r, const std::string& method, const std::string& path,
                CheckedHandler handler) {
  const RequestSchema& schema = SchemaOf(method, path);
  r.Add(method, path, [&schema, handler = std::move(handler)](const HttpRequest& req) {
    json body;
    if (auto bad = CheckRequest(schema, req, &body)) return *bad;
    return handler(req, body);
  });
}

void AddClusterCommands(Routes& r, agent::Agent& agent) {
  AddChecked(r, "POST", "/v1/cluster/initialize",
             [&agent](const HttpRequest&, const json&) { return FromStatus(agent.Initialize()); });
  AddChecked(r, "POST", "/v1/cluster/join", [&agent](const HttpRequest&, const json& body) {
    return FromStatus(
        agent.StartJoin(body.at("address").get<std::string>(), body.value("witness", false)));
  });
  // The target is always named (the CLI names this node when the operator
  // names none): a body that lost its "node" must never mean "me".
  AddChecked(r, "POST", "/v1/cluster/remove", [&agent](const HttpRequest&, const json& body) {
    return FromStatus(agent.Remove(body.at("node").get<std::string>(), body.value("force", false)));
  });
  // A node clears only its own error state: a request naming another node
  // reached the wrong API, and clearing this one's would hide its error.
  AddChecked(r, "POST", "/v1/cluster/clear-error", [&agent](const HttpRequest&, const json& body) {
    const std::string node = body.at("node").get<std::string>();
    const std::string& self = agent.config().node_name;
    if (node != self) {
      return JsonError(409,
                       "clear-error names node '" + node + "' but this is the API of node '" +
                           self + "'; a node clears only its own error state; nothing was changed",
                       "send it to " + node + "'s own API: on " + node +
                           ", run `tandem cluster clear-error` (its config: -c)",
                       ErrorCodeName(ErrorCode::kFailedPrecondition));
    }
    return FromStatus(agent.ClearError());
  });
}

void AddOperatorControl(Routes& r, agent::Agent& agent) {
  AddChecked(r, "POST", "/v1/cluster/switchover", [&agent](const HttpRequest&, const json& body) {
    return FromMessage(
        agent.RequestSwitchover(body.value("to", std::string()), body.value("at_ms", int64_t{0})));
  });
  AddChecked(r, "POST", "/v1/cluster/failover", [&agent](const HttpRequest&, const json& body) {
    return FromMessage(agent.RequestFailover(body.at("to").get<std::string>(),
                                             body.value("accept_data_loss", false)));
  });
  AddChecked(r, "POST", "/v1/cluster/pause", [&agent](const HttpRequest&, const json&) {
    return FromMessage(agent.SetPaused(true));
  });
  AddChecked(r, "POST", "/v1/cluster/resume", [&agent](const HttpRequest&, const json&) {
    return FromMessage(agent.SetPaused(false));
  });
}

void AddReadsAndJoinGrant(Routes& r, agent::Agent& agent) {
  AddChecked(r, "GET", "/v1/status",
             [&agent](const HttpRequest&, const json&) { return Json(200, agent.StatusJson()); });
  AddChecked(r, "GET", "/v1/cluster/history", [&agent](const HttpRequest&, const json&) {
    auto h = agent.HistoryJson();
    return h ? Json(200, *h) : FromStatus(h.error());
  });
  // docs/alarms.md: the active alarms; ?history=true adds the cleared ones.
  AddChecked(r, "GET", "/v1/alarms", [&agent](const HttpRequest& req, const json&) {
    const std::string h = req.Param("history");
    if (req.HasParam("history") && h != "true" && h != "false" && h != "1" && h != "0") {
      return JsonError(400, "query parameter history='" + h + "' is not a boolean",
                       "use history=true or history=false",
                       ErrorCodeName(ErrorCode::kInvalidArgument));
    }
    auto a = agent.AlarmsJson(h == "true" || h == "1");
    return a ? Json(200, *a) : FromStatus(a.error());
  });
  AddChecked(r, "GET", "/v1/position",
             [&agent](const HttpRequest&, const json&) { return Json(200, agent.PositionJson()); });
  // The schema refuses what DecodeNodeInfo (lenient: it also reads
  // registrations other versions wrote to the store) would let through.
  AddChecked(r, "POST", "/v1/internal/join", [&agent](const HttpRequest& req, const json&) {
    auto info = agent::DecodeNodeInfo(req.body);
    if (!info) return FromStatus(info.error());
    auto grant = agent.GrantJoin(*info);
    if (!grant) return FromStatus(grant.error());
    // Secrets travel only in this answer (HTTPS with a client certificate
    // when tls is set; plain HTTP without).
    return Json(200, {{"cluster", grant->cluster},
                      {"initial_cluster", grant->initial_cluster},
                      {"etcd_endpoints", grant->etcd_endpoints},
                      {"etcd_member_id", std::to_string(grant->etcd_member_id)},
                      {"superuser_password", grant->secrets.superuser_password},
                      {"replication_password", grant->secrets.replication_password}});
  });
}

bool Healthy(agent::Agent& agent, const std::string& path, const HttpRequest& req) {
  auto h = agent.GetHealth();
  if (path == "/health" || path == "/readiness") return h.running;
  if (path == "/liveness") return true;
  if (path == "/" || path == "/primary" || path == "/read-write" || path == "/leader" ||
      path == "/master") {
    return h.primary;
  }
  bool ok = false;
  if (path == "/replica") {
    ok = h.replica;
  } else if (path == "/read-only") {
    ok = h.replica || h.primary;
  } else if (path == "/sync" || path == "/synchronous") {
    ok = h.replica && h.sync_standby;
  } else if (path == "/async" || path == "/asynchronous") {
    ok = h.replica && !h.sync_standby;
  }
  if (ok && req.HasParam("lag")) {
    // Bytes or PostgreSQL units ("16MB"), as Patroni takes them; junk is false.
    auto max = ParseBytes(req.Param("lag"));
    ok = max.has_value() && h.lag_bytes <= *max;
  }
  return ok;
}

// POST /v1/cluster/switchover/cancel: no body, or {} (its schema has no
// fields, so any is refused).
void AddSwitchoverCancel(Routes& r, agent::Agent& agent) {
  AddChecked(r, "POST", "/v1/cluster/switchover/cancel", [&agent](const HttpRequest&, const json&) {
    return FromMessage(agent.CancelSwitchover());
  });
}

// Schema upgrades (docs/schema-upgrades.md): the request with the files'
// text, the operation's progress, the history.
void AddSchemaRoutes(Routes& r, agent::Agent& agent) {
  AddChecked(r, "POST", "/v1/schema/upgrade", [&agent](const HttpRequest&, const json& body) {
    auto a = agent.StartSchemaUpgrade(body);
    return a ? Json(200, *a) : FromStatus(a.error());
  });
  AddChecked(r, "GET", "/v1/schema/operation", [&agent](const HttpRequest&, const json&) {
    auto a = agent.SchemaOperationJson();
    return a ? Json(200, *a) : FromStatus(a.error());
  });
  AddChecked(r, "GET", "/v1/schema", [&agent](const HttpRequest& req, const json&) {
    const std::string db = req.HasParam("database") ? req.Param("database") : "postgres";
    auto a = agent.SchemaJson(db);
    return a ? Json(200, *a) : FromStatus(a.error());
  });
}

}  // namespace

// Every API route's request: the target of a destructive command is always
// named ("node", "to"); no route has a field the handler does not read.
const std::vector<RequestSchema>& ApiRequestSchemas() {
  using T = JsonType;
  using C = StringCheck;
  static const std::vector<RequestSchema> schemas = {
      {"POST", "/v1/cluster/initialize", {}, {}, ""},
      {"POST",
       "/v1/cluster/join",
       {{"address", T::kString, true, C::kAgentAddress, 0, 0, "HOST:PORT of any member's API"},
        {"witness", T::kBoolean, false, C::kAny, 0, 0,
         "join as a witness: an etcd voter with no PostgreSQL"}},
       {},
       R"({"address": "10.0.0.1:8008", "witness": false})"},
      {"POST",
       "/v1/cluster/remove",
       {{"node", T::kString, true, C::kNodeName, 0, 0,
         "the node to remove; name this node to remove it"},
        {"force", T::kBoolean, false, C::kAny, 0, 0, "allow removing the primary"}},
       {},
       R"({"node": "node3", "force": false})"},
      {"POST",
       "/v1/cluster/clear-error",
       {{"node", T::kString, true, C::kNodeName, 0, 0,
         "the receiving node's own name: a node clears only its own error"}},
       {},
       R"({"node": "node1"})"},
      {"POST",
       "/v1/cluster/switchover",
       {{"to", T::kString, false, C::kNodeNameOrNone, 0, 0,
         "the replica to promote (absent or \"\": the most advanced one)"},
        {"at_ms", T::kInteger, false, C::kAny, 0, std::numeric_limits<int64_t>::max(),
         "when, in milliseconds since 1970 UTC (default: now)"}},
       {},
       R"({"to": "node2", "at_ms": 1795000000000})"},
      {"POST",
       "/v1/cluster/failover",
       {{"to", T::kString, true, C::kNodeName, 0, 0, "the replica to promote"},
        {"accept_data_loss", T::kBoolean, false, C::kAny, 0, 0,
         "promote it even if it may miss acknowledged writes"}},
       {},
       R"({"to": "node2", "accept_data_loss": false})"},
      {"POST", "/v1/cluster/switchover/cancel", {}, {}, ""},
      {"POST", "/v1/cluster/pause", {}, {}, ""},
      {"POST", "/v1/cluster/resume", {}, {}, ""},
      {"GET", "/v1/status", {}, {}, ""},
      {"GET", "/v1/cluster/history", {}, {}, ""},
      {"GET", "/v1/alarms", {}, {"history"}, ""},
      {"GET", "/v1/position", {}, {}, ""},
      {"GET", "/v1/events", {}, {"since", "limit"}, ""},  // api/events_route.h
      {"GET", "/metrics", {}, {}, ""},                    // api/metrics.h
      {"POST",
       "/v1/schema/upgrade",
       {{"dir", T::kString, true, C::kNonEmpty, 0, 0, "the directory as the operator named it"},
        {"files", T::kString, true, C::kNonEmpty, 0, 0,
         "the migrations: a JSON array of {\"name\", \"sql\"} as text"},
        {"database", T::kString, false, C::kNonEmpty, 0, 0, "the database (default postgres)"},
        {"target", T::kString, false, C::kAny, 0, 0, "the last version to apply (\"\": all)"},
        {"dry_run", T::kBoolean, false, C::kAny, 0, 0, "answer the plan, run nothing"},
        {"timeout_ms", T::kInteger, false, C::kAny, 0, 7 * 24 * 3600 * 1000LL,
         "the most one migration may take (0: no limit)"}},
       {},
       R"({"dir": "migrations", "files": "[{\"name\": \"V1__init.sql\", \"sql\": \"...\"}]"})"},
      {"GET", "/v1/schema/operation", {}, {}, ""},
      {"GET", "/v1/schema", {}, {"database"}, ""},
      // agent::EncodeNodeInfo's document (join.cc sends it).
      {"POST",
       "/v1/internal/join",
       {{"name", T::kString, true, C::kNodeName, 0, 0, "the joining node"},
        {"host", T::kString, true, C::kNonEmpty, 0, 0, "the address it clusters on"},
        {"pg_port", T::kInteger, true, C::kAny, 0, 65535, "its PostgreSQL port"},
        {"api_url", T::kString, false, C::kUrl, 0, 0, ""},
        {"etcd_peer_url", T::kString, false, C::kUrl, 0, 0, ""},
        {"etcd_client_url", T::kString, false, C::kUrl, 0, 0, ""},
        {"etcd_member_id", T::kString, false, C::kDigits, 0, 0, ""},
        {"proxy_read_write_port", T::kInteger, false, C::kAny, 0, 65535, ""},
        {"proxy_read_only_port", T::kInteger, false, C::kAny, 0, 65535, ""},
        {"witness", T::kBoolean, false, C::kAny, 0, 0, "a witness: no PostgreSQL"}},
       {},
       R"({"name": "node4", "host": "10.0.0.4", "pg_port": 5432})"},
  };
  return schemas;
}

void AddApiRoutes(Routes& routes, agent::Agent& agent) {
  AddClusterCommands(routes, agent);
  AddOperatorControl(routes, agent);
  AddSwitchoverCancel(routes, agent);
  AddReadsAndJoinGrant(routes, agent);
  AddSchemaRoutes(routes, agent);
  AddMetricsRoute(routes, agent);
  AddEventsRoute(routes, agent);
}

void AddHealthRoutes(Routes& routes, agent::Agent& agent) {
  for (const char* path :
       {"/", "/health", "/liveness", "/readiness", "/primary", "/read-write", "/leader", "/master",
        "/replica", "/read-only", "/sync", "/synchronous", "/async", "/asynchronous"}) {
    std::string p = path;
    // Only "lag": a condition a check asks for and we ignored would pass it.
    auto schema = std::make_shared<RequestSchema>(RequestSchema{"GET", p, {}, {"lag"}, ""});
    Handler handler = [&agent, p, schema](const HttpRequest& req) {
      if (auto bad = CheckQuery(*schema, req)) return *bad;
      HttpAnswer a;
      a.status = Healthy(agent, p, req) ? 200 : 503;
      a.content_type = "text/plain";
      a.body = a.status == 200 ? "ok\n" : "no\n";
      return a;
    };
    routes.Add("GET", path, handler);
    routes.Add("OPTIONS", path, handler);
  }
}

}  // namespace tandem::api
