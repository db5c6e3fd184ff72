// Witnesses in the simulation (docs/design/witness.md): two data nodes and a
// witness as a full cluster (failover both ways, the old primary rejoining, no
// acknowledged write lost), the witness's loss changing nothing for clients,
// a majority still needed for the store, random schedules with a witness, and
// the checker catching a witness that acts or is routed to.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "sim/sim.h"

namespace tandem::sim {
namespace {

constexpr MonoMs kTtl = 10'000;
constexpr MonoMs kLoop = 1'000;
constexpr MonoMs kMargin = 2'000;

// n1, n2: data nodes; n3: the witness. The store needs a majority of the three.
SimOptions TwoAndAWitness(core::SyncMode mode = core::SyncMode::kQuorum) {
  SimOptions opt;
  opt.nodes = 3;
  opt.witnesses = {"n3"};
  opt.store_needs_majority = true;
  opt.seed = 11;
  opt.cfg.sync_mode = mode;
  opt.cfg.ttl_ms = kTtl;
  opt.cfg.loop_interval_ms = kLoop;
  opt.cfg.safety_margin_ms = kMargin;
  opt.random_rewind_failures = false;
  return opt;
}

// Converged with the sync record counting the replica (a failover is provable).
bool Settled(const Cluster& c) {
  if (!c.Converged()) return false;
  auto rec = c.ReadSync();
  return rec && rec->leader == c.LeaderHolder() && rec->quorum > 0;
}

std::string Other(const std::string& data_node) {
  return data_node == "n1" ? "n2" : "n1";
}

void Show(const Cluster& c) {
  if (std::getenv("SIM_VERBOSE")) std::printf("%s%s", c.Summary().c_str(), c.Transcript().c_str());
}

#define EXPECT_SAFE(c) \
  Show(c);             \
  EXPECT_EQ((c).violation(), "") << (c).Transcript()

TEST(WitnessScenarios, TheWitnessIsNeverElectedAndNeverCounted) {
  Cluster c(TwoAndAWitness());
  ASSERT_TRUE(c.RunUntil([&] { return Settled(c); }, 6 * kTtl)) << c.Transcript();
  EXPECT_NE(c.LeaderHolder(), "n3");
  auto rec = c.ReadSync();
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->members, std::vector<std::string>{Other(c.LeaderHolder())});
  c.RunFor(3 * kTtl);
  EXPECT_SAFE(c);
}

TEST(WitnessScenarios, FailoverInBothDirectionsAndTheOldPrimaryRejoins) {
  Cluster c(TwoAndAWitness());
  ASSERT_TRUE(c.RunUntil([&] { return Settled(c); }, 6 * kTtl)) << c.Transcript();
  for (int round = 0; round < 2; ++round) {
    const std::string old = c.LeaderHolder();
    const std::string next = Other(old);
    c.Crash(old);
    // The survivors are a majority (a data node and the witness): the replica
    // takes over, holding every acknowledged write (Rule 3 is checked inside).
    ASSERT_TRUE(
        c.RunUntil([&] { return c.LeaderHolder() == next && c.Writable(c.node(next)); }, 3 * kTtl))
        << "round " << round << "\n"
        << c.Transcript();
    c.Restart(old);
    ASSERT_TRUE(c.RunUntil([&] { return Settled(c); }, 4 * kTtl)) << c.Transcript();
    EXPECT_EQ(c.node(old).pg.following, next);
  }
  EXPECT_SAFE(c);
}

TEST(WitnessScenarios, TheWitnessDownChangesNothingForClients) {
  Cluster c(TwoAndAWitness());
  ASSERT_TRUE(c.RunUntil([&] { return Settled(c); }, 6 * kTtl)) << c.Transcript();
  const std::string leader = c.LeaderHolder();
  const uint64_t lsn = c.node(leader).pg.lsn;
  c.Crash("n3");
  for (int i = 0; i < 30; ++i) {
    c.RunFor(kLoop);
    ASSERT_EQ(c.LeaderHolder(), leader) << c.Transcript();
    ASSERT_TRUE(c.Writable(c.node(leader))) << c.Transcript();
  }
  EXPECT_GT(c.node(leader).pg.lsn, lsn);  // writes went on
  EXPECT_TRUE(c.Converged());
  c.Restart("n3");
  c.RunFor(2 * kTtl);
  EXPECT_EQ(c.LeaderHolder(), leader);
  EXPECT_SAFE(c);
}

TEST(WitnessScenarios, WithoutAMajorityTheStoreStopsAndThePrimaryFencesItself) {
  // The witness and the replica down: one voter of three is left. The store
  // answers no one, so the primary cannot renew its lease and fences itself;
  // with the witness back, the majority returns and so does a primary.
  Cluster c(TwoAndAWitness());
  ASSERT_TRUE(c.RunUntil([&] { return Settled(c); }, 6 * kTtl)) << c.Transcript();
  const std::string leader = c.LeaderHolder();
  c.Crash("n3");
  c.Crash(Other(leader));
  ASSERT_TRUE(c.RunUntil([&] { return !c.Writable(c.node(leader)); }, 2 * kTtl)) << c.Transcript();
  c.Restart("n3");
  ASSERT_TRUE(
      c.RunUntil([&] { return !c.LeaderHolder().empty() && c.Writable(c.node(leader)); }, 4 * kTtl))
      << c.Transcript();
  c.Restart(Other(leader));
  ASSERT_TRUE(c.RunUntil([&] { return c.Converged(); }, 4 * kTtl)) << c.Transcript();
  EXPECT_SAFE(c);
}

// The random schedules' topology with a witness: 3 nodes become two data
// nodes and a witness, 4 or 5 become four data nodes and a witness (an odd
// count of voters), and the store needs a majority of them.
void WithAWitness(SimOptions& o) {
  o.nodes = o.nodes == 3 ? 3 : 5;
  const std::string w = "n" + std::to_string(o.nodes);
  o.witnesses = {w};
  o.store_needs_majority = true;
  o.nofailover.erase(std::remove(o.nofailover.begin(), o.nofailover.end(), w), o.nofailover.end());
}

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);  // tests only
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

TEST(WitnessRandomSchedules, SafetyAndLivenessHoldWithAWitness) {
  const uint64_t first = EnvOr("SIM_SEED", EnvOr("SIM_FIRST_SEED", 1));
  const uint64_t count = std::getenv("SIM_SEED") ? 1 : EnvOr("SIM_WITNESS_SCHEDULES", 3000);
  int64_t faults = 0;
  int failures = 0;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    ScheduleResult r = RunRandomSchedule(seed, core::Decide, [&](SimOptions& o) {
      WithAWitness(o);
      if (seed % 2 == 0) o.stale_view_ms = o.cfg.ttl_ms / 2;
    });
    faults += r.faults;
    if (!r.violation.empty()) {
      ADD_FAILURE() << "witness schedule failed (rerun with SIM_SEED=" << seed << "):\n"
                    << r.violation;
      if (++failures >= 3) break;
    }
  }
  EXPECT_EQ(failures, 0);
  EXPECT_GT(faults, static_cast<int64_t>(count));
}

// The checker sees a witness break its rules.
std::string FirstViolation(const DecideFn& decide, const std::function<void(SimOptions&)>& more,
                           uint64_t max_seeds) {
  for (uint64_t seed = 1; seed <= max_seeds; ++seed) {
    ScheduleResult r = RunRandomSchedule(seed, decide, [&](SimOptions& o) {
      WithAWitness(o);
      if (more) more(o);
    });
    if (!r.violation.empty()) return r.violation;
  }
  return "";
}

TEST(WitnessChecker, CatchesAWitnessThatDecidesLikeADataNode) {
  auto broken = [](Observation obs, const HaConfig& cfg) {
    obs.witness = false;  // forgets it has no PostgreSQL: would start one as a standby
    return core::Decide(obs, cfg);
  };
  const std::string v = FirstViolation(broken, {}, 20);
  ASSERT_FALSE(v.empty()) << "a witness that acts went unnoticed";
  EXPECT_NE(v.find("Witness: "), std::string::npos) << v;
}

TEST(WitnessChecker, CatchesAProxyThatRoutesReadsToTheWitness) {
  auto route_to_witness = [](SimOptions& o) {
    const std::string w = o.witnesses.front();
    o.route = [w](const core::Route& previous, const Observation& obs, const Decision& d,
                  const std::map<std::string, core::Endpoint>& addresses,
                  const core::RouteConfig& cfg) {
      core::Route r = core::RouteForCycle(previous, obs, d, addresses, cfg);
      if (r.read_write) r.read_only.push_back({w, addresses.at(w)});
      return r;
    };
  };
  const std::string v = FirstViolation(core::Decide, route_to_witness, 20);
  ASSERT_FALSE(v.empty()) << "a route to the witness went unnoticed";
  EXPECT_NE(v.find("routes to the witness"), std::string::npos) << v;
}

}  // namespace
}  // namespace tandem::sim
