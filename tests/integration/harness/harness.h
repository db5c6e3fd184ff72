// Helpers for integration tests that run real etcd and PostgreSQL on 127.0.0.1.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/process.h"
#include "base/result.h"

namespace tandem::testing {

// A fresh directory under /tmp (mode 0755, so the postgres user can traverse
// it), removed when the object dies unless TANDEM_KEEP_TEST_DIRS is set.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "tandem-test");
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Polls `cond` every 100 ms until it returns true or `timeout_ms` passes.
// Tests wait on real processes this way: never a fixed sleep.
bool WaitUntil(const std::function<bool()>& cond, int64_t timeout_ms);

// A base port for one test binary, from TANDEM_TEST_BASE_PORT or the default,
// so test binaries run one after another never collide with a sandbox on 15400.
int TestBasePort(int default_port);
// A node file of cluster "sandbox" on 127.0.0.1 with the sandbox's port plan
// from `port` (PostgreSQL there, the API at +1, etcd's client and peer ports
// at +4 and +5) and no TLS; `extra` (YAML sections) is appended.
std::string NodeYaml(const std::string& name, const std::string& state_dir, int port,
                     const std::string& extra = "");

// The OS user PostgreSQL and etcd run as when we are root ("" otherwise).
std::string ServiceUser();

}  // namespace tandem::testing

namespace tandem::testing {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout + stderr
};

// The tandem binary under test: TANDEM_BIN, else build/tandem, made absolute.
std::string TandemBin();
// Runs the tandem binary under test with args.
CommandResult RunTandem(const std::vector<std::string>& args, int64_t timeout_ms = 300'000);
// Runs any command.
CommandResult RunCmd(const std::vector<std::string>& argv, int64_t timeout_ms = 120'000,
                     const std::map<std::string, std::string>& env = {});
// `tandem -c config cluster status --json`, parsed; nullopt when it fails.
std::optional<nlohmann::json> ClusterStatusJson(const std::string& config);
// The primary that node's status names ("" when none, or no status).
std::string PrimaryOf(const std::string& config);
// A sandbox node's number from its name ("node2" -> 2; "" -> 0).
inline int NodeIndex(const std::string& node) {
  return node.empty() ? 0 : node.back() - '0';
}
// `tandem sandbox up --nodes N --dir DIR --base-port P [--no-tls]` (ten minutes at most) and
// `tandem sandbox down --dir DIR` (a failure printed to stderr): the suites'
// fixtures start and stop their sandbox with these.
// tls = false adds --no-tls (the sandbox runs TLS, enforce, by default).
CommandResult SandboxUp(const std::string& dir, int base_port, int nodes = 3, bool tls = true);
void SandboxDown(const std::string& dir);
// A plain-HTTP GET of host:port/path parsed as JSON (1 s to connect, 3 s to
// answer); nullopt when it fails, answers other than 200, or is not JSON.
std::optional<nlohmann::json> HttpGetJson(const std::string& host, int port,
                                          const std::string& path);
// Why a `cluster status --json` answer is not a healthy cluster of `members`
// members ("" when it is): one primary, every other member a replica in sync,
// and, with failover_ready, a sync record that allows the next failover (a
// test that kills the primary next must not land in the short window after a
// change where the cluster rightly may not fail over).
std::string UnhealthyBecause(const nlohmann::json& status, size_t members, bool failover_ready);
// The pid on the first line of a pid file (postmaster.pid, etcd.pid, agent.pid)
// when that process is alive and not a zombie; 0 otherwise (no file, junk, dead).
pid_t LivePidFromFile(const std::string& path);
// Sends sig to pid's process group (when it has its own, not ours) and to pid.
void KillGroup(pid_t pid, int sig);
// psql -Atc SQL against 127.0.0.1:port as postgres, with the given PGPASSFILE.
CommandResult Psql(int port, const std::string& pgpass, const std::string& sql);

// A test suite sharing one sandbox: `class FooTest : public SandboxSuite<FooTest>`,
// whose SetUpTestSuite calls UpSandbox() and TearDownTestSuite DownSandbox().
// Every test fails at once, with the sandbox's output, when it did not come up.
// CRTP: each suite has its own sandbox.
template <typename Suite>
class SandboxSuite : public ::testing::Test {
 protected:
  static void UpSandbox(const std::string& prefix, int default_base_port) {
    BecomeSubreaper();  // the sandbox's agents are reparented to us: reap them
    dir_ = new TempDir(prefix);
    base_ = TestBasePort(default_base_port);
    auto r = SandboxUp(Dir(), base_);
    up_output_ = new std::string(r.output);
    up_ok_ = r.exit_code == 0;
  }
  static void DownSandbox() {
    if (dir_ != nullptr) SandboxDown(Dir());
  }
  // After DownSandbox and whatever else the suite stops.
  static void RemoveSandboxDir() {
    delete dir_;
    dir_ = nullptr;
    delete up_output_;
    up_output_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(up_ok_) << "sandbox up failed:\n" << *up_output_; }

  static std::string Dir() { return dir_->path() + "/sb"; }
  static std::string NodeDir(int i) { return Dir() + "/node" + std::to_string(i); }
  static std::string Config(int i) { return NodeDir(i) + "/tandem.yaml"; }

  static inline TempDir* dir_ = nullptr;
  static inline int base_ = 0;
  static inline bool up_ok_ = false;
  static inline std::string* up_output_ = nullptr;
};

}  // namespace tandem::testing
