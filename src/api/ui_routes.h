// The dashboard's routes (docs/dashboard.md), added to the API's table:
//   GET  /ui  -> 308 to /ui/
//   GET  /ui/ /ui/app.js /ui/app.css    the compiled-in files (ui_assets.h);
//        any other path under /ui/ (../, %2e%2e, unknown names) is the table's 404
//   GET  /ui/api/session                who this browser is: via its client
//        certificate, its login session or neither; the CSRF token of its actions
//   POST /ui/api/login   {"user", "password"}   opens a session (HTTPS only)
//   POST /ui/api/logout
//   POST /ui/api/{switchover,pause,resume,clear-error}   the same body as the
//        API's /v1/cluster/<action>, handed to that route's own handler
// The page reads the cluster with the API's own read-only GETs (/v1/status,
// /v1/cluster/history, /v1/alarms, /v1/events), so the read-only view follows
// GET /v1/status's rule. An action needs what the API's write calls need, a
// client certificate signed by the cluster CA, or a login session; and in
// both cases the X-CSRF-Token header of that certificate or session and a
// JSON Content-Type. Refusals: 401 (neither), 403 (a wrong CSRF token, a
// certificate the CA did not sign), 415, 400; nothing is changed.
// The server's client-certificate rule (server.cc) leaves paths under /ui/
// to these handlers. Runs on the API's workers.
#pragma once

#include "agent/agent.h"
#include "api/http_types.h"
#include "api/ui_auth.h"

namespace tandem::api {

// The headers every dashboard answer carries: a Content-Security-Policy with
// no inline script or style and nothing from elsewhere, no framing, no
// sniffing, no referrer.
void AddUiSecurityHeaders(HttpAnswer& a);

// Adds the dashboard's routes to `routes` (which must already hold the API's
// routes: actions are handed to them, and whether GET /v1/events exists is
// read from it). `tls`: the API is HTTPS (a login needs it).
void AddUiRoutes(Routes& routes, agent::Agent& agent, UiAuth& auth, bool tls);

// The value of cookie `name` in a Cookie header ("" when absent).
std::string UiCookie(const HttpRequest& req, const std::string& name);

inline constexpr const char* kUiSessionCookie = "tandem_session";
inline constexpr size_t kUiMaxPostBody = 4096;  // login and action bodies

}  // namespace tandem::api
