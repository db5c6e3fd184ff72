// End to end on real etcd and PostgreSQL 15: two data nodes and a witness
// (`tandem sandbox up --nodes 2 --witness`, docs/design/witness.md). Status
// shows the witness; a crash of the primary's node fails over with no
// acknowledged write lost and the old primary rejoins; a switchover moves the
// primary back; the witness down changes nothing for clients, nor the replica
// down (quorum mode drops it after its grace); the witness
// leaves and rejoins leaving a local database untouched; bad input (a second
// witness, an address that is no Tandem agent, the witness as a target) is
// refused. The tests share one sandbox (ports 30800-31299) and run in order.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/file.h"
#include "base/process.h"
#include "base/strings.h"
#include "integration/harness/harness.h"

namespace tandem::testing {
namespace {
using nlohmann::json;

class WitnessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    BecomeSubreaper();
    dir_ = new TempDir("tandem-witness");
    base_ = TestBasePort(30800);
    auto r = RunTandem({"sandbox", "up", "--nodes", "2", "--witness", "--no-tls", "--dir", Dir(),
                        "--base-port", std::to_string(base_)},
                       600'000);
    up_output_ = new std::string(r.output);
    up_ok_ = r.exit_code == 0;
  }
  static void TearDownTestSuite() {
    SandboxDown(Dir());
    for (pid_t* p : {&w2_agent_, &http_server_}) {
      if (*p > 0 && IsAlive(*p)) {
        KillProcessTree(*p, SIGTERM);
        if (!WaitForExit(*p, 30'000)) KillProcessTree(*p, SIGKILL);
      }
    }
    delete dir_;
    delete up_output_;
  }
  void SetUp() override { ASSERT_TRUE(up_ok_) << "sandbox up failed:\n" << *up_output_; }

  static std::string Dir() { return dir_->path() + "/sb"; }
  static std::string Config(const std::string& node) { return Dir() + "/" + node + "/tandem.yaml"; }
  static std::string Pgpass() { return Dir() + "/pgpass"; }
  // node1, node2: P+10i; the witness: P+100 (its proxy at +2, health at +6).
  static int Port(const std::string& node) {
    return base_ + (node == "witness" ? 100 : 10 * (node.back() - '0'));
  }
  static std::optional<json> Status(const std::string& via) {
    return ClusterStatusJson(Config(via));
  }
  static std::string Primary(const std::string& via) { return PrimaryOf(Config(via)); }
  static std::string Other(const std::string& data_node) {
    return data_node == "node1" ? "node2" : "node1";
  }
  static const json* Member(const json& status, const std::string& name) {
    for (const auto& m : status["members"]) {
      if (m.value("name", "") == name) return &m;
    }
    return nullptr;
  }
  // One primary, the other data node in sync, the witness connected, and a
  // sync record that allows the next failover.
  static std::string Unhealthy(const std::string& via) {
    auto s = Status(via);
    if (!s) return "no status";
    const json* w = Member(*s, "witness");
    if (w == nullptr || !w->value("connected", false) || w->value("role", "") != "witness") {
      return "the witness is not connected: " + s->dump();
    }
    json data = *s;
    data["members"] = json::array();
    for (const auto& m : (*s)["members"]) {
      if (!m.value("witness", false)) data["members"].push_back(m);
    }
    return UnhealthyBecause(data, 2, /*failover_ready=*/true);
  }
  static bool Healthy(const std::string& via) { return Unhealthy(via).empty(); }
  static bool Insert(int port, int id) {
    return Psql(port, Pgpass(),
                "INSERT INTO w VALUES (" + std::to_string(id) + ") ON CONFLICT DO NOTHING")
               .exit_code == 0;
  }
  static int Count(int port, const std::string& where) {
    auto r = Psql(port, Pgpass(), "SELECT count(*) FROM w WHERE " + where);
    return r.exit_code == 0 ? static_cast<int>(ParseInt(Trim(r.output)).value_or(-1)) : -1;
  }

  static inline TempDir* dir_ = nullptr;
  static inline int base_ = 0;
  static inline bool up_ok_ = false;
  static inline std::string* up_output_ = nullptr;
  static inline pid_t w2_agent_ = 0;
  static inline pid_t http_server_ = 0;
};

TEST_F(WitnessTest, StatusShowsTheWitnessWhichRunsNoPostgres) {
  ASSERT_TRUE(WaitUntil([] { return Healthy("node1"); }, 120'000)) << Unhealthy("node1");
  auto s = Status("node1");
  ASSERT_TRUE(s);
  const json* w = Member(*s, "witness");
  ASSERT_NE(w, nullptr) << s->dump(2);
  EXPECT_EQ((*w)["role"], "witness");
  EXPECT_EQ((*w)["witness"], true);
  EXPECT_EQ((*w)["voter"], true);
  EXPECT_EQ((*w)["sync_standby"], false);
  EXPECT_EQ((*s)["sync"]["standbys"], json::array({Other(Primary("node1"))}));
  auto human = RunTandem({"-c", Config("node1"), "cluster", "status"});
  EXPECT_NE(human.output.find("Connected Witness"), std::string::npos) << human.output;
  // No PostgreSQL, no data directory, no replication slot for it.
  auto ss = RunTandem({"sandbox", "status", "--json", "--dir", Dir()});
  ASSERT_EQ(ss.exit_code, 0) << ss.output;
  for (const auto& n : json::parse(ss.output)) {
    if (n["name"] != "witness") continue;
    EXPECT_EQ(n["role"], "witness") << n.dump();
    EXPECT_EQ(n["pids"]["postgres"], 0) << n.dump();
    EXPECT_GT(n["pids"]["etcd"].get<int>(), 0) << n.dump();
  }
  EXPECT_FALSE(PathExists(Dir() + "/witness/pgdata"));
  auto slots = Psql(Port(Primary("node1")), Pgpass(), "SELECT slot_name FROM pg_replication_slots");
  EXPECT_EQ(slots.output.find("witness"), std::string::npos) << slots.output;
  // Neither primary nor replica on the health endpoints.
  for (const char* path : {"/primary", "/replica", "/health"}) {
    auto r = RunCmd({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                     "http://127.0.0.1:" + std::to_string(Port("witness") + 6) + path});
    EXPECT_EQ(Trim(r.output), "503") << path;
  }
  // Its proxy follows the routes like any agent's.
  ASSERT_EQ(
      Psql(Port(Primary("node1")), Pgpass(), "CREATE TABLE IF NOT EXISTS w(id int primary key)")
          .exit_code,
      0);
  EXPECT_TRUE(WaitUntil([] { return Insert(Port("witness") + 2, 1); }, 10'000));
  auto rec = Psql(Port("witness") + 2, Pgpass(), "SELECT pg_is_in_recovery()");
  EXPECT_EQ(Trim(rec.output), "f") << rec.output;
}

TEST_F(WitnessTest, BadInputIsRefusedAndChangesNothing) {
  ASSERT_TRUE(WaitUntil([] { return Healthy("node1"); }, 60'000)) << Unhealthy("node1");
  // The witness is never a target.
  auto sw = RunTandem({"-c", Config("node1"), "cluster", "switchover", "--to", "witness"});
  EXPECT_NE(sw.exit_code, 0);
  EXPECT_NE(sw.output.find("witness is a witness: it runs no PostgreSQL"), std::string::npos)
      << sw.output;
  auto fo = RunTandem({"-c", Config("node1"), "cluster", "failover", "--to", "witness"});
  EXPECT_NE(fo.exit_code, 0);
  EXPECT_NE(fo.output.find("can never be the primary"), std::string::npos) << fo.output;
  // Removing the witness of two data nodes needs --force.
  auto rm = RunTandem({"-c", Config("node1"), "cluster", "remove", "witness"});
  EXPECT_NE(rm.exit_code, 0);
  EXPECT_NE(rm.output.find("pass --force"), std::string::npos) << rm.output;

  // A sandbox whose witness would make the voter count even is refused before it starts.
  auto odd = RunTandem({"sandbox", "up", "--nodes", "3", "--witness", "--no-tls", "--dir",
                        dir_->path() + "/odd", "--base-port", std::to_string(base_ + 200)});
  EXPECT_NE(odd.exit_code, 0);
  EXPECT_NE(odd.output.find("would make an even count of voters"), std::string::npos) << odd.output;
  EXPECT_FALSE(PathExists(dir_->path() + "/odd"));
  // A second witness would make four voters.
  const std::string wdir = Dir() + "/w2";
  ASSERT_TRUE(MakeDirs(wdir + "/pgdata", 0700).ok());
  ASSERT_TRUE(WriteFileAtomic(wdir + "/pgdata/PG_VERSION", "15\n").ok());
  const int wp = base_ + 150;
  // Its config names a data directory: a witness ignores it.
  std::string yaml = NodeYaml("w2", wdir, wp);
  const std::string pg_port = "postgresql:\n  port: " + std::to_string(wp) + "\n";
  yaml.replace(yaml.find(pg_port), pg_port.size(), pg_port + "  data_dir: " + wdir + "/pgdata\n");
  ASSERT_TRUE(WriteFileAtomic(wdir + "/tandem.yaml", yaml).ok());
  SpawnOptions opts;
  opts.output_file = wdir + "/agent.log";
  auto pid = Spawn({TandemBin(), "agent", "-c", wdir + "/tandem.yaml"}, opts);
  ASSERT_TRUE(pid.ok());
  w2_agent_ = *pid;
  ASSERT_TRUE(WaitUntil(
      [&] {
        return RunTandem({"-c", wdir + "/tandem.yaml", "cluster", "status"}).exit_code == 0;
      },
      30'000));
  const std::string api1 = "127.0.0.1:" + std::to_string(Port("node1") + 1);
  auto second = RunTandem({"-c", wdir + "/tandem.yaml", "cluster", "join", api1, "--witness"});
  EXPECT_NE(second.exit_code, 0);
  EXPECT_NE(second.output.find("already has 3 voting members (witness witness)"), std::string::npos)
      << second.output;
  EXPECT_NE(second.output.find("tandem cluster remove witness"), std::string::npos)
      << second.output;
  // Not a Tandem agent: nothing listens, or something else answers.
  auto nowhere =
      RunTandem({"-c", wdir + "/tandem.yaml", "cluster", "join", "127.0.0.1:1", "--witness"});
  EXPECT_NE(nowhere.exit_code, 0);
  EXPECT_NE(nowhere.output.find("cannot reach a Tandem agent at http://127.0.0.1:1"),
            std::string::npos)
      << nowhere.output;
  const int hp = base_ + 190;
  auto http = Spawn({"/usr/bin/python3", "-m", "http.server", std::to_string(hp), "--bind",
                     "127.0.0.1", "--directory", wdir},
                    SpawnOptions{});
  ASSERT_TRUE(http.ok());
  http_server_ = *http;
  CommandResult other;  // until the server listens, the refusal is "cannot reach"
  EXPECT_TRUE(WaitUntil(
      [&] {
        other = RunTandem({"-c", wdir + "/tandem.yaml", "cluster", "join",
                           "127.0.0.1:" + std::to_string(hp), "--witness"});
        return other.output.find("is it a Tandem agent?") != std::string::npos;
      },
      10'000))
      << other.output;
  EXPECT_NE(other.exit_code, 0);
  // Nothing changed: no etcd member, no secrets, not a member, the local
  // "database" as it was, and the cluster still has three voters.
  EXPECT_FALSE(PathExists(wdir + "/etcd/member"));
  EXPECT_FALSE(PathExists(wdir + "/secrets.json"));
  EXPECT_EQ(*ReadFile(wdir + "/pgdata/PG_VERSION"), "15\n");
  EXPECT_FALSE(PathExists(wdir + "/pgdata.pre-join"));
  auto st = RunTandem({"-c", wdir + "/tandem.yaml", "cluster", "status"});
  EXPECT_NE(st.output.find("Status                : Disabled"), std::string::npos) << st.output;
  EXPECT_EQ((*Status("node1"))["members"].size(), 3u);
  KillProcessTree(http_server_, SIGTERM);
  WaitForExit(http_server_, 10'000);
  KillProcessTree(w2_agent_, SIGTERM);
  EXPECT_TRUE(WaitForExit(w2_agent_, 30'000));
}

TEST_F(WitnessTest, PrimaryNodeCrashFailsOverWithNoAcknowledgedWriteLostAndItRejoins) {
  ASSERT_TRUE(WaitUntil([] { return Healthy("node1"); }, 60'000)) << Unhealthy("node1");
  const std::string old = Primary("witness");
  ASSERT_FALSE(old.empty());
  const std::string next = Other(old);
  ASSERT_EQ(Psql(Port(old), Pgpass(), "CREATE TABLE IF NOT EXISTS w(id int primary key)").exit_code,
            0);
  // Writes to the old primary until one fails; the node is killed meanwhile.
  std::atomic<int> acknowledged{0};
  std::thread writer([&] {
    for (int id = 1000;; ++id) {
      if (!Insert(Port(old), id)) return;
      acknowledged = id;
    }
  });
  ASSERT_TRUE(WaitUntil([&] { return acknowledged.load() >= 1020; }, 30'000));
  auto kill = RunTandem({"sandbox", "kill", old, "--dir", Dir()});
  writer.join();
  ASSERT_EQ(kill.exit_code, 0) << kill.output;
  const int last = acknowledged.load();
  ASSERT_GE(last, 1020);
  ASSERT_TRUE(WaitUntil([&] { return Primary("witness") == next; }, 60'000))
      << Status("witness")->dump(2);
  ASSERT_TRUE(WaitUntil([&] { return Insert(Port(next), 1); }, 30'000));
  // Every write the old primary acknowledged is on the new one (quorum mode).
  EXPECT_EQ(Count(Port(next), "id BETWEEN 1000 AND " + std::to_string(last)), last - 1000 + 1);
  // The old primary rejoins as a replica with the new data.
  auto start = RunTandem({"sandbox", "start", old, "--dir", Dir()});
  ASSERT_EQ(start.exit_code, 0) << start.output;
  EXPECT_TRUE(WaitUntil([] { return Healthy("witness"); }, 180'000)) << Unhealthy("witness");
  EXPECT_EQ(Primary("witness"), next);
  EXPECT_TRUE(
      WaitUntil([&] { return Count(Port(old), "id = " + std::to_string(last)) == 1; }, 60'000));
  EXPECT_EQ(Trim(Psql(Port(old), Pgpass(), "SELECT pg_is_in_recovery()").output), "t");
}

TEST_F(WitnessTest, SwitchoverMovesThePrimaryBack) {
  ASSERT_TRUE(WaitUntil([] { return Healthy("node1"); }, 60'000)) << Unhealthy("node1");
  const std::string old = Primary("node1");
  const std::string target = Other(old);
  ASSERT_TRUE(Insert(Port(old), 2));
  auto sw = RunTandem({"-c", Config("witness"), "cluster", "switchover", "--to", target});
  ASSERT_EQ(sw.exit_code, 0) << sw.output;
  EXPECT_NE(sw.output.find("Switchover complete"), std::string::npos) << sw.output;
  EXPECT_EQ(Primary("node1"), target);
  EXPECT_EQ(Count(Port(target), "id = 2"), 1);
  EXPECT_TRUE(WaitUntil([] { return Healthy("node1"); }, 60'000)) << Unhealthy("node1");
}

TEST_F(WitnessTest, TheWitnessDownChangesNothingForClients) {
  ASSERT_TRUE(WaitUntil([] { return Healthy("node1"); }, 60'000)) << Unhealthy("node1");
  const std::string primary = Primary("node1");
  auto kill = RunTandem({"sandbox", "kill", "witness", "--dir", Dir()});
  ASSERT_EQ(kill.exit_code, 0) << kill.output;
  // Writes go on, directly and through the proxies, for three leases' time.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(6);
  int id = 5000;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_TRUE(Insert(Port(primary), id++)) << "a write failed with the witness down";
    ASSERT_TRUE(Insert(Port(Other(primary)) + 2, id++)) << "a write via the replica's proxy failed";
  }
  EXPECT_EQ(Primary("node1"), primary);
  // Status says the cluster is one failure from stopping (a warning).
  std::string warnings;
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto s = Status(primary);
        warnings = s ? (*s)["warnings"].dump() : "";
        return warnings.find("one failure from stopping") != std::string::npos;
      },
      15'000))
      << warnings;
  EXPECT_NE(warnings.find("the witness witness"), std::string::npos) << warnings;
  auto start = RunTandem({"sandbox", "start", "witness", "--dir", Dir()});
  ASSERT_EQ(start.exit_code, 0) << start.output;
  EXPECT_TRUE(WaitUntil([] { return Healthy("node1"); }, 60'000)) << Unhealthy("node1");
}

TEST_F(WitnessTest, TheReplicaDownThePrimaryKeepsAcceptingWrites) {
  ASSERT_TRUE(WaitUntil([] { return Healthy("node1"); }, 60'000)) << Unhealthy("node1");
  const std::string primary = Primary("node1");
  const std::string replica = Other(primary);
  ASSERT_EQ(RunTandem({"sandbox", "kill", replica, "--dir", Dir()}).exit_code, 0);
  // Quorum mode: a commit waits for the lost standby for its reconnect grace,
  // then the primary drops it and writes go on alone.
  ASSERT_TRUE(WaitUntil([&] { return Insert(Port(primary), 7000); }, 30'000))
      << Status(primary)->dump(2);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  int id = 7001;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_TRUE(Insert(Port(primary), id++)) << "a write failed with the replica down";
  }
  EXPECT_EQ(Primary("witness"), primary);
  auto start = RunTandem({"sandbox", "start", replica, "--dir", Dir()});
  ASSERT_EQ(start.exit_code, 0) << start.output;
  EXPECT_TRUE(WaitUntil([] { return Healthy("node1"); }, 120'000)) << Unhealthy("node1");
  EXPECT_TRUE(WaitUntil([&] { return Count(Port(replica), "id = " + std::to_string(id - 1)) == 1; },
                        60'000));
}

TEST_F(WitnessTest, TheWitnessLeavesAndRejoinsLeavingALocalDatabaseUntouched) {
  ASSERT_TRUE(WaitUntil([] { return Healthy("node1"); }, 60'000)) << Unhealthy("node1");
  auto rm = RunTandem({"-c", Config("witness"), "cluster", "remove", "--force"});
  ASSERT_EQ(rm.exit_code, 0) << rm.output;
  ASSERT_TRUE(WaitUntil([] { return (*Status("node1"))["members"].size() == 2u; }, 30'000));
  // A database of its own appears where a data node would keep one.
  const std::string pgdata = Dir() + "/witness/pgdata";
  ASSERT_TRUE(MakeDirs(pgdata, 0700).ok());
  ASSERT_TRUE(WriteFileAtomic(pgdata + "/PG_VERSION", "15\n").ok());
  ASSERT_TRUE(WriteFileAtomic(pgdata + "/precious.txt", "do not touch\n").ok());
  const std::string api1 = "127.0.0.1:" + std::to_string(Port("node1") + 1);
  auto join = RunTandem({"-c", Config("witness"), "cluster", "join", api1, "--witness"});
  ASSERT_EQ(join.exit_code, 0) << join.output;
  EXPECT_NE(join.output.find("Connected Witness"), std::string::npos) << join.output;
  EXPECT_TRUE(WaitUntil([] { return Healthy("node1"); }, 60'000)) << Unhealthy("node1");
  EXPECT_EQ(*ReadFile(pgdata + "/precious.txt"), "do not touch\n");
  EXPECT_EQ(*ReadFile(pgdata + "/PG_VERSION"), "15\n");
  EXPECT_FALSE(PathExists(pgdata + ".pre-join"));
  // Leaving again keeps it where it is too.
  ASSERT_EQ(RunTandem({"-c", Config("witness"), "cluster", "remove", "--force"}).exit_code, 0);
  EXPECT_EQ(*ReadFile(pgdata + "/precious.txt"), "do not touch\n");
  EXPECT_FALSE(PathExists(pgdata + ".removed"));
  ASSERT_TRUE(RemoveAll(pgdata).ok());
  ASSERT_EQ(RunTandem({"-c", Config("witness"), "cluster", "join", api1, "--witness"}).exit_code,
            0);
  EXPECT_TRUE(WaitUntil([] { return Healthy("node1"); }, 60'000)) << Unhealthy("node1");
}

}  // namespace
}  // namespace tandem::testing
