// EtcdDcs against real etcd 3.4 processes on 127.0.0.1.
//
// Ports (TestBasePort(23400) = P): the shared single-member etcd listens on
// P (client) and P+1 (peer); the membership test runs its own two members on
// P+2..P+5; P+8 and P+9 must be closed (the "dead endpoint" tests).
#include "dcs/etcd_dcs.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/file.h"
#include "base/process.h"
#include "integration/harness/harness.h"
#include "unit/dcs/dcs_conformance.h"

namespace tandem::dcs {
namespace {

using tandem::testing::ServiceUser;
using tandem::testing::TempDir;
using tandem::testing::TestBasePort;
using tandem::testing::WaitUntil;

std::string Url(int port) {
  return "http://127.0.0.1:" + std::to_string(port);
}

// One etcd member process; killed (by pid) when the object dies.
class EtcdProcess {
 public:
  EtcdProcess(std::string name, std::string dir, int client_port, int peer_port)
      : name_(std::move(name)),
        dir_(std::move(dir)),
        client_url_(Url(client_port)),
        peer_url_(Url(peer_port)) {}
  ~EtcdProcess() { Stop(); }
  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;

  const std::string& name() const { return name_; }
  const std::string& client_url() const { return client_url_; }
  const std::string& peer_url() const { return peer_url_; }
  std::string data_dir() const { return dir_ + "/" + name_ + ".etcd"; }
  std::string log_file() const { return dir_ + "/" + name_ + ".log"; }

  // initial_cluster: "n1=http://...,n2=http://..."; state: "new" or "existing".
  Status Start(const std::string& initial_cluster, const std::string& state) {
    const std::string user = ServiceUser();
    if (!PathExists(data_dir())) {
      TANDEM_TRY(MakeDirs(data_dir(), 0700));
      TANDEM_TRY(Chown(data_dir(), user));
    }
    SpawnOptions opts;
    opts.run_as_user = user;
    opts.output_file = log_file();
    auto pid = Spawn({"etcd",          "--name",
                      name_,           "--data-dir",
                      data_dir(),      "--listen-client-urls",
                      client_url_,     "--advertise-client-urls",
                      client_url_,     "--listen-peer-urls",
                      peer_url_,       "--initial-advertise-peer-urls",
                      peer_url_,       "--initial-cluster",
                      initial_cluster, "--initial-cluster-state",
                      state,           "--initial-cluster-token",
                      "tandem-test",   "--heartbeat-interval",
                      "100",           "--election-timeout",
                      "1000",          "--log-level",
                      "warn"},
                     opts);
    if (!pid) return pid.error();
    pid_ = *pid;
    return Ok();
  }

  void Stop() {
    if (pid_ <= 0) return;
    KillProcessTree(pid_, SIGKILL);
    WaitForExit(pid_, 10'000);
    pid_ = -1;
  }

  bool running() const { return pid_ > 0 && IsAlive(pid_); }

  std::string LogTail() const {
    auto text = ReadFile(log_file());
    if (!text) return "(no log)";
    return text->size() > 3000 ? text->substr(text->size() - 3000) : *text;
  }

 private:
  std::string name_;
  std::string dir_;
  std::string client_url_;
  std::string peer_url_;
  pid_t pid_ = -1;
};

// Waits until a member serves linearizable reads.
bool WaitServing(Dcs& dcs, int64_t timeout_ms) {
  return WaitUntil([&] { return dcs.Get("/probe").ok(); }, timeout_ms);
}

EtcdOptions Options(std::vector<std::string> endpoints) {
  EtcdOptions o;
  o.endpoints = std::move(endpoints);
  o.request_timeout_ms = 2000;
  o.connect_timeout_ms = 500;
  return o;
}

// ---------------------------------------------------------------------------
// One shared single-member etcd for the semantic checks.

class EtcdDcsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    BecomeSubreaper();
    const int base = TestBasePort(23400);
    dir_ = new TempDir("tandem-etcd-dcs");
    etcd_ = new EtcdProcess("n1", dir_->path(), base, base + 1);
    Status st = etcd_->Start("n1=" + etcd_->peer_url(), "new");
    if (!st.ok()) {
      start_error_ = new std::string(st.error().ToString());
      return;
    }
    dcs_ = new EtcdDcs(Options({etcd_->client_url()}), SystemClock::Get());
    if (!WaitServing(*dcs_, 30'000)) {
      start_error_ = new std::string("etcd did not start serving; log:\n" + etcd_->LogTail());
    }
  }

  static void TearDownTestSuite() {
    delete dcs_;
    dcs_ = nullptr;
    delete etcd_;  // kills the process
    etcd_ = nullptr;
    delete dir_;
    dir_ = nullptr;
    delete start_error_;
    start_error_ = nullptr;
  }

  void SetUp() override {
    ASSERT_EQ(start_error_, nullptr) << *start_error_;
    ASSERT_TRUE(etcd_->running()) << etcd_->LogTail();
  }

  // A key prefix unique to the running test.
  static std::string P() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    return std::string("/t/") + info->name() + "/";
  }

  static TempDir* dir_;
  static EtcdProcess* etcd_;
  static EtcdDcs* dcs_;
  static std::string* start_error_;
};

TempDir* EtcdDcsTest::dir_ = nullptr;
EtcdProcess* EtcdDcsTest::etcd_ = nullptr;
EtcdDcs* EtcdDcsTest::dcs_ = nullptr;
std::string* EtcdDcsTest::start_error_ = nullptr;

TEST_F(EtcdDcsTest, GetPutDelete) {
  conformance::GetPutDelete(*dcs_, P());
}
TEST_F(EtcdDcsTest, Prefix) {
  conformance::Prefix(*dcs_, P());
}
TEST_F(EtcdDcsTest, TxnCreateRace) {
  conformance::TxnCreateRace(*dcs_, P());
}
TEST_F(EtcdDcsTest, TxnModRevisionCas) {
  conformance::TxnModRevisionCas(*dcs_, P());
}
TEST_F(EtcdDcsTest, Leases) {
  conformance::Leases(*dcs_, P());
}
TEST_F(EtcdDcsTest, WaitForChange) {
  // etcd gives no sign that a watch has started: a pause lets it block.
  conformance::WaitForChange(*dcs_, P(),
                             [] { std::this_thread::sleep_for(std::chrono::milliseconds(200)); });
}

TEST_F(EtcdDcsTest, AWaitWithoutAChangeEndsAtItsTimeout) {
  auto outside = dcs_->Put(P() + "unwatched", "x");
  ASSERT_TRUE(outside.ok());
  auto t0 = std::chrono::steady_clock::now();
  auto none = dcs_->WaitForChange(P() + "quiet/", *outside, 300);
  auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(none.ok()) << none.error().ToString();
  EXPECT_FALSE(*none);
  EXPECT_GE(waited, std::chrono::milliseconds(250));
  EXPECT_LT(waited, std::chrono::milliseconds(3000));
  // The stream stays open: the next wait uses it, no new watch.
  t0 = std::chrono::steady_clock::now();
  auto again = dcs_->WaitForChange(P() + "quiet/", *outside, 0);
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  EXPECT_FALSE(*again);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(100));
}

TEST_F(EtcdDcsTest, EmptyPrefixListsEveryKey) {
  ASSERT_TRUE(dcs_->Put(P() + "x", "1").ok());
  auto all = dcs_->GetPrefix("");
  ASSERT_TRUE(all.ok()) << all.error().ToString();
  EXPECT_FALSE(all->kvs.empty());
  bool found = false;
  for (const auto& kv : all->kvs) found |= kv.key == P() + "x";
  EXPECT_TRUE(found);
}

TEST_F(EtcdDcsTest, MinimumTtlIsRaisedByEtcd) {
  auto l = dcs_->GrantLease(1);
  ASSERT_TRUE(l.ok()) << l.error().ToString();
  // minTTL = ceil(1.5 x election timeout) = 2 s with --election-timeout 1000.
  EXPECT_GE(l->ttl_seconds, 2);
  EXPECT_TRUE(dcs_->Revoke(l->id).ok());
  auto bad = dcs_->GrantLease(0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(EtcdDcsTest, KeepAliveKeepsAKeyPastItsTtlThenItExpires) {
  auto l = dcs_->GrantLease(2);
  ASSERT_TRUE(l.ok()) << l.error().ToString();
  const std::string k = P() + "leader";
  ASSERT_TRUE(dcs_->Put(k, "me", l->id).ok());
  const MonoMs start = SystemClock::Get().Now();
  // Renew every 500 ms for 3 x TTL: the key must survive all of it.
  while (SystemClock::Get().Now() - start < 3 * l->ttl_seconds * 1000) {
    auto ka = dcs_->KeepAlive(l->id);
    ASSERT_TRUE(ka.ok()) << ka.error().ToString();
    EXPECT_GE(*ka, 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the renewal period
  }
  auto g = dcs_->Get(k);
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(g->has_value()) << "the key expired despite keepalives";
  EXPECT_EQ((*g)->lease, l->id);

  // Stop renewing: etcd expires the lease and deletes the key.
  const MonoMs stopped = SystemClock::Get().Now();
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto r = dcs_->Get(k);
        return r.ok() && !r->has_value();
      },
      20'000));
  EXPECT_GE(SystemClock::Get().Now() - stopped, 1000);
  auto ka = dcs_->KeepAlive(l->id);
  ASSERT_FALSE(ka.ok());
  EXPECT_EQ(ka.error().code(), ErrorCode::kNotFound) << ka.error().ToString();
}

TEST_F(EtcdDcsTest, WatchSeesLeaseExpiryAsAChange) {
  auto l = dcs_->GrantLease(2);
  ASSERT_TRUE(l.ok());
  auto r = dcs_->Put(P() + "leader", "me", l->id);
  ASSERT_TRUE(r.ok());
  auto t0 = std::chrono::steady_clock::now();
  auto w = dcs_->WaitForChange(P(), *r, 30'000);
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  EXPECT_TRUE(*w);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));
}

TEST_F(EtcdDcsTest, WaitForChangeWithZeroTimeout) {
  auto r = dcs_->Put(P() + "a", "1");
  ASSERT_TRUE(r.ok());
  auto changed = dcs_->WaitForChange(P(), *r - 1, 0);
  ASSERT_TRUE(changed.ok()) << changed.error().ToString();
  EXPECT_TRUE(*changed);
  auto t0 = std::chrono::steady_clock::now();
  auto quiet = dcs_->WaitForChange(P(), *r, 0);
  ASSERT_TRUE(quiet.ok()) << quiet.error().ToString();
  EXPECT_FALSE(*quiet);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000));
}

// ReadPrefix (the HA loop's watched copy, docs/design/watched-view.md).

// What a GetPrefix shows, as (key -> value) for comparing.
std::map<std::string, std::string> Values(const RangeResult& r) {
  std::map<std::string, std::string> out;
  for (const auto& kv : r.kvs) out[kv.key] = kv.value;
  return out;
}

TEST_F(EtcdDcsTest, ReadPrefixIsServedFromTheCopyAndShowsOwnWritesAtOnce) {
  EtcdDcs reader(Options({etcd_->client_url()}), SystemClock::Get());
  ASSERT_TRUE(reader.Put(P() + "a", "1").ok());
  // The first call reads (and seeds the copy); later ones wait for nothing.
  ASSERT_TRUE(reader.ReadPrefix(P(), 60'000).ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        (void)reader.ReadPrefix(P(), 60'000);
        return reader.copy_stats().served >= 3;
      },
      10'000))
      << "the copy was never served";
  // Its own write is in the very next answer, whatever the stream's delay.
  for (int i = 0; i < 20; ++i) {
    auto w = reader.Put(P() + "a", std::to_string(100 + i));
    ASSERT_TRUE(w.ok());
    auto r = reader.ReadPrefix(P(), 60'000);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    EXPECT_GE(r->revision, *w);
    EXPECT_EQ(Values(*r)[P() + "a"], std::to_string(100 + i));
  }
  auto g = reader.GetPrefix(P());
  auto c = reader.ReadPrefix(P(), 60'000);
  ASSERT_TRUE(g.ok() && c.ok());
  EXPECT_EQ(Values(*c), Values(*g));
}

TEST_F(EtcdDcsTest, ReadPrefixSeesOtherClientsWritesAndALeaseExpiry) {
  EtcdDcs reader(Options({etcd_->client_url()}), SystemClock::Get());
  ASSERT_TRUE(reader.ReadPrefix(P(), 60'000).ok());
  auto l = dcs_->GrantLease(2);
  ASSERT_TRUE(l.ok());
  ASSERT_TRUE(dcs_->Put(P() + "leader", "other", l->id).ok());
  auto shows = [&](bool present) {
    auto r = reader.ReadPrefix(P(), 60'000);
    return r.ok() && (Values(*r).count(P() + "leader") == 1) == present;
  };
  // Another client's write arrives through the stream (no read needed).
  ASSERT_TRUE(WaitUntil([&] { return shows(true); }, 10'000));
  const uint64_t reads = reader.copy_stats().reads;
  // The lease is not renewed: etcd deletes the key, and the copy follows.
  ASSERT_TRUE(WaitUntil([&] { return shows(false); }, 20'000));
  EXPECT_EQ(reader.copy_stats().reads, reads) << "the deletion came from a read, not the stream";
}

TEST_F(EtcdDcsTest, ReadPrefixNeverShowsHalfATransaction) {
  EtcdDcs reader(Options({etcd_->client_url()}), SystemClock::Get());
  ASSERT_TRUE(dcs_->Txn({}, {Op::Put(P() + "a", "0"), Op::Put(P() + "b", "0")}).ok());
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 1; i <= 200 && !done; ++i) {
      const std::string v = std::to_string(i);
      (void)dcs_->Txn({}, {Op::Put(P() + "a", v), Op::Put(P() + "b", v)});
    }
    done = true;
  });
  // Read while the writer writes, and on until the watched copy has served
  // reads too (under fast writes it may trail every revision the reader has
  // seen, so it is not servable until they stop): both paths are checked,
  // however fast the machine is.
  int looks = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done ||
         (reader.copy_stats().served < 10 && std::chrono::steady_clock::now() < deadline)) {
    auto r = reader.ReadPrefix(P(), 60'000);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    auto v = Values(*r);
    EXPECT_EQ(v[P() + "a"], v[P() + "b"]) << "at revision " << r->revision;
    ++looks;
  }
  writer.join();
  EXPECT_GT(looks, 10);
  EXPECT_GE(reader.copy_stats().served, 10u);
}

TEST_F(EtcdDcsTest, ManyThreadsShareOneClient) {
  constexpr int kThreads = 6;
  constexpr int kPuts = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPuts; ++i) {
        const std::string key = P() + std::to_string(t) + "/" + std::to_string(i);
        if (!dcs_->Put(key, "v").ok()) ++failures;
        auto g = dcs_->Get(key);
        if (!g.ok() || !g->has_value()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto all = dcs_->GetPrefix(P());
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->kvs.size(), static_cast<size_t>(kThreads * kPuts));
}

TEST_F(EtcdDcsTest, UnreachableEndpointsFailFast) {
  const int base = TestBasePort(23400);
  EtcdDcs dead(Options({Url(base + 8), Url(base + 9)}), SystemClock::Get());
  auto t0 = std::chrono::steady_clock::now();
  auto g = dead.Get("/k");
  auto p = dead.Put("/k", "v");
  auto w = dead.WaitForChange("/", 0, 5000);
  auto l = dead.KeepAlive(1);
  auto elapsed = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code(), ErrorCode::kUnavailable) << g.error().ToString();
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), ErrorCode::kUnavailable) << p.error().ToString();
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code(), ErrorCode::kUnavailable) << w.error().ToString();
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code(), ErrorCode::kUnavailable) << l.error().ToString();
  // Four calls, each within 2 x connect timeout.
  EXPECT_LT(elapsed, std::chrono::milliseconds(4 * 2 * 500));
}

TEST_F(EtcdDcsTest, SecondEndpointIsUsedWhenTheFirstIsDead) {
  const int base = TestBasePort(23400);
  EtcdDcs dcs(Options({Url(base + 8), etcd_->client_url()}), SystemClock::Get());
  auto t0 = std::chrono::steady_clock::now();
  auto p = dcs.Put(P() + "k", "v");
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  auto g = dcs.Get(P() + "k");
  ASSERT_TRUE(g.ok()) << g.error().ToString();
  ASSERT_TRUE(g->has_value());
  auto t = dcs.Txn({Compare::ValueIs(P() + "k", "v")}, {Op::Delete(P() + "k")});
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  EXPECT_TRUE(t->succeeded);
  auto w = dcs.WaitForChange(P(), *p - 1, 1000);
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  EXPECT_TRUE(*w);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(3000));
}

TEST_F(EtcdDcsTest, BadEndpointIsAnInvalidArgument) {
  for (const std::string ep :
       {"ftp://127.0.0.1:1", "http://", "http://127.0.0.1:99999", "http://127.0.0.1:1/path"}) {
    EtcdDcs dcs(Options({ep}), SystemClock::Get());
    auto g = dcs.Get("/k");
    ASSERT_FALSE(g.ok()) << ep;
    EXPECT_EQ(g.error().code(), ErrorCode::kInvalidArgument) << ep;
  }
  EtcdDcs none(Options({}), SystemClock::Get());
  EXPECT_EQ(none.Put("/k", "v").error().code(), ErrorCode::kInvalidArgument);
  // A bare host:port is taken as http.
  EtcdDcs bare(Options({etcd_->client_url().substr(7)}), SystemClock::Get());
  EXPECT_TRUE(bare.Get("/k").ok());
}

TEST_F(EtcdDcsTest, EtcdErrorsAreMapped) {
  auto missing_member = dcs_->MemberRemove(12345);
  ASSERT_FALSE(missing_member.ok());
  EXPECT_EQ(missing_member.error().code(), ErrorCode::kNotFound);
  auto promote_voter = dcs_->MemberList();
  ASSERT_TRUE(promote_voter.ok());
  ASSERT_EQ(promote_voter->size(), 1u);
  auto p = dcs_->MemberPromote((*promote_voter)[0].id);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), ErrorCode::kFailedPrecondition) << p.error().ToString();
  auto empty = dcs_->Put("", "v");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code(), ErrorCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// Membership: a learner joins, is promoted, the pair loses and regains quorum,
// and the member is removed again. Its own two processes on P+2..P+5.

TEST(EtcdMembershipTest, LearnerJoinPromoteQuorumRemove) {
  BecomeSubreaper();
  const int base = TestBasePort(23400);
  TempDir dir("tandem-etcd-members");
  EtcdProcess a("a", dir.path(), base + 2, base + 3);
  EtcdProcess b("b", dir.path(), base + 4, base + 5);
  ASSERT_TRUE(a.Start("a=" + a.peer_url(), "new").ok());
  EtcdDcs dcs_a(Options({a.client_url()}), SystemClock::Get());
  ASSERT_TRUE(WaitServing(dcs_a, 30'000)) << a.LogTail();

  auto list1 = dcs_a.MemberList();
  ASSERT_TRUE(list1.ok()) << list1.error().ToString();
  ASSERT_EQ(list1->size(), 1u);
  EXPECT_EQ((*list1)[0].name, "a");
  EXPECT_EQ((*list1)[0].peer_urls, std::vector<std::string>{a.peer_url()});
  EXPECT_EQ((*list1)[0].client_urls, std::vector<std::string>{a.client_url()});
  EXPECT_FALSE((*list1)[0].is_learner);
  const uint64_t a_id = (*list1)[0].id;
  EXPECT_NE(a_id, 0u);

  auto added = dcs_a.MemberAdd({b.peer_url()}, /*as_learner=*/true);
  ASSERT_TRUE(added.ok()) << added.error().ToString();
  EXPECT_TRUE(added->is_learner);
  EXPECT_NE(added->id, 0u);
  EXPECT_EQ(added->peer_urls, std::vector<std::string>{b.peer_url()});
  const uint64_t b_id = added->id;

  // Not started yet, so not in sync: promotion is refused with etcd's reason.
  auto early = dcs_a.MemberPromote(b_id);
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(early.error().message().find("in sync with leader"), std::string::npos)
      << early.error().message();

  ASSERT_TRUE(dcs_a.Put("/before-join", "x").ok());
  ASSERT_TRUE(b.Start("a=" + a.peer_url() + ",b=" + b.peer_url(), "existing").ok());
  Status last_promote = Ok();
  ASSERT_TRUE(WaitUntil(
      [&] {
        last_promote = dcs_a.MemberPromote(b_id);
        return last_promote.ok();
      },
      60'000))
      << last_promote.error().ToString() << "\n"
      << b.LogTail();

  auto list2 = dcs_a.MemberList();
  ASSERT_TRUE(list2.ok());
  ASSERT_EQ(list2->size(), 2u);
  for (const auto& m : *list2) {
    EXPECT_FALSE(m.is_learner) << m.name;
    if (m.id == b_id) {
      EXPECT_EQ(m.client_urls, std::vector<std::string>{b.client_url()});
    }
  }

  // The new member serves reads of data written before it joined.
  EtcdDcs dcs_b(Options({b.client_url()}), SystemClock::Get());
  ASSERT_TRUE(WaitServing(dcs_b, 30'000)) << b.LogTail();
  auto g = dcs_b.Get("/before-join");
  ASSERT_TRUE(g.ok() && g->has_value());

  // Two voters, one down: no quorum -> kTimeout / kUnavailable, not a hang.
  b.Stop();
  auto t0 = std::chrono::steady_clock::now();
  auto p = dcs_a.Put("/no-quorum", "x");
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(p.error().code() == ErrorCode::kTimeout ||
              p.error().code() == ErrorCode::kUnavailable)
      << p.error().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(4 * 2000));
  std::cout << "put without quorum: " << p.error().ToString() << "\n";
  auto watch = dcs_a.WaitForChange("/", 1'000'000, 300);  // must not hang either
  EXPECT_TRUE(!watch.ok() || !*watch);

  // b restarts from its data dir; quorum returns.
  ASSERT_TRUE(b.Start("a=" + a.peer_url() + ",b=" + b.peer_url(), "existing").ok());
  ASSERT_TRUE(WaitUntil([&] { return dcs_a.Put("/quorum-back", "x").ok(); }, 60'000))
      << b.LogTail();
  // A client that knows both members survives either one going away.
  EtcdDcs both(Options({a.client_url(), b.client_url()}), SystemClock::Get());
  EXPECT_TRUE(both.Get("/quorum-back").ok());

  // etcd refuses a reconfiguration until every member has been connected for
  // a few seconds ("not enough started members"): poll.
  Status last_remove = Ok();
  std::string first_refusal;
  ASSERT_TRUE(WaitUntil(
      [&] {
        last_remove = dcs_a.MemberRemove(b_id);
        if (!last_remove.ok() && first_refusal.empty())
          first_refusal = last_remove.error().ToString();
        return last_remove.ok();
      },
      60'000))
      << last_remove.error().ToString();
  if (!first_refusal.empty()) std::cout << "remove refused at first: " << first_refusal << "\n";
  auto list3 = dcs_a.MemberList();
  ASSERT_TRUE(list3.ok());
  ASSERT_EQ(list3->size(), 1u);
  EXPECT_EQ((*list3)[0].id, a_id);
  ASSERT_TRUE(WaitUntil([&] { return dcs_a.Put("/after-remove", "x").ok(); }, 30'000));
  // a and b are killed by their destructors, also when an assertion failed.
}

}  // namespace
}  // namespace tandem::dcs
