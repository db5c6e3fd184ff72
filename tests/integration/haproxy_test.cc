// HAProxy configured as for Patroni (examples/haproxy.cfg, only its ports moved)
// routes to Tandem's primary and replicas through the Patroni-compatible health
// checks, and follows a failover. Needs Debian's haproxy (scripts/setup.sh).
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <regex>

#include "base/file.h"
#include "base/process.h"
#include "base/strings.h"
#include "integration/harness/harness.h"

namespace tandem::testing {
namespace {

class HaproxyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    BecomeSubreaper();
    if (FindInPath("haproxy").empty()) {
      skip_ = "haproxy is not installed (scripts/setup.sh installs it)";
      return;
    }
    dir_ = new TempDir("tandem-haproxy");
    base_ = TestBasePort(20400);
    auto up = SandboxUp(Dir(), base_);
    if (up.exit_code != 0) {
      error_ = "sandbox up failed:\n" + up.output;
      return;
    }
    // The example, with the sandbox's ports moved from 15400 to base_ and the
    // listeners from 5000/5001/7000 to base_+90/91/92.
    auto example = ReadFile(std::string(TANDEM_SOURCE_DIR) + "/examples/haproxy.cfg");
    if (!example) {
      error_ = "cannot read examples/haproxy.cfg: " + example.error().message();
      return;
    }
    std::string cfg;
    std::string text = *example;
    std::regex port(R"(127\.0\.0\.1:(\d+)|port (\d+))");
    auto move = [](int p) {
      if (p == 5000) return base_ + 90;
      if (p == 5001) return base_ + 91;
      if (p == 7000) return base_ + 92;
      return p - 15400 + base_;
    };
    std::sregex_iterator it(text.begin(), text.end(), port), end;
    size_t last = 0;
    for (; it != end; ++it) {
      const auto& m = *it;
      cfg += text.substr(last, m.position() - last);
      if (m[1].matched) {
        cfg += "127.0.0.1:" + std::to_string(move(std::stoi(m[1].str())));
      } else {
        cfg += "port " + std::to_string(move(std::stoi(m[2].str())));
      }
      last = m.position() + m.length();
    }
    cfg += text.substr(last);
    config_ = dir_->path() + "/haproxy.cfg";
    (void)WriteFileAtomic(config_, cfg);
    auto check = RunCmd({"haproxy", "-c", "-f", config_});
    if (check.exit_code != 0) {
      error_ = "haproxy refuses the example: " + check.output;
      return;
    }
    SpawnOptions opts;
    opts.output_file = dir_->path() + "/haproxy.log";
    auto pid = Spawn({"haproxy", "-db", "-f", config_}, opts);
    if (!pid) {
      error_ = pid.error().message();
      return;
    }
    haproxy_ = *pid;
  }
  static void TearDownTestSuite() {
    if (haproxy_ > 0 && IsAlive(haproxy_)) {
      ::kill(haproxy_, SIGTERM);
      if (!WaitForExit(haproxy_, 10'000)) KillProcessTree(haproxy_, SIGKILL);
    }
    if (dir_ != nullptr) {
      SandboxDown(Dir());
    }
    delete dir_;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(error_.empty()) << error_;
  }

  static std::string Dir() { return dir_->path() + "/sb"; }
  static std::string Pgpass() { return Dir() + "/pgpass"; }
  static int PrimaryPort() { return base_ + 90; }
  static int ReplicaPort() { return base_ + 91; }
  static std::string Config(int i) { return Dir() + "/node" + std::to_string(i) + "/tandem.yaml"; }
  static std::string Primary() {
    for (int i = 1; i <= 3; ++i) {
      auto s = ClusterStatusJson(Config(i));
      if (s && (*s)["primary"].is_string()) return (*s)["primary"].get<std::string>();
    }
    return "";
  }
  // The servers HAProxy has UP in a listener ("primary" or "replicas"), from
  // its stats page; HAProxy starts every server UP until checks say otherwise.
  static std::vector<std::string> Up(const std::string& listener) {
    httplib::Client c("127.0.0.1", base_ + 92);
    c.set_connection_timeout(2, 0);
    c.set_url_encode(false);  // HAProxy's ";csv" must arrive as written
    auto r = c.Get("/;csv");
    std::vector<std::string> up;
    if (!r || r->status != 200) return up;
    for (const auto& line : Split(r->body, '\n')) {
      auto f = Split(line, ',');
      if (f.size() > 17 && f[0] == listener && StartsWith(f[1], "node") && f[17] == "UP") {
        up.push_back(f[1]);
      }
    }
    return up;
  }
  // "false 20410": whether the server behind `port` is in recovery, and its port.
  static std::string Through(int port) {
    auto r =
        Psql(port, Pgpass(), "SELECT pg_is_in_recovery()::text || ' ' || current_setting('port')");
    return r.exit_code == 0 ? Trim(r.output) : "";
  }

  static inline TempDir* dir_ = nullptr;
  static inline int base_ = 0;
  static inline pid_t haproxy_ = 0;
  static inline std::string config_;
  static inline std::string skip_;
  static inline std::string error_;
};

TEST_F(HaproxyTest, ThePatroniStyleExampleRoutesToThePrimaryAndReplicasThroughAFailover) {
  const std::string primary = Primary();
  ASSERT_FALSE(primary.empty());
  const int pport = base_ + 10 * (primary.back() - '0');
  std::vector<std::string> up;
  ASSERT_TRUE(
      WaitUntil([&] { return (up = Up("primary")).size() == 1 && up[0] == primary; }, 60'000))
      << "HAProxy's primary listener has UP: " << Join(up, ", ");
  ASSERT_TRUE(WaitUntil([&] { return Up("replicas").size() == 2; }, 60'000))
      << "HAProxy's replicas listener has UP: " << Join(Up("replicas"), ", ");
  std::string seen;
  EXPECT_TRUE(WaitUntil(
      [&] { return (seen = Through(PrimaryPort())) == "false " + std::to_string(pport); }, 60'000))
      << "writes port reached: '" << seen << "'";
  EXPECT_TRUE(WaitUntil([&] { return StartsWith(seen = Through(ReplicaPort()), "true "); }, 60'000))
      << "reads port reached: '" << seen << "'";
  auto w = Psql(PrimaryPort(), Pgpass(),
                "CREATE TABLE IF NOT EXISTS h(v text); INSERT INTO h VALUES ('before')");
  EXPECT_EQ(w.exit_code, 0) << w.output;

  ASSERT_EQ(RunTandem({"sandbox", "kill", primary, "--dir", Dir()}).exit_code, 0);
  std::string next;
  ASSERT_TRUE(WaitUntil(
      [&] {
        next = Primary();
        return !next.empty() && next != primary;
      },
      90'000));
  const int nport = base_ + 10 * (next.back() - '0');
  EXPECT_TRUE(WaitUntil([&] { return (up = Up("primary")).size() == 1 && up[0] == next; }, 90'000))
      << "after the failover HAProxy's primary listener has UP: " << Join(up, ", ");
  EXPECT_TRUE(WaitUntil(
      [&] { return (seen = Through(PrimaryPort())) == "false " + std::to_string(nport); }, 90'000))
      << "after the failover the writes port reached: '" << seen << "'";
  auto after = Psql(PrimaryPort(), Pgpass(), "INSERT INTO h VALUES ('after')");
  EXPECT_EQ(after.exit_code, 0) << after.output;
  auto count = Psql(PrimaryPort(), Pgpass(), "SELECT count(*) FROM h");
  EXPECT_EQ(Trim(count.output), "2") << "the row written before the failover is kept";
  // The killed node comes back as a replica and is served on the reads port again.
  ASSERT_EQ(RunTandem({"sandbox", "start", primary, "--dir", Dir()}).exit_code, 0);
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto s = ClusterStatusJson(Config(next.back() - '0'));
        if (!s) return false;
        int replicas = 0;
        for (const auto& m : (*s)["members"]) {
          replicas += m["role"] == "replica" && m["in_sync"] == true ? 1 : 0;
        }
        return replicas == 2;
      },
      180'000));
  EXPECT_TRUE(WaitUntil([&] { return StartsWith(Through(ReplicaPort()), "true "); }, 60'000));
}

}  // namespace
}  // namespace tandem::testing
