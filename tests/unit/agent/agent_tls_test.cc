// Certificate rotation on the whole agent (docs/design/tls.md, "Rotation"):
// new files at the configured paths reach the private copies, PostgreSQL (a
// reload) and the API (the reload hook) within one HA cycle, without a
// restart; files that do not validate are ignored and the node keeps the
// certificates it uses. Real certificates, made in-process by src/pki, valid
// on the test clock's wall time.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>

#include "agent/tls_files.h"
#include "base/file.h"
#include "pki/ca.h"
#include "unit/agent/agent_harness.h"

namespace tandem::agenttest {
namespace {

// A CA and one node pair (for 127.0.0.1, where every harness node lives).
class Pki {
 public:
  explicit Pki(int64_t now) : now_(now) {
    char tmpl[] = "/tmp/tandem-agenttest-pki-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    EXPECT_NE(d, nullptr);
    dir_ = d ? d : "/tmp";
    EXPECT_TRUE(pki::InitCa(dir_ + "/ca", "Test CA", pki::ValidFor(now_, 3650)).ok());
    Issue("issued1");
    Issue("issued2");
    // The configured paths: a copy of the first pair.
    (void)MakeDirs(dir_ + "/live", 0755);
    Copy("issued1");
  }
  ~Pki() { (void)RemoveAll(dir_); }

  void Issue(const std::string& name) {
    pki::NodeRequest r;
    r.node = "node";
    r.address = "127.0.0.1";
    r.out_dir = dir_ + "/" + name;
    auto f = pki::IssueNode(dir_ + "/ca", r, pki::ValidFor(now_, 365));
    EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message());
  }
  // Puts pair `name` at the configured paths (a rotation in place).
  void Copy(const std::string& name) {
    for (const char* f : {"server.key", "server.crt", "client.key", "client.crt"}) {
      auto content = ReadFile(dir_ + "/" + name + "/" + f);
      ASSERT_TRUE(content.ok());
      ASSERT_TRUE(WriteFileAtomic(dir_ + "/live/" + f, *content, 0600).ok());
    }
  }
  std::string Live(const std::string& f) const { return dir_ + "/live/" + f; }
  std::string Yaml() const {
    return "tls:\n  server_key: " + Live("server.key") + "\n  server_cert: " + Live("server.crt") +
           "\n  client_key: " + Live("client.key") + "\n  client_cert: " + Live("client.crt") +
           "\n  ca_cert: " + dir_ + "/ca/ca.crt\n";
  }

 private:
  int64_t now_;
  std::string dir_;
};

int Count(const std::vector<FakePostgres::Call>& calls, size_t from, const std::string& what) {
  int n = 0;
  for (size_t k = from; k < calls.size(); ++k) n += calls[k].ToString() == what ? 1 : 0;
  return n;
}

TEST(AgentTls, NewFilesAtTheConfiguredPathsReachPostgresAndTheApiWithinASecond) {
  const int64_t wall_now = StepClock().WallSeconds();
  Pki pki(wall_now);
  HarnessOptions o;
  o.extra_yaml = pki.Yaml();
  AgentHarness h(o);
  std::atomic<int> api_reloads[2] = {0, 0};
  for (int i = 0; i < 2; ++i) h.agent(i).SetTlsReloadHook([&, i] { ++api_reloads[i]; });
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  ASSERT_TRUE(h.Step(300));
  EXPECT_EQ(api_reloads[0].load() + api_reloads[1].load(), 0);
  const size_t before[2] = {h.pg(0).CallCount(), h.pg(1).CallCount()};

  // A bad change first: a truncated certificate is refused, nothing reloads.
  auto good = ReadFile(pki.Live("server.crt"));
  ASSERT_TRUE(good.ok());
  ASSERT_TRUE(WriteFileAtomic(pki.Live("server.crt"), good->substr(0, good->size() / 2)).ok());
  ASSERT_TRUE(h.Step(600));
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(Count(h.pg(i).Calls(), before[i], "Reload"), 0) << h.node(i).name;
    EXPECT_EQ(api_reloads[i].load(), 0);
    auto copy = ReadFile(agent::TlsCopies(h.node(i).cfg).server_cert);
    ASSERT_TRUE(copy.ok());
    EXPECT_EQ(*copy, *good) << "the copy in use was kept";
  }

  // The rotation: a new valid pair in place.
  pki.Copy("issued2");
  const MonoMs rotated = h.clock().Now();
  ASSERT_TRUE(h.AdvanceUntil(
      [&] { return api_reloads[0].load() == 1 && api_reloads[1].load() == 1; }, 1'000))
      << h.Describe();
  // The files are looked at once a second (RefreshTlsCopies), on a cycle:
  // at most a second and one loop interval after they changed.
  EXPECT_LE(h.clock().Now() - rotated, 1'000 + 250) << "within a second (and a cycle)";
  auto fresh = ReadFile(pki.Live("server.crt"));
  ASSERT_TRUE(fresh.ok());
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(Count(h.pg(i).Calls(), before[i], "Reload"), 1) << h.node(i).name;
    auto copy = ReadFile(agent::TlsCopies(h.node(i).cfg).server_cert);
    ASSERT_TRUE(copy.ok());
    EXPECT_EQ(*copy, *fresh) << h.node(i).name;
  }
  // Once: an unchanged file is not applied again.
  ASSERT_TRUE(h.Step(1'000));
  EXPECT_EQ(api_reloads[0].load(), 1);
  EXPECT_EQ(api_reloads[1].load(), 1);
  // No role changed on the way.
  EXPECT_EQ(h.LeaderHolder(), "n1");
  EXPECT_EQ(h.pg(0).state(), FakePostgres::State::kPrimary);
}

}  // namespace
}  // namespace tandem::agenttest
