// Schema upgrades on a live 3-node sandbox (issue 15, docs/schema-upgrades.md),
// one shared cluster; each test migrates a database of its own (created on the
// primary), so their history tables never meet:
//   a clean run started from a replica's node: seed 1's log lines on the
//     primary, the replicas hold the schema the moment the command returns;
//   a failing migration: Status : Error, the last command (Failed), the error
//     naming file, line and PostgreSQL's message; a rerun refused until
//     clear-error; the rerun resumes at the failed version;
//   --timeout: the migration cancelled, its transaction rolled back;
//   two runs at once: the second refused;
//   an applied file changed: refused before anything runs;
//   bad input: each a clear error, nothing applied;
//   the primary killed while a run is under way (one version applied, the
//     next a long one): the new primary's agent completes it, each version
//     exactly once. Last: it leaves a node to bring back.
//
// Ports: TestBasePort(31300) = P; node i uses P+10i .. P+10i+6.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/strings.h"
#include "integration/harness/harness.h"

namespace tandem::testing {
namespace {
using nlohmann::json;

// A file's text, "" when it cannot be read.
std::string Text(const std::string& path) {
  auto t = ReadFile(path);
  return t ? *t : "";
}

bool Has(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

// The status line of a node whose last command failed (render.cc's Line).
const char* const kStatusError = "Status                : Error";

class SchemaTest : public SandboxSuite<SchemaTest> {
 protected:
  static void SetUpTestSuite() { UpSandbox("tandem-schema", 31300); }
  static void TearDownTestSuite() {
    DownSandbox();
    RemoveSandboxDir();
  }
  static int PgPort(int i) { return base_ + 10 * i; }
  static std::string Pgpass() { return Dir() + "/pgpass"; }
  static std::string Name(int i) { return "node" + std::to_string(i); }

  static CommandResult Sql(int node, const std::string& db, const std::string& sql) {
    return RunCmd({"psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                   std::to_string(PgPort(node)), "-U", "postgres", "-d", db, "-c", sql},
                  30'000, {{"PGPASSFILE", Pgpass()}, {"PGCONNECT_TIMEOUT", "5"}});
  }
  static int Primary() {
    for (int i = 1; i <= 3; ++i) {
      if (int p = NodeIndex(PrimaryOf(Config(i))); p != 0) return p;
    }
    return 0;
  }
  static int AReplica(int primary) { return primary == 1 ? 2 : 1; }
  // A directory of migrations (name -> SQL) under the sandbox directory.
  static std::string Migrations(const std::string& dir,
                                const std::vector<std::pair<std::string, std::string>>& files) {
    const std::string path = Dir() + "/" + dir;
    (void)RemoveAll(path);
    EXPECT_TRUE(MakeDirs(path).ok());
    for (const auto& [name, sql] : files) std::ofstream(path + "/" + name) << sql;
    return path;
  }
  // A fresh database on the primary, every replica holding it.
  static void CreateDatabase(const std::string& db) {
    const int p = Primary();
    ASSERT_NE(p, 0);
    ASSERT_EQ(Sql(p, "postgres", "CREATE DATABASE " + db).exit_code, 0);
    for (int i = 1; i <= 3; ++i) {
      ASSERT_TRUE(WaitUntil([&] { return Sql(i, db, "SELECT 1").exit_code == 0; }, 30'000))
          << db << " not on node" << i;
    }
  }
  static CommandResult Upgrade(int node, const std::string& dir, const std::string& db,
                               std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"-c", Config(node), "cluster", "upgrade-schema",
                                     dir,  "--database", db};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunTandem(args, 180'000);
  }
  // Starts `upgrade-schema` in the background; its output goes to out, its
  // exit code to out + ".rc".
  static void UpgradeInBackground(int node, const std::string& dir, const std::string& db,
                                  const std::string& out) {
    (void)RemoveAll(out + ".rc");
    const std::string cmd = "'" + TandemBin() + "' -c '" + Config(node) +
                            "' cluster upgrade-schema '" + dir + "' --database " + db + " > '" +
                            out + "' 2>&1; echo $? > '" + out + ".rc'";
    ASSERT_EQ(RunCmd({"bash", "-c", "(" + cmd + ") </dev/null >/dev/null 2>&1 &"}).exit_code, 0);
  }
  static std::optional<int> BackgroundRc(const std::string& out) {
    auto rc = ReadFile(out + ".rc");
    if (!rc || Trim(*rc).empty()) return std::nullopt;
    return ParseInt(Trim(*rc)).value_or(-1);
  }
  static std::optional<json> SchemaJson(int node, const std::string& db) {
    auto r = RunTandem({"-c", Config(node), "cluster", "schema", "--database", db, "--json"});
    if (r.exit_code != 0) return std::nullopt;
    try {
      return json::parse(r.output);
    } catch (...) {
      return std::nullopt;
    }
  }
  static std::string OperationState(int node, const std::string& db) {
    auto s = SchemaJson(node, db);
    if (!s || !(*s)["operation"].is_object()) return "";
    return (*s)["operation"].value("state", "");
  }
  static std::string AgentLog(int node) { return Text(NodeDir(node) + "/agent.log"); }
  static bool Healthy() {
    auto s = ClusterStatusJson(Config(Primary() == 0 ? 1 : Primary()));
    return s && UnhealthyBecause(*s, 3, false).empty();
  }
  void SetUp() override {
    SandboxSuite::SetUp();
    ASSERT_TRUE(WaitUntil(Healthy, 120'000)) << "the cluster is not healthy";
  }
};

TEST_F(SchemaTest, ACleanRunFromAReplicaAppliesOnceAndTheReplicasHaveItWhenItReturns) {
  CreateDatabase("clean");
  const int p = Primary();
  const int r = AReplica(p);
  const std::string dir = Migrations(
      "clean", {{"V0001__create_calls.sql",
                 "CREATE TABLE calls (id bigserial PRIMARY KEY, who text);\n"
                 "INSERT INTO calls (who) VALUES ('alice');\n"},
                {"V0002__index_calls.sql",
                 "-- tandem:no-transaction\nCREATE INDEX CONCURRENTLY calls_who ON "
                 "calls (who);\n"},
                {"V0003__add_column.sql", "ALTER TABLE calls ADD COLUMN at timestamptz;"}});
  auto dry = Upgrade(r, dir, "clean", {"--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_TRUE(Has(dry.output, "Pending  : 3")) << dry.output;
  EXPECT_TRUE(Has(dry.output, "V0002__index_calls.sql  (non-transactional)")) << dry.output;
  EXPECT_NE(Sql(p, "clean", "SELECT 1 FROM calls").exit_code, 0) << "the dry run ran something";

  // Up to V2 first: --target, then `cluster schema DIR` lists V3 as pending.
  auto part = Upgrade(r, dir, "clean", {"--target", "V2"});
  ASSERT_EQ(part.exit_code, 0) << part.output;
  EXPECT_TRUE(Has(part.output, "Schema upgrade complete: applied V1, V2 (database clean at V2)"))
      << part.output;
  auto listing = RunTandem({"-c", Config(r), "cluster", "schema", dir, "--database", "clean"});
  EXPECT_EQ(listing.exit_code, 0) << listing.output;
  EXPECT_TRUE(Has(listing.output, "  V1  create calls  (")) << listing.output;
  EXPECT_TRUE(Has(listing.output, "Pending  :\n  V3  V0003__add_column.sql\n")) << listing.output;

  auto run = Upgrade(r, dir, "clean");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  // Right away, on every replica: the last migration replayed.
  for (int i = 1; i <= 3; ++i) {
    auto q = Sql(i, "clean", "SELECT count(at) FROM calls");
    EXPECT_EQ(q.exit_code, 0) << "node" << i << ": " << q.output;
  }
  EXPECT_TRUE(Has(run.output, "Waiting for database cluster to settle...")) << run.output;
  EXPECT_TRUE(Has(run.output, "Database cluster settled")) << run.output;
  EXPECT_TRUE(Has(run.output, "Schema upgrade complete: applied V3 (database clean at V3)"))
      << run.output;
  const std::string log = AgentLog(p);
  const size_t wait = log.rfind("Waiting for database cluster to settle...");
  const size_t settled = log.rfind("Database cluster settled");
  const size_t complete = log.rfind("Schema upgrade complete: applied V3");
  ASSERT_NE(wait, std::string::npos) << log;
  ASSERT_NE(settled, std::string::npos) << log;
  ASSERT_NE(complete, std::string::npos) << log;
  EXPECT_LT(wait, settled);
  EXPECT_LT(settled, complete);
  auto hist = Sql(p, "clean",
                  "SELECT string_agg(version || ':' || applied_by || ':' || success, ',' ORDER BY "
                  "version) FROM tandem.schema_history");
  EXPECT_EQ(Trim(hist.output),
            "1:" + Name(p) + ":true,2:" + Name(p) + ":true,3:" + Name(p) + ":true");
  auto status = RunTandem({"-c", Config(r), "cluster", "status"});
  EXPECT_TRUE(Has(status.output, "'tandem cluster upgrade-schema " + dir + "' (Success)"))
      << status.output;
  // The cluster's event log, read from another node, has the run's start and end.
  auto events = RunTandem({"-c", Config(AReplica(r == 1 ? 2 : r)), "cluster", "log"});
  EXPECT_EQ(events.exit_code, 0) << events.output;
  EXPECT_TRUE(Has(events.output, "schema upgrade started on " + Name(p))) << events.output;
  EXPECT_TRUE(Has(events.output, "schema upgrade complete on " + Name(p) + ": applied"))
      << events.output;

  // Again: nothing to do, nothing applied twice.
  auto again = Upgrade(AReplica(r == 1 ? 2 : r), dir, "clean");
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_TRUE(Has(again.output, "up to date")) << again.output;
  EXPECT_EQ(Trim(Sql(p, "clean", "SELECT count(*) FROM calls").output), "1");

  // An applied file changed: refused, naming it, before anything runs.
  Migrations("clean", {{"V0001__create_calls.sql", "CREATE TABLE calls (id int);"},
                       {"V0002__index_calls.sql",
                        "-- tandem:no-transaction\nCREATE INDEX "
                        "CONCURRENTLY calls_who ON calls (who);\n"},
                       {"V0003__add_column.sql", "ALTER TABLE calls ADD COLUMN at timestamptz;"},
                       {"V0004__more.sql", "CREATE TABLE more (x int);"}});
  auto changed = Upgrade(r, dir, "clean");
  EXPECT_EQ(changed.exit_code, 1) << changed.output;
  EXPECT_TRUE(Has(changed.output, "V0001__create_calls.sql' changed after it was applied"))
      << changed.output;
  EXPECT_NE(Sql(p, "clean", "SELECT 1 FROM more").exit_code, 0);
}

TEST_F(SchemaTest, AFailingMigrationIsAnErrorUntilClearErrorAndTheRerunResumesAtIt) {
  CreateDatabase("failing");
  const int p = Primary();
  const int r = AReplica(p);
  const std::string dir = Migrations(
      "failing", {{"V1__first.sql", "CREATE TABLE first (x int);\nINSERT INTO first VALUES (1);"},
                  {"V2__broken.sql", "CREATE TABLE second (x int);\n\nSELECT *\n  FROM nope;\n"}});
  auto run = Upgrade(r, dir, "failing");
  ASSERT_EQ(run.exit_code, 1) << run.output;
  EXPECT_TRUE(Has(run.output, "V2__broken.sql line 4: ERROR: relation \"nope\" does not exist"))
      << run.output;
  EXPECT_NE(Sql(p, "failing", "SELECT 1 FROM second").exit_code, 0) << "not rolled back";
  // The primary (which ran it) and the node that asked show the error.
  for (int node : {p, r}) {
    ASSERT_TRUE(WaitUntil(
        [&] {
          auto s = RunTandem({"-c", Config(node), "cluster", "status"});
          return Has(s.output, kStatusError) &&
                 Has(s.output, "'tandem cluster upgrade-schema " + dir + "' (Failed)") &&
                 Has(s.output, "ERROR : Couldn't upgrade the schema: V2__broken.sql line 4");
        },
        10'000))
        << RunTandem({"-c", Config(node), "cluster", "status"}).output;
  }
  auto refused = Upgrade(r, dir, "failing");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(Has(refused.output, "tandem cluster clear-error` first")) << refused.output;

  ASSERT_EQ(RunTandem({"-c", Config(r), "cluster", "clear-error"}).exit_code, 0);
  Migrations("failing",
             {{"V1__first.sql", "CREATE TABLE first (x int);\nINSERT INTO first VALUES (1);"},
              {"V2__broken.sql", "CREATE TABLE second (x int);\n"}});
  auto rerun = Upgrade(r, dir, "failing");
  ASSERT_EQ(rerun.exit_code, 0) << rerun.output;
  EXPECT_TRUE(Has(rerun.output, "Schema upgrade complete: applied V2")) << rerun.output;
  EXPECT_EQ(Trim(Sql(p, "failing", "SELECT count(*) FROM first").output), "1");
  // clear-error on the replica cleared the primary's error too.
  EXPECT_TRUE(WaitUntil(
      [&] {
        return !Has(RunTandem({"-c", Config(p), "cluster", "status"}).output, kStatusError);
      },
      10'000));
}

TEST_F(SchemaTest, AMigrationPastItsTimeoutIsCancelledAndRolledBack) {
  CreateDatabase("slow");
  const int p = Primary();
  const std::string dir =
      Migrations("slow", {{"V1__slow.sql", "CREATE TABLE slow (x int);\nSELECT pg_sleep(60);\n"}});
  auto run = Upgrade(p, dir, "slow", {"--timeout", "1s"});
  ASSERT_EQ(run.exit_code, 1) << run.output;
  EXPECT_TRUE(Has(run.output, "V1__slow.sql line 2: cancelled after the --timeout, rolled back"))
      << run.output;
  EXPECT_NE(Sql(p, "slow", "SELECT 1 FROM slow").exit_code, 0) << "not rolled back";
  EXPECT_EQ(RunTandem({"-c", Config(p), "cluster", "clear-error"}).exit_code, 0);
}

TEST_F(SchemaTest, ASecondRunWhileOneRunsIsRefused) {
  CreateDatabase("twice");
  const int p = Primary();
  const std::string dir =
      Migrations("twice", {{"V1__wait.sql", "SELECT pg_sleep(6);\nCREATE TABLE t (x int);"}});
  const std::string out = Dir() + "/twice.out";
  UpgradeInBackground(AReplica(p), dir, "twice", out);
  ASSERT_TRUE(WaitUntil([&] { return OperationState(p, "twice") == "running"; }, 10'000));
  // Any node's status shows the run while it runs.
  auto shown = RunTandem({"-c", Config(AReplica(p)), "cluster", "status"});
  EXPECT_TRUE(Has(shown.output, "Schema upgrade        : 'tandem cluster upgrade-schema "))
      << shown.output;
  auto second = Upgrade(p, dir, "twice");
  EXPECT_EQ(second.exit_code, 1) << second.output;
  EXPECT_TRUE(Has(second.output, "another schema upgrade is running")) << second.output;
  ASSERT_TRUE(WaitUntil([&] { return BackgroundRc(out).has_value(); }, 60'000));
  EXPECT_EQ(*BackgroundRc(out), 0) << Text(out);
  EXPECT_EQ(Trim(Sql(p, "twice", "SELECT count(*) FROM tandem.schema_history").output), "1");
}

TEST_F(SchemaTest, BadInputIsAClearErrorAndNothingIsApplied) {
  CreateDatabase("bad");
  const int p = Primary();
  const int r = AReplica(p);
  struct Case {
    std::string what;
    std::vector<std::pair<std::string, std::string>> files;
    std::vector<std::string> extra;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"empty", {}, {}, "holds no migration"},
      {"badname", {{"V1-first.sql", "SELECT 1;"}}, {}, "'V1-first.sql'"},
      {"dup", {{"V1__a.sql", "SELECT 1;"}, {"V01__b.sql", "SELECT 1;"}}, {}, "both have version 1"},
      {"gap", {{"V1__a.sql", "SELECT 1;"}, {"V3__c.sql", "SELECT 1;"}}, {}, "version 2 is missing"},
      {"utf8", {{"V1__a.sql", "SELECT '\xff';"}}, {}, "'V1__a.sql' is not valid UTF-8"},
      {"history",
       {{"V1__a.sql", "DELETE FROM tandem.schema_history;"}},
       {},
       "names tandem.schema_history"},
      {"nodb",
       {{"V1__a.sql", "CREATE TABLE x (y int);"}},
       {"--database", "nope"},
       "database 'nope' does not exist"},
      {"timeout",
       {{"V1__a.sql", "CREATE TABLE x (y int);"}},
       {"--timeout", "soon"},
       "--timeout 'soon' is not a duration"},
      {"target",
       {{"V1__a.sql", "CREATE TABLE x (y int);"}},
       {"--target", "V9"},
       "--target 9 is not a version in the directory"},
  };
  for (const auto& c : cases) {
    const std::string dir = Migrations("bad-" + c.what, c.files);
    std::vector<std::string> args = {"-c", Config(r), "cluster", "upgrade-schema", dir};
    if (std::find(c.extra.begin(), c.extra.end(), "--database") == c.extra.end()) {
      args.insert(args.end(), {"--database", "bad"});
    }
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    auto res = RunTandem(args, 60'000);
    EXPECT_EQ(res.exit_code, 1) << c.what << ": " << res.output;
    EXPECT_TRUE(Has(res.output, c.expect)) << c.what << ": " << res.output;
  }
  auto missing = Upgrade(r, Dir() + "/no-such-dir", "bad");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(Has(missing.output, "does not exist")) << missing.output;
  // Paused: refused until resume.
  const std::string ok = Migrations("bad-ok", {{"V1__a.sql", "CREATE TABLE x (y int);"}});
  ASSERT_EQ(RunTandem({"-c", Config(p), "cluster", "pause"}).exit_code, 0);
  auto paused = Upgrade(r, ok, "bad");
  EXPECT_EQ(paused.exit_code, 1);
  EXPECT_TRUE(Has(paused.output, "paused")) << paused.output;
  ASSERT_EQ(RunTandem({"-c", Config(p), "cluster", "resume"}).exit_code, 0);
  EXPECT_NE(Sql(p, "bad", "SELECT 1 FROM x").exit_code, 0) << "something was applied";
  EXPECT_NE(Sql(p, "bad", "SELECT 1 FROM tandem.schema_history").exit_code, 0);
}

TEST_F(SchemaTest, ThePrimaryKilledMidRunTheNewPrimaryCompletesItEachVersionOnce) {
  CreateDatabase("failover");
  const int p = Primary();
  const int r = AReplica(p);
  const std::string dir = Migrations(
      "failover",
      {{"V1__log.sql", "CREATE TABLE applied (v text);\nINSERT INTO applied VALUES ('V1');"},
       {"V2__quick.sql", "INSERT INTO applied VALUES ('V2');"},
       {"V3__long.sql", "INSERT INTO applied VALUES ('V3');\nSELECT pg_sleep(6);"},
       {"V4__after.sql", "INSERT INTO applied VALUES ('V4');"}});
  const std::string out = Dir() + "/failover.out";
  UpgradeInBackground(r, dir, "failover", out);
  // Killed between V2 and V4: while the long V3 runs, after V2 committed.
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Has(Sql(p, "postgres", "SELECT query FROM pg_stat_activity").output, "pg_sleep(6)");
      },
      30'000))
      << Text(out);
  auto kill = RunTandem({"sandbox", "kill", Name(p), "--dir", Dir()});
  ASSERT_EQ(kill.exit_code, 0) << kill.output;
  std::cerr << "killed " << Name(p) << ": " << kill.output;
  ASSERT_TRUE(WaitUntil([&] { return BackgroundRc(out).has_value(); }, 90'000)) << Text(out);
  const std::string text = Text(out);
  EXPECT_EQ(*BackgroundRc(out), 0) << text;
  EXPECT_TRUE(Has(text, "resumed on")) << text;
  EXPECT_TRUE(Has(text, "Schema upgrade complete")) << text;
  const int np = NodeIndex(PrimaryOf(Config(r)));
  ASSERT_NE(np, 0);
  ASSERT_NE(np, p);
  EXPECT_EQ(Trim(Sql(np, "failover", "SELECT string_agg(v, ',' ORDER BY v) FROM applied").output),
            "V1,V2,V3,V4");
  // V1 and V2 committed on the old primary (synchronously replicated) and
  // were not run again; V3, rolled back by the crash, and V4 ran on the new one.
  EXPECT_EQ(Trim(Sql(np, "failover",
                     "SELECT string_agg(version || ':' || applied_by, ',' ORDER BY version) "
                     "FROM tandem.schema_history")
                     .output),
            "1:" + Name(p) + ",2:" + Name(p) + ",3:" + Name(np) + ",4:" + Name(np));
  EXPECT_TRUE(Has(AgentLog(np), "Schema upgrade complete")) << AgentLog(np);
  // The old primary comes back as a replica.
  ASSERT_EQ(RunTandem({"sandbox", "start", Name(p), "--dir", Dir()}).exit_code, 0);
}

}  // namespace
}  // namespace tandem::testing
