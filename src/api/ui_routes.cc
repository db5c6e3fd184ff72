// The dashboard's handlers (ui_routes.h): the compiled-in files, the session
// document, login and logout, and the four actions handed to the API's own
// routes after the dashboard's authorisation and CSRF checks. Runs on the
// API's workers; touches the agent only through the routes it forwards to.
#include "api/ui_routes.h"

#include <nlohmann/json.hpp>

#include "api/request_schema.h"
#include "api/ui_assets.h"
#include "base/log.h"
#include "base/strings.h"

namespace tandem::api {
using nlohmann::json;

namespace {

HttpAnswer UiJson(int status, const json& body) {
  HttpAnswer a;
  a.status = status;
  a.body = body.dump(2) + "\n";
  a.headers.emplace_back("Cache-Control", "no-store");
  AddUiSecurityHeaders(a);
  return a;
}

HttpAnswer UiError(int status, const std::string& what, const std::string& fix,
                   const std::string& code) {
  HttpAnswer a = JsonError(status, what, fix, code);
  a.headers.emplace_back("Cache-Control", "no-store");
  AddUiSecurityHeaders(a);
  return a;
}

HttpAnswer AssetAnswer(const UiAsset& asset) {
  HttpAnswer a;
  a.content_type = asset.content_type;
  a.body = std::string(asset.body);
  // Revalidated on every load: a new binary serves new files at once.
  a.headers.emplace_back("Cache-Control", "no-cache");
  AddUiSecurityHeaders(a);
  return a;
}

std::string SessionCookie(const std::string& token, MonoMs max_age_ms) {
  return std::string(kUiSessionCookie) + "=" + token +
         "; Path=/ui/; HttpOnly; Secure; SameSite=Strict; Max-Age=" +
         std::to_string(max_age_ms / 1000);
}

// Who is asking: a verified client certificate, a live session, or nobody.
struct Caller {
  std::string via;   // "certificate", "login" or ""
  std::string user;  // the certificate's subject or the login's user
  std::string csrf;  // the token its actions must carry
  std::string token;
  MonoMs expires_at = 0;
};

Caller Identify(const HttpRequest& req, UiAuth& auth) {
  Caller c;
  if (req.client_cert.presented && req.client_cert.verified) {
    c.via = "certificate";
    c.user = req.client_cert.subject;
    c.csrf = auth.CertificateCsrf(req.client_cert.subject);
    return c;
  }
  c.token = UiCookie(req, kUiSessionCookie);
  if (auto s = auth.Find(c.token)) {
    c.via = "login";
    c.user = s->user;
    c.csrf = s->csrf;
    c.expires_at = s->expires_at;
  }
  return c;
}

// The checks every POST of the dashboard passes first: its size and a JSON
// Content-Type (a cross-site form cannot send one).
std::optional<HttpAnswer> CheckPost(const HttpRequest& req) {
  if (req.body.size() > kUiMaxPostBody) {
    return UiError(413, "the request body is over 4096 bytes",
                   "send the small JSON body the "
                   "dashboard sends",
                   "too large");
  }
  auto ct = req.headers.find("content-type");
  if (ct == req.headers.end() || !StartsWith(ToLower(ct->second), "application/json")) {
    return UiError(415, "the dashboard's calls take a JSON body (Content-Type: application/json)",
                   "send Content-Type: application/json", "unsupported media type");
  }
  return std::nullopt;
}

// Authorisation and CSRF for a change: nullopt when the caller may act.
std::optional<HttpAnswer> CheckMayAct(const HttpRequest& req, const Caller& c) {
  if (c.via.empty()) {
    if (req.client_cert.presented) {
      return UiError(403,
                     "the client certificate '" + req.client_cert.subject + "' was not accepted (" +
                         req.client_cert.problem + "); nothing was changed",
                     "use a certificate signed by the cluster CA, or log in", "forbidden");
    }
    return UiError(401,
                   "this action changes the cluster and needs a client certificate of the cluster "
                   "CA or a dashboard login; nothing was changed",
                   "log in (ui.users) or present the node's client certificate", "unauthorized");
  }
  auto h = req.headers.find("x-csrf-token");
  if (h == req.headers.end() || !UiSameSecret(h->second, c.csrf)) {
    return UiError(403, "the X-CSRF-Token header is missing or wrong; nothing was changed",
                   "reload the dashboard (it reads the token from /ui/api/session)", "csrf");
  }
  return std::nullopt;
}

json SessionDoc(const Caller& c, UiAuth& auth, agent::Agent& agent, const Routes& routes,
                bool tls) {
  const MonoMs now = agent.clock().Now();
  json j = {{"node", agent.config().node_name},
            {"tls", tls},
            {"login_enabled", auth.login_enabled() && tls},
            {"authenticated", !c.via.empty()},
            {"via", c.via},
            {"user", c.user},
            {"csrf", c.csrf},
            {"events", routes.Find("GET", "/v1/events").handler != nullptr}};
  if (c.via == "login") j["expires_in_ms"] = c.expires_at - now;
  return j;
}

HttpAnswer Login(const HttpRequest& req, UiAuth& auth, bool tls) {
  static const RequestSchema schema{
      "POST",
      "/ui/api/login",
      {{"user", JsonType::kString, true, StringCheck::kAny, 0, 0, "a user of ui.users"},
       {"password", JsonType::kString, true, StringCheck::kAny, 0, 0, "its password"}},
      {},
      R"({"user": "admin", "password": "..."})"};
  if (auto bad = CheckPost(req)) return *bad;
  if (!tls) {
    return UiError(403, "the dashboard's login needs the API over HTTPS (a tls section)",
                   "configure TLS, or use the CLI", "login needs https");
  }
  if (!auth.login_enabled()) {
    return UiError(403, "no dashboard users are configured (ui.users)",
                   "add users with hashes from `tandem ui hash-password`", "login disabled");
  }
  json body;
  if (auto bad = CheckRequest(schema, req, &body)) {
    AddUiSecurityHeaders(*bad);
    return *bad;
  }
  std::string token;
  UiSession s;
  switch (auth.Login(body["user"], body["password"], &token, &s)) {
    case UiAuth::LoginResult::kBusy: {
      HttpAnswer a =
          UiError(429, "another login is being checked", "try again in a second", "busy");
      a.headers.emplace_back("Retry-After", "1");
      return a;
    }
    case UiAuth::LoginResult::kRefused:
      return UiError(401, "wrong user or password", "check both and try again", "login refused");
    case UiAuth::LoginResult::kOk:
      break;
  }
  HttpAnswer a =
      UiJson(200, {{"user", s.user}, {"csrf", s.csrf}, {"expires_in_ms", auth.session_ms()}});
  a.headers.emplace_back("Set-Cookie", SessionCookie(token, auth.session_ms()));
  return a;
}

void AddAssets(Routes& r) {
  r.Add("GET", "/ui", [](const HttpRequest&) {
    HttpAnswer a;
    a.status = 308;
    a.content_type = "text/plain";
    a.body = "/ui/\n";
    a.headers.emplace_back("Location", "/ui/");
    return a;
  });
  for (size_t i = 0; i < kUiAssetCount; ++i) {
    const UiAsset& asset = kUiAssets[i];
    const std::string name = asset.name;
    r.Add("GET", name == "index.html" ? "/ui/" : "/ui/" + name,
          [&asset](const HttpRequest&) { return AssetAnswer(asset); });
  }
}

void AddActions(Routes& r, UiAuth& auth) {
  for (const char* action : {"switchover", "pause", "resume", "clear-error"}) {
    const std::string target = std::string("/v1/cluster/") + action;
    r.Add("POST", std::string("/ui/api/") + action, [&r, &auth, target](const HttpRequest& req) {
      if (auto bad = CheckPost(req)) return *bad;
      const Caller c = Identify(req, auth);
      if (auto bad = CheckMayAct(req, c)) return *bad;
      auto m = r.Find("POST", target);
      if (m.handler == nullptr) {
        return UiError(404, "no route " + target, "", "not found");
      }
      TLOG(Info, "api") << "dashboard: " << target << " by " << c.via << " " << c.user;
      HttpRequest forwarded = req;
      forwarded.path = target;
      forwarded.query.clear();
      HttpAnswer a = (*m.handler)(forwarded);
      a.headers.emplace_back("Cache-Control", "no-store");
      AddUiSecurityHeaders(a);
      return a;
    });
  }
}

}  // namespace

void AddUiSecurityHeaders(HttpAnswer& a) {
  a.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; script-src 'self'; style-src 'self'; "
                         "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                         "form-action 'none'; frame-ancestors 'none'");
  a.headers.emplace_back("X-Content-Type-Options", "nosniff");
  a.headers.emplace_back("X-Frame-Options", "DENY");
  a.headers.emplace_back("Referrer-Policy", "no-referrer");
}

std::string UiCookie(const HttpRequest& req, const std::string& name) {
  auto h = req.headers.find("cookie");
  if (h == req.headers.end()) return "";
  for (std::string part : Split(h->second, ';')) {
    part = Trim(part);
    if (StartsWith(part, name + "=")) return part.substr(name.size() + 1);
  }
  return "";
}

const UiAsset* FindUiAsset(std::string_view name) {
  for (size_t i = 0; i < kUiAssetCount; ++i) {
    if (name == kUiAssets[i].name) return &kUiAssets[i];
  }
  return nullptr;
}

void AddUiRoutes(Routes& routes, agent::Agent& agent, UiAuth& auth, bool tls) {
  AddAssets(routes);
  routes.Add("GET", "/ui/api/session", [&routes, &auth, &agent, tls](const HttpRequest& req) {
    return UiJson(200, SessionDoc(Identify(req, auth), auth, agent, routes, tls));
  });
  routes.Add("POST", "/ui/api/login",
             [&auth, tls](const HttpRequest& req) { return Login(req, auth, tls); });
  routes.Add("POST", "/ui/api/logout", [&auth](const HttpRequest& req) {
    if (auto bad = CheckPost(req)) return *bad;
    const Caller c = Identify(req, auth);
    if (c.via != "login") return UiError(401, "not logged in", "", "unauthorized");
    if (auto bad = CheckMayAct(req, c)) return *bad;
    auth.Logout(c.token);
    HttpAnswer a = UiJson(200, {{"result", "ok"}});
    a.headers.emplace_back("Set-Cookie", SessionCookie("", 0));
    return a;
  });
  AddActions(routes, auth);
}

}  // namespace tandem::api
