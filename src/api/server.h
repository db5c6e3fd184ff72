// The agent's REST API server: the listeners, TLS, and the client
// certificate rule; the routes and their handlers are routes.cc's. Operator
// commands, status, and health endpoints compatible with Patroni's (200 when
// true, 503 otherwise), so HAProxy and existing load-balancer checks work
// unchanged.
//
//   GET  /v1/status                  the status document (JSON)
//   GET  /metrics                    Prometheus text (api/metrics.h)
//   POST /v1/cluster/initialize
//   POST /v1/cluster/join            {"address": "HOST:PORT"}
//   POST /v1/cluster/remove          {"node": "NAME" (required), "force": false}
//   POST /v1/cluster/clear-error     {"node": "NAME" (required: this node's name)}
//   POST /v1/internal/join           another node asks to join (NodeInfo JSON)
//   GET  /health /liveness /readiness /primary / /read-write /leader /replica /read-only
// (every body and query checked by its route's schema: routes.h, ApiRequestSchemas)
//
// With TLS (ApiTls::enabled) the API is HTTPS with the node's server pair. A
// client certificate is asked for but not required by the handshake: reads
// (GET, HEAD, OPTIONS) need none; every other request changes something and is
// refused unless its certificate chains to the cluster CA (401 with none, 403
// with one the CA did not sign), with a JSON error that says so. An optional
// second listener (health_port) serves only the health endpoints over plain
// HTTP, for load balancers (and GET /metrics, on a worker of its own, when
// api.health_port_metrics is set: for scrapers without a client certificate).
//
// Transport (http_server.h): each listener is an event loop with its own
// thread, deadlines (head within 1 s of the accept, TLS handshake included)
// and connection caps (per client address and in total). The API's handlers
// run on 4 workers with a bounded queue; the health endpoints run on the
// event threads (they never block), so a busy or flooded API never delays a
// load balancer's check on either port.
//
// The dashboard (ui_routes.h) is on the API's port under /ui/; its paths do
// their own authorisation (a client certificate or a login, and a CSRF
// token), so the client certificate rule leaves them to it.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "agent/agent.h"
#include "agent/config.h"
#include "api/http_server.h"
#include "api/http_types.h"
#include "api/ui_auth.h"
#include "base/clock.h"
#include "base/result.h"

namespace tandem::api {

struct ApiTls {
  bool enabled = false;
  std::string cert_file, key_file;  // the node's server pair
  std::string ca_file;              // the cluster CA: client certificates must chain to it
};
// The node's server pair and CA when it has a tls section: the agent's
// private copies in <state_dir>/tls (made by Agent::Start).
ApiTls ApiTlsFor(const agent::Config& cfg);

struct Refusal {
  int http_status = 0;  // 401 (no certificate) or 403 (not one the CA signed)
  std::string error;    // names what is missing and how to fix it
};
// Whether a request may go on (pure). Reads (GET, HEAD, OPTIONS) always may;
// anything else changes something and needs a verified client certificate,
// except under /ui/ (the dashboard's own checks: ui_routes.h).
bool ChangesSomething(const std::string& method);
std::optional<Refusal> CheckClientCertificate(const std::string& method, const std::string& path,
                                              const ClientCertificate& cert);

class ApiServer {
 public:
  // Every deadline of the listeners comes from the agent's clock.
  explicit ApiServer(agent::Agent& agent);
  ~ApiServer();
  // Binds and serves in background threads: the API on host:port (HTTPS when
  // tls.enabled) and, when health_port > 0, the plain-HTTP health endpoints
  // on host:health_port. Fails when a port is taken or the TLS files do not
  // load (the message names the file).
  Status Start(const std::string& host, int port, const ApiTls& tls = {}, int health_port = 0);
  void Stop();
  // Certificate rotation: loads the pair and CA again (the same paths, new
  // content) for every handshake from now on; connections already open keep
  // theirs. On failure (the message names the file) the current ones stay.
  Status ReloadTls(const ApiTls& tls);
  struct TlsContexts;  // the handshake's current context (server.cc)

 private:
  agent::Agent& agent_;
  const Clock& clock_;
  std::unique_ptr<Routes> api_routes_;             // routes.h: the API's, health ones included
  std::unique_ptr<Routes> health_routes_;          // the health port's
  std::unique_ptr<Routes> health_metrics_routes_;  // GET /metrics there (api.health_port_metrics)
  std::unique_ptr<TlsContexts> tls_;
  std::unique_ptr<UiAuth> ui_auth_;  // the dashboard's sessions (ui_auth.h)
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<HttpServer> health_server_;
};

}  // namespace tandem::api
