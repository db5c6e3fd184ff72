// The API's handlers: each reads its request, calls the agent and answers
// JSON. Registered into a Routes table by AddApiRoutes / AddHealthRoutes.
#include "api/routes.h"

#include <nlohmann/json.hpp>

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

HttpAnswer FromStatus(const Status& st) {
  if (st.ok()) return Json(200, {{"result", "ok"}});
  return Json(HttpStatusFor(st.error().code()),
              {{"error", st.error().message()}, {"code", ErrorCodeName(st.error().code())}});
}

HttpAnswer FromMessage(const Result<std::string>& r) {
  if (r) return Json(200, {{"result", "ok"}, {"message", *r}});
  return FromStatus(r.error());
}

// Parses a JSON object body; empty body = {}. On failure *bad is the answer.
bool ParseBody(const HttpRequest& req, json* out, HttpAnswer* bad) {
  if (req.body.empty()) {
    *out = json::object();
    return true;
  }
  *out = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (out->is_discarded() || !out->is_object()) {
    *bad = Json(400,
                {{"error", "the request body is not a JSON object"}, {"code", "invalid argument"}});
    return false;
  }
  return true;
}

bool StringField(const json& body, const char* key, std::string* out) {
  if (!body.contains(key)) return true;
  if (!body[key].is_string()) return false;
  *out = body[key].get<std::string>();
  return true;
}

void AddClusterCommands(Routes& r, agent::Agent& agent) {
  r.Add("POST", "/v1/cluster/initialize",
        [&agent](const HttpRequest&) { return FromStatus(agent.Initialize()); });
  r.Add("POST", "/v1/cluster/join", [&agent](const HttpRequest& req) {
    json body;
    HttpAnswer bad;
    if (!ParseBody(req, &body, &bad)) return bad;
    if (!body.contains("address") || !body["address"].is_string()) {
      return Json(400, {{"error", "\"address\" (HOST:PORT of a member's API) is required"}});
    }
    return FromStatus(agent.StartJoin(body["address"].get<std::string>()));
  });
  r.Add("POST", "/v1/cluster/remove", [&agent](const HttpRequest& req) {
    json body;
    HttpAnswer bad;
    if (!ParseBody(req, &body, &bad)) return bad;
    std::string node =
        body.contains("node") && body["node"].is_string() ? body["node"].get<std::string>() : "";
    bool force = body.contains("force") && body["force"].is_boolean() && body["force"].get<bool>();
    return FromStatus(agent.Remove(node, force));
  });
  r.Add("POST", "/v1/cluster/clear-error",
        [&agent](const HttpRequest&) { return FromStatus(agent.ClearError()); });
}

void AddOperatorControl(Routes& r, agent::Agent& agent) {
  r.Add("POST", "/v1/cluster/switchover", [&agent](const HttpRequest& req) {
    json body;
    HttpAnswer bad;
    if (!ParseBody(req, &body, &bad)) return bad;
    std::string to;
    if (!StringField(body, "to", &to) ||
        (body.contains("at_ms") && !body["at_ms"].is_number_integer())) {
      return Json(400, {{"error", "\"to\" must be a node name and \"at_ms\" an integer"}});
    }
    return FromMessage(agent.RequestSwitchover(to, body.value("at_ms", int64_t{0})));
  });
  r.Add("POST", "/v1/cluster/failover", [&agent](const HttpRequest& req) {
    json body;
    HttpAnswer bad;
    if (!ParseBody(req, &body, &bad)) return bad;
    std::string to;
    if (!StringField(body, "to", &to) || to.empty() ||
        (body.contains("accept_data_loss") && !body["accept_data_loss"].is_boolean())) {
      return Json(400, {{"error",
                         "\"to\" (a node name) is required; \"accept_data_loss\" "
                         "must be true or false"}});
    }
    return FromMessage(agent.RequestFailover(to, body.value("accept_data_loss", false)));
  });
  r.Add("POST", "/v1/cluster/pause",
        [&agent](const HttpRequest&) { return FromMessage(agent.SetPaused(true)); });
  r.Add("POST", "/v1/cluster/resume",
        [&agent](const HttpRequest&) { return FromMessage(agent.SetPaused(false)); });
}

void AddReadsAndJoinGrant(Routes& r, agent::Agent& agent) {
  r.Add("GET", "/v1/status",
        [&agent](const HttpRequest&) { return Json(200, agent.StatusJson()); });
  r.Add("GET", "/v1/cluster/history", [&agent](const HttpRequest&) {
    auto h = agent.HistoryJson();
    return h ? Json(200, *h) : FromStatus(h.error());
  });
  r.Add("GET", "/v1/position",
        [&agent](const HttpRequest&) { return Json(200, agent.PositionJson()); });
  r.Add("POST", "/v1/internal/join", [&agent](const HttpRequest& req) {
    auto info = agent::DecodeNodeInfo(req.body);
    if (!info) return Json(400, {{"error", info.error().message()}});
    auto grant = agent.GrantJoin(*info);
    if (!grant) {
      return Json(HttpStatusFor(grant.error().code()), {{"error", grant.error().message()}});
    }
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

// POST /v1/cluster/switchover/cancel: no body, or {} (nothing here takes a
// field, so any is refused). Self-contained (its own body check and
// answers) so it does not depend on the other handlers' helpers.
void AddSwitchoverCancel(Routes& r, agent::Agent& agent) {
  r.Add("POST", "/v1/cluster/switchover/cancel", [&agent](const HttpRequest& req) {
    auto answer = [](int status, const json& body) {
      HttpAnswer a;
      a.status = status;
      a.body = body.dump(2) + "\n";
      return a;
    };
    const json body = req.body.empty() ? json::object()
                                       : json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (!body.is_object() || !body.empty()) {
      return answer(400, {{"error", body.is_object() ? "unknown field \"" + body.begin().key() +
                                                           "\": this request takes no fields"
                                                     : "the request body is not a JSON object"},
                          {"fix", "send an empty body or {}"},
                          {"code", "invalid argument"}});
    }
    auto done = agent.CancelSwitchover();
    if (!done) {
      return answer(
          HttpStatusFor(done.error().code()),
          {{"error", done.error().message()}, {"code", ErrorCodeName(done.error().code())}});
    }
    return answer(200, {{"result", "ok"}, {"message", *done}});
  });
}

}  // namespace

void AddApiRoutes(Routes& routes, agent::Agent& agent) {
  AddClusterCommands(routes, agent);
  AddOperatorControl(routes, agent);
  AddSwitchoverCancel(routes, agent);
  AddReadsAndJoinGrant(routes, agent);
}

void AddHealthRoutes(Routes& routes, agent::Agent& agent) {
  for (const char* path :
       {"/", "/health", "/liveness", "/readiness", "/primary", "/read-write", "/leader", "/master",
        "/replica", "/read-only", "/sync", "/synchronous", "/async", "/asynchronous"}) {
    std::string p = path;
    Handler handler = [&agent, p](const HttpRequest& req) {
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
