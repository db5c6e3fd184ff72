// The role line for systemd's status (service_status.h). Pure.
#include "agent/service_status.h"

namespace tandem::agent {

std::string ServiceStatusLine(const std::string& node, const Agent::Health& h) {
  if (h.primary) return node + ": primary";
  if (h.replica) return node + (h.sync_standby ? ": replica (synchronous)" : ": replica");
  if (h.running) return node + ": PostgreSQL running, not primary and not streaming";
  return node + ": PostgreSQL stopped";
}

std::string ServiceStatusLoopStopped(const std::string& node) {
  return node + ": HA loop stopped (not a cluster member, joining, or shutting down)";
}

}  // namespace tandem::agent
