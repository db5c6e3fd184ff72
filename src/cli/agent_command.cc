// `tandem agent -c FILE`: the node agent in the foreground (its command-line
// registration and its run: the wiring of the agent, the proxy and the API),
// what a stop signal means (--on-sigterm: stop the node, or leave it running
// for a restart), a reload in place (SIGHUP or `tandem agent reload`: the
// same process executes the binary again, PostgreSQL, etcd and the lease
// kept), `tandem agent stop` (stop the node through its agent) and
// `--check-config`.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <tuple>

#include "agent/agent.h"
#include "agent/tls_files.h"
#include "api/server.h"
#include "base/file.h"
#include "base/log.h"
#include "base/notify.h"
#include "base/process.h"
#include "base/reexec.h"
#include "base/resident.h"
#include "base/strings.h"
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
  auto on_sigterm = std::make_shared<std::string>("stop");
  agent
      ->add_option("--on-sigterm", *on_sigterm,
                   "what SIGTERM (and SIGINT) mean: 'stop' stops the node (PostgreSQL, etcd; the "
                   "leader key released), 'restart' leaves PostgreSQL and etcd running for the "
                   "next agent, which adopts them without a failover (the unit uses this; "
                   "`tandem agent stop` stops the node either way; also from $TANDEM_ON_SIGTERM)")
      ->envname("TANDEM_ON_SIGTERM")
      ->check(CLI::IsMember({"stop", "restart"}))
      ->capture_default_str();
  agent->footer(
      "Restart and stop: with --on-sigterm=restart (the systemd unit), SIGTERM (systemctl restart "
      "or stop) leaves PostgreSQL, the etcd member and the fence guard running; the next agent "
      "adopts them and renews the leader key's lease, so the primary keeps its key, timeline and "
      "postmaster. If no agent comes back within dcs.ttl - dcs.safety_margin, the fence guard "
      "stops a primary's PostgreSQL and a replica takes over. SIGHUP (`tandem agent reload`, "
      "`systemctl reload tandem`) does the same within one process: the agent executes the "
      "binary at its path again (an upgraded package's), after checking that it starts. To stop "
      "the node itself, run `tandem agent stop -c FILE` (the unit's ExecStop): a switchover "
      "first on the primary when a healthy replica exists, then PostgreSQL and etcd stop and "
      "the agent exits.");
  auto* stop = agent->add_subcommand(
      "stop",
      "stop this node: tell its running agent to switch over first when it is the primary and "
      "a healthy replica exists, stop PostgreSQL and etcd, and exit; waits until it has");
  stop->add_option("-c,--config", ctx.config, "the node's config file")->capture_default_str();
  auto* reload = agent->add_subcommand(
      "reload",
      "restart this node's agent in place without a failover: the running agent checks the "
      "binary now at its path (`--check-config` with it), then executes it as the same process; "
      "PostgreSQL, the etcd member and the leader key's lease are kept (`systemctl reload "
      "tandem` and a package upgrade run this); waits until the new agent serves");
  reload->add_option("-c,--config", ctx.config, "the node's config file")->capture_default_str();
  auto reload_timeout = std::make_shared<int>(120);
  reload->add_option("--timeout", *reload_timeout, "seconds to wait for the new agent to serve")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  // Registered before `agent`'s own handler: the first that matches runs.
  ctx.Handle(stop, [&ctx] { return StopAgent(ctx.clock, ctx.config); });
  ctx.Handle(reload, [&ctx, reload_timeout] {
    return ReloadAgent(ctx.clock, ctx.config, int64_t{*reload_timeout} * 1000);
  });
  ctx.Handle(agent, [&ctx, check, on_sigterm] {
    return *check ? CheckAgentConfig(ctx.clock, ctx.config)
                  : RunAgent(ctx.clock, ctx.config, *on_sigterm == "restart");
  });
}

namespace {

// The pid of the agent that holds `cfg`'s node lock: 0 with a line printed
// when none runs (*rc = 0), or -1 with the error printed (*rc = 1 or 2).
pid_t RunningAgent(const agent::Config& cfg, int* rc) {
  const std::string lock_file = cfg.state_dir + "/" + agent::NodeLock::kFileName;
  if (::access(lock_file.c_str(), F_OK) != 0) {
    // Never started here (and nothing is created by asking).
    std::printf("no agent runs for node %s (no %s)\n", cfg.node_name.c_str(), lock_file.c_str());
    *rc = 0;
    return 0;
  }
  {
    // Free: no agent runs for this node.
    auto probe = agent::NodeLock::Acquire(cfg.state_dir);
    if (probe) {
      std::printf("no agent runs for node %s (%s is not locked)\n", cfg.node_name.c_str(),
                  lock_file.c_str());
      *rc = 0;
      return 0;
    }
    if (probe.error().code() != ErrorCode::kFailedPrecondition) {
      std::fprintf(stderr, "ERROR : %s\n", probe.error().message().c_str());
      *rc = 1;
      return -1;
    }
  }
  auto text = ReadFile(lock_file);
  auto pid = text ? ParseInt(Trim(Split(*text, '\n')[0])) : std::nullopt;
  if (!pid || *pid <= 1 || !IsAlive(static_cast<pid_t>(*pid))) {
    std::fprintf(stderr, "ERROR : %s is locked but names no live agent; try again in a moment\n",
                 lock_file.c_str());
    *rc = 1;
    return -1;
  }
  return static_cast<pid_t>(*pid);
}

// This node's agent's status, read the way `tandem cluster status` reads it.
std::optional<nlohmann::json> LocalStatus(const agent::Config& cfg, int64_t timeout_ms) {
  net::SetHttpClientTls(agent::ClientTlsFor(cfg));
  auto r = net::HttpCall("GET", cfg.api_url() + "/v1/status", "", timeout_ms);
  if (!r || r->status != 200) return std::nullopt;
  try {
    return nlohmann::json::parse(r->body);
  } catch (...) {
    return std::nullopt;
  }
}

}  // namespace

int StopAgent(const Clock& clock, const std::string& config_path) {
  auto cfg = agent::LoadConfig(config_path);
  if (!cfg) {
    std::fprintf(stderr, "ERROR : %s\n", cfg.error().message().c_str());
    return 2;
  }
  int rc = 0;
  const pid_t pid = RunningAgent(*cfg, &rc);
  if (pid <= 0) {
    if (pid == 0) std::printf("nothing to stop\n");
    return rc;
  }
  if (::kill(pid, kStopNodeSignal) != 0) {
    std::fprintf(stderr, "ERROR : cannot signal the agent (pid %lld): %s\n",
                 static_cast<long long>(pid), std::strerror(errno));
    return 1;
  }
  std::printf("stopping node %s: agent pid %lld (a switchover first if it is the primary)...\n",
              cfg->node_name.c_str(), static_cast<long long>(pid));
  std::fflush(stdout);
  if (!WaitForExit(pid, 300'000, clock)) {
    std::fprintf(stderr, "ERROR : the agent (pid %lld) did not exit within 300 s; see its log\n",
                 static_cast<long long>(pid));
    return 1;
  }
  std::printf("node %s stopped\n", cfg->node_name.c_str());
  return 0;
}

int ReloadAgent(const Clock& clock, const std::string& config_path, int64_t timeout_ms) {
  auto cfg = agent::LoadConfig(config_path);
  if (!cfg) {
    std::fprintf(stderr, "ERROR : %s\n", cfg.error().message().c_str());
    return 2;
  }
  int rc = 0;
  const pid_t pid = RunningAgent(*cfg, &rc);
  if (pid <= 0) {
    if (pid == 0) {
      std::printf("nothing to reload: start it (systemctl start tandem, or tandem agent -c %s)\n",
                  cfg->path.c_str());
    }
    return rc;
  }
  auto before = LocalStatus(*cfg, 10'000);
  if (!before || before->value("agent_pid", 0) != pid) {
    std::fprintf(stderr,
                 "ERROR : the agent (pid %lld) does not answer at %s/v1/status; nothing was "
                 "changed: reload it once it serves, or see its log\n",
                 static_cast<long long>(pid), cfg->api_url().c_str());
    return 1;
  }
  const std::string old_image = before->value("agent_image", "");
  auto refusals = [](const nlohmann::json& st) {
    auto it = st.find("agent_reload");
    return it != st.end() && it->is_object() ? it->value("refused", 0) : 0;
  };
  const int refused_before = refusals(*before);
  if (::kill(pid, SIGHUP) != 0) {
    std::fprintf(stderr, "ERROR : cannot signal the agent (pid %lld): %s\n",
                 static_cast<long long>(pid), std::strerror(errno));
    return 1;
  }
  std::printf(
      "reloading node %s: agent pid %lld executes its binary again (PostgreSQL and etcd "
      "keep running)...\n",
      cfg->node_name.c_str(), static_cast<long long>(pid));
  std::fflush(stdout);
  const MonoMs until = clock.Now() + timeout_ms;
  while (clock.Now() < until) {
    if (!IsAlive(pid)) {
      std::fprintf(stderr,
                   "ERROR : the agent (pid %lld) exited during the reload; see its log (if "
                   "nothing starts it again within the lease, the primary's fence guard stops "
                   "PostgreSQL and a replica takes over)\n",
                   static_cast<long long>(pid));
      return 1;
    }
    auto now = LocalStatus(*cfg, 2'000);
    if (now && now->value("agent_image", "") == old_image && refusals(*now) > refused_before) {
      std::fprintf(stderr,
                   "ERROR : the agent (pid %lld) refused the reload and goes on unchanged: %s\n",
                   static_cast<long long>(pid), (*now)["agent_reload"].value("error", "").c_str());
      return 1;
    }
    if (now && now->value("agent_pid", 0) == pid && now->value("agent_image", "") != old_image) {
      std::printf("node %s reloaded: agent pid %lld now runs %s\n", cfg->node_name.c_str(),
                  static_cast<long long>(pid), now->value("agent_version", "?").c_str());
      return 0;
    }
    clock.SleepFor(200);
  }
  std::fprintf(stderr,
               "ERROR : agent pid %lld did not serve as a new image within %lld s: the binary "
               "at its path may have failed its check (the agent log says why; the old agent "
               "then goes on)\n",
               static_cast<long long>(pid), static_cast<long long>(timeout_ms / 1000));
  return 1;
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

namespace {

log::Level LogLevel(const std::string& name) {
  return name == "debug"   ? log::Level::kDebug
         : name == "warn"  ? log::Level::kWarn
         : name == "error" ? log::Level::kError
                           : log::Level::kInfo;
}

// log.target, log.file, log.syslog_facility (docs/logging.md): "" or why the
// target cannot be used.
std::string ConfigureLogTarget(const agent::Config& cfg) {
  log::Sink sink;
  (void)log::ParseTarget(cfg.log_target, &sink.target);  // validated when the file loaded
  sink.file = cfg.log_file;
  sink.syslog_facility = log::ParseFacility(cfg.log_syslog_facility);
  return log::SetSink(sink);
}

// Signals are taken synchronously by this thread only: SIGTERM, SIGINT,
// SIGHUP and the stop-the-node signal blocked (the returned set), SIGPIPE
// ignored.
sigset_t BlockSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, kStopNodeSignal);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

// The client endpoint, when a proxy port is configured (null when not).
Result<std::unique_ptr<proxy::Proxy>> StartProxy(const agent::Config& cfg, const Clock& clock) {
  if (!cfg.proxy_enabled()) return std::unique_ptr<proxy::Proxy>();
  proxy::Options po;
  po.listen_address = cfg.proxy_listen_address();
  po.read_write_port = cfg.proxy_rw_port;
  po.read_only_port = cfg.proxy_ro_port;
  po.max_connections = cfg.proxy_max_connections;
  po.idle_timeout_ms = cfg.proxy_idle_timeout_ms;
  po.connect_timeout_ms = cfg.proxy_connect_timeout_ms;
  po.threads = cfg.proxy_threads;
  auto p = std::make_unique<proxy::Proxy>(po, clock);
  TANDEM_TRY(p->Start());
  return p;
}

// How the agent leaves: stop the node (after a switchover when `tandem agent
// stop` asked), leave it running for the next agent, or leave it running and
// execute the binary again as this process (SIGHUP: `tandem agent reload`).
enum class Exit { kStopNode, kSwitchOverAndStop, kRestart, kReexec };

// Until SIGTERM, SIGINT, SIGHUP or the stop-the-node signal, reaping orphans and
// feeding the watchdog (while no HA loop does) every second; then STOPPING=1.
// SIGTERM and SIGINT mean what --on-sigterm says; `tandem agent stop`'s
// signal always stops the node.
Exit WaitForStopSignal(const Clock& clock, const sigset_t& set, ServiceNotifier& service,
                       bool restart_on_sigterm) {
  while (true) {
    struct timespec ts {
      1, 0
    };
    int sig = sigtimedwait(&set, nullptr, &ts);
    ReapChildren();
    service.Tick(clock.Now());
    if (sig == kStopNodeSignal) {
      TLOG(Info, "agent") << "`tandem agent stop`: stopping the node";
      service.Send("STOPPING=1");
      return Exit::kSwitchOverAndStop;
    }
    if (sig == SIGHUP) {
      TLOG(Info, "agent") << "SIGHUP: reloading in place (" << InvokedExecutable()
                          << " is checked, then executed again by this process)";
      return Exit::kReexec;
    }
    if (sig == SIGTERM || sig == SIGINT) {
      TLOG(Info, "agent") << "signal " << sig << ": "
                          << (restart_on_sigterm
                                  ? "stopping for a restart (--on-sigterm=restart): PostgreSQL "
                                    "and etcd keep running"
                                  : "shutting down");
      service.Send("STOPPING=1");
      return restart_on_sigterm ? Exit::kRestart : Exit::kStopNode;
    }
  }
}

// Before a reload: the binary now at this process's path starts with this
// config (`agent --check-config`, which starts nothing). "" when it does,
// else why not (a missing library, a config key the new build refuses).
std::string CheckNextImage(const agent::Config& cfg) {
  const std::string exe = InvokedExecutable();
  if (exe.empty()) return "this process's executable path is unknown";
  // The new image must find this node where this one left it: the same
  // name, cluster, state directory and database (else it would not know
  // the PostgreSQL and etcd it is handed).
  auto next = agent::LoadConfig(cfg.path);
  if (!next) return cfg.path + ": " + next.error().message();
  for (const auto& [key, was, now] :
       {std::tuple<const char*, std::string, std::string>{"node.name", cfg.node_name,
                                                          next->node_name},
        {"cluster", cfg.cluster, next->cluster},
        {"node.state_dir", cfg.state_dir, next->state_dir},
        {"postgresql.data_dir", cfg.pg_data_dir, next->pg_data_dir}}) {
    if (was != now) {
      return std::string(key) + " changed in " + cfg.path + " ('" + was + "' -> '" + now +
             "'): a reload keeps the node running and cannot move it; put it back, or stop the "
             "node (tandem agent stop) and start it with the new file";
    }
  }
  auto r = RunCommand({exe, "agent", "--check-config", "-c", cfg.path}, SpawnOptions{}, 30'000);
  if (!r) return exe + ": " + r.error().message();
  if (r->exit_code == 0) return "";
  std::string out = Trim(r->output);
  if (out.size() > 400) out = "..." + out.substr(out.size() - 400);
  return exe + " agent --check-config exited " +
         (r->exit_code >= 0 ? std::to_string(r->exit_code)
                            : "on signal " + std::to_string(r->signal)) +
         (out.empty() ? "" : ": " + out);
}

// What runs once the process is set up: the agent, wired to the proxy and
// the API, started, serving until a stop signal, then stopped in order.
int RunWired(const Clock& clock, const agent::Config& config, agent::FenceGuard guard,
             agent::NodeLock node_lock, proxy::Proxy* client_proxy, const sigset_t& set,
             ServiceNotifier& service, bool restart_on_sigterm, bool* reexec) {
  const agent::Config* cfg = &config;
  // The private copies: made by agent.Start() before any connection, and
  // replaced on a certificate rotation, which new connections then use.
  net::SetHttpClientTls(agent::AgentClientTls(*cfg));
  agent::AgentDeps deps;
  deps.clock = &clock;
  agent::Agent agent(*cfg, std::move(deps));
  agent.SetFenceGuard(std::move(guard));
  agent.AdoptNodeLock(std::move(node_lock));
  if (client_proxy) {
    agent.SetRouteSink([p = client_proxy](const core::Route& r) { p->SetRoute(r); });
  }
  api::ApiServer api(agent);
  agent.SetTlsReloadHook([&api, cfg] {
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
  Exit how = WaitForStopSignal(clock, set, service, restart_on_sigterm);
  while (how == Exit::kReexec) {
    const std::string why_not = CheckNextImage(*cfg);
    if (why_not.empty()) break;
    TLOG(Error, "agent") << "reload refused, this agent goes on unchanged: " << why_not
                         << "; fix the binary or the config, then reload again";
    NoteReloadRefused(why_not);
    how = WaitForStopSignal(clock, set, service, restart_on_sigterm);
  }
  if (how == Exit::kSwitchOverAndStop) {
    // The switchover (on a primary) runs while the API still answers the
    // other agents' position requests.
    agent.StopNode();
    api.Stop();
  } else if (how == Exit::kRestart || how == Exit::kReexec) {
    if (how == Exit::kReexec) service.Send("RELOADING=1");
    api.Stop();
    agent.ShutdownForRestart();
    *reexec = how == Exit::kReexec;
  } else {
    api.Stop();
    agent.Shutdown();
  }
  if (client_proxy) client_proxy->Stop();
  return 0;
}

}  // namespace

int RunAgent(const Clock& clock, const std::string& config_path, bool restart_on_sigterm) {
  // Before the agent's threads start.
  KeepResidentSetSmall();
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
  log::SetCluster(cfg->cluster);
  log::SetLevel(LogLevel(cfg->log_level));
  if (std::string why = ConfigureLogTarget(*cfg); !why.empty()) {
    std::fprintf(stderr, "ERROR : log.target %s: %s; nothing was started: fix log.target in %s\n",
                 cfg->log_target.c_str(), why.c_str(), cfg->path.c_str());
    return 2;
  }
  // PID 1 does not reap orphans here: adopt and reap what our children leave.
  BecomeSubreaper();
  const sigset_t set = BlockSignals();

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
  // Declared before the agent so it outlives the agent's loop, which hands it
  // a route every cycle; until the first route it refuses every connection
  // (fail closed).
  auto client_proxy = StartProxy(*cfg, clock);
  if (!client_proxy) {
    TLOG(Error, "agent") << "cannot start the proxy: " << client_proxy.error().message();
    return 1;
  }
  bool reexec = false;
  const int rc = RunWired(clock, *cfg, std::move(*guard), std::move(*node_lock),
                          client_proxy->get(), set, service, restart_on_sigterm, &reexec);
  if (rc == 0 && reexec) {
    // Every thread of the agent, the API and the proxy has ended; the fence
    // guard, PostgreSQL and etcd go on as this process's children.
    client_proxy->reset();
    TLOG(Info, "agent") << "executing " << InvokedExecutable() << " again as pid " << ::getpid();
    service.ExportForExec();
    const Error e = ReplaceImage();
    TLOG(Error, "agent") << e.message()
                         << "; exiting: start the agent again (the fence guard stops a primary's "
                            "PostgreSQL at its lease deadline if none comes back)";
    return 1;
  }
  if (rc == 0) TLOG(Info, "agent") << "stopped";
  return rc;
}

}  // namespace tandem::cli
