// Real PostgreSQL 15 on 127.0.0.1: initdb, streaming replication through a
// slot, promotion, pg_rewind of the old primary, and bad input.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "base/file.h"
#include "base/process.h"
#include "base/strings.h"
#include "integration/harness/harness.h"
#include "pg/conf.h"
#include "pg/libpq_conn.h"
#include "pg/postgres.h"

namespace tandem::pg {
namespace {

using tandem::testing::ServiceUser;
using tandem::testing::TempDir;
using tandem::testing::TestBasePort;
using tandem::testing::WaitUntil;

constexpr int64_t kWaitMs = 90'000;
const char* kSuperPw = "super:pw'with\\odd chars";
const char* kReplPw = "repl pw:'x\\y";

bool Has(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// Runs SQL over TCP as the superuser with its password (as a client would).
Result<std::vector<std::string>> TcpSql(int port, const std::string& sql) {
  auto conn = PgConn::Connect({{"host", "127.0.0.1"},
                               {"port", std::to_string(port)},
                               {"user", "postgres"},
                               {"password", kSuperPw},
                               {"dbname", "postgres"},
                               {"connect_timeout", "5"}},
                              "test client");
  if (!conn) return conn.error();
  auto r = conn->Exec(sql, "test SQL");
  if (!r) return r.error();
  std::vector<std::string> out;
  for (int i = 0; i < r->rows() && r->cols() > 0; ++i) out.push_back(r->Get(i, 0));
  return out;
}

std::string One(const Result<std::vector<std::string>>& r) {
  if (!r || r->empty()) return "";
  return r->front();
}

class PgControlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { BecomeSubreaper(); }

  void SetUp() override {
    auto bin = FindBinDir();
    if (!bin) GTEST_SKIP() << bin.error().ToString();
    bin_dir_ = *bin;
    base_port_ = TestBasePort(25400);
  }

  void TearDown() override {
    for (auto& n : nodes_) {
      if (HasFailure()) {
        auto log = ReadFile(n->paths().log_file);
        if (log) {
          std::string tail = log->size() > 3000 ? log->substr(log->size() - 3000) : *log;
          std::fprintf(stderr, "---- server log %s ----\n%s\n", n->paths().log_file.c_str(),
                       tail.c_str());
        }
      }
      int pid = n->Pid();
      if (pid != 0) {
        pids_.push_back(pid);
        (void)n->Stop(StopMode::kImmediate, 15'000);
      }
    }
    for (int pid : pids_) {
      if (IsAlive(pid)) {
        KillProcessTree(pid, SIGKILL);
        ::kill(pid, SIGKILL);
        WaitForExit(pid, 10'000);
      }
    }
    ReapChildren();
  }

  Postgres& Node(const std::string& name, int port) {
    Paths p;
    p.bin_dir = bin_dir_;
    p.data_dir = dir_.path() + "/" + name + "/data";
    p.socket_dir = dir_.path() + "/" + name + "/sock";
    p.log_file = dir_.path() + "/" + name + "/log/postgresql.log";
    p.run_as_user = ServiceUser();
    Settings s;
    s.port = port;
    nodes_.push_back(std::make_unique<Postgres>(p, s, SystemClock::Get()));
    return *nodes_.back();
  }

  void Started(Postgres& pg) {
    int pid = pg.Pid();
    ASSERT_NE(pid, 0);
    pids_.push_back(pid);
  }

  std::vector<HbaPeer> Peers() const { return {{"a", "127.0.0.1"}, {"b", "127.0.0.1"}}; }

  TempDir dir_{"pg-control"};
  std::string bin_dir_;
  int base_port_ = 0;
  std::vector<std::unique_ptr<Postgres>> nodes_;
  std::vector<int> pids_;
};

TEST_F(PgControlTest, ReplicatePromoteRewindFollow) {
  const int port_a = base_port_, port_b = base_port_ + 1;
  Postgres& a = Node("a", port_a);
  Postgres& b = Node("b", port_b);
  const std::string user = ServiceUser();

  // --- primary A ---
  EXPECT_EQ(a.InspectDataDir(), DataDirState::kMissing);
  auto st = a.InitDb(kSuperPw);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_EQ(a.InspectDataDir(), DataDirState::kValid);
  auto again = a.InitDb(kSuperPw);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(a.WriteConfig(std::nullopt).ok());
  ASSERT_TRUE(a.WriteHba(Peers()).ok());
  {
    struct stat sb {};
    ASSERT_EQ(::stat(a.paths().data_dir.c_str(), &sb), 0);
    EXPECT_EQ(sb.st_mode & 0777, 0700u);
    auto conf = ReadFile(a.paths().data_dir + "/postgresql.conf");
    ASSERT_TRUE(conf.ok());
    EXPECT_TRUE(EndsWith(*conf, "include 'tandem.conf'\n"));
  }
  ASSERT_TRUE(a.WriteConfig(std::nullopt).ok());  // idempotent: include stays single
  {
    auto conf = ReadFile(a.paths().data_dir + "/postgresql.conf");
    ASSERT_TRUE(conf.ok());
    EXPECT_EQ(conf->find("include 'tandem.conf'"), conf->rfind("include 'tandem.conf'"));
  }
  st = a.Start();
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  Started(a);
  EXPECT_TRUE(a.IsRunning());
  EXPECT_TRUE(a.Start().ok());  // already running: no-op
  {
    struct stat sb {};
    ASSERT_EQ(::stat(a.paths().socket_dir.c_str(), &sb), 0);
    EXPECT_EQ(sb.st_mode & 0777, 0700u);
  }
  auto qa = a.Query();
  ASSERT_TRUE(qa.ok()) << qa.error().ToString();
  EXPECT_FALSE(qa->in_recovery);
  EXPECT_EQ(qa->timeline, 1u);
  EXPECT_GT(qa->lsn, 0u);
  auto cd = a.ReadControlData();
  ASSERT_TRUE(cd.ok()) << cd.error().ToString();
  EXPECT_NE(cd->system_identifier, 0u);
  EXPECT_EQ(cd->cluster_state, "in production");

  st = a.EnsureReplicationUser("replicator", "first password");
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  st = a.EnsureReplicationUser("replicator", kReplPw);  // ALTER path, odd characters
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_EQ(One(a.Sql("SELECT rolreplication::text || rolconnlimit::text FROM pg_roles "
                      "WHERE rolname = 'replicator'")),
            "true16");
  EXPECT_TRUE(Has(One(a.Sql("SELECT rolpassword FROM pg_authid WHERE rolname='replicator'")),
                  "SCRAM-SHA-256$"));
  EXPECT_FALSE(a.EnsureReplicationUser("postgres", "x").ok());
  EXPECT_FALSE(a.EnsureReplicationUser("bad name", "x").ok());

  const std::string slot_b = SlotNameFor("b");
  st = a.SyncSlots({slot_b});
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  ASSERT_TRUE(a.Sql("SELECT pg_create_physical_replication_slot('other_slot')").ok());
  ASSERT_TRUE(a.Sql("SELECT pg_create_physical_replication_slot('tandem_gone')").ok());
  ASSERT_TRUE(a.SyncSlots({slot_b}).ok());
  auto slots = a.Sql("SELECT slot_name FROM pg_replication_slots ORDER BY 1");
  ASSERT_TRUE(slots.ok());
  EXPECT_EQ(*slots, (std::vector<std::string>{"other_slot", slot_b}));

  {  // no standby connected yet: the primary's row alone
    auto snap = a.ReadSyncSnapshot();
    ASSERT_TRUE(snap.ok()) << snap.error().ToString();
    EXPECT_FALSE(snap->in_recovery);
    EXPECT_GT(snap->flush_lsn, 0u);
    EXPECT_TRUE(snap->standbys.empty());
  }

  // --- standby B by pg_basebackup through the slot ---
  Source from_a;
  from_a.host = "127.0.0.1";
  from_a.port = port_a;
  from_a.user = "replicator";
  from_a.password = kReplPw;
  from_a.application_name = "b";
  from_a.slot_name = slot_b;
  {
    Source wrong = from_a;
    wrong.password = "not the password";
    auto bad = b.BaseBackup(wrong, {});
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code(), ErrorCode::kFailedPrecondition) << bad.error().ToString();
    EXPECT_TRUE(Has(bad.error().message(), "password")) << bad.error().message();
    EXPECT_FALSE(Has(bad.error().message(), "not the password")) << bad.error().message();
    EXPECT_EQ(b.InspectDataDir(), DataDirState::kEmpty);
    Source no_slot = from_a;
    no_slot.slot_name = "tandem_nobody";
    bad = b.BaseBackup(no_slot, {});
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code(), ErrorCode::kFailedPrecondition) << bad.error().ToString();
    EXPECT_TRUE(Has(bad.error().message(), "SyncSlots")) << bad.error().message();
    EXPECT_EQ(b.InspectDataDir(), DataDirState::kEmpty);
    Source closed = from_a;
    closed.port = base_port_ + 9;  // nothing listens there
    bad = b.BaseBackup(closed, {});
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code(), ErrorCode::kUnavailable) << bad.error().ToString();
    EXPECT_EQ(b.InspectDataDir(), DataDirState::kEmpty);
  }
  std::vector<std::string> progress;
  st = b.BaseBackup(from_a, [&](const std::string& l) { progress.push_back(l); });
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  ASSERT_FALSE(progress.empty());
  bool saw_kb = false;
  for (const auto& l : progress) {
    if (Has(l, "kB")) saw_kb = true;
    EXPECT_FALSE(Has(l, kReplPw));
  }
  EXPECT_TRUE(saw_kb) << Join(progress, "\n");
  for (const auto& n : List(dir_.path() + "/b")) EXPECT_FALSE(StartsWith(n, ".tandem-secret"));
  {
    auto autoconf = ReadFile(b.paths().data_dir + "/postgresql.auto.conf");
    ASSERT_TRUE(autoconf.ok());
    EXPECT_FALSE(Has(*autoconf, "primary_conninfo")) << *autoconf;
    EXPECT_FALSE(Has(*autoconf, "repl pw")) << *autoconf;
  }
  ASSERT_TRUE(b.WriteConfig(from_a).ok());
  ASSERT_TRUE(b.WriteHba(Peers()).ok());
  {
    auto conf = ReadFile(b.paths().data_dir + "/tandem.conf");
    ASSERT_TRUE(conf.ok());
    EXPECT_FALSE(Has(*conf, "repl pw"));
    EXPECT_TRUE(Has(*conf, "port = " + std::to_string(port_b)));
    EXPECT_TRUE(PathExists(b.paths().data_dir + "/standby.signal"));
    struct stat sb {};
    ASSERT_EQ(::stat((b.paths().data_dir + "/tandem.pgpass").c_str(), &sb), 0);
    EXPECT_EQ(sb.st_mode & 0777, 0600u);
  }
  st = b.Start();
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  Started(b);
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto q = b.Query();
        return q.ok() && q->in_recovery && q->streaming;
      },
      kWaitMs));
  auto qb = b.Query();
  ASSERT_TRUE(qb.ok());
  EXPECT_EQ(qb->timeline, 1u);
  EXPECT_EQ(qb->sender_host, "127.0.0.1");
  EXPECT_EQ(qb->sender_port, port_a);
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto r = a.Replication();
        return r.ok() && r->size() == 1 && (*r)[0].application_name == "b" &&
               (*r)[0].state == "streaming";
      },
      kWaitMs));
  EXPECT_EQ(One(a.Sql("SELECT active::text FROM pg_replication_slots WHERE slot_name = '" + slot_b +
                      "'")),
            "true");

  // The sync upkeep's one-statement read agrees with the three reads it
  // replaces, on the primary and on the standby.
  {
    auto snap = a.ReadSyncSnapshot();
    ASSERT_TRUE(snap.ok()) << snap.error().ToString();
    EXPECT_FALSE(snap->in_recovery);
    auto qa_now = a.Query();
    ASSERT_TRUE(qa_now.ok());
    EXPECT_GT(snap->flush_lsn, 0u);
    EXPECT_LE(snap->flush_lsn, qa_now->lsn) << "a flush position never goes back";
    EXPECT_EQ(snap->synchronous_standby_names, One(a.Sql("SHOW synchronous_standby_names")));
    ASSERT_EQ(snap->standbys.size(), 1u);
    EXPECT_EQ(snap->standbys[0].application_name, "b");
    EXPECT_EQ(snap->standbys[0].state, "streaming");
    auto on_standby = b.ReadSyncSnapshot();
    ASSERT_TRUE(on_standby.ok()) << on_standby.error().ToString();
    EXPECT_TRUE(on_standby->in_recovery);
    EXPECT_EQ(on_standby->flush_lsn, 0u);
    EXPECT_TRUE(on_standby->standbys.empty());
  }

  // --- a write on A reaches B ---
  auto w = TcpSql(port_a,
                  "CREATE TABLE t (id int PRIMARY KEY, note text); "
                  "INSERT INTO t VALUES (1, 'before failover')");
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  ASSERT_TRUE(
      WaitUntil([&] { return One(b.Sql("SELECT count(*) FROM t WHERE id = 1")) == "1"; }, kWaitMs));
  EXPECT_FALSE(TcpSql(port_b, "INSERT INTO t VALUES (99, 'standby is read-only')").ok());

  // --- promote B: timeline 2 ---
  EXPECT_EQ(a.Promote().error().code(), ErrorCode::kFailedPrecondition);  // A is no standby
  st = b.Promote();
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto q = b.Query();
        return q.ok() && !q->in_recovery;
      },
      kWaitMs));
  qb = b.Query();
  ASSERT_TRUE(qb.ok());
  EXPECT_EQ(qb->timeline, 2u);
  w = TcpSql(port_b, "INSERT INTO t VALUES (2, 'on the new primary')");
  ASSERT_TRUE(w.ok()) << w.error().ToString();

  // A diverges (a write the cluster must forget), then dies.
  w = TcpSql(port_a, "INSERT INTO t VALUES (3, 'divergent on the old primary')");
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  int pid_a = a.Pid();
  st = a.Stop(StopMode::kImmediate);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_FALSE(a.IsRunning());
  EXPECT_FALSE(IsAlive(pid_a));
  EXPECT_EQ(a.Pid(), 0);

  // --- rewind A from B and follow B ---
  const std::string slot_a = SlotNameFor("a");
  ASSERT_TRUE(b.SyncSlots({slot_a}).ok());
  Source rewind_src;
  rewind_src.host = "127.0.0.1";
  rewind_src.port = port_b;
  rewind_src.user = "postgres";
  rewind_src.password = kSuperPw;
  st = a.Rewind(rewind_src);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_TRUE(PathExists(a.paths().data_dir + "/standby.signal"));
  for (const auto& n : List(dir_.path() + "/a")) EXPECT_FALSE(StartsWith(n, ".tandem-secret"));
  Source from_b = from_a;
  from_b.port = port_b;
  from_b.application_name = "a";
  from_b.slot_name = slot_a;
  ASSERT_TRUE(a.WriteConfig(from_b).ok());
  ASSERT_TRUE(a.WriteHba(Peers()).ok());
  {
    auto conf = ReadFile(a.paths().data_dir + "/tandem.conf");
    ASSERT_TRUE(conf.ok());
    EXPECT_TRUE(Has(*conf, "port = " + std::to_string(port_a))) << *conf;
  }
  st = a.Start();
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  Started(a);
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto q = a.Query();
        return q.ok() && q->in_recovery && q->streaming && q->timeline == 2;
      },
      kWaitMs));
  qa = a.Query();
  ASSERT_TRUE(qa.ok());
  EXPECT_EQ(qa->sender_port, port_b);
  ASSERT_TRUE(
      WaitUntil([&] { return One(a.Sql("SELECT count(*) FROM t WHERE id = 2")) == "1"; }, kWaitMs));
  EXPECT_EQ(One(a.Sql("SELECT count(*) FROM t WHERE id = 3")), "0");
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto r = b.Replication();
        return r.ok() && r->size() == 1 && (*r)[0].application_name == "a" &&
               (*r)[0].state == "streaming";
      },
      kWaitMs));
  auto cda = a.ReadControlData();
  auto cdb = b.ReadControlData();
  ASSERT_TRUE(cda.ok() && cdb.ok());
  EXPECT_EQ(cda->system_identifier, cdb->system_identifier);

  // A standby that crashed (standby.signal present, not shut down cleanly):
  // pg_rewind's own single-user recovery refuses standby mode, so Rewind
  // finishes crash recovery itself and retries.
  st = a.Stop(StopMode::kImmediate);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  ASSERT_TRUE(PathExists(a.paths().data_dir + "/standby.signal"));
  cda = a.ReadControlData();
  ASSERT_TRUE(cda.ok());
  EXPECT_EQ(cda->cluster_state, "in archive recovery");
  st = a.Rewind(rewind_src);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_TRUE(PathExists(a.paths().data_dir + "/standby.signal"));
  ASSERT_TRUE(a.WriteConfig(from_b).ok());
  ASSERT_TRUE(a.WriteHba(Peers()).ok());
  st = a.Start();
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  Started(a);
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto q = a.Query();
        return q.ok() && q->in_recovery && q->streaming && q->timeline == 2;
      },
      kWaitMs));

  // Orderly stop of both.
  st = a.Stop(StopMode::kFast);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  st = b.Stop(StopMode::kFast);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_FALSE(a.IsRunning());
  EXPECT_FALSE(b.IsRunning());
  EXPECT_TRUE(b.Stop(StopMode::kFast).ok());  // not running: no-op
}

TEST_F(PgControlTest, InitDbRefusesForeignDirectoryAndTouchesNothing) {
  Postgres& pg = Node("foreign", base_port_ + 2);
  const std::string d = pg.paths().data_dir;
  ASSERT_TRUE(MakeDirs(d, 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(d + "/keep.txt", "precious").ok());
  EXPECT_EQ(pg.InspectDataDir(), DataDirState::kNotPostgres);
  auto st = pg.InitDb(kSuperPw);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(Has(st.error().message(), d)) << st.error().message();
  EXPECT_TRUE(Has(st.error().message(), "empty directory")) << st.error().message();
  EXPECT_FALSE(Has(st.error().message(), kSuperPw));
  EXPECT_EQ(List(d), std::vector<std::string>{"keep.txt"});
  EXPECT_EQ(*ReadFile(d + "/keep.txt"), "precious");
  struct stat sb {};
  ASSERT_EQ(::stat(d.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0755u);
  EXPECT_EQ(sb.st_uid, ::geteuid());

  // Neither a base backup, a config write nor a start touches it.
  Source src;
  src.host = "127.0.0.1";
  src.port = base_port_;
  src.user = "replicator";
  EXPECT_EQ(pg.BaseBackup(src, {}).error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(pg.WriteConfig(std::nullopt).error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(pg.Start().error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(List(d), std::vector<std::string>{"keep.txt"});

  // Empty password and a missing data dir's parent are handled.
  Postgres& other = Node("fresh/deeper", base_port_ + 3);
  EXPECT_EQ(other.InitDb("").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(other.InspectDataDir(), DataDirState::kMissing);
}

TEST_F(PgControlTest, StartRemovesStalePidFileOfDeadOrZombieProcess) {
  Postgres& pg = Node("stale", base_port_ + 4);
  auto st = pg.InitDb(kSuperPw);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  ASSERT_TRUE(pg.WriteConfig(std::nullopt).ok());
  ASSERT_TRUE(pg.WriteHba({}).ok());
  const std::string pidfile = pg.paths().data_dir + "/postmaster.pid";

  // A bad peer address is refused and leaves pg_hba.conf as it was.
  auto hba_before = ReadFile(pg.paths().data_dir + "/pg_hba.conf");
  auto bad = pg.WriteHba({{"x", "db.example.com"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(*ReadFile(pg.paths().data_dir + "/pg_hba.conf"), *hba_before);

  auto write_pidfile = [&](pid_t pid) {
    std::string content = std::to_string(pid) + "\n" + pg.paths().data_dir + "\n1700000000\n" +
                          std::to_string(pg.settings().port) + "\n" + pg.paths().socket_dir +
                          "\n127.0.0.1\n  5432001  3\nready   \n";
    ASSERT_TRUE(WriteFileAtomic(pidfile, content, 0600).ok());
    ASSERT_TRUE(Chown(pidfile, ServiceUser()).ok());
  };

  // A wrongly owned data directory is refused with the fix.
  if (!ServiceUser().empty()) {
    ASSERT_EQ(::chown(pg.paths().data_dir.c_str(), 0, 0), 0);
    auto owned = pg.Start();
    ASSERT_FALSE(owned.ok());
    EXPECT_EQ(owned.error().code(), ErrorCode::kFailedPrecondition);
    EXPECT_TRUE(Has(owned.error().message(), "chown -R postgres")) << owned.error().message();
    ASSERT_TRUE(Chown(pg.paths().data_dir, ServiceUser()).ok());
  }

  // 1. A dead pid.
  auto dead = Spawn({"true"}, SpawnOptions{});
  ASSERT_TRUE(dead.ok());
  ASSERT_TRUE(WaitForExit(*dead, 10'000));
  write_pidfile(*dead);
  EXPECT_FALSE(pg.IsRunning());
  EXPECT_TRUE(pg.Stop(StopMode::kFast).ok());  // nothing to stop, the pid is not touched
  st = pg.Start();
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  Started(pg);
  EXPECT_NE(pg.Pid(), *dead);
  ASSERT_TRUE(pg.Query().ok());
  st = pg.Stop(StopMode::kFast);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_FALSE(PathExists(pidfile));

  // 2. A zombie: our own exited child, not reaped yet.
  auto zombie = Spawn({"true"}, SpawnOptions{});
  ASSERT_TRUE(zombie.ok());
  for (int i = 0; i < 1000; ++i) {  // until it has exited (IsAlive is false for a zombie)
    if (!IsAlive(*zombie)) break;
    ::usleep(10'000);
  }
  ASSERT_FALSE(IsAlive(*zombie));
  ASSERT_EQ(::kill(*zombie, 0), 0) << "expected an unreaped zombie";
  write_pidfile(*zombie);
  st = pg.Start();
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  Started(pg);
  EXPECT_NE(pg.Pid(), *zombie);

  // 3. The pid of a live process that is not PostgreSQL (our own).
  // (The postmaster removes its file on a clean stop; simulate a crash leftover.)
  st = pg.Stop(StopMode::kImmediate);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  write_pidfile(::getpid());
  EXPECT_FALSE(pg.IsRunning());
  st = pg.Start();
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  Started(pg);
  WaitForExit(*zombie, 1'000);  // reap

  // Rewind refuses a running server; a base backup refuses a valid data dir.
  Source src;
  src.host = "127.0.0.1";
  src.port = base_port_;
  src.user = "postgres";
  EXPECT_EQ(pg.Rewind(src).error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(pg.BaseBackup(src, {}).error().code(), ErrorCode::kFailedPrecondition);

  // Stop(kFast) ends an open client session instead of waiting for it.
  auto conn = PgConn::Connect({{"host", pg.paths().socket_dir},
                               {"port", std::to_string(pg.settings().port)},
                               {"user", "postgres"},
                               {"dbname", "postgres"}},
                              "test");
  ASSERT_TRUE(conn.ok()) << conn.error().ToString();
  ASSERT_TRUE(conn->Exec("BEGIN; CREATE TABLE held (x int)", "open txn").ok());
  st = pg.Stop(StopMode::kFast, 20'000);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_FALSE(conn->Exec("SELECT 1", "after stop").ok());
  EXPECT_FALSE(pg.IsRunning());

  // A hung postmaster (SIGSTOP): pg_ctl stop times out, Stop kills it and its
  // children, and the next Start copes with the pid file it left.
  st = pg.Start();
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  Started(pg);
  const int pm = pg.Pid();
  std::vector<int> kids;
  for (const auto& n : List("/proc")) {
    auto pid = ParseInt(n);
    if (!pid) continue;
    auto stat = ReadFile("/proc/" + n + "/stat");
    if (!stat) continue;
    auto rp = stat->rfind(')');
    auto f = Split(Trim(stat->substr(rp + 1)), ' ');
    if (f.size() > 1 && ParseInt(f[1]) == pm) kids.push_back(static_cast<int>(*pid));
  }
  EXPECT_FALSE(kids.empty());
  ASSERT_EQ(::kill(pm, SIGSTOP), 0);
  st = pg.Stop(StopMode::kFast, 3'000);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_FALSE(IsAlive(pm));
  for (int k : kids) {
    EXPECT_TRUE(WaitUntil([&] { return !IsAlive(k); }, 10'000)) << "child " << k;
  }
  EXPECT_TRUE(PathExists(pidfile));
  st = pg.Start();
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  Started(pg);
  ASSERT_TRUE(pg.Query().ok());

  // A reloadable change applies on Reload; a restart-only one is reported.
  auto pending = pg.PendingRestart();
  ASSERT_TRUE(pending.ok()) << pending.error().ToString();
  EXPECT_TRUE(pending->empty());
  Settings s = pg.settings();
  s.max_connections = 50;
  s.wal_keep_size = "64MB";
  pg.set_settings(s);
  ASSERT_TRUE(pg.WriteConfig(std::nullopt).ok());
  st = pg.Reload();
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto p = pg.PendingRestart();
        return p.ok() && *p == std::vector<std::string>{"max_connections"} &&
               One(pg.Sql("SHOW wal_keep_size")) == "64MB";
      },
      kWaitMs));
}

// Idle cost: queries reuse kept connections; a session the server ends, a
// crash and a restart are each noticed by the next query, which connects
// again; a server that is down is reported, never hidden.
TEST_F(PgControlTest, KeptConnectionsAreReusedAndReplacedAfterACrashOrRestart) {
  Postgres& pg = Node("kept", base_port_ + 5);
  ASSERT_TRUE(pg.InitDb(kSuperPw).ok());
  ASSERT_TRUE(pg.WriteConfig(std::nullopt).ok());
  ASSERT_TRUE(pg.WriteHba({}).ok());
  auto st = pg.Start();
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  Started(pg);
  const std::string backend = One(pg.Sql("SELECT pg_backend_pid()"));
  ASSERT_FALSE(backend.empty());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(pg.Query().ok());
    EXPECT_EQ(One(pg.Sql("SELECT pg_backend_pid()")), backend) << "a new connection per query";
  }
  const int pm = pg.Pid();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(pg.Pid(), pm);

  // The server ends our kept session: the next statement runs on a new one.
  auto other = PgConn::Connect({{"host", pg.paths().socket_dir},
                                {"port", std::to_string(pg.settings().port)},
                                {"user", "postgres"},
                                {"dbname", "postgres"}},
                               "test");
  ASSERT_TRUE(other.ok()) << other.error().ToString();
  ASSERT_TRUE(other->Exec("SELECT pg_terminate_backend(" + backend + ")", "terminate").ok());
  std::string after;
  ASSERT_TRUE(WaitUntil(
      [&] {
        after = One(pg.Sql("SELECT pg_backend_pid()"));
        return !after.empty();
      },
      kWaitMs));
  EXPECT_NE(after, backend);
  ASSERT_TRUE(pg.Query().ok());

  // A crash (SIGKILL of the postmaster): the server is reported down, then
  // Start brings it back and the queries follow the new server.
  ASSERT_EQ(::kill(pm, SIGKILL), 0);
  ASSERT_TRUE(WaitUntil([&] { return !pg.IsRunning(); }, kWaitMs));
  // (Its backends notice the postmaster's death on their own, soon after.)
  Result<LiveStatus> down = Error(ErrorCode::kInternal, "not asked");
  ASSERT_TRUE(WaitUntil(
      [&] {
        down = pg.Query();
        return !down.ok();
      },
      kWaitMs));
  EXPECT_EQ(down.error().code(), ErrorCode::kUnavailable) << down.error().ToString();
  EXPECT_FALSE(pg.Sql("SELECT 1").ok());
  st = pg.Start();
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  Started(pg);
  EXPECT_NE(pg.Pid(), pm);
  ASSERT_TRUE(pg.Query().ok());
  ASSERT_TRUE(pg.Sql("SELECT 1").ok());

  // An orderly restart.
  ASSERT_TRUE(pg.Stop(StopMode::kFast).ok());
  EXPECT_EQ(pg.Query().error().code(), ErrorCode::kUnavailable);
  ASSERT_TRUE(pg.Start().ok());
  Started(pg);
  ASSERT_TRUE(pg.Query().ok());
  ASSERT_TRUE(pg.Replication().ok());
}

}  // namespace
}  // namespace tandem::pg
