// The floating IP moves with the primary (docs/design/vip.md): three nodes in
// network namespaces on a bridge (tests/chaos/netns.h, prefix tvip), each
// configured with vip 10.213.0.50/24 on its eth0. A client in its own
// namespace connects to the floating IP's proxy port and must reach the
// primary; after a switchover and after kill -9 of the primary's agent, the
// address must be on the new primary only, and the client's ARP entry for it
// must carry the new primary's MAC without the client having asked (the
// gratuitous ARP). A primary cut off from its peers drops it before another
// node adds it. Needs root (namespaces; the agents add addresses).
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/file.h"
#include "base/process.h"
#include "base/strings.h"
#include "chaos/netns.h"
#include "integration/harness/harness.h"

namespace tandem {
namespace {
using chaos::Topology;
using nlohmann::json;
using testing::KillGroup;
using testing::LivePidFromFile;
using testing::RunCmd;
using testing::TandemBin;
using testing::TempDir;
using testing::UnhealthyBecause;
using testing::WaitUntil;

constexpr int kNodes = 3;
constexpr int kApiPort = 8008;
constexpr int kPgPort = 5432;
constexpr int kProxyPort = 5433;
constexpr const char* kVip = "10.213.0.50";
constexpr const char* kClientPassword = "vip-client-pw";
constexpr int64_t kSettleMs = 240'000;

std::string Name(int i) {
  return "n" + std::to_string(i);
}

// The namespaces, agents and their children: everything the suite started,
// stopped and removed when it ends, whether the tests passed or not.
class Cluster {
 public:
  Cluster() : dir_("tandem-vip"), net_("tvip") {}
  ~Cluster() {
    for (int i = 1; i <= kNodes; ++i) StopNode(i);
    net_.Destroy();
  }

  Status Create() {
    TANDEM_TRY(net_.Create(kNodes));
    TANDEM_TRY(net_.EnterClient());
    for (int i = 1; i <= kNodes; ++i) {
      TANDEM_TRY(MakeDirs(NodeDir(i), 0755));
      std::string y = "cluster: vip\n";
      y += "node:\n  name: " + Name(i) + "\n  address: " + Topology::NodeAddr(i) +
           "\n  state_dir: " + NodeDir(i) + "/state\n";
      y += "api:\n  listen: " + Topology::NodeAddr(i) + "\n  port: " + std::to_string(kApiPort) +
           "\n";
      y += "postgresql:\n  port: " + std::to_string(kPgPort) + "\n";
      y += "proxy:\n  read_write_port: " + std::to_string(kProxyPort) + "\n  listen: 0.0.0.0\n";
      y += std::string("vip:\n  address: ") + kVip + "/24\n  interface: eth0\n";
      TANDEM_TRY(WriteFileAtomic(Config(i), y));
      TANDEM_TRY(StartAgent(i));
    }
    for (int i = 1; i <= kNodes; ++i) {
      if (!WaitUntil([&] { return NodeStatus(i).has_value(); }, 60'000)) {
        return Error(ErrorCode::kTimeout, "agent " + Name(i) + " did not answer");
      }
    }
    auto init = Cli(1, {"cluster", "initialize"}, 300'000);
    if (init.exit_code != 0) return Error(ErrorCode::kInternal, "initialize: " + init.output);
    for (int i = 2; i <= kNodes; ++i) {
      auto join = Cli(
          i, {"cluster", "join", Topology::NodeAddr(1) + ":" + std::to_string(kApiPort)}, 600'000);
      if (join.exit_code != 0) return Error(ErrorCode::kInternal, "join: " + join.output);
    }
    if (!WaitUntil([&] { return Settled(); }, kSettleMs)) {
      return Error(ErrorCode::kTimeout, "the cluster did not become healthy: " + unsettled_);
    }
    // An ordinary client role: pg_hba lets superusers in from members only.
    auto secrets = ReadFile(NodeDir(1) + "/state/secrets.json");
    std::string su;
    try {
      su = json::parse(secrets ? *secrets : "{}").value("superuser_password", "");
    } catch (...) {
    }
    const int p = Primary();
    auto sql = RunCmd(
        net_.InNs(net_.NodeNs(p),
                  {"psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", Topology::NodeAddr(p), "-p",
                   std::to_string(kPgPort), "-U", "postgres", "-d", "postgres", "-c",
                   std::string("CREATE ROLE vipclient LOGIN PASSWORD '") + kClientPassword + "'"}),
        60'000, {{"PGPASSWORD", su}, {"PGCONNECT_TIMEOUT", "5"}});
    if (sql.exit_code != 0) return Error(ErrorCode::kInternal, "CREATE ROLE: " + sql.output);
    return Ok();
  }

  const Topology& net() const { return net_; }
  std::string NodeDir(int i) const { return dir_.path() + "/" + Name(i); }
  std::string Config(int i) const { return NodeDir(i) + "/tandem.yaml"; }

  Status StartAgent(int i) {
    SpawnOptions opts;
    opts.output_file = NodeDir(i) + "/agent.log";
    auto pid = Spawn(net_.InNs(net_.NodeNs(i), {TandemBin(), "agent", "-c", Config(i)}), opts);
    if (!pid) return pid.error();
    agents_[i] = *pid;
    return Ok();
  }
  pid_t AgentPid(int i) const {
    auto it = agents_.find(i);
    return it != agents_.end() && IsAlive(it->second) ? it->second : 0;
  }
  pid_t PostmasterPid(int i) const {
    return LivePidFromFile(NodeDir(i) + "/state/pgdata/postmaster.pid");
  }
  pid_t EtcdPid(int i) const { return LivePidFromFile(NodeDir(i) + "/state/etcd.pid"); }

  void StopNode(int i) {
    if (pid_t a = AgentPid(i)) {
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

  testing::CommandResult Cli(int i, const std::vector<std::string>& args,
                             int64_t timeout_ms = 60'000) const {
    std::vector<std::string> argv = {TandemBin(), "-c", Config(i)};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCmd(net_.InNs(net_.NodeNs(i), argv), timeout_ms);
  }

  std::optional<json> NodeStatus(int i) const {
    return testing::HttpGetJson(Topology::NodeAddr(i), kApiPort, "/v1/status");
  }

  // The primary the live nodes agree on (0 = none), skipping `except`.
  int Primary(int except = 0) const {
    for (int i = 1; i <= kNodes; ++i) {
      if (i == except) continue;
      auto s = NodeStatus(i);
      if (!s || s->value("store", "") != "ok" || !(*s)["primary"].is_string()) continue;
      const std::string p = (*s)["primary"].get<std::string>();
      if (p.size() == 2 && p[0] == 'n') return p[1] - '0';
    }
    return 0;
  }

  // One primary, two replicas in sync, a sync record ready for a failover.
  bool Settled() {
    for (int i = 1; i <= kNodes; ++i) {
      if (AgentPid(i) == 0) return No(Name(i) + ": agent not running");
      auto s = NodeStatus(i);
      if (!s || s->value("store", "") != "ok") return No(Name(i) + ": status or store not ok");
    }
    auto s = NodeStatus(1);
    if (!s) return No("no status from " + Name(1));
    if (auto why = UnhealthyBecause(*s, kNodes, /*failover_ready=*/true); !why.empty()) {
      return No(why);
    }
    unsettled_.clear();
    return true;
  }

  // Whether node i's eth0 carries the floating IP (read with `ip -n`).
  bool HasVip(int i) const {
    auto r = RunCmd({"ip", "-n", net_.NodeNs(i), "-4", "-o", "addr", "show", "dev", "eth0"});
    return r.exit_code == 0 && r.output.find(std::string(kVip) + "/24") != std::string::npos;
  }
  std::vector<int> VipHolders() const {
    std::vector<int> out;
    for (int i = 1; i <= kNodes; ++i) {
      if (HasVip(i)) out.push_back(i);
    }
    return out;
  }
  std::string Mac(int i) const {
    auto r = RunCmd({"ip", "-n", net_.NodeNs(i), "-o", "link", "show", "dev", "eth0"});
    auto at = r.output.find("link/ether ");
    return at == std::string::npos ? "" : r.output.substr(at + 11, 17);
  }
  // The client's neighbour entry for the floating IP: its MAC ("" = none).
  std::string ClientNeighbourMac() const {
    auto r = RunCmd({"ip", "-n", net_.ClientNs(), "neigh", "show", kVip});
    auto at = r.output.find("lladdr ");
    return at == std::string::npos ? "" : r.output.substr(at + 7, 17);
  }
  // From the client's namespace, through the floating IP's proxy port:
  // "f|<the server's address>" when it reaches a primary.
  std::string AskThroughVip() const {
    auto r = RunCmd(net_.InNs(net_.ClientNs(),
                              {"psql", "-X", "-At", "-h", kVip, "-p", std::to_string(kProxyPort),
                               "-U", "vipclient", "-d", "postgres", "-c",
                               "SELECT pg_is_in_recovery() || '|' || host(inet_server_addr())"}),
                    30'000, {{"PGPASSWORD", kClientPassword}, {"PGCONNECT_TIMEOUT", "3"}});
    return r.exit_code == 0 ? Trim(r.output) : "error: " + r.output;
  }

  std::string Logs() const {
    std::string out;
    for (int i = 1; i <= kNodes; ++i) {
      auto t = ReadFile(NodeDir(i) + "/agent.log");
      if (!t) continue;
      std::string tail = t->size() > 6000 ? t->substr(t->size() - 6000) : *t;
      out += "---- " + Name(i) + " agent.log (tail)\n" + tail;
    }
    return out;
  }
  const std::string& unsettled() const { return unsettled_; }

 private:
  bool No(const std::string& why) {
    unsettled_ = why;
    return false;
  }

  TempDir dir_;
  Topology net_;
  std::map<int, pid_t> agents_;
  std::string unsettled_;
};

class VipTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    BecomeSubreaper();  // agents, PostgreSQL and etcd end up as our children: reap them
    if (::geteuid() != 0) {
      skip_ = "the floating IP test needs root (network namespaces, adding addresses)";
      return;
    }
    if (FindInPath("ip").empty() || FindInPath("psql").empty() || FindInPath("iptables").empty()) {
      skip_ = "ip, psql or iptables not installed";
      return;
    }
    cluster_ = new Cluster();
    if (auto s = cluster_->Create(); !s.ok()) setup_error_ = s.error().message();
  }
  static void TearDownTestSuite() {
    delete cluster_;  // stops every process and removes the namespaces
    cluster_ = nullptr;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(setup_error_.empty()) << setup_error_ << "\n" << cluster_->Logs();
  }

  // The floating IP is on node p only, and a client reaches p's PostgreSQL,
  // a primary, through it.
  static void ExpectVipOn(int p) {
    Cluster& c = *cluster_;
    std::vector<int> holders;
    const bool moved = WaitUntil(
        [&] {
          holders = c.VipHolders();
          return holders == std::vector<int>{p};
        },
        60'000);
    std::string h;
    for (int i : holders) h += Name(i) + " ";
    ASSERT_TRUE(moved) << "the floating IP should be on " << Name(p) << " only; it is on: " << h
                       << "\n"
                       << c.Logs();
    std::string answer;
    ASSERT_TRUE(WaitUntil(
        [&] {
          answer = c.AskThroughVip();
          return answer == "false|" + Topology::NodeAddr(p);
        },
        60'000))
        << "through " << kVip << ": " << answer;
    auto s = c.NodeStatus(p);
    ASSERT_TRUE(s.has_value());
    ASSERT_TRUE((*s)["vip"].is_object()) << s->dump();
    EXPECT_TRUE((*s)["vip"].value("here", false)) << s->dump();
    EXPECT_EQ((*s)["vip"].value("error", "x"), "") << s->dump();
    EXPECT_EQ((*s)["vip"].value("holder", ""), Name(p)) << s->dump();
  }

  // Without the client sending anything to the floating IP, its ARP entry
  // comes to name p's MAC: only the gratuitous ARP can have told it.
  static void ExpectClientNeighbourIs(int p) {
    Cluster& c = *cluster_;
    const std::string want = c.Mac(p);
    ASSERT_FALSE(want.empty());
    std::string seen;
    EXPECT_TRUE(WaitUntil(
        [&] {
          seen = c.ClientNeighbourMac();
          return seen == want;
        },
        30'000))
        << "the client's neighbour entry for " << kVip << " is '" << seen << "', want " << want
        << " (" << Name(p) << ")";
  }

  static inline Cluster* cluster_ = nullptr;
  static inline std::string skip_;
  static inline std::string setup_error_;
};

TEST_F(VipTest, TheFloatingIpIsOnThePrimaryOnly) {
  const int p = cluster_->Primary();
  ASSERT_NE(p, 0);
  ExpectVipOn(p);
  // The client has just talked to the address: its entry names the primary.
  EXPECT_EQ(cluster_->ClientNeighbourMac(), cluster_->Mac(p));
  for (int i = 1; i <= kNodes; ++i) {
    if (i == p) continue;
    auto s = cluster_->NodeStatus(i);
    ASSERT_TRUE(s.has_value());
    EXPECT_FALSE((*s)["vip"].value("here", true)) << s->dump();
    EXPECT_EQ((*s)["vip"].value("holder", ""), Name(p)) << s->dump();
  }
  auto human = cluster_->Cli(p, {"cluster", "status"});
  EXPECT_NE(human.output.find("Floating IP"), std::string::npos) << human.output;
}

TEST_F(VipTest, SwitchoverMovesIt) {
  Cluster& c = *cluster_;
  const int old = c.Primary();
  ASSERT_NE(old, 0);
  ExpectVipOn(old);  // and the client's ARP entry names the old primary
  auto sw = c.Cli(old, {"cluster", "switchover", "--wait", "120"}, 180'000);
  ASSERT_EQ(sw.exit_code, 0) << sw.output << c.Logs();
  int now = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        now = c.Primary();
        return now != 0 && now != old;
      },
      120'000));
  // First the ARP entry (the client has sent nothing since), then a connection.
  ExpectClientNeighbourIs(now);
  ExpectVipOn(now);
  EXPECT_FALSE(c.HasVip(old));
  ASSERT_TRUE(WaitUntil([&] { return c.Settled(); }, kSettleMs)) << c.unsettled() << c.Logs();
}

TEST_F(VipTest, KilledAgentsGuardDropsItAndTheNewPrimaryTakesIt) {
  Cluster& c = *cluster_;
  const int old = c.Primary();
  ASSERT_NE(old, 0);
  ExpectVipOn(old);
  // kill -9 the agent alone: its fence guard must remove the address (and
  // stop PostgreSQL) at the lease deadline; the new primary then adds it.
  const pid_t agent = c.AgentPid(old);
  ASSERT_NE(agent, 0);
  ::kill(agent, SIGKILL);
  (void)WaitForExit(agent, 10'000);
  ASSERT_TRUE(WaitUntil([&] { return !c.HasVip(old); }, 30'000))
      << "the fence guard did not remove the floating IP" << c.Logs();
  int now = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        now = c.Primary(old);
        return now != 0 && now != old;
      },
      120'000))
      << c.Logs();
  ExpectClientNeighbourIs(now);
  ExpectVipOn(now);

  // A leftover on a node that is not the primary (as a crash could leave it)
  // is removed when its agent starts.
  auto add = RunCmd(
      {"ip", "-n", c.net().NodeNs(old), "addr", "add", std::string(kVip) + "/24", "dev", "eth0"});
  ASSERT_EQ(add.exit_code, 0) << add.output;
  ASSERT_TRUE(c.StartAgent(old).ok());
  EXPECT_TRUE(WaitUntil([&] { return !c.HasVip(old); }, 60'000))
      << "the restarted agent left the floating IP on " << Name(old) << c.Logs();
  EXPECT_TRUE(WaitUntil([&] { return c.VipHolders() == std::vector<int>{now}; }, 60'000));
  ASSERT_TRUE(WaitUntil([&] { return c.Settled(); }, kSettleMs)) << c.unsettled() << c.Logs();
  ExpectVipOn(now);
}

TEST_F(VipTest, APrimaryCutOffRemovesItBeforeTheNewPrimaryAddsIt) {
  Cluster& c = *cluster_;
  const int old = c.Primary();
  ASSERT_NE(old, 0);
  ExpectVipOn(old);
  // Cut off from its peers (the store too), the old primary must drop the
  // address at its lease deadline, before the lease can expire and another
  // node take the key: the address is never on two nodes at once.
  ASSERT_TRUE(c.net().Isolate(old).ok());
  int now = 0;
  bool overlap = false;
  std::string seen;
  const bool moved = WaitUntil(
      [&] {
        const auto holders = c.VipHolders();
        if (holders.size() > 1) {
          overlap = true;
          seen.clear();
          for (int i : holders) seen += Name(i) + " ";
        }
        now = holders.size() == 1 && holders[0] != old ? holders[0] : 0;
        return now != 0;
      },
      120'000);
  (void)c.net().Heal(old);
  EXPECT_FALSE(overlap) << "the floating IP was on " << seen << "at once" << c.Logs();
  ASSERT_TRUE(moved) << "the floating IP did not move off the cut-off primary" << c.Logs();
  ExpectClientNeighbourIs(now);
  ExpectVipOn(now);
  ASSERT_TRUE(WaitUntil([&] { return c.Settled(); }, kSettleMs)) << c.unsettled() << c.Logs();
  ExpectVipOn(now);
}

}  // namespace
}  // namespace tandem
