// The agent's REST API: operator commands, status, and health endpoints
// compatible with Patroni's (200 when true, 503 otherwise), so HAProxy and
// existing load-balancer checks work unchanged.
//
//   GET  /v1/status                  the status document (JSON)
//   POST /v1/cluster/initialize
//   POST /v1/cluster/join            {"address": "HOST:PORT"}
//   POST /v1/cluster/remove          {"node": "NAME" (optional), "force": false}
//   POST /v1/cluster/clear-error
//   POST /v1/internal/join           another node asks to join (NodeInfo JSON)
//   GET  /health /liveness /readiness /primary / /read-write /leader /replica /read-only
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "agent/agent.h"
#include "base/result.h"

namespace httplib {
class Server;
}

namespace tandem::api {

class ApiServer {
 public:
  explicit ApiServer(agent::Agent& agent);
  ~ApiServer();
  // Binds and serves in a background thread. Fails when the port is taken.
  Status Start(const std::string& host, int port);
  void Stop();

 private:
  agent::Agent& agent_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

// HTTP status for an error code (400, 404, 409, 503, 504, 500).
int HttpStatusFor(ErrorCode code);

}  // namespace tandem::api
