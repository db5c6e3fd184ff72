// The line `systemctl status tandem` shows (agent/service_status.h): the
// node's role as the health endpoints judge it.
#include "agent/service_status.h"

#include <gtest/gtest.h>

namespace tandem::agent {
namespace {

TEST(ServiceStatus, NamesTheRoleAsTheHealthEndpointsSeeIt) {
  Agent::Health h;
  EXPECT_EQ(ServiceStatusLine("node1", h), "node1: PostgreSQL stopped");
  h.running = true;
  EXPECT_EQ(ServiceStatusLine("node1", h),
            "node1: PostgreSQL running, not primary and not streaming");
  h.replica = true;
  EXPECT_EQ(ServiceStatusLine("node1", h), "node1: replica");
  h.sync_standby = true;
  EXPECT_EQ(ServiceStatusLine("node1", h), "node1: replica (synchronous)");
  h = Agent::Health{};
  h.running = true;
  h.primary = true;
  EXPECT_EQ(ServiceStatusLine("node2", h), "node2: primary");
}

TEST(ServiceStatus, TheLagIsNotPartOfTheLineSoItChangesOnlyWithTheRole) {
  Agent::Health a, b;
  a.running = b.running = true;
  a.replica = b.replica = true;
  a.lag_bytes = 0;
  b.lag_bytes = 123456;
  EXPECT_EQ(ServiceStatusLine("node3", a), ServiceStatusLine("node3", b));
}

}  // namespace
}  // namespace tandem::agent
