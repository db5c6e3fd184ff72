// `tandem agent -c FILE`: the node agent in the foreground (its command-line
// registration and its run: the wiring of the agent, the proxy and the API).
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "agent/agent.h"
#include "agent/tls_files.h"
#include "api/server.h"
#include "base/log.h"
#include "base/notify.h"
#include "base/process.h"
#include "cli/commands.h"
#include "cli/registry.h"
#include "net/http_client.h"
#include "proxy/proxy.h"

namespace tandem::cli {

void RegisterAgentCommands(CLI::App& app, Context& ctx) {
  auto* agent =
      app.add_subcommand("agent", "run the node agent in the foreground (systemd runs this)");
  agent->add_option("-c,--config", ctx.config, "the node's config file")->capture_default_str();
  auto check = std::make_shared<bool>(false);
  agent->add_flag("--check-config", *check,
                  "load and check the config file and the TLS files it names, then exit "
                  "(0: it would start; 2: the first problem is printed); starts nothing");
  ctx.Handle(agent, [&ctx, check] {
    return *check ? CheckAgentConfig(ctx.clock, ctx.config) : RunAgent(ctx.clock, ctx.config);
  });
}

int CheckAgentConfig(const Clock& clock, const std::string& config_path) {
  auto cfg = agent::LoadConfig(config_path);
  if (!cfg) {
    std::fprintf(stderr, "ERROR : %s\n", cfg.error().message().c_str());
    return 2;
  }
  if (auto st = agent::ValidateTlsFiles(*cfg, clock.WallSeconds()); !st.ok()) {
    std::fprintf(stderr, "ERROR : %s\n", st.error().message().c_str());
    return 2;
  }
  std::printf("%s: OK (node %s of cluster %s, state directory %s)\n", cfg->path.c_str(),
              cfg->node_name.c_str(), cfg->cluster.c_str(), cfg->state_dir.c_str());
  return 0;
}

int RunAgent(const Clock& clock, const std::string& config_path) {
  auto cfg = agent::LoadConfig(config_path);
  if (!cfg) {
    std::fprintf(stderr, "ERROR : %s\n", cfg.error().message().c_str());
    return 2;
  }
  // Bad certificates refuse the start before anything runs (no fence guard,
  // proxy, etcd or PostgreSQL is touched).
  if (auto st = agent::ValidateTlsFiles(*cfg, clock.WallSeconds()); !st.ok()) {
    std::fprintf(stderr, "ERROR : %s; nothing was started: start the agent again once fixed\n",
                 st.error().message().c_str());
    return 2;
  }
  // systemd's Type=notify socket and watchdog, taken before any child can
  // inherit them. The HA loop feeds the watchdog (base/notify.h).
  ServiceNotifier& service = ServiceNotifier::Process();
  service.Configure(TakeNotifySocket(), TakeWatchdogMs());
  log::SetNode(cfg->node_name);
  log::SetLevel(cfg->log_level == "debug"   ? log::Level::kDebug
                : cfg->log_level == "warn"  ? log::Level::kWarn
                : cfg->log_level == "error" ? log::Level::kError
                                            : log::Level::kInfo);
  // PID 1 does not reap orphans here: adopt and reap what our children leave.
  BecomeSubreaper();
  // Signals are taken synchronously by this thread only.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // Forked before any thread exists: it fences PostgreSQL if this process dies.
  auto guard = agent::FenceGuard::Start(clock, cfg->pg_data_dir, cfg->vip);
  if (!guard) {
    TLOG(Error, "agent") << "cannot start the fence guard: " << guard.error().message();
    return 1;
  }
  // One agent per node, checked before any listener opens (a second agent
  // must not take half of the proxy's or the API's connections). After the
  // guard's fork: the guard must not hold the lock (a restarted agent may
  // start while the old guard still waits for its deadline).
  auto node_lock = agent::NodeLock::Acquire(cfg->state_dir);
  if (!node_lock) {
    std::fprintf(stderr, "ERROR : %s\n", node_lock.error().message().c_str());
    return 2;
  }
  // The client endpoint, when a proxy port is configured. Declared before the
  // agent so it outlives the agent's loop, which hands it a route every cycle;
  // until the first route it refuses every connection (fail closed).
  std::unique_ptr<proxy::Proxy> client_proxy;
  if (cfg->proxy_enabled()) {
    proxy::Options po;
    po.listen_address = cfg->proxy_listen_address();
    po.read_write_port = cfg->proxy_rw_port;
    po.read_only_port = cfg->proxy_ro_port;
    po.max_connections = cfg->proxy_max_connections;
    po.idle_timeout_ms = cfg->proxy_idle_timeout_ms;
    po.connect_timeout_ms = cfg->proxy_connect_timeout_ms;
    po.threads = cfg->proxy_threads;
    client_proxy = std::make_unique<proxy::Proxy>(po, clock);
    if (auto st = client_proxy->Start(); !st.ok()) {
      TLOG(Error, "agent") << "cannot start the proxy: " << st.error().message();
      return 1;
    }
  }
  // The private copies: made by agent.Start() before any connection, and
  // replaced on a certificate rotation, which new connections then use.
  net::SetHttpClientTls(agent::AgentClientTls(*cfg));
  agent::AgentDeps deps;
  deps.clock = &clock;
  agent::Agent agent(*cfg, std::move(deps));
  agent.SetFenceGuard(std::move(*guard));
  agent.AdoptNodeLock(std::move(*node_lock));
  if (client_proxy) {
    agent.SetRouteSink([p = client_proxy.get()](const core::Route& r) { p->SetRoute(r); });
  }
  api::ApiServer api(agent);
  agent.SetTlsReloadHook([&api, &cfg] {
    if (auto st = api.ReloadTls(api::ApiTlsFor(*cfg)); !st.ok()) {
      TLOG(Warn, "api") << st.error().message();
    }
  });
  // The agent's state is loaded before the API answers, so no request sees a
  // half-started agent.
  if (auto st = agent.Start(); !st.ok()) {
    TLOG(Error, "agent") << "cannot start: " << st.error().message();
    agent.Shutdown();
    return 1;
  }
  if (auto st =
          api.Start(cfg->api_listen, cfg->api_port, api::ApiTlsFor(*cfg), cfg->api_health_port);
      !st.ok()) {
    TLOG(Error, "agent") << st.error().message();
    agent.Shutdown();
    return 1;
  }
  TLOG(Info, "agent") << "agent for node " << cfg->node_name << " running (config " << cfg->path
                      << ")";
  // Serving: systemd (Type=notify) counts the service as started now.
  service.Send("READY=1");
  service.SetStatus(cfg->node_name + ": serving the API on " + cfg->api_url());
  while (true) {
    struct timespec ts {
      1, 0
    };
    int sig = sigtimedwait(&set, nullptr, &ts);
    ReapChildren();
    service.Tick(clock.Now());
    if (sig == SIGTERM || sig == SIGINT) {
      TLOG(Info, "agent") << "signal " << sig << ": shutting down";
      service.Send("STOPPING=1");
      break;
    }
  }
  api.Stop();
  agent.Shutdown();
  if (client_proxy) client_proxy->Stop();
  TLOG(Info, "agent") << "stopped";
  return 0;
}

}  // namespace tandem::cli
