// The chaos suite: a 3-node Tandem cluster on real etcd and PostgreSQL, each
// node in its own network namespace, a client appending unique ids through the
// cluster's client endpoint (libpq multi-host, target_session_attrs=read-write)
// while faults are injected one round after another: each fault once, then a
// random sequence. After every round the cluster must settle (one primary,
// two replicas in sync, a sync record that allows the next failover) within a
// bound, and the checker (history.h) must find every acknowledged id on every
// node and no two primaries accepting writes at once.
//
// TANDEM_CHAOS_ROUNDS (default 50), TANDEM_CHAOS_SEED and TANDEM_CHAOS_ONLY set the run. Needs
// root (namespaces, iptables; PostgreSQL runs as postgres).
#include <gtest/gtest.h>
#include <httplib.h>
#include <libpq-fe.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "base/file.h"
#include "base/process.h"
#include "base/strings.h"
#include "chaos/history.h"
#include "chaos/netns.h"
#include "chaos/workload.h"
#include "integration/harness/harness.h"

namespace tandem::chaos {
namespace {
using nlohmann::json;
using tandem::testing::KillGroup;
using tandem::testing::LivePidFromFile;
using tandem::testing::RunCmd;
using tandem::testing::TandemBin;
using tandem::testing::TempDir;
using tandem::testing::WaitUntil;

constexpr int kNodes = 3;
constexpr int kApiPort = 8008;
constexpr int kPgPort = 5432;
constexpr int kEtcdClient = 2379;
constexpr int kEtcdPeer = 2380;
constexpr int64_t kTtlMs = 2000;             // the agents' default lease
constexpr int64_t kRecoverBoundMs = 60'000;  // a write must succeed again within this
constexpr int64_t kSettleBoundMs = 180'000;  // the cluster must be whole again within this
const char* kClientPassword = "chaos-client-pw";

enum class Fault {
  kPostmasterKill,
  kAgentKill,
  kNodeKill,
  kAgentPause,
  kIsolate,
  kEtcdCut,
  kEtcdLeaderKill,
  kSwitchover,
  kReplicaDiskFull,
  kAgentRestart,
  kAgentReload,
};
constexpr Fault kAllFaults[] = {Fault::kPostmasterKill, Fault::kAgentKill,  Fault::kNodeKill,
                                Fault::kAgentPause,     Fault::kIsolate,    Fault::kEtcdCut,
                                Fault::kEtcdLeaderKill, Fault::kSwitchover, Fault::kReplicaDiskFull,
                                Fault::kAgentRestart,   Fault::kAgentReload};

const char* FaultName(Fault f) {
  switch (f) {
    case Fault::kPostmasterKill:
      return "kill -9 primary postmaster";
    case Fault::kAgentKill:
      return "kill -9 primary agent";
    case Fault::kNodeKill:
      return "kill -9 primary node";
    case Fault::kAgentPause:
      return "SIGSTOP primary agent 3xTTL";
    case Fault::kIsolate:
      return "primary cut off from peers";
    case Fault::kEtcdCut:
      return "primary cut off from etcd majority";
    case Fault::kEtcdLeaderKill:
      return "kill -9 etcd leader";
    case Fault::kSwitchover:
      return "switchover under load";
    case Fault::kReplicaDiskFull:
      return "replica disk full";
    case Fault::kAgentRestart:
      return "primary agent restart (SIGTERM, start)";
    case Fault::kAgentReload:
      return "primary agent reload (SIGHUP: the binary executed again, same pid)";
  }
  return "?";
}

// Does the fault take the primary role away from the node it hits?
bool MovesThePrimary(Fault f) {
  return f == Fault::kAgentKill || f == Fault::kNodeKill || f == Fault::kAgentPause ||
         f == Fault::kIsolate || f == Fault::kEtcdCut || f == Fault::kSwitchover;
}

struct RoundResult {
  Fault fault;
  int64_t unavailable_ms = 0;
  size_t lost = 0;
  int self_fenced = 0;
};

class ChaosTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    BecomeSubreaper();  // agents, PostgreSQL and etcd end up as our children: reap them
    if (::geteuid() != 0) {
      skip_ = "the chaos suite needs root (network namespaces, iptables)";
      return;
    }
    if (FindInPath("ip").empty() || FindInPath("iptables").empty()) {
      skip_ = "ip or iptables not installed";
      return;
    }
    dir_ = new TempDir("tandem-chaos");
    net_ = new Topology();
    if (auto s = net_->Create(kNodes); !s.ok()) {
      setup_error_ = "creating the network namespaces failed: " + s.error().message();
      return;
    }
    if (auto s = net_->EnterClient(); !s.ok()) {
      setup_error_ = s.error().message();
      return;
    }
    for (int i = 1; i <= kNodes; ++i) {
      const std::string d = StateDir(i);
      (void)MakeDirs(d, 0755);
      // Each node's disk is a tmpfs of its own, so a test can fill it.
      auto m = RunCmd({"mount", "-t", "tmpfs", "-o", "size=4g,mode=0755", "tmpfs", d});
      if (m.exit_code != 0) {
        setup_error_ = "mounting a tmpfs on " + d + " failed: " + m.output;
        return;
      }
      mounted_.push_back(d);
      std::string y = "cluster: chaos\n";
      y += "node:\n  name: n" + std::to_string(i) + "\n  address: " + Topology::NodeAddr(i) +
           "\n  state_dir: " + d + "\n";
      y += "api:\n  listen: " + Topology::NodeAddr(i) + "\n  port: " + std::to_string(kApiPort) +
           "\n";
      y +=
          "postgresql:\n  port: " + std::to_string(kPgPort) + "\n  sync_mode: " + SyncMode() + "\n";
      y += "dcs:\n  etcd_client_port: " + std::to_string(kEtcdClient) +
           "\n  etcd_peer_port: " + std::to_string(kEtcdPeer) + "\n";
      (void)WriteFileAtomic(Config(i), y);
      if (auto s = StartAgent(i); !s.ok()) {
        setup_error_ = s.error().message();
        return;
      }
    }
    for (int i = 1; i <= kNodes; ++i) {
      if (!WaitUntil([&] { return NodeStatus(i).has_value(); }, 60'000)) {
        setup_error_ = "agent n" + std::to_string(i) + " did not answer";
        return;
      }
    }
    auto init = Cli(1, {"cluster", "initialize"}, 300'000);
    if (init.exit_code != 0) {
      setup_error_ = "initialize failed: " + init.output;
      return;
    }
    for (int i = 2; i <= kNodes; ++i) {
      auto join = Cli(
          i, {"cluster", "join", Topology::NodeAddr(1) + ":" + std::to_string(kApiPort)}, 600'000);
      if (join.exit_code != 0) {
        setup_error_ = "join of n" + std::to_string(i) + " failed: " + join.output;
        return;
      }
    }
    if (!WaitUntil([] { return Settled(); }, kSettleBoundMs)) {
      setup_error_ = "the cluster did not become healthy";
      return;
    }
    // The client is an ordinary role: pg_hba lets superusers in from members only.
    auto secrets = ReadFile(StateDir(1) + "/secrets.json");
    std::string su_password;
    try {
      su_password = json::parse(secrets ? *secrets : "{}").value("superuser_password", "");
    } catch (...) {
    }
    const int p = PrimaryIndex();
    auto sql = RunCmd(
        net_->InNs(net_->NodeNs(p),
                   {"psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", Topology::NodeAddr(p), "-p",
                    std::to_string(kPgPort), "-U", "postgres", "-d", "postgres", "-c",
                    std::string("CREATE ROLE chaos LOGIN PASSWORD '") + kClientPassword +
                        "'; CREATE TABLE chaos(id bigint PRIMARY KEY); GRANT "
                        "SELECT, INSERT ON chaos TO chaos"}),
        60'000, {{"PGPASSWORD", su_password}, {"PGCONNECT_TIMEOUT", "5"}});
    if (sql.exit_code != 0) {
      setup_error_ = "creating the client role failed: " + sql.output;
      return;
    }
  }

  static void TearDownTestSuite() {
    for (int i = 1; i <= kNodes && dir_ != nullptr; ++i) StopNode(i);
    // TANDEM_CHAOS_LOGS=DIR keeps every node's agent and etcd log there.
    if (const char* keep = std::getenv("TANDEM_CHAOS_LOGS"); keep != nullptr && dir_ != nullptr) {
      (void)MakeDirs(keep);
      for (int i = 1; i <= kNodes; ++i) {
        for (const char* f : {"agent.log", "state/log/etcd.log"}) {
          auto text = ReadFile(NodeDir(i) + "/" + f);
          const std::string base = std::string(f).substr(std::string(f).rfind('/') + 1);
          if (text) (void)WriteFileAtomic(std::string(keep) + "/" + Name(i) + "-" + base, *text);
        }
      }
    }
    for (const auto& d : mounted_) {
      auto u = RunCmd({"umount", d});
      if (u.exit_code != 0) (void)RunCmd({"umount", "-l", d});
    }
    mounted_.clear();
    if (net_ != nullptr) net_->Destroy();
    delete net_;
    net_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(setup_error_.empty()) << setup_error_ << "\n" << Logs();
  }

  // TANDEM_CHAOS_SYNC_MODE=off runs the faults on asynchronous replication:
  // lost writes are then reported, not failed (they show the checker sees loss).
  static std::string SyncMode() {
    const char* m = std::getenv("TANDEM_CHAOS_SYNC_MODE");
    return m != nullptr && *m != 0 ? m : "quorum";
  }
  static bool Async() { return SyncMode() == "off"; }
  static std::string NodeDir(int i) { return dir_->path() + "/n" + std::to_string(i); }
  static std::string Config(int i) { return NodeDir(i) + "/tandem.yaml"; }
  // The node's state_dir, on a tmpfs of its own; its config and agent.log stay
  // outside, so they survive a full disk and the end of the test.
  static std::string StateDir(int i) { return NodeDir(i) + "/state"; }
  static std::string Name(int i) { return "n" + std::to_string(i); }

  static Status StartAgent(int i) {
    SpawnOptions opts;
    opts.output_file = NodeDir(i) + "/agent.log";
    // --on-sigterm=restart: the "agent restart" fault; StopNode kills what a
    // SIGTERM leaves running.
    auto pid = Spawn(net_->InNs(net_->NodeNs(i),
                                {TandemBin(), "agent", "-c", Config(i), "--on-sigterm=restart"}),
                     opts);
    if (!pid) return pid.error();
    agents_[i] = *pid;
    return Ok();
  }
  static pid_t AgentPid(int i) {
    auto it = agents_.find(i);
    return it != agents_.end() && IsAlive(it->second) ? it->second : 0;
  }
  static pid_t PostmasterPid(int i) {
    return LivePidFromFile(StateDir(i) + "/pgdata/postmaster.pid");
  }
  static pid_t EtcdPid(int i) { return LivePidFromFile(StateDir(i) + "/etcd.pid"); }

  // Stops everything of node i that is still running (teardown).
  static void StopNode(int i) {
    if (pid_t a = AgentPid(i)) {
      ::kill(a, SIGCONT);
      KillGroup(a, SIGTERM);
      if (!WaitForExit(a, 60'000)) KillGroup(a, SIGKILL);
      (void)WaitForExit(a, 10'000);
    }
    for (pid_t p : {PostmasterPid(i), EtcdPid(i)}) {
      if (p == 0) continue;
      KillGroup(p, SIGKILL);
      (void)WaitForExit(p, 10'000);
    }
  }

  static tandem::testing::CommandResult Cli(int i, const std::vector<std::string>& args,
                                            int64_t timeout_ms = 60'000) {
    std::vector<std::string> argv = {TandemBin(), "-c", Config(i)};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCmd(net_->InNs(net_->NodeNs(i), argv), timeout_ms);
  }

  static std::optional<json> NodeStatus(int i) {
    return testing::HttpGetJson(Topology::NodeAddr(i), kApiPort, "/v1/status");
  }

  // The primary as the nodes whose store is readable agree on; 0 when none.
  static int PrimaryIndex() {
    for (int i = 1; i <= kNodes; ++i) {
      auto s = NodeStatus(i);
      if (!s || s->value("store", "") != "ok" || !(*s)["primary"].is_string()) continue;
      std::string p = (*s)["primary"].get<std::string>();
      if (p.size() == 2 && p[0] == 'n') return p[1] - '0';
    }
    return 0;
  }

  // One primary, every other node a replica in sync, the sync record ready
  // for the next failover, and every node's agent, PostgreSQL and etcd up.
  static bool Settled() {
    auto no = [](const std::string& why) {
      unsettled_ = why;
      return false;
    };
    for (int i = 1; i <= kNodes; ++i) {
      if (AgentPid(i) == 0) return no(Name(i) + ": agent not running");
      if (PostmasterPid(i) == 0) return no(Name(i) + ": no live postmaster.pid");
      if (EtcdPid(i) == 0) return no(Name(i) + ": no live etcd.pid");
    }
    for (int i = 1; i <= kNodes; ++i) {
      auto s = NodeStatus(i);
      if (!s || s->value("store", "") != "ok") return no(Name(i) + ": status or store not ok");
    }
    auto s = NodeStatus(1);
    if (!s) return no("no status from " + Name(1));
    // Asynchronous replication has no sync record to wait for.
    if (auto why = testing::UnhealthyBecause(*s, kNodes, /*failover_ready=*/!Async());
        !why.empty()) {
      return no(why);
    }
    unsettled_.clear();
    return true;
  }

  static std::string ClientConninfo() {
    std::string hosts;
    for (int i = 1; i <= kNodes; ++i) hosts += (i > 1 ? "," : "") + Topology::NodeAddr(i);
    return "host=" + hosts + " port=" + std::to_string(kPgPort) +
           " dbname=postgres user=chaos password=" + kClientPassword +
           " target_session_attrs=read-write connect_timeout=2";
  }

  // Every id in node i's table; nullopt when it cannot be read.
  static std::optional<std::set<int64_t>> Rows(int i) {
    const std::string ci = "host=" + Topology::NodeAddr(i) + " port=" + std::to_string(kPgPort) +
                           " dbname=postgres user=chaos password=" + kClientPassword +
                           " connect_timeout=3";
    PGconn* c = PQconnectdb(ci.c_str());
    std::optional<std::set<int64_t>> out;
    if (PQstatus(c) == CONNECTION_OK) {
      PGresult* r = PQexec(c, "SELECT id FROM chaos");
      if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        out.emplace();
        for (int row = 0; row < PQntuples(r); ++row) {
          out->insert(std::strtoll(PQgetvalue(r, row, 0), nullptr, 10));
        }
      }
      PQclear(r);
    }
    PQfinish(c);
    return out;
  }

  // The etcd leader's node, asked of every member; 0 when unknown.
  static int EtcdLeaderIndex() {
    std::map<uint64_t, int> ids;
    uint64_t leader = 0;
    for (int i = 1; i <= kNodes; ++i) {
      httplib::Client c(Topology::NodeAddr(i), kEtcdClient);
      c.set_connection_timeout(1, 0);
      c.set_read_timeout(2, 0);
      auto r = c.Post("/v3/maintenance/status", "{}", "application/json");
      if (!r || r->status != 200) continue;
      try {
        auto j = json::parse(r->body);
        ids[std::stoull(j["header"]["member_id"].get<std::string>())] = i;
        leader = std::stoull(j["leader"].get<std::string>());
      } catch (...) {
      }
    }
    auto it = ids.find(leader);
    return it == ids.end() ? 0 : it->second;
  }

  // How often a primary stopped itself for want of a lease so far (the guard,
  // the agent's watchdog or the HA loop). Safe, but each is a write outage no
  // fault on the primary itself asked for: printed per round.
  static int SelfFences() {
    int n = 0;
    for (int i = 1; i <= kNodes && dir_ != nullptr; ++i) {
      auto log = ReadFile(NodeDir(i) + "/agent.log");
      if (!log) continue;
      for (const char* what :
           {"module=fence msg=", "immediately (fencing)", "the lease deadline passed: demoting",
            "my lease deadline passed: demoting"}) {
        for (size_t at = log->find(what); at != std::string::npos; at = log->find(what, at + 1)) {
          ++n;
        }
      }
    }
    return n;
  }

  static std::string Logs() {
    if (dir_ == nullptr) return "";
    std::string out;
    for (int i = 1; i <= kNodes; ++i) {
      auto log = ReadFile(NodeDir(i) + "/agent.log");
      if (!log) continue;
      std::string tail = log->size() > 4000 ? log->substr(log->size() - 4000) : *log;
      out += "---- n" + std::to_string(i) + " agent.log (tail)\n" + tail;
    }
    return out;
  }

  // Injects the fault; returns what must be undone once the cluster recovered.
  static std::function<void()> Inject(Fault f, int p, std::string* what) {
    switch (f) {
      case Fault::kPostmasterKill: {
        pid_t pm = PostmasterPid(p);
        *what = "postmaster " + std::to_string(pm);
        ::kill(pm, SIGKILL);
        return [] {};
      }
      case Fault::kAgentKill: {
        pid_t a = AgentPid(p);
        *what = "agent " + std::to_string(a);
        ::kill(a, SIGKILL);  // the agent alone: its fence guard must stop PostgreSQL
        (void)WaitForExit(a, 10'000);
        return [p] { (void)StartAgent(p); };
      }
      case Fault::kNodeKill: {
        pid_t a = AgentPid(p), pm = PostmasterPid(p), e = EtcdPid(p);
        *what = "agent " + std::to_string(a) + ", postgres " + std::to_string(pm) + ", etcd " +
                std::to_string(e);
        for (pid_t x : {a, pm, e}) KillGroup(x, SIGKILL);
        for (pid_t x : {a, pm, e}) {
          if (x > 0) (void)WaitForExit(x, 10'000);
        }
        return [p] { (void)StartAgent(p); };
      }
      case Fault::kAgentRestart: {
        // The agent alone (systemd's KillMode=process), started again at
        // once: PostgreSQL and etcd keep running, the new agent adopts them.
        pid_t a = AgentPid(p);
        *what = "agent " + std::to_string(a);
        ::kill(a, SIGTERM);
        (void)WaitForExit(a, 60'000);
        (void)StartAgent(p);
        return [] {};
      }
      case Fault::kAgentReload: {
        // `tandem agent reload` / a package upgrade: the same process
        // executes the binary again; PostgreSQL and etcd keep running.
        pid_t a = AgentPid(p);
        *what = "agent " + std::to_string(a) + " SIGHUP";
        ::kill(a, SIGHUP);
        return [] {};
      }
      case Fault::kAgentPause: {
        pid_t a = AgentPid(p);
        *what = "agent " + std::to_string(a);
        ::kill(a, SIGSTOP);
        return [a] { ::kill(a, SIGCONT); };
      }
      case Fault::kIsolate: {
        auto s = net_->Isolate(p);
        *what = s.ok() ? "iptables DROP to/from every peer" : s.error().message();
        return [p] { (void)net_->Heal(p); };
      }
      case Fault::kEtcdCut: {
        auto s = net_->CutEtcd(p, kEtcdClient, kEtcdPeer);
        *what = s.ok() ? "iptables DROP of etcd ports to/from every peer" : s.error().message();
        return [p] { (void)net_->Heal(p); };
      }
      case Fault::kEtcdLeaderKill: {
        int l = EtcdLeaderIndex();
        pid_t e = l > 0 ? EtcdPid(l) : 0;
        *what = "etcd leader n" + std::to_string(l) + " (pid " + std::to_string(e) + ")" +
                (l == p ? ", on the primary's node" : "");
        if (e > 0) {
          KillGroup(e, SIGKILL);
          (void)WaitForExit(e, 10'000);
        }
        return [] {};
      }
      case Fault::kSwitchover: {
        auto before = ReadFile(NodeDir(p) + "/agent.log");
        const size_t offset = before ? before->size() : 0;
        auto r = Cli(p, {"cluster", "switchover"}, 120'000);
        *what = r.exit_code == 0 ? "switchover done" : "switchover FAILED: " + r.output;
        // The replica the old primary handed over to is the one that promotes.
        auto log = ReadFile(NodeDir(p) + "/agent.log");
        const std::string tag = "handing over to ";
        size_t at = log && log->size() > offset ? log->find(tag, offset) : std::string::npos;
        if (at != std::string::npos) {
          const size_t b = at + tag.size();
          const size_t e = log->find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789", b);
          const std::string target = log->substr(b, e - b);
          *what += " (handed over to " + target + ")";
          return [target] {
            WaitUntil([&] { return PrimaryIndex() > 0; }, kRecoverBoundMs);
            EXPECT_EQ(Name(PrimaryIndex()), target) << "the switchover promoted another replica";
          };
        }
        return [] {};
      }
      case Fault::kReplicaDiskFull: {
        const int r = p % kNodes + 1;  // a replica
        const std::string filler = StateDir(r) + "/filler";
        auto fill = RunCmd({"sh", "-c",
                            "dd if=/dev/zero of=" + filler + " bs=1M 2>/dev/null; df -k " +
                                StateDir(r) + " | tail -1"});
        *what = "n" + std::to_string(r) + "'s disk filled: " + Trim(fill.output);
        return [filler] { (void)::unlink(filler.c_str()); };
      }
    }
    return [] {};
  }

  static inline TempDir* dir_ = nullptr;
  static inline Topology* net_ = nullptr;
  static inline std::map<int, pid_t> agents_;
  static inline std::vector<std::string> mounted_;
  static inline std::string skip_;
  static inline std::string unsettled_;  // why Settled() said no, last time
  static inline std::string setup_error_;
};

TEST_F(ChaosTest, NoAcknowledgedWriteLostAndNoOverlappingPrimariesUnderFaults) {
  int rounds = 50;
  if (const char* r = std::getenv("TANDEM_CHAOS_ROUNDS")) rounds = std::max(1, std::atoi(r));
  uint64_t seed = static_cast<uint64_t>(::time(nullptr));
  if (const char* s = std::getenv("TANDEM_CHAOS_SEED")) seed = std::strtoull(s, nullptr, 10);
  std::printf("chaos: %d rounds, seed %llu (TANDEM_CHAOS_SEED to replay), sync_mode %s\n", rounds,
              static_cast<unsigned long long>(seed), SyncMode().c_str());
  std::mt19937_64 rng(seed);
  // TANDEM_CHAOS_ONLY=TEXT runs only the faults whose name contains TEXT.
  const std::string only = std::getenv("TANDEM_CHAOS_ONLY") ? std::getenv("TANDEM_CHAOS_ONLY") : "";

  Workload load(ClientConninfo(), 4, 5'000);
  load.Start();
  std::vector<RoundResult> results;
  size_t lost_so_far = 0;
  int fences_so_far = 0;
  for (int round = 1; round <= rounds; ++round) {
    std::vector<Fault> pool;
    for (Fault c : kAllFaults) {
      if (only.empty() || std::string(FaultName(c)).find(only) != std::string::npos) {
        pool.push_back(c);
      }
    }
    ASSERT_FALSE(pool.empty()) << "TANDEM_CHAOS_ONLY='" << only << "' names no fault";
    Fault f = round <= static_cast<int>(pool.size()) ? pool[round - 1] : pool[rng() % pool.size()];
    ASSERT_TRUE(WaitUntil([] { return Settled(); }, kSettleBoundMs))
        << "round " << round << ": the cluster is not healthy before the fault (" << unsettled_
        << ")\n"
        << (NodeStatus(1) ? NodeStatus(1)->dump(2) : "") << Logs();
    const int p = PrimaryIndex();
    ASSERT_GT(p, 0);
    const std::string old_primary = Topology::NodeAddr(p);
    // Writes flow before the fault.
    const int64_t before = Workload::NowMs();
    ASSERT_TRUE(WaitUntil([&] { return load.AckAfter(before, "") > 0; }, kRecoverBoundMs))
        << "round " << round << ": no write succeeds on a healthy cluster";

    std::string what;
    const int64_t fault_ms = Workload::NowMs();
    auto undo = Inject(f, p, &what);
    // Recovery: a write acknowledged after the fault, by another node when the
    // fault takes the primary role away.
    const std::string not_node = MovesThePrimary(f) ? old_primary : "";
    const bool recovered =
        WaitUntil([&] { return load.AckAfter(fault_ms, not_node) > 0; }, kRecoverBoundMs);
    if (f == Fault::kAgentPause || f == Fault::kIsolate || f == Fault::kEtcdCut ||
        f == Fault::kReplicaDiskFull) {
      // Hold the fault past three lease TTLs before healing it.
      WaitUntil([&] { return Workload::NowMs() - fault_ms > 3 * kTtlMs; }, 10 * kTtlMs);
    }
    undo();
    EXPECT_TRUE(recovered) << "round " << round << " (" << FaultName(f) << ", " << what
                           << "): no write acknowledged within " << kRecoverBoundMs << " ms\n"
                           << (NodeStatus(1) ? NodeStatus(1)->dump(2) : "") << Logs();
    const bool settled = WaitUntil([] { return Settled(); }, kSettleBoundMs);
    const int64_t settled_ms = Workload::NowMs();
    EXPECT_TRUE(settled) << "round " << round << " (" << FaultName(f)
                         << "): the cluster did not settle within " << kSettleBoundMs << " ms ("
                         << unsettled_ << ")\n"
                         << (NodeStatus(1) ? NodeStatus(1)->dump(2) : "") << Logs();

    // Every acknowledged id on every node (replicas may still be replaying).
    std::vector<Op> ops;
    std::map<std::string, std::set<int64_t>> rows;
    Verdict v;
    WaitUntil(
        [&] {
          rows.clear();
          const int64_t read_ms = Workload::NowMs();
          for (int i = 1; i <= kNodes; ++i) {
            auto r = Rows(i);
            if (!r) return false;
            rows[Topology::NodeAddr(i)] = std::move(*r);
          }
          ops = load.Snapshot();
          v = Check(ops, read_ms, rows);
          return v.ok();
        },
        30'000);
    // Losses stay lost: count the ones this round added.
    RoundResult rr{f, LongestGap(ops, fault_ms, settled_ms), v.lost - lost_so_far};
    lost_so_far = v.lost;
    results.push_back(rr);
    const int fences = SelfFences();
    std::printf("round %2d  %-36s unavailable %6lld ms  acked %zu  lost %zu  %s(%s)\n", round,
                FaultName(f), static_cast<long long>(rr.unavailable_ms), v.acknowledged, rr.lost,
                fences > fences_so_far ? "primary self-fenced  " : "", what.c_str());
    results.back().self_fenced = fences > fences_so_far ? 1 : 0;
    fences_so_far = fences;
    std::fflush(stdout);
    for (const auto& violation : v.violations)
      ADD_FAILURE() << "round " << round << ": " << violation;
    if (!v.violations.empty() || !recovered || !settled) break;
  }
  load.Stop();

  // One summary line per fault.
  std::printf("\nchaos summary (seed %llu):\n", static_cast<unsigned long long>(seed));
  for (Fault f : kAllFaults) {
    std::vector<int64_t> gaps;
    size_t lost = 0;
    int fenced = 0;
    for (const auto& r : results) {
      if (r.fault != f) continue;
      gaps.push_back(r.unavailable_ms);
      lost += r.lost;
      fenced += r.self_fenced;
    }
    if (gaps.empty()) continue;
    std::sort(gaps.begin(), gaps.end());
    std::printf(
        "  %-36s rounds %2zu  unavailable max %6lld ms  median %6lld ms  lost writes %zu  "
        "rounds self-fenced %d\n",
        FaultName(f), gaps.size(), static_cast<long long>(gaps.back()),
        static_cast<long long>(gaps[gaps.size() / 2]), lost, fenced);
  }
  EXPECT_EQ(static_cast<int>(results.size()), rounds);
}

}  // namespace
}  // namespace tandem::chaos
