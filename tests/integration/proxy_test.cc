// The client endpoint end to end: a 3-node sandbox on 127.0.0.1, each agent
// running its proxy (read-write port P+10i+2, read-only port P+10i+3). Writes
// through every node's read-write port land on the primary, reads through the
// read-only port come from a replica, a failover cuts connections to the old
// primary and new ones reach the new primary, and a node that cannot read the
// store refuses writes (safety rule 5). The tests share one sandbox and run in
// order; waits poll with a deadline.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/process.h"
#include "base/strings.h"
#include "integration/harness/harness.h"

namespace tandem::testing {
namespace {
using nlohmann::json;

// A libpq session held open across a fault.
class Session {
 public:
  Session(int port, const std::string& pgpass) {
    const std::string conninfo =
        "host=127.0.0.1 port=" + std::to_string(port) +
        " user=postgres dbname=postgres connect_timeout=5 passfile=" + pgpass;
    conn_ = PQconnectdb(conninfo.c_str());
  }
  ~Session() {
    if (conn_ != nullptr) PQfinish(conn_);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  bool ok() const { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }
  std::string error() const { return conn_ ? PQerrorMessage(conn_) : "no connection"; }
  // The single value of a query; nullopt when it fails (the session is gone).
  std::optional<std::string> Value(const std::string& sql) {
    if (!ok()) return std::nullopt;
    PGresult* r = PQexec(conn_, sql.c_str());
    std::optional<std::string> out;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) out = PQgetvalue(r, 0, 0);
    PQclear(r);
    return out;
  }

 private:
  PGconn* conn_ = nullptr;
};

class ProxyTest : public SandboxSuite<ProxyTest> {
 protected:
  static void SetUpTestSuite() { UpSandbox("tandem-proxy", 18400); }
  static void TearDownTestSuite() {
    DownSandbox();
    RemoveSandboxDir();
  }
  static std::string AgentLog(int i) { return Dir() + "/node" + std::to_string(i) + "/agent.log"; }
  static int PgPort(int i) { return base_ + 10 * i; }
  static int RwPort(int i) { return base_ + 10 * i + 2; }
  static int RoPort(int i) { return base_ + 10 * i + 3; }
  static std::string Pgpass() { return Dir() + "/pgpass"; }

  static std::optional<json> Status(int i) { return ClusterStatusJson(Config(i)); }
  static std::string Primary(int via) { return PrimaryOf(Config(via)); }
  static int IndexOf(const std::string& node) { return NodeIndex(node); }
  static bool Healthy(int via) {
    auto s = Status(via);
    return s && UnhealthyBecause(*s, 3, /*failover_ready=*/true).empty();
  }
  // The value psql prints, or "" when it fails.
  static std::string Query(int port, const std::string& sql) {
    auto r = Psql(port, Pgpass(), sql);
    return r.exit_code == 0 ? Trim(r.output) : "";
  }
  // SIGSTOPs the etcd members of every node but `keep`; the destructor
  // SIGCONTs them whatever happens.
  struct Freeze {
    std::vector<pid_t> pids;
    ~Freeze() { Thaw(); }
    void Thaw() {
      for (pid_t pid : pids) ::kill(pid, SIGCONT);
      pids.clear();
    }
  };
  static bool FreezeOtherEtcds(const std::string& keep, Freeze* f) {
    auto ss = RunTandem({"sandbox", "status", "--json", "--dir", Dir()});
    if (ss.exit_code != 0) return false;
    std::vector<pid_t> pids;
    for (const auto& n : json::parse(ss.output)) {
      if (n["name"] == keep) continue;
      const pid_t etcd = n["pids"]["etcd"].get<int>();
      if (etcd <= 0) return false;
      pids.push_back(etcd);
    }
    f->pids = pids;  // registered before the signal: thawed on every path
    for (pid_t pid : pids) ::kill(pid, SIGSTOP);
    return true;
  }
};

TEST_F(ProxyTest, Rule5_WritesThroughEveryNodesReadWritePortLandOnThePrimary) {
  ASSERT_TRUE(WaitUntil([] { return Healthy(1); }, 60'000)) << Status(1)->dump(2);
  const std::string primary = Primary(1);
  const int p = IndexOf(primary);
  ASSERT_GT(p, 0);
  ASSERT_EQ(
      Psql(PgPort(p), Pgpass(), "CREATE TABLE IF NOT EXISTS proxied(id int primary key, via text)")
          .exit_code,
      0);
  for (int i = 1; i <= 3; ++i) {
    // The proxy has a route once the node's loop has seen the primary.
    EXPECT_TRUE(
        WaitUntil([&] { return Query(RwPort(i), "SELECT pg_is_in_recovery()") == "f"; }, 30'000))
        << "node" << i << "'s read-write port does not reach a primary";
    EXPECT_EQ(Query(RwPort(i), "SELECT inet_server_port()"), std::to_string(PgPort(p)));
    auto ins = Psql(
        RwPort(i), Pgpass(),
        "INSERT INTO proxied VALUES (" + std::to_string(i) + ", 'node" + std::to_string(i) + "')");
    EXPECT_EQ(ins.exit_code, 0) << ins.output;
  }
  // Every row is on the primary, read there directly.
  EXPECT_EQ(Query(PgPort(p), "SELECT string_agg(via, ',' ORDER BY id) FROM proxied"),
            "node1,node2,node3");
  auto st = Status(1);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ((*st)["proxy"]["read_write_target"], primary) << st->dump(2);
}

TEST_F(ProxyTest, ReadsThroughTheReadOnlyPortComeFromAReplica) {
  ASSERT_TRUE(WaitUntil([] { return Healthy(1); }, 60'000)) << Status(1)->dump(2);
  const int p = IndexOf(Primary(1));
  ASSERT_GT(p, 0);
  for (int i = 1; i <= 3; ++i) {
    EXPECT_TRUE(
        WaitUntil([&] { return Query(RoPort(i), "SELECT pg_is_in_recovery()") == "t"; }, 30'000))
        << "node" << i << "'s read-only port does not reach a replica";
    const std::string port = Query(RoPort(i), "SELECT inet_server_port()");
    EXPECT_NE(port, std::to_string(PgPort(p)));
    EXPECT_FALSE(port.empty());
  }
  // The replica has the rows written through the read-write port.
  EXPECT_TRUE(
      WaitUntil([&] { return Query(RoPort(1), "SELECT count(*) FROM proxied") == "3"; }, 30'000));
  // Writes through the read-only port fail: it is a standby.
  EXPECT_NE(Psql(RoPort(1), Pgpass(), "INSERT INTO proxied VALUES (100, 'ro')").exit_code, 0);
}

TEST_F(ProxyTest, ClusterUriListsEveryNodeAndTheProxies) {
  auto r = RunTandem({"-c", Config(2), "cluster", "uri"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto lines = Split(Trim(r.output), '\n');
  ASSERT_EQ(lines.size(), 2u) << r.output;
  std::string direct = "postgresql://", proxied = "postgresql://";
  for (int i = 1; i <= 3; ++i) {
    direct += (i > 1 ? "," : "") + std::string("127.0.0.1:") + std::to_string(PgPort(i));
    proxied += (i > 1 ? "," : "") + std::string("127.0.0.1:") + std::to_string(RwPort(i));
  }
  EXPECT_EQ(lines[0], direct + "/postgres?target_session_attrs=read-write");
  EXPECT_EQ(lines[1], proxied + "/postgres?target_session_attrs=read-write");
  // libpq takes both and finds the primary.
  for (const auto& uri : lines) {
    auto q = RunCmd(
        {"psql", "-X", "-At", "-U", "postgres", "-d", uri, "-c", "SELECT pg_is_in_recovery()"},
        30'000, {{"PGPASSFILE", Pgpass()}, {"PGCONNECT_TIMEOUT", "5"}});
    EXPECT_EQ(q.exit_code, 0) << q.output;
    EXPECT_EQ(Trim(q.output), "f") << uri;
  }
  auto ro = RunTandem({"-c", Config(2), "cluster", "uri", "--read-only"});
  ASSERT_EQ(ro.exit_code, 0) << ro.output;
  EXPECT_NE(ro.output.find("target_session_attrs=prefer-standby"), std::string::npos);
  EXPECT_NE(ro.output.find("127.0.0.1:" + std::to_string(RoPort(3))), std::string::npos);
}

TEST_F(ProxyTest, Rule5_AfterAFailoverOldConnectionsAreClosedAndNewOnesReachTheNewPrimary) {
  ASSERT_TRUE(WaitUntil([] { return Healthy(1); }, 60'000)) << Status(1)->dump(2);
  const std::string old_primary = Primary(1);
  const int old = IndexOf(old_primary);
  ASSERT_GT(old, 0);
  std::vector<int> others;
  for (int i = 1; i <= 3; ++i) {
    if (i != old) others.push_back(i);
  }
  // Sessions through the surviving nodes' proxies, on the old primary.
  std::vector<std::unique_ptr<Session>> sessions;
  for (int i : others) {
    sessions.push_back(std::make_unique<Session>(RwPort(i), Pgpass()));
    ASSERT_TRUE(sessions.back()->ok()) << sessions.back()->error();
    ASSERT_EQ(sessions.back()->Value("SELECT inet_server_port()"), std::to_string(PgPort(old)));
  }
  auto kill = RunTandem({"sandbox", "kill", old_primary, "--dir", Dir()});
  ASSERT_EQ(kill.exit_code, 0) << kill.output;
  for (size_t k = 0; k < sessions.size(); ++k) {
    EXPECT_TRUE(WaitUntil([&] { return !sessions[k]->Value("SELECT 1").has_value(); }, 30'000))
        << "a session through node" << others[k] << "'s proxy to the dead primary stayed open";
  }
  std::string new_primary;
  ASSERT_TRUE(WaitUntil(
      [&] {
        new_primary = Primary(others[0]);
        return !new_primary.empty() && new_primary != old_primary;
      },
      90'000))
      << "no new primary";
  const int np = IndexOf(new_primary);
  for (int i : others) {
    EXPECT_TRUE(WaitUntil(
        [&] {
          Session s(RwPort(i), Pgpass());
          return s.Value("SELECT pg_is_in_recovery()") == std::optional<std::string>("f") &&
                 s.Value("SELECT inet_server_port()") == std::to_string(PgPort(np));
        },
        60'000))
        << "node" << i << "'s read-write port does not reach the new primary " << new_primary;
    EXPECT_EQ(Psql(RwPort(i), Pgpass(),
                   "INSERT INTO proxied VALUES (" + std::to_string(10 + i) + ", 'after failover')")
                  .exit_code,
              0);
  }
  auto start = RunTandem({"sandbox", "start", old_primary, "--dir", Dir()});
  ASSERT_EQ(start.exit_code, 0) << start.output;
  EXPECT_TRUE(WaitUntil([&] { return Healthy(np); }, 180'000)) << Status(np)->dump(2);
  // The old primary's own proxy, back, sends writes to the new primary.
  EXPECT_TRUE(WaitUntil(
      [&] { return Query(RwPort(old), "SELECT inet_server_port()") == std::to_string(PgPort(np)); },
      60'000));
}

TEST_F(ProxyTest, Rule5_ANodeThatCannotReadTheStoreRefusesWrites) {
  ASSERT_TRUE(WaitUntil([] { return Healthy(1); }, 60'000)) << Status(1)->dump(2);
  const int p = IndexOf(Primary(1));
  ASSERT_GT(p, 0);
  const int r = p == 1 ? 2 : 1;  // a replica: its own PostgreSQL is not the one written to
  ASSERT_TRUE(
      WaitUntil([&] { return Query(RwPort(r), "SELECT pg_is_in_recovery()") == "f"; }, 30'000));
  Session open(RwPort(r), Pgpass());
  ASSERT_TRUE(open.ok()) << open.error();
  const auto log_before = ReadFile(AgentLog(r));
  const size_t log_offset = log_before ? log_before->size() : 0;
  {
    Freeze freeze;
    ASSERT_TRUE(FreezeOtherEtcds("node" + std::to_string(r), &freeze));
    // The open session is cut and new ones are refused.
    EXPECT_TRUE(WaitUntil([&] { return !open.Value("SELECT 1").has_value(); }, 15'000))
        << "a session through the cut-off node's proxy stayed open";
    EXPECT_TRUE(WaitUntil([&] { return Query(RwPort(r), "SELECT 1").empty(); }, 15'000));
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(Query(RwPort(r), "SELECT 1"), "") << "attempt " << i << " got through";
    }
    // The proxy refuses them itself, saying why, once the last route it had
    // (kept while the store is unreadable, until it expires) is gone.
    EXPECT_TRUE(WaitUntil(
        [&] {
          (void)Query(RwPort(r), "SELECT 1");
          auto log = ReadFile(AgentLog(r));
          if (!log || log->size() <= log_offset) return false;
          const std::string fresh = log->substr(log_offset);
          return fresh.find("refused read-write connection") != std::string::npos &&
                 fresh.find("fail closed") != std::string::npos;
        },
        10'000))
        << "no refusal with its reason in " << AgentLog(r);
    freeze.Thaw();
  }
  EXPECT_TRUE(WaitUntil([] { return Healthy(1); }, 180'000)) << Status(1)->dump(2);
  // With the store back, writes go through again.
  EXPECT_TRUE(
      WaitUntil([&] { return Query(RwPort(r), "SELECT pg_is_in_recovery()") == "f"; }, 60'000));
}

TEST_F(ProxyTest, ProxyPortsChangedInTheConfigReachTheRegistration) {
  ASSERT_TRUE(WaitUntil([] { return Healthy(1); }, 60'000)) << Status(1)->dump(2);
  const int p = IndexOf(Primary(1));
  ASSERT_GT(p, 0);
  const int r = p == 3 ? 2 : 3;  // a replica: restarting it moves no primary
  const std::string node = "node" + std::to_string(r);
  auto kill = RunTandem({"sandbox", "kill", node, "--dir", Dir()});
  ASSERT_EQ(kill.exit_code, 0) << kill.output;
  const int new_port = base_ + 10 * r + 7;  // unused by the sandbox's port scheme (+0..+6)
  auto yaml = ReadFile(Config(r));
  ASSERT_TRUE(yaml.ok());
  const std::string old_line = "read_only_port: " + std::to_string(RoPort(r));
  const size_t at = yaml->find(old_line);
  ASSERT_NE(at, std::string::npos) << *yaml;
  std::string changed = *yaml;
  changed.replace(at, old_line.size(), "read_only_port: " + std::to_string(new_port));
  ASSERT_TRUE(WriteFileAtomic(Config(r), changed).ok());
  auto start = RunTandem({"sandbox", "start", node, "--dir", Dir()});
  ASSERT_EQ(start.exit_code, 0) << start.output;
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto uri = RunTandem({"-c", Config(1), "cluster", "uri", "--read-only"});
        return uri.exit_code == 0 &&
               uri.output.find("127.0.0.1:" + std::to_string(new_port)) != std::string::npos;
      },
      60'000))
      << "the registration did not take the new read-only port";
  EXPECT_TRUE(
      WaitUntil([&] { return Query(new_port, "SELECT pg_is_in_recovery()") == "t"; }, 60'000));
}

}  // namespace
}  // namespace tandem::testing
