// Alarms on a live 3-node sandbox (TLS, enforce; docs/alarms.md), one shared
// cluster: each alarm that can be provoked on 127.0.0.1 is raised and then
// cleared, seen through `tandem cluster alarms --json` from every node:
//   replication-failure (1002) and no-synchronous-standby (1007): the
//     replicas' PostgreSQL stopped while the cluster is paused (so the agents
//     do not start it again), cleared by `resume`;
//   cluster-communication-failure (1001) and quorum-at-risk (1009): a replica
//     killed (`sandbox kill`), cleared by `sandbox start`;
//   restart-required (1004): ALTER SYSTEM of a restart-only parameter,
//     cleared by resetting it and restarting that PostgreSQL;
//   certificate-expiring (1005): certificates valid for 10 days installed
//     with `cluster certs`, cleared by installing long-lived ones.
// Each test starts from, and leaves, a healthy cluster with no alarm.
//
// Ports: TestBasePort(30400) = P; node i uses P+10i .. P+10i+6.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/process.h"
#include "base/strings.h"
#include "integration/harness/harness.h"

namespace tandem::testing {
namespace {
using nlohmann::json;

bool Has(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

class AlarmsTest : public SandboxSuite<AlarmsTest> {
 protected:
  static void SetUpTestSuite() { UpSandbox("tandem-alarms", 30400); }
  static void TearDownTestSuite() {
    DownSandbox();
    RemoveSandboxDir();
  }
  static int PgPort(int i) { return base_ + 10 * i; }
  static std::string Pgpass() { return Dir() + "/pgpass"; }
  static std::string Name(int i) { return "node" + std::to_string(i); }

  // `cluster alarms [--history] --json` on node i (nullopt when it fails).
  static std::optional<json> Alarms(int i, bool history = false) {
    std::vector<std::string> args = {"-c", Config(i), "cluster", "alarms", "--json"};
    if (history) args.push_back("--history");
    auto r = RunTandem(args, 30'000);
    if (r.exit_code != 0) return std::nullopt;
    try {
      return json::parse(r.output);
    } catch (...) {
      return std::nullopt;
    }
  }
  // The active alarm `id` about `node` ("" = the cluster) as node i reads it.
  static std::optional<json> Find(int i, int id, const std::string& node,
                                  const char* list = "active") {
    auto a = Alarms(i, std::string(list) == "history");
    if (!a) return std::nullopt;
    for (const auto& x : a->value(list, json::array())) {
      if (x.value("id", 0) == id && x.value("node", "?") == node) return x;
    }
    return std::nullopt;
  }
  static bool NoAlarm(int via) {
    auto a = Alarms(via);
    return a && a->value("active", json::array()).empty();
  }
  static std::string AlarmsText(int via) {
    auto a = Alarms(via, true);
    return a ? a->dump(1) : "(no answer)";
  }
  static std::optional<json> Status(int i) { return ClusterStatusJson(Config(i)); }
  static int PrimaryIndex() {
    for (int i = 1; i <= 3; ++i) {
      auto s = Status(i);
      if (s && (*s)["primary"].is_string()) return (*s)["primary"].get<std::string>().back() - '0';
    }
    return 0;
  }
  // The two nodes that are not the primary.
  static std::pair<int, int> Replicas(int primary) {
    std::vector<int> r;
    for (int i = 1; i <= 3; ++i) {
      if (i != primary) r.push_back(i);
    }
    return {r[0], r[1]};
  }
  // A healthy cluster with no active alarm, as node 1 sees it.
  static bool Settled() {
    auto s = Status(1);
    return s && UnhealthyBecause(*s, 3, false).empty() && NoAlarm(1);
  }
  static void StopPostgres(int i) {
    const pid_t pid = LivePidFromFile(NodeDir(i) + "/pgdata/postmaster.pid");
    ASSERT_GT(pid, 0) << "no postmaster for node" << i;
    ::kill(pid, SIGINT);  // a fast shutdown
    ASSERT_TRUE(WaitForExit(pid, 60'000)) << "node" << i << "'s PostgreSQL did not stop";
  }
  void SetUp() override {
    SandboxSuite::SetUp();
    ASSERT_TRUE(WaitUntil(Settled, 120'000)) << Status(1)->dump(1) << AlarmsText(1);
  }
};

TEST_F(AlarmsTest, AHealthyClusterHasNoAlarmAndStatusShowsEachPeersClusteringState) {
  for (int i = 1; i <= 3; ++i) EXPECT_TRUE(NoAlarm(i)) << AlarmsText(i);
  auto text = RunTandem({"-c", Config(2), "cluster", "status"});
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_TRUE(Has(text.output, "Alarms                : none\n")) << text.output;
  EXPECT_TRUE(Has(text.output, "(me)")) << text.output;
  EXPECT_TRUE(Has(text.output, "Clustering: This system, Certificate: Valid")) << text.output;
  EXPECT_TRUE(Has(text.output, "Clustering: Active, Certificate: Valid")) << text.output;
  EXPECT_FALSE(Has(text.output, "ALARM")) << text.output;
}

TEST_F(AlarmsTest, StoppedReplicasAreReplicationFailuresAndLeaveNoSyncStandbyUntilTheyRunAgain) {
  const int p = PrimaryIndex();
  ASSERT_NE(p, 0);
  const auto [r1, r2] = Replicas(p);
  ASSERT_EQ(RunTandem({"-c", Config(p), "cluster", "pause"}).exit_code, 0);
  StopPostgres(r1);
  // Raised by the replica itself, after its 10 s hold-down, seen from every node.
  ASSERT_TRUE(WaitUntil([&] { return Find(p, 1002, Name(r1)).has_value(); }, 90'000))
      << AlarmsText(p);
  auto a = Find(r2, 1002, Name(r1));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->value("name", ""), "replication-failure");
  EXPECT_EQ(a->value("raised_by", ""), Name(r1));
  EXPECT_GT(a->value("raised_ms", int64_t{0}), 0);
  EXPECT_TRUE(Has(a->value("detail", ""), "PostgreSQL is not running")) << a->dump();
  auto s = Status(p);
  ASSERT_TRUE(s.has_value());
  for (const auto& m : (*s)["members"]) {
    if (m.value("name", "") == Name(r1)) {
      EXPECT_EQ(m.value("clustering", ""), "Failed");
    }
  }
  auto text = RunTandem({"-c", Config(p), "cluster", "status"});
  EXPECT_TRUE(Has(text.output, "1002  replication-failure")) << text.output;
  // Both replicas down: no synchronous standby is left (raised by the primary).
  StopPostgres(r2);
  EXPECT_TRUE(WaitUntil([&] { return Find(r1, 1007, "").has_value(); }, 90'000)) << AlarmsText(r1);
  EXPECT_TRUE(WaitUntil([&] { return Find(r1, 1002, Name(r2)).has_value(); }, 90'000))
      << AlarmsText(r1);
  ASSERT_EQ(RunTandem({"-c", Config(p), "cluster", "resume"}).exit_code, 0);
  EXPECT_TRUE(WaitUntil(Settled, 120'000)) << AlarmsText(1);
  auto cleared = Find(p, 1002, Name(r1), "history");
  ASSERT_TRUE(cleared.has_value()) << AlarmsText(p);
  EXPECT_GE(cleared->value("cleared_ms", int64_t{0}), cleared->value("raised_ms", int64_t{0}));
  EXPECT_GT(cleared->value("cleared_ms", int64_t{0}), 0);
}

TEST_F(AlarmsTest, AKilledMemberIsACommunicationFailureAndPutsTheQuorumAtRisk) {
  const int p = PrimaryIndex();
  ASSERT_NE(p, 0);
  const int r = Replicas(p).first;
  ASSERT_EQ(RunTandem({"sandbox", "kill", Name(r), "--dir", Dir()}).exit_code, 0);
  ASSERT_TRUE(WaitUntil([&] { return Find(p, 1001, Name(r)).has_value(); }, 90'000))
      << AlarmsText(p);
  auto q = Find(p, 1009, "");
  EXPECT_TRUE(WaitUntil([&] { return (q = Find(p, 1009, "")).has_value(); }, 60'000))
      << AlarmsText(p);
  if (q) {
    EXPECT_TRUE(Has(q->value("detail", ""), "2 of 3")) << q->dump();
  }
  auto s = Status(p);
  ASSERT_TRUE(s.has_value());
  for (const auto& m : (*s)["members"]) {
    if (m.value("name", "") == Name(r)) {
      EXPECT_EQ(m.value("clustering", ""), "Failed");
    }
  }
  ASSERT_EQ(RunTandem({"sandbox", "start", Name(r), "--dir", Dir()}).exit_code, 0);
  EXPECT_TRUE(WaitUntil(Settled, 180'000)) << AlarmsText(p);
  EXPECT_TRUE(Find(p, 1001, Name(r), "history").has_value()) << AlarmsText(p);
}

TEST_F(AlarmsTest, ARestartOnlyParameterChangeIsRestartRequiredUntilARestart) {
  const int r = Replicas(PrimaryIndex()).first;
  auto set = Psql(PgPort(r), Pgpass(), "ALTER SYSTEM SET max_files_per_process = 1500");
  ASSERT_EQ(set.exit_code, 0) << set.output;
  ASSERT_EQ(Psql(PgPort(r), Pgpass(), "SELECT pg_reload_conf()").exit_code, 0);
  std::optional<json> a;
  ASSERT_TRUE(WaitUntil([&] { return (a = Find(r, 1004, Name(r))).has_value(); }, 60'000))
      << AlarmsText(r);
  EXPECT_TRUE(Has(a->value("detail", ""), "max_files_per_process")) << a->dump();
  // Undone, the parameter is still pending (PostgreSQL keeps the flag until
  // it restarts): the alarm's fix, a restart (the agent starts it again).
  ASSERT_EQ(Psql(PgPort(r), Pgpass(), "ALTER SYSTEM RESET max_files_per_process").exit_code, 0);
  ASSERT_EQ(Psql(PgPort(r), Pgpass(), "SELECT pg_reload_conf()").exit_code, 0);
  StopPostgres(r);
  EXPECT_TRUE(WaitUntil([&] { return NoAlarm(r); }, 90'000)) << AlarmsText(r);
  EXPECT_TRUE(Find(r, 1004, Name(r), "history").has_value()) << AlarmsText(r);
}

TEST_F(AlarmsTest, ACertificateNearExpiryIsRaisedAndClearedByANewOne) {
  const int r = Replicas(PrimaryIndex()).first;
  const std::string d = dir_->path() + "/certs-" + Name(r);
  auto issue = [&](const std::string& out, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"pki",         "issue",     Name(r),     "--ca-dir",
                                     Dir() + "/ca", "--address", "127.0.0.1", "--dns",
                                     "localhost",   "--out",     out};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunTandem(args);
  };
  ASSERT_EQ(issue(d + "/short", {"--days", "10"}).exit_code, 0);
  ASSERT_EQ(issue(d + "/long", {}).exit_code, 0);
  auto install = [&](const std::string& from) {
    return RunTandem({"-c", Config(r), "cluster", "certs", from + "/server.key",
                      from + "/server.crt", from + "/client.key", from + "/client.crt",
                      from + "/ca.crt"});
  };
  auto in = install(d + "/short");
  ASSERT_EQ(in.exit_code, 0) << in.output;
  std::optional<json> a;
  ASSERT_TRUE(WaitUntil([&] { return (a = Find(1, 1005, Name(r))).has_value(); }, 60'000))
      << AlarmsText(1);
  EXPECT_EQ(a->value("name", ""), "certificate-expiring");
  EXPECT_TRUE(Has(a->value("detail", ""), "Expiring in")) << a->dump();
  in = install(d + "/long");
  ASSERT_EQ(in.exit_code, 0) << in.output;
  EXPECT_TRUE(WaitUntil([&] { return NoAlarm(1); }, 60'000)) << AlarmsText(1);
}

}  // namespace
}  // namespace tandem::testing
