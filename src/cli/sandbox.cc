// `tandem sandbox`: a whole N-node cluster on 127.0.0.1 in one directory.
//
// Node i (1-based) uses ports P+10i (PostgreSQL), +1 (agent API), +2/+3
// (proxy read-write/read-only), +4/+5 (etcd client/peer), +6 (plain-HTTP
// health endpoints, api.health_port). With --witness, node "witness" (no
// PostgreSQL) has index 10: ports P+100 .. P+106, DIR/witness. By default it runs
// TLS (enforce): a CA in DIR/ca and each node's certificates in DIR/nodeI/certs,
// issued as `tandem pki ca init` and `tandem pki issue` do; --no-tls skips it.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "agent/config.h"
#include "agent/local_state.h"
#include "agent/tls_files.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/process.h"
#include "base/strings.h"
#include "cli/commands.h"
#include "net/http_client.h"
#include "pki/ca.h"

namespace tandem::cli {
using nlohmann::json;

namespace {

struct NodePaths {
  int index = 0;
  std::string name, dir, config;
  bool witness = false;
};

// The witness's index: its ports follow the nine data nodes'.
constexpr int kWitnessIndex = 10;

NodePaths PathsFor(const std::string& dir, int i) {
  NodePaths n;
  n.index = i;
  n.witness = i == kWitnessIndex;
  n.name = n.witness ? "witness" : "node" + std::to_string(i);
  n.dir = dir + "/" + n.name;
  n.config = n.dir + "/tandem.yaml";
  return n;
}

std::vector<NodePaths> ExistingNodes(const std::string& dir) {
  std::vector<NodePaths> out;
  for (int i = 1; i <= kWitnessIndex; ++i) {
    auto n = PathsFor(dir, i);
    if (PathExists(n.config)) out.push_back(n);
  }
  return out;
}

int Fail(const std::string& msg) {
  std::fprintf(stderr, "ERROR : %s\n", msg.c_str());
  return 1;
}

pid_t ReadPid(const std::string& file) {
  auto text = ReadFile(file);
  if (!text) return 0;
  auto first = Split(*text, '\n')[0];
  auto v = ParseInt(Trim(first));
  return v && *v > 0 ? static_cast<pid_t>(*v) : 0;
}

// The pid in `file` when that process is alive and its command line contains
// `needle` (a stale pid file may name a reused pid: never signal a stranger).
pid_t LivePid(const std::string& file, const std::string& needle) {
  pid_t p = ReadPid(file);
  if (!IsAlive(p)) return 0;
  auto cmdline = ReadFile("/proc/" + std::to_string(p) + "/cmdline");
  if (!cmdline) return 0;
  std::string text = *cmdline;
  for (char& c : text) {
    if (c == '\0') c = ' ';
  }
  return text.find(needle) != std::string::npos ? p : 0;
}
pid_t AgentPid(const NodePaths& n) {
  return LivePid(n.dir + "/agent.pid", n.config);
}

std::string SelfExe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "tandem";
  buf[n] = 0;
  return buf;
}

// Every ancestor must be traversable by the service user (PostgreSQL runs as postgres).
std::string CheckTraversable(const std::string& dir) {
  if (::geteuid() != 0) return "";
  std::string cur = dir;
  while (!cur.empty() && cur != "/") {
    struct stat st {};
    if (::stat(cur.c_str(), &st) == 0 && (st.st_mode & S_IXOTH) == 0) {
      return cur + " is not traversable by other users (mode " + std::to_string(st.st_mode & 0777) +
             "), so PostgreSQL (running as postgres) cannot reach the sandbox; use a --dir "
             "under /tmp or /var/tmp, or chmod o+x " +
             cur;
    }
    cur = DirName(cur);
  }
  return "";
}

// DIR/ca (made once) and the node's pairs in DIR/nodeI/certs (issued once).
Status IssueSandboxCerts(int64_t now, const std::string& dir, const NodePaths& n) {
  const std::string ca = dir + "/ca";
  if (!PathExists(pki::CaFiles(ca).cert)) {
    TANDEM_TRY(pki::InitCa(ca, "Tandem sandbox CA", pki::ValidFor(now, pki::kDefaultCaDays)));
  }
  if (PathExists(n.dir + "/certs/server.crt")) return Ok();
  pki::NodeRequest r;
  r.node = n.name;
  r.address = "127.0.0.1";
  r.dns = {"localhost"};
  r.out_dir = n.dir + "/certs";  // the agent's private copies go to <state_dir>/tls
  auto issued = pki::IssueNode(ca, r, pki::ValidFor(now, pki::kDefaultCertDays));
  if (!issued) return issued.error();
  return Ok();
}

std::string TlsYaml(const NodePaths& n) {
  const std::string t = n.dir + "/certs/";
  return "tls:\n  mode: enforce\n  verify_hostname: true\n  server_key: " + t +
         "server.key\n  server_cert: " + t + "server.crt\n  client_key: " + t +
         "client.key\n  client_cert: " + t + "client.crt\n  ca_cert: " + t + "ca.crt\n";
}

std::string Yaml(const std::string& dir, const NodePaths& n, int base) {
  int p = base + 10 * n.index;
  std::string y;
  y += "# Sandbox node " + n.name + " (written by `tandem sandbox up`)\n";
  y += "cluster: sandbox\n";
  y += "node:\n  name: " + n.name + "\n  address: 127.0.0.1\n  state_dir: " + n.dir + "\n";
  // health_port: plain-HTTP health checks (examples/haproxy.cfg), also when the API is HTTPS.
  y += "api:\n  listen: 127.0.0.1\n  port: " + std::to_string(p + 1) +
       "\n  health_port: " + std::to_string(p + 6) + "\n";
  // A witness runs no PostgreSQL: its config has no postgresql section.
  if (!n.witness) y += "postgresql:\n  port: " + std::to_string(p) + "\n";
  y += "dcs:\n  etcd_client_port: " + std::to_string(p + 4) +
       "\n  etcd_peer_port: " + std::to_string(p + 5) + "\n";
  y += "proxy:\n  read_write_port: " + std::to_string(p + 2) +
       "\n  read_only_port: " + std::to_string(p + 3) + "\n";
  (void)dir;
  return y;
}

Result<pid_t> StartAgent(const NodePaths& n) {
  SpawnOptions opts;
  opts.output_file = n.dir + "/agent.log";
  auto pid = Spawn({SelfExe(), "agent", "-c", n.config}, opts);
  if (!pid) return pid.error();
  TANDEM_TRY(WriteFileAtomic(n.dir + "/agent.pid", std::to_string(*pid) + "\n"));
  return pid;
}

std::optional<json> Status(const agent::Config& cfg, int64_t timeout_ms = 5000) {
  // HTTPS with the node's client pair when the sandbox has TLS.
  net::SetHttpClientTls(agent::ClientTlsFor(cfg));
  auto r = net::HttpCall("GET", cfg.api_url() + "/v1/status", "", timeout_ms);
  if (!r || r->status != 200) return std::nullopt;
  try {
    return json::parse(r->body);
  } catch (...) {
    return std::nullopt;
  }
}

// The last `lines` lines of a node's agent log, indented (for a failure).
std::string LogTail(const NodePaths& n, size_t lines = 20) {
  auto text = ReadFile(n.dir + "/agent.log");
  if (!text || text->empty()) return "  (" + n.dir + "/agent.log is empty)\n";
  auto all = Split(*text, '\n');
  if (!all.empty() && all.back().empty()) all.pop_back();
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
    out += "  " + all[i] + "\n";
  }
  return out;
}

// Waits until the agent `pid` serves its API (its /v1/status answers and
// names that pid: another agent on the same port does not count). Fails
// with the log's tail when the agent exits first or does not serve in time.
tandem::Status WaitServing(const Clock& clock, const NodePaths& n, const agent::Config& cfg,
                           pid_t pid, int64_t timeout_ms) {
  const MonoMs start = clock.Now();
  while (true) {
    const bool alive = IsAlive(pid);
    if (alive) {
      auto st = Status(cfg, 2000);
      if (st && st->value("agent_pid", 0) == pid && IsAlive(pid)) return Ok();
    }
    if (!alive) {
      return Error(ErrorCode::kUnavailable, n.name + "'s agent (pid " + std::to_string(pid) +
                                                ") exited before serving its API at " +
                                                cfg.api_url() + "; the end of " + n.dir +
                                                "/agent.log:\n" + LogTail(n));
    }
    if (clock.Now() - start >= timeout_ms) {
      return Error(ErrorCode::kTimeout,
                   n.name + "'s agent (pid " + std::to_string(pid) + ") did not serve its API at " +
                       cfg.api_url() + " within " + std::to_string(timeout_ms / 1000) +
                       " s; the end of " + n.dir + "/agent.log:\n" + LogTail(n));
    }
    clock.SleepFor(200);
  }
}

// How long an agent may take to serve after its start (etcd and PostgreSQL
// start first when the node is a member).
constexpr int64_t kServeTimeoutMs = 90'000;

bool WaitFor(const Clock& clock, const std::function<bool()>& cond, int64_t timeout_ms) {
  const MonoMs start = clock.Now();
  while (clock.Now() - start < timeout_ms) {
    if (cond()) return true;
    clock.SleepFor(200);
  }
  return cond();
}

std::string PostgresPidFile(const agent::Config& cfg) {
  return cfg.pg_data_dir + "/postmaster.pid";
}
std::string EtcdPidFile(const agent::Config& cfg) {
  return cfg.state_dir + "/etcd.pid";
}

void KillHard(pid_t pid) {
  if (pid <= 0) return;
  pid_t pgid = ::getpgid(pid);
  if (pgid > 1 && pgid != ::getpgrp()) ::kill(-pgid, SIGKILL);
  ::kill(pid, SIGKILL);
}

// The sandbox's directory, made and checked; a running sandbox refused.
// An Error with the message to print.
tandem::Status PrepareSandboxDir(const std::string& dir) {
  for (const auto& n : ExistingNodes(dir)) {
    if (AgentPid(n) != 0) {
      return Error(ErrorCode::kFailedPrecondition,
                   "a sandbox is already running in " + dir +
                       " (see `tandem sandbox status`; stop it with `tandem sandbox down`)");
    }
  }
  TANDEM_TRY(MakeDirs(dir, 0755));
  ::chmod(dir.c_str(), 0755);
  if (auto why = CheckTraversable(dir); !why.empty()) {
    return Error(ErrorCode::kFailedPrecondition, why);
  }
  return Ok();
}

struct SandboxNode {
  NodePaths paths;
  agent::Config cfg;
  pid_t pid = 0;
};

// Node i's directory, certificates (with TLS) and config written, its agent
// started. An Error with the message to print.
Result<SandboxNode> StartNode(const Clock& clock, const SandboxOptions& o, const std::string& dir,
                              int i) {
  auto n = PathsFor(dir, i);
  TANDEM_TRY(MakeDirs(n.dir, 0755));
  ::chmod(n.dir.c_str(), 0755);
  std::string yaml = Yaml(dir, n, o.base_port);
  if (o.tls) {
    TANDEM_TRY(IssueSandboxCerts(clock.WallSeconds(), dir, n));
    yaml += TlsYaml(n);
  }
  TANDEM_TRY(WriteFileAtomic(n.config, yaml));
  auto cfg = agent::LoadConfig(n.config);
  if (!cfg) return cfg.error();
  auto pid = StartAgent(n);
  if (!pid) return pid.error();
  std::printf("%s: agent started (pid %d, API %s, log %s/agent.log)\n", n.name.c_str(), *pid,
              cfg->api_url().c_str(), n.dir.c_str());
  return SandboxNode{n, *cfg, *pid};
}

// node1 initializes the cluster and the others join it (unless a restarted
// sandbox is a cluster already). The exit code.
int FormCluster(const Clock& clock, const std::vector<SandboxNode>& nodes, const std::string& dir) {
  auto first = Status(nodes[0].cfg);
  if (first && first->value("member", false)) {
    std::printf("the sandbox in %s is already initialized; its agents were restarted\n",
                dir.c_str());
    return 0;
  }
  std::printf("node1: initializing the cluster...\n");
  std::fflush(stdout);
  if (ClusterInitialize(clock, nodes[0].paths.config) != 0) return 1;
  for (size_t i = 1; i < nodes.size(); ++i) {
    const bool witness = nodes[i].paths.witness;
    std::printf("%s: joining%s...\n", nodes[i].paths.name.c_str(), witness ? " as a witness" : "");
    std::fflush(stdout);
    if (ClusterJoin(clock, nodes[i].paths.config,
                    "127.0.0.1:" + std::to_string(nodes[0].cfg.api_port), witness) != 0) {
      return 1;
    }
  }
  return 0;
}

// Waits (120 s at most) for one primary, every other data node a replica in
// sync and the witness (if any) connected. The last status read (if any) and
// whether it was healthy.
std::optional<json> WaitHealthy(const Clock& clock, const agent::Config& cfg, int node_count,
                                bool witness, bool* healthy) {
  std::optional<json> st;
  *healthy = WaitFor(
      clock,
      [&] {
        st = Status(cfg);
        if (!st || (*st)["primary"].is_null()) return false;
        int primaries = 0, replicas = 0, witnesses = 0;
        for (const auto& m : (*st)["members"]) {
          if (m.value("role", "") == "primary") ++primaries;
          if (m.value("role", "") == "replica" && m.value("in_sync", false)) ++replicas;
          if (m.value("role", "") == "witness") ++witnesses;
        }
        return primaries == 1 && replicas == node_count - 1 && witnesses == (witness ? 1 : 0);
      },
      120'000);
  return st;
}

}  // namespace

int SandboxUp(const Clock& clock, const SandboxOptions& o) {
  if (o.nodes < 1 || o.nodes > 9) return Fail("--nodes must be between 1 and 9");
  if (o.witness && o.nodes % 2 != 0) {
    return Fail("--witness with " + std::to_string(o.nodes) + " data node" +
                (o.nodes == 1 ? "" : "s") +
                " would make an even count of voters, which the cluster refuses; use an even "
                "--nodes with --witness (e.g. --nodes 2 --witness), or leave --witness out");
  }
  if (o.base_port < 1024 || o.base_port + 100 > 65535) {
    return Fail("--base-port must be between 1024 and 65435");
  }
  const std::string dir = AbsolutePath(o.dir);
  if (auto s = PrepareSandboxDir(dir); !s.ok()) return Fail(s.error().message());
  std::vector<SandboxNode> nodes;
  for (int i = 1; i <= o.nodes; ++i) {
    auto n = StartNode(clock, o, dir, i);
    if (!n) return Fail(n.error().message());
    nodes.push_back(std::move(*n));
  }
  if (o.witness) {
    auto n = StartNode(clock, o, dir, kWitnessIndex);
    if (!n) return Fail(n.error().message());
    nodes.push_back(std::move(*n));
  }
  for (const auto& n : nodes) {
    if (auto st = WaitServing(clock, n.paths, n.cfg, n.pid, kServeTimeoutMs); !st.ok()) {
      return Fail(st.error().message());
    }
  }
  std::fflush(stdout);
  if (FormCluster(clock, nodes, dir) != 0) return 1;
  const agent::Config& cfg = nodes[0].cfg;
  bool healthy = false;
  std::optional<json> st = WaitHealthy(clock, cfg, o.nodes, o.witness, &healthy);
  auto secrets = agent::LoadSecrets(cfg.secrets_path());
  if (secrets) {
    (void)WriteFileAtomic(dir + "/pgpass",
                          "127.0.0.1:*:*:postgres:" + secrets->superuser_password + "\n", 0600);
  }
  if (st) std::printf("%s", RenderStatus(*st).c_str());
  if (!healthy) return Fail("the sandbox did not become healthy within 120 s; see the agent logs");
  int primary_port = cfg.pg_port;
  if (st) {
    for (const auto& m : (*st)["members"]) {
      if (m.value("role", "") == "primary") primary_port = m.value("port", primary_port);
    }
  }
  std::printf(
      "\nThe sandbox is up. Connect to the primary with:\n"
      "  PGPASSFILE=%s/pgpass psql -h 127.0.0.1 -p %d -U postgres\n"
      "Status: tandem -c %s cluster status    Stop: tandem sandbox down --dir %s\n",
      dir.c_str(), primary_port, nodes[0].paths.config.c_str(), dir.c_str());
  return 0;
}

int SandboxDown(const Clock& clock, const SandboxOptions& o) {
  const std::string dir = AbsolutePath(o.dir);
  auto nodes = ExistingNodes(dir);
  if (nodes.empty()) {
    std::printf("no sandbox in %s\n", dir.c_str());
    return 0;
  }
  for (const auto& n : nodes) {
    pid_t agent = AgentPid(n);
    if (agent != 0) {
      ::kill(agent, SIGTERM);
    }
  }
  for (const auto& n : nodes) {
    pid_t agent = AgentPid(n);
    if (agent != 0 && !WaitForExit(agent, 60'000, clock)) {
      std::printf("%s: agent did not stop in 60 s; killing it\n", n.name.c_str());
      KillHard(agent);
    }
    auto cfg = agent::LoadConfig(n.config);
    if (cfg) {
      // Anything the agent left behind (it was killed, or crashed).
      for (pid_t p :
           {LivePid(PostgresPidFile(*cfg), "postgres"), LivePid(EtcdPidFile(*cfg), "etcd")}) {
        if (p != 0) {
          KillHard(p);
          (void)WaitForExit(p, 10'000, clock);
        }
      }
    }
    std::printf("%s: stopped\n", n.name.c_str());
  }
  if (o.purge) {
    if (auto s = RemoveAll(dir); !s.ok()) return Fail(s.error().message());
    std::printf("removed %s\n", dir.c_str());
  }
  return 0;
}

int SandboxStatus(const SandboxOptions& o) {
  const std::string dir = AbsolutePath(o.dir);
  auto nodes = ExistingNodes(dir);
  if (nodes.empty()) return Fail("no sandbox in " + dir + " (start one with `tandem sandbox up`)");
  json out = json::array();
  for (const auto& n : nodes) {
    auto cfg = agent::LoadConfig(n.config);
    if (!cfg) return Fail(cfg.error().message());
    json j;
    j["name"] = n.name;
    j["config"] = n.config;
    j["witness"] = n.witness;
    j["ports"] = {{"postgresql", n.witness ? 0 : cfg->pg_port},  // a witness runs none
                  {"api", cfg->api_port},
                  {"proxy_read_write", cfg->proxy_rw_port},
                  {"proxy_read_only", cfg->proxy_ro_port},
                  {"etcd_client", cfg->etcd_client_port},
                  {"etcd_peer", cfg->etcd_peer_port}};
    j["pids"] = {{"agent", AgentPid(n)},
                 {"postgres", LivePid(PostgresPidFile(*cfg), "postgres")},
                 {"etcd", LivePid(EtcdPidFile(*cfg), "etcd")}};
    std::string role = "down";
    if (auto st = Status(*cfg, 2000)) {
      role = "unknown";
      for (const auto& m : (*st)["members"]) {
        if (m.value("me", false)) role = m.value("role", "unknown");
      }
      if (!st->value("member", false)) role = "not a member";
    }
    j["role"] = role;
    out.push_back(j);
  }
  if (o.json) {
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%-7s %-10s %-6s %-6s %-6s %-16s %-8s %-8s %-8s %s\n", "NODE", "ROLE", "PG", "API",
              "RW/RO", "ETCD", "AGENT", "POSTGRES", "ETCD", "CONFIG");
  for (const auto& j : out) {
    const auto& p = j["ports"];
    const auto& d = j["pids"];
    std::printf("%-7s %-10s %-6d %-6d %d/%d %d/%d  %-8d %-8d %-8d %s\n",
                j["name"].get<std::string>().c_str(), j["role"].get<std::string>().c_str(),
                p["postgresql"].get<int>(), p["api"].get<int>(), p["proxy_read_write"].get<int>(),
                p["proxy_read_only"].get<int>(), p["etcd_client"].get<int>(),
                p["etcd_peer"].get<int>(), d["agent"].get<int>(), d["postgres"].get<int>(),
                d["etcd"].get<int>(), j["config"].get<std::string>().c_str());
  }
  return 0;
}

int SandboxKill(const Clock& clock, const SandboxOptions& o, const std::string& node) {
  const std::string dir = AbsolutePath(o.dir);
  for (const auto& n : ExistingNodes(dir)) {
    if (n.name != node) continue;
    auto cfg = agent::LoadConfig(n.config);
    if (!cfg) return Fail(cfg.error().message());
    // A node crash: everything at once, no chance to clean up.
    pid_t agent = AgentPid(n);
    pid_t pg = LivePid(PostgresPidFile(*cfg), "postgres");
    pid_t etcd = LivePid(EtcdPidFile(*cfg), "etcd");
    KillHard(agent);
    KillHard(pg);
    KillHard(etcd);
    for (pid_t p : {agent, pg, etcd}) {
      if (p != 0) (void)WaitForExit(p, 10'000, clock);
    }
    std::printf("%s: killed (agent %d, postgres %d, etcd %d)\n", node.c_str(), agent, pg, etcd);
    return 0;
  }
  return Fail("no node named '" + node + "' in the sandbox in " + dir);
}

int SandboxStart(const Clock& clock, const SandboxOptions& o, const std::string& node) {
  const std::string dir = AbsolutePath(o.dir);
  for (const auto& n : ExistingNodes(dir)) {
    if (n.name != node) continue;
    if (AgentPid(n) != 0) {
      std::printf("%s: agent already running\n", node.c_str());
      return 0;
    }
    auto cfg = agent::LoadConfig(n.config);
    if (!cfg) return Fail(cfg.error().message());
    auto pid = StartAgent(n);
    if (!pid) return Fail(pid.error().message());
    // Started is not serving: an agent that exits at once (another agent
    // holds the node, a port is taken) must not be reported as started.
    if (auto st = WaitServing(clock, n, *cfg, *pid, kServeTimeoutMs); !st.ok()) {
      return Fail(st.error().message());
    }
    std::printf("%s: agent started and serving (pid %d, API %s)\n", node.c_str(), *pid,
                cfg->api_url().c_str());
    return 0;
  }
  return Fail("no node named '" + node + "' in the sandbox in " + dir);
}

}  // namespace tandem::cli
