// Agent restart without a failover (issue 17 item 4), end to end on real
// etcd and PostgreSQL 15: a 3-node sandbox whose agents run with
// --on-sigterm=restart (TANDEM_ON_SIGTERM, inherited by the sandbox's
// agents), dcs.ttl 10 s. SIGTERM to the primary's agent and a new agent: same leader, same
// timeline, the same postmaster, no acknowledged write lost, the new agent
// started from a new binary put in place meanwhile. `tandem agent reload`
// on the primary (SIGHUP: the agent executes the new binary at its path as
// the same process): the same again, and the same pid; a broken binary at
// that path, or a config naming another node, is refused and the agent goes
// on. SIGTERM and no new agent: the
// old fence guard stops PostgreSQL at the lease deadline and a replica takes
// over. `tandem agent stop` stops each node at the end.
//
// The agents run a copy of the binary under test (TANDEM_BIN points at it),
// so a test can put a new file in its place the way dpkg does (a rename).
//
// Ports: TestBasePort(30000) = P; node i uses P+10i .. P+10i+6 (the range
// 30000-30399 is this test's).
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "base/file.h"
#include "base/process.h"
#include "base/strings.h"
#include "integration/harness/harness.h"

namespace tandem::testing {
namespace {
using nlohmann::json;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A client that inserts one numbered row at a time straight into one
// PostgreSQL (no proxy: the postmaster must stay the same) and remembers
// every insert that was acknowledged, and the longest time between two.
class Writer {
 public:
  Writer(int port, std::string pgpass, int first_id)
      : port_(port), pgpass_(std::move(pgpass)), next_(first_id) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Writer() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<int> Acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }
  int64_t LongestGapMs() {
    std::lock_guard<std::mutex> lock(mu_);
    return longest_gap_;
  }
  int64_t LastAckMs() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_ack_;
  }

 private:
  void Run() {
    while (!stop_) {
      const int id = next_++;
      auto r = Psql(port_, pgpass_, "INSERT INTO r VALUES (" + std::to_string(id) + ")");
      if (r.exit_code != 0) continue;
      std::lock_guard<std::mutex> lock(mu_);
      const int64_t now = NowMs();
      if (last_ack_ != 0) longest_gap_ = std::max(longest_gap_, now - last_ack_);
      last_ack_ = now;
      acked_.push_back(id);
    }
  }
  const int port_;
  const std::string pgpass_;
  int next_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<int> acked_;
  int64_t last_ack_ = 0;
  int64_t longest_gap_ = 0;
  std::thread thread_;
};

class RestartTest : public SandboxSuite<RestartTest> {
 protected:
  static void SetUpTestSuite() {
    // Every agent the sandbox (and `sandbox start`) spawns inherits it.
    ::setenv("TANDEM_ON_SIGTERM", "restart", 1);
    // The sandbox's agents run the copy (the sandbox spawns its own binary).
    original_bin_ = new std::string(TandemBin());
    bin_dir_ = new TempDir("tandem-restart-bin");
    if (!PutBinaryInPlace(*original_bin_)) {
      up_output_ = new std::string("cannot copy " + *original_bin_ + " to " + Bin());
      return;
    }
    ::setenv("TANDEM_BIN", Bin().c_str(), 1);
    UpSandbox("tandem-restart", 30000);
    if (!up_ok_) return;
    // A lease TTL that a loaded test machine's agent start fits in with room
    // to spare (the hand-over window is ttl - margin). A lease keeps the TTL
    // it was granted with, so each node is stopped (`tandem agent stop`: the
    // primary switches over first, its lease is revoked) and started again
    // onto the new file, one at a time.
    for (int i = 1; i <= 3; ++i) {
      auto text = ReadFile(Config(i));
      const size_t at = text ? text->find("dcs:\n") : std::string::npos;
      const std::string node = "node" + std::to_string(i);
      if (at == std::string::npos) {
        *up_output_ += "\nno dcs section in " + Config(i);
        up_ok_ = false;
        return;
      }
      text->insert(at + 5, "  ttl: " + std::to_string(kTtlMs / 1000) + "s\n");
      auto stop = RunTandem({"agent", "stop", "-c", Config(i)}, 300'000);
      if (!WriteFileAtomic(Config(i), *text).ok() || stop.exit_code != 0 ||
          RunTandem({"sandbox", "start", node, "--dir", Dir()}).exit_code != 0 ||
          !WaitUntil([] { return Healthy(1, 3); }, 180'000)) {
        *up_output_ += "\ncould not restart " + node + " with dcs.ttl: " + stop.output;
        up_ok_ = false;
        return;
      }
    }
  }
  static void TearDownTestSuite() {
    if (dir_ != nullptr) {
      // SIGTERM leaves the node running here: stop each node through its agent.
      for (int i = 1; i <= 3; ++i) (void)RunTandem({"agent", "stop", "-c", Config(i)}, 120'000);
    }
    DownSandbox();
    RemoveSandboxDir();
    ::unsetenv("TANDEM_ON_SIGTERM");
    ::unsetenv("TANDEM_BIN");
    delete bin_dir_;
    bin_dir_ = nullptr;
    delete original_bin_;
    original_bin_ = nullptr;
  }
  // The file the agents run, and how a package upgrade replaces it: the new
  // file written beside it, then renamed over it (the running image keeps
  // the old inode).
  static std::string Bin() { return bin_dir_->path() + "/tandem"; }
  static bool PutBinaryInPlace(const std::string& from) {
    auto cp = RunCmd({"cp", from, Bin() + ".new"}, 60'000);
    return cp.exit_code == 0 && ::rename((Bin() + ".new").c_str(), Bin().c_str()) == 0;
  }
  static bool PutBrokenBinaryInPlace() {
    const std::string script = "#!/bin/sh\necho 'a build that cannot start' >&2\nexit 1\n";
    return WriteFileAtomic(Bin() + ".new", script).ok() &&
           ::chmod((Bin() + ".new").c_str(), 0755) == 0 &&
           ::rename((Bin() + ".new").c_str(), Bin().c_str()) == 0;
  }
  static ino_t Inode(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
  }
  static std::string Image(int i) {
    auto s = Status(i);
    return s ? s->value("agent_image", "") : "";
  }
  static inline TempDir* bin_dir_ = nullptr;
  static inline std::string* original_bin_ = nullptr;
  static int PgPort(int i) { return base_ + 10 * i; }
  static std::string Pgpass() { return Dir() + "/pgpass"; }
  static std::optional<json> Status(int i) { return ClusterStatusJson(Config(i)); }
  static std::string Primary(int via) { return PrimaryOf(Config(via)); }
  static int IndexOf(const std::string& node) { return NodeIndex(node); }
  static bool Healthy(int via, size_t members) {
    auto s = Status(via);
    return s && UnhealthyBecause(*s, members, /*failover_ready=*/true).empty();
  }
  static pid_t AgentPid(const std::string& node) {
    return LivePidFromFile(Dir() + "/" + node + "/agent.pid");
  }
  static pid_t PostmasterPid(int i) {
    return LivePidFromFile(NodeDir(i) + "/pgdata/postmaster.pid");
  }
  // The timeline the node writes on (its current WAL file's first 8 digits).
  static std::string Timeline(int i) {
    auto r =
        Psql(PgPort(i), Pgpass(), "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)");
    return r.exit_code == 0 ? Trim(r.output) : "";
  }
  static std::string AgentLog(const std::string& node) {
    auto t = ReadFile(Dir() + "/" + node + "/agent.log");
    return t ? *t : "";
  }
  static constexpr int64_t kTtlMs = 10'000;  // the nodes' dcs.ttl (SetUpTestSuite)
  static int64_t TtlMs() { return kTtlMs; }
  // SIGTERM to the agent alone (as systemd's KillMode=process), and its exit.
  static void TermAgent(const std::string& node) {
    const pid_t agent = AgentPid(node);
    ASSERT_GT(agent, 0) << node << " has no running agent";
    ASSERT_EQ(::kill(agent, SIGTERM), 0);
    ASSERT_TRUE(WaitForExit(agent, 60'000)) << node << "'s agent did not exit on SIGTERM";
  }
};

TEST_F(RestartTest, PrimaryAgentRestartKeepsLeaderTimelineAndPostmaster) {
  ASSERT_TRUE(WaitUntil([] { return Healthy(1, 3); }, 120'000)) << Status(1)->dump(2);
  const std::string primary = Primary(1);
  const int p = IndexOf(primary);
  ASSERT_GT(p, 0);
  ASSERT_EQ(Psql(PgPort(p), Pgpass(), "CREATE TABLE IF NOT EXISTS r(id int primary key)").exit_code,
            0);
  const pid_t postmaster = PostmasterPid(p);
  const std::string timeline = Timeline(p);
  ASSERT_GT(postmaster, 0);
  ASSERT_FALSE(timeline.empty());

  Writer writer(PgPort(p), Pgpass(), 1);
  ASSERT_TRUE(WaitUntil([&] { return writer.Acked().size() >= 5; }, 30'000));
  TermAgent(primary);
  // The fence guard the old agent left armed (it recorded it in state.json).
  auto state = ReadFile(NodeDir(p) + "/state.json");
  ASSERT_TRUE(state.ok());
  const pid_t old_guard = static_cast<pid_t>(json::parse(*state).value("guard_pid", 0));
  ASSERT_GT(old_guard, 0) << *state;
  ASSERT_TRUE(IsAlive(old_guard)) << "the old agent's fence guard is gone before its deadline";
  // Nothing runs for the node now but PostgreSQL, etcd and the fence guard.
  EXPECT_EQ(PostmasterPid(p), postmaster) << "SIGTERM with --on-sigterm=restart stopped PostgreSQL";
  EXPECT_GT(LivePidFromFile(NodeDir(p) + "/etcd.pid"), 0) << "the etcd member was stopped";
  // An upgrade: the new agent starts from a new file at the same path.
  ASSERT_TRUE(PutBinaryInPlace(*original_bin_));
  auto start = RunTandem({"sandbox", "start", primary, "--dir", Dir()});
  ASSERT_EQ(start.exit_code, 0) << start.output;
  // The new agent serves as the primary again.
  EXPECT_TRUE(WaitUntil([&] { return Primary(p) == primary && Healthy(p, 3); }, 60'000))
      << Status(p)->dump(2);
  // The old guard is gone (stood down), and writes go on past the moment it
  // would have fenced (its deadline is at most a TTL after the old agent's
  // last renewal, before its exit).
  EXPECT_TRUE(WaitForExit(old_guard, 30'000)) << "the old fence guard still runs";
  const int64_t restarted = NowMs();
  ASSERT_TRUE(WaitUntil([&] { return writer.LastAckMs() > restarted + TtlMs(); }, 60'000));
  writer.Stop();

  EXPECT_EQ(Primary(1), primary) << "the leader changed: a failover";
  EXPECT_EQ(PostmasterPid(p), postmaster) << "PostgreSQL was restarted";
  EXPECT_EQ(Timeline(p), timeline) << "a new timeline: a promotion happened";
  // Every acknowledged write is there.
  const auto acked = writer.Acked();
  auto count = Psql(PgPort(p), Pgpass(), "SELECT count(*) FROM r");
  ASSERT_EQ(count.exit_code, 0) << count.output;
  EXPECT_EQ(Trim(count.output), std::to_string(acked.size()));
  // PostgreSQL never stopped serving writes: the longest pause between two
  // acknowledged writes is below the lease TTL (generous: psql's own start
  // is in it; the postmaster's pid above is the sharp check).
  std::printf("agent restart on the primary %s: longest gap between acknowledged writes %lld ms\n",
              primary.c_str(), static_cast<long long>(writer.LongestGapMs()));
  EXPECT_LT(writer.LongestGapMs(), TtlMs());
  const std::string log = AgentLog(primary);
  EXPECT_NE(log.find("stopped for a restart"), std::string::npos);
  EXPECT_NE(log.find("renewed the previous agent's lease"), std::string::npos);
  EXPECT_NE(log.find("stood down"), std::string::npos) << "the old fence guard was not stood down";
  const pid_t agent = AgentPid(primary);
  ASSERT_GT(agent, 0);
  EXPECT_EQ(Inode("/proc/" + std::to_string(agent) + "/exe"), Inode(Bin()))
      << "the new agent does not run the new binary";
}

TEST_F(RestartTest, PrimaryAgentReloadExecutesTheNewBinaryAsTheSameProcessWithoutAFailover) {
  ASSERT_TRUE(WaitUntil([] { return Healthy(1, 3); }, 120'000)) << Status(1)->dump(2);
  const std::string primary = Primary(1);
  const int p = IndexOf(primary);
  ASSERT_GT(p, 0);
  ASSERT_EQ(Psql(PgPort(p), Pgpass(), "CREATE TABLE IF NOT EXISTS r(id int primary key)").exit_code,
            0);
  const pid_t agent = AgentPid(primary);
  const pid_t postmaster = PostmasterPid(p);
  const std::string timeline = Timeline(p);
  const std::string image = Image(p);
  ASSERT_GT(agent, 0);
  ASSERT_GT(postmaster, 0);
  ASSERT_FALSE(image.empty());
  const std::string exe = "/proc/" + std::to_string(agent) + "/exe";

  Writer writer(PgPort(p), Pgpass(), 2'000'000);
  ASSERT_TRUE(WaitUntil([&] { return writer.Acked().size() >= 5; }, 30'000));
  ASSERT_TRUE(PutBinaryInPlace(*original_bin_));
  ASSERT_NE(Inode(exe), Inode(Bin())) << "the running image is already the new file";
  auto reload = RunTandem({"agent", "reload", "-c", Config(p)}, 180'000);
  ASSERT_EQ(reload.exit_code, 0) << reload.output;
  EXPECT_NE(reload.output.find("reloaded"), std::string::npos) << reload.output;
  // The same process, a new image of the new file.
  EXPECT_TRUE(IsAlive(agent));
  EXPECT_EQ(AgentPid(primary), agent);
  EXPECT_EQ(Inode(exe), Inode(Bin())) << "the agent does not run the new binary";
  EXPECT_NE(Image(p), image);
  EXPECT_TRUE(WaitUntil([&] { return Primary(p) == primary && Healthy(p, 3); }, 60'000))
      << Status(p)->dump(2);
  // Writes go on past the moment the previous image's guard would have fenced.
  const int64_t reloaded = NowMs();
  ASSERT_TRUE(WaitUntil([&] { return writer.LastAckMs() > reloaded + TtlMs(); }, 60'000));
  writer.Stop();
  EXPECT_EQ(Primary(1), primary) << "the leader changed: a failover";
  EXPECT_EQ(PostmasterPid(p), postmaster) << "PostgreSQL was restarted";
  EXPECT_EQ(Timeline(p), timeline) << "a new timeline: a promotion happened";
  const auto acked = writer.Acked();
  auto count = Psql(PgPort(p), Pgpass(), "SELECT count(*) FROM r WHERE id >= 2000000");
  ASSERT_EQ(count.exit_code, 0) << count.output;
  EXPECT_EQ(Trim(count.output), std::to_string(acked.size()));
  std::printf("agent reload on the primary %s: longest gap between acknowledged writes %lld ms\n",
              primary.c_str(), static_cast<long long>(writer.LongestGapMs()));
  EXPECT_LT(writer.LongestGapMs(), TtlMs());
  const std::string log = AgentLog(primary);
  EXPECT_NE(log.find("SIGHUP: reloading in place"), std::string::npos);
  EXPECT_NE(log.find("executing " + Bin() + " again as pid " + std::to_string(agent)),
            std::string::npos);
  // No process of the old image is left: only PostgreSQL, etcd and one guard.
  std::string children;
  EXPECT_TRUE(WaitUntil(
      [&] {
        children = RunCmd({"ps", "-o", "comm=", "--ppid", std::to_string(agent)}, 10'000).output;
        int guards = 0;
        for (const auto& line : Split(children, '\n')) guards += Trim(line) == "tandem-fence";
        return guards == 1;
      },
      30'000))
      << "the agent's children:\n"
      << children;
}

TEST_F(RestartTest, AReloadThatCannotWorkIsRefusedAndTheAgentGoesOn) {
  ASSERT_TRUE(WaitUntil([] { return Healthy(1, 3); }, 120'000)) << Status(1)->dump(2);
  const std::string primary = Primary(1);
  const int p = IndexOf(primary);
  ASSERT_GT(p, 0);
  const pid_t agent = AgentPid(primary);
  const std::string image = Image(p);
  ASSERT_FALSE(image.empty());
  ASSERT_TRUE(PutBrokenBinaryInPlace());
  // The CLI is the binary under test itself, not the broken file.
  const std::string cli = *original_bin_;
  auto reload = RunCmd({cli, "agent", "reload", "-c", Config(p)}, 180'000);
  const bool restored = PutBinaryInPlace(*original_bin_);
  EXPECT_EQ(reload.exit_code, 1) << reload.output;
  EXPECT_NE(reload.output.find("refused the reload"), std::string::npos) << reload.output;
  EXPECT_NE(reload.output.find("a build that cannot start"), std::string::npos) << reload.output;
  ASSERT_TRUE(restored);
  EXPECT_EQ(AgentPid(primary), agent);
  EXPECT_EQ(Image(p), image) << "the agent executed the broken file";
  // A config that names another node: the new image could not adopt this one.
  auto text = ReadFile(Config(p));
  ASSERT_TRUE(text.ok());
  const size_t at = text->find("name: " + primary);
  ASSERT_NE(at, std::string::npos) << *text;
  std::string renamed = *text;
  renamed.replace(at, 6 + primary.size(), "name: " + primary + "-renamed");
  ASSERT_TRUE(WriteFileAtomic(Config(p), renamed).ok());
  auto moved = RunTandem({"agent", "reload", "-c", Config(p)}, 180'000);
  ASSERT_TRUE(WriteFileAtomic(Config(p), *text).ok());
  EXPECT_EQ(moved.exit_code, 1) << moved.output;
  EXPECT_NE(moved.output.find("node.name changed"), std::string::npos) << moved.output;
  EXPECT_EQ(Image(p), image) << "the agent reloaded into another node's name";
  EXPECT_TRUE(Healthy(p, 3)) << Status(p)->dump(2);
  EXPECT_EQ(Primary(p), primary);
}

TEST_F(RestartTest, PrimaryAgentThatDoesNotComeBackIsFencedAndAReplicaTakesOver) {
  ASSERT_TRUE(WaitUntil([] { return Healthy(1, 3); }, 120'000)) << Status(1)->dump(2);
  const std::string primary = Primary(1);
  const int p = IndexOf(primary);
  ASSERT_GT(p, 0);
  ASSERT_EQ(Psql(PgPort(p), Pgpass(), "CREATE TABLE IF NOT EXISTS r(id int primary key)").exit_code,
            0);
  const pid_t postmaster = PostmasterPid(p);
  ASSERT_GT(postmaster, 0);
  Writer writer(PgPort(p), Pgpass(), 1'000'000);
  ASSERT_TRUE(WaitUntil([&] { return writer.Acked().size() >= 5; }, 30'000));
  TermAgent(primary);
  const int64_t exited = NowMs();
  // No agent comes back: the old guard fences at the lease deadline.
  EXPECT_TRUE(WaitForExit(postmaster, 30'000)) << "PostgreSQL still runs without an agent";
  writer.Stop();
  // Its last write was acknowledged before the lease could expire in etcd
  // (the agent's last renewal was sent before it exited).
  EXPECT_LT(writer.LastAckMs() - exited, TtlMs()) << "a write was acknowledged after the deadline";
  const int other = p == 1 ? 2 : 1;
  std::string next;
  EXPECT_TRUE(WaitUntil(
      [&] {
        next = Primary(other);
        return !next.empty() && next != primary;
      },
      90'000))
      << Status(other)->dump(2);
  // Every write the old primary acknowledged is on the new one (sync replication).
  const auto acked = writer.Acked();
  if (!next.empty() && next != primary) {
    auto count =
        Psql(PgPort(IndexOf(next)), Pgpass(), "SELECT count(*) FROM r WHERE id >= 1000000");
    ASSERT_EQ(count.exit_code, 0) << count.output;
    EXPECT_GE(std::stoll(Trim(count.output)), static_cast<long long>(acked.size()));
  }
  // The node comes back as a replica.
  auto start = RunTandem({"sandbox", "start", primary, "--dir", Dir()});
  ASSERT_EQ(start.exit_code, 0) << start.output;
  EXPECT_TRUE(WaitUntil([] { return Healthy(1, 3); }, 180'000)) << Status(1)->dump(2);
}

}  // namespace
}  // namespace tandem::testing
