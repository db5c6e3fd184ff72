// Two agents on an external etcd (dcs.endpoints set, no embedded member), on
// real etcd and PostgreSQL 15 on 127.0.0.1: initialize node1, join node2,
// replication, no etcd member started by any agent, and failover to node2
// after node1's agent is stopped with SIGTERM.
//
// Ports (TestBasePort(26400) = P): etcd client P+4, peer P+5; node i uses
// P+10i (PostgreSQL) and P+10i+1 (API).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/process.h"
#include "base/strings.h"
#include "integration/harness/harness.h"

namespace tandem::testing {
namespace {
using nlohmann::json;

class ExternalEtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BecomeSubreaper();  // postgres started by the agents may be reparented to us: reap it
    dir_ = std::make_unique<TempDir>("tandem-extetcd");
    base_ = TestBasePort(26400);
    for (int i = 1; i <= 2; ++i) ASSERT_TRUE(MakeDirs(NodeDir(i), 0755).ok());
  }

  void TearDown() override {
    // Everything by pid, also when a test failed half-way.
    for (int i = 1; i <= 2; ++i) {
      if (agents_[i] > 0 && IsAlive(agents_[i])) {
        KillProcessTree(agents_[i], SIGTERM);
        if (!WaitForExit(agents_[i], 60'000)) KillProcessTree(agents_[i], SIGKILL);
        (void)WaitForExit(agents_[i], 10'000);
      }
      // A postgres the agent left behind (it was killed, or did not stop it).
      StopPostgres(NodeDir(i) + "/pgdata");
      // An etcd member the agent should never have started.
      if (auto p = LivePidFromFile(NodeDir(i) + "/etcd.pid"); p > 0 && IsAlive(p)) {
        KillProcessTree(p, SIGKILL);
        (void)WaitForExit(p, 10'000);
      }
    }
    if (etcd_ > 0 && IsAlive(etcd_)) {
      KillProcessTree(etcd_, SIGTERM);
      if (!WaitForExit(etcd_, 30'000)) KillProcessTree(etcd_, SIGKILL);
      (void)WaitForExit(etcd_, 10'000);
    }
    ReapChildren();
    dir_.reset();
  }

  static void StopPostgres(const std::string& data_dir) {
    pid_t pid = LivePidFromFile(data_dir + "/postmaster.pid");
    if (pid > 0 && IsAlive(pid)) {
      ::kill(pid, SIGQUIT);  // immediate shutdown; the postmaster takes its children along
      if (!WaitForExit(pid, 30'000)) ::kill(pid, SIGKILL);
      (void)WaitForExit(pid, 10'000);
    }
  }

  std::string NodeDir(int i) const { return dir_->path() + "/node" + std::to_string(i); }
  std::string Config(int i) const { return NodeDir(i) + "/tandem.yaml"; }
  int PgPort(int i) const { return base_ + 10 * i; }
  int ApiPort(int i) const { return base_ + 10 * i + 1; }
  int EtcdClientPort() const { return base_ + 4; }
  int EtcdPeerPort() const { return base_ + 5; }
  std::string EtcdUrl() const { return "http://127.0.0.1:" + std::to_string(EtcdClientPort()); }
  std::string Pgpass() const { return dir_->path() + "/pgpass"; }

  void StartEtcd() {
    const std::string data = dir_->path() + "/etcd-data";
    ASSERT_TRUE(MakeDirs(data, 0700).ok());
    ASSERT_TRUE(Chown(data, ServiceUser()).ok());
    const std::string peer = "http://127.0.0.1:" + std::to_string(EtcdPeerPort());
    SpawnOptions opts;
    opts.run_as_user = ServiceUser();
    opts.output_file = dir_->path() + "/etcd.log";
    auto pid =
        Spawn({"etcd", "--name=external", "--data-dir=" + data, "--listen-client-urls=" + EtcdUrl(),
               "--advertise-client-urls=" + EtcdUrl(), "--listen-peer-urls=" + peer,
               "--initial-advertise-peer-urls=" + peer, "--initial-cluster=external=" + peer,
               "--initial-cluster-state=new", "--initial-cluster-token=tandem-extetcd-test",
               "--heartbeat-interval=100", "--election-timeout=1000", "--log-level=warn"},
              opts);
    ASSERT_TRUE(pid.ok()) << pid.error().message();
    etcd_ = *pid;
    ASSERT_TRUE(WaitUntil(
        [&] {
          auto r = RunCmd({"etcdctl", "--endpoints=" + EtcdUrl(), "endpoint", "health"}, 10'000,
                          {{"ETCDCTL_API", "3"}});
          return r.exit_code == 0 && r.output.find("is healthy") != std::string::npos;
        },
        30'000))
        << "the external etcd did not become healthy; log:\n"
        << FileText(dir_->path() + "/etcd.log");
  }

  void WriteConfig(int i) {
    const std::string y =
        "cluster: ext\n"
        "node:\n  name: node" +
        std::to_string(i) +
        "\n  address: 127.0.0.1\n"
        "  state_dir: " +
        NodeDir(i) +
        "\n"
        "api:\n  listen: 127.0.0.1\n  port: " +
        std::to_string(ApiPort(i)) +
        "\n"
        "postgresql:\n  port: " +
        std::to_string(PgPort(i)) +
        "\n"
        "dcs: {endpoints: [" +
        EtcdUrl() + "]}\n";
    ASSERT_TRUE(WriteFileAtomic(Config(i), y).ok());
  }

  void StartAgent(int i) {
    const char* bin = std::getenv("TANDEM_BIN");
    SpawnOptions opts;
    opts.output_file = NodeDir(i) + "/agent.log";
    auto pid = Spawn({bin != nullptr ? bin : "build/tandem", "agent", "-c", Config(i)}, opts);
    ASSERT_TRUE(pid.ok()) << pid.error().message();
    agents_[i] = *pid;
    ASSERT_TRUE(WaitUntil(
        [&] {
          return RunTandem({"-c", Config(i), "cluster", "status"}, 10'000).exit_code == 0;
        },
        30'000))
        << "node" << i << "'s agent does not answer; log:\n"
        << AgentLog(i);
  }

  static std::string FileText(const std::string& path) {
    auto text = ReadFile(path);
    return text ? *text : "";
  }
  std::string AgentLog(int i) const { return FileText(NodeDir(i) + "/agent.log"); }

  std::optional<json> Status(int i) const { return ClusterStatusJson(Config(i)); }
  std::string StatusDump(int i) const {
    auto s = Status(i);
    return s ? s->dump(2) : "(no status from node" + std::to_string(i) + ")";
  }
  std::string Primary(int via) const {
    auto s = Status(via);
    if (!s || !(*s)["primary"].is_string()) return "";
    return (*s)["primary"].get<std::string>();
  }
  // node1 is the primary and node2 a replica in sync, as seen from `via`.
  bool OnePrimaryOneInSyncReplica(int via, const std::string& primary) const {
    auto s = Status(via);
    if (!s || (*s)["primary"] != primary || (*s)["members"].size() != 2) return false;
    int primaries = 0, replicas = 0;
    for (const auto& m : (*s)["members"]) {
      if (m["role"] == "primary" && m["name"] == primary) ++primaries;
      if (m["role"] == "replica" && m["in_sync"] == true) ++replicas;
    }
    return primaries == 1 && replicas == 1;
  }

  std::unique_ptr<TempDir> dir_;
  int base_ = 0;
  pid_t etcd_ = 0;
  pid_t agents_[3] = {0, 0, 0};
};

TEST_F(ExternalEtcdTest, TwoAgentsReplicateAndFailOverWithoutAnEmbeddedMember) {
  ASSERT_NO_FATAL_FAILURE(StartEtcd());
  for (int i = 1; i <= 2; ++i) ASSERT_NO_FATAL_FAILURE(WriteConfig(i));
  for (int i = 1; i <= 2; ++i) ASSERT_NO_FATAL_FAILURE(StartAgent(i));

  auto init = RunTandem({"-c", Config(1), "cluster", "initialize"}, 300'000);
  ASSERT_EQ(init.exit_code, 0) << init.output << "\nnode1 log:\n" << AgentLog(1);
  auto join = RunTandem(
      {"-c", Config(2), "cluster", "join", "127.0.0.1:" + std::to_string(ApiPort(1))}, 600'000);
  ASSERT_EQ(join.exit_code, 0) << join.output << "\nnode2 log:\n" << AgentLog(2);

  ASSERT_TRUE(WaitUntil([&] { return OnePrimaryOneInSyncReplica(1, "node1"); }, 120'000))
      << StatusDump(1);
  EXPECT_TRUE(WaitUntil([&] { return OnePrimaryOneInSyncReplica(2, "node1"); }, 60'000))
      << StatusDump(2);

  // With dcs.endpoints set, no agent runs an etcd member of its own.
  for (int i = 1; i <= 2; ++i) {
    EXPECT_FALSE(PathExists(NodeDir(i) + "/etcd/member")) << "node" << i;
    EXPECT_FALSE(PathExists(NodeDir(i) + "/etcd.pid")) << "node" << i;
  }
  EXPECT_TRUE(IsAlive(etcd_));

  // Replication, with the superuser password the agents generated.
  auto secrets_text = ReadFile(NodeDir(1) + "/secrets.json");
  ASSERT_TRUE(secrets_text.ok()) << secrets_text.error().message();
  const std::string password =
      json::parse(*secrets_text).at("superuser_password").get<std::string>();
  ASSERT_FALSE(password.empty());
  ASSERT_TRUE(WriteFileAtomic(Pgpass(), "127.0.0.1:*:*:postgres:" + password + "\n", 0600).ok());
  auto w = Psql(PgPort(1), Pgpass(),
                "CREATE TABLE ext(id int primary key, v text); INSERT INTO ext VALUES (1, 'one')");
  ASSERT_EQ(w.exit_code, 0) << w.output;
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto r = Psql(PgPort(2), Pgpass(), "SELECT v FROM ext WHERE id = 1");
        return r.exit_code == 0 && Trim(r.output) == "one";
      },
      30'000))
      << "the row did not reach node2";
  auto rec = Psql(PgPort(2), Pgpass(), "SELECT pg_is_in_recovery()");
  EXPECT_EQ(Trim(rec.output), "t") << rec.output;

  // Until the sync record counts node2 as holding every acknowledged write
  // (it flushed past a position read from the primary), losing node1 rightly
  // needs an operator: wait for that before stopping it.
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto s = Status(2);
        return s && (*s)["sync"].is_object() && (*s)["sync"].value("failover_ready", false);
      },
      60'000))
      << StatusDump(2);
  // Graceful stop of the primary's agent: node2 takes over.
  ASSERT_EQ(::kill(agents_[1], SIGTERM), 0);
  ASSERT_TRUE(WaitForExit(agents_[1], 60'000)) << "node1's agent did not stop";
  EXPECT_FALSE(IsAlive(LivePidFromFile(NodeDir(1) + "/pgdata/postmaster.pid")))
      << "node1's agent left PostgreSQL running";
  ASSERT_TRUE(WaitUntil([&] { return Primary(2) == "node2"; }, 60'000))
      << StatusDump(2) << "\nnode2 log:\n"
      << AgentLog(2);
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto r = Psql(PgPort(2), Pgpass(), "INSERT INTO ext VALUES (2, 'two')");
        return r.exit_code == 0;
      },
      60'000))
      << "node2 does not accept writes";
  auto both = Psql(PgPort(2), Pgpass(), "SELECT string_agg(v, ',' ORDER BY id) FROM ext");
  EXPECT_EQ(Trim(both.output), "one,two") << both.output;
  EXPECT_TRUE(IsAlive(etcd_)) << "the external etcd must outlive the agents";
}

}  // namespace
}  // namespace tandem::testing
