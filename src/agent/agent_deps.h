// What an Agent is built from besides its Config: the clock, the PostgreSQL
// controller and the store connector. `tandem agent` (src/cli/agent_command.cc)
// passes the real ones; a test passes fakes and drives the whole agent by hand.
//
// How a test builds an Agent (no real time, no etcd, no PostgreSQL):
//
//   ManualClock clock;
//   auto store = std::make_shared<dcs::MemoryDcs>(clock);   // shared by all agents
//   agent::Config cfg = ...;            // dcs.endpoints set (an external store:
//                                       // no embedded etcd member is started),
//                                       // vip off, tls off, state_dir a temp dir
//   agent::AgentDeps deps;
//   deps.clock = &clock;
//   deps.pg = std::make_unique<FakeController>(...);        // a pg::Controller
//   deps.connect_store = [store](const std::vector<std::string>&)
//       -> Result<std::shared_ptr<dcs::Dcs>> { return std::shared_ptr<dcs::Dcs>(store); };
//   deps.http = ...;  // optional: route /v1/position between test agents
//   agent::Agent a(cfg, std::move(deps));
//   a.Start();        // a member (local state says so) starts its loop threads
//   ... clock.Advance(ms) ...   // every wait of the agent's threads ends on it
//   a.Shutdown();
//
// On that path every time read and every wait of the agent goes through
// `clock`: the HA loop, the lease thread and the fence thread park in
// Clock::WaitUntil (ManualClock::Waiters counts them) and move only when the
// test advances the clock or something wakes them (a leader-key change, an
// operator request, Shutdown). Two things keep real-time waits of their own,
// outside the agent: the store's WaitForChange timeout (the watch thread) and
// HTTP timeouts (set deps.http to avoid the network). The fake controller's
// Pid() should return 0 (or a live process's pid): the fence thread wakes the
// loop when that process is gone.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/tls_files.h"
#include "base/clock.h"
#include "base/result.h"
#include "dcs/dcs.h"
#include "net/http_client.h"
#include "pg/controller.h"

namespace tandem::agent {

struct AgentDeps {
  // Required; main passes &SystemClock::Get(). Must outlive the Agent.
  const Clock* clock = nullptr;
  // Null: a pg::Postgres built from the config.
  std::unique_ptr<pg::Controller> pg;
  // Connects the store at these endpoints; null: the etcd client (EtcdDcs
  // with the agent's timeouts and TLS client pair).
  using ConnectStore =
      std::function<Result<std::shared_ptr<dcs::Dcs>>(const std::vector<std::string>&)>;
  ConnectStore connect_store;
  // The agent's HTTP calls to other agents (join, positions before a
  // promotion); null: net::HttpCall (net/http_client.h).
  using Http =
      std::function<Result<net::HttpResponse>(const std::string& method, const std::string& url,
                                              const std::string& body, int64_t timeout_ms)>;
  Http http;
};

}  // namespace tandem::agent
