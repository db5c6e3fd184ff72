// The one line systemd shows for the agent (`systemctl status tandem`,
// "Status: ..."): the node's role as the health endpoints see it. Pure; the
// HA loop sends it through ServiceNotifier (base/notify.h) after each cycle,
// and only a change goes out.
#pragma once

#include <string>

#include "agent/agent.h"

namespace tandem::agent {

// "node1: primary", "node1: replica (synchronous)", "node1: replica",
// "node1: PostgreSQL running, not primary and not streaming",
// "node1: PostgreSQL stopped".
std::string ServiceStatusLine(const std::string& node, const Agent::Health& h);

// The line once the HA loop has ended.
std::string ServiceStatusLoopStopped(const std::string& node);

}  // namespace tandem::agent
