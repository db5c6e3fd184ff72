// The checker must be able to fail: deliberately broken decision functions
// are run through the same random schedules and each must be caught.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "sim/sim.h"

namespace tandem::sim {
namespace {

using core::ActionType;

// Runs schedules from seed 1 until one reports a violation; returns it.
std::string FirstViolation(const DecideFn& decide, uint64_t max_seeds,
                           const std::function<void(SimOptions&)>& tweak = {}) {
  for (uint64_t seed = 1; seed <= max_seeds; ++seed) {
    ScheduleResult r = RunRandomSchedule(seed, decide, tweak);
    if (!r.violation.empty()) {
      if (std::getenv("SIM_VERBOSE")) std::printf("%s\n", r.violation.c_str());
      return r.violation;
    }
  }
  return "";
}

Decision Without(Decision d, ActionType type) {
  d.actions.erase(std::remove_if(d.actions.begin(), d.actions.end(),
                                 [&](const core::Action& a) { return a.type == type; }),
                  d.actions.end());
  return d;
}

bool Mentions(const std::string& violation, const std::string& what) {
  return violation.find(what) != std::string::npos;
}

TEST(Checker, CatchesAPrimaryThatNeverDemotes) {
  auto broken = [](const Observation& obs, const HaConfig& cfg) {
    return Without(core::Decide(obs, cfg), ActionType::kDemote);
  };
  std::string v = FirstViolation(broken, 200);
  ASSERT_FALSE(v.empty()) << "a decide that never demotes went unnoticed";
  EXPECT_TRUE(Mentions(v, "Rule 1") || Mentions(v, "Rule 2")) << v;
  EXPECT_TRUE(Mentions(v, "seed ")) << v;
  EXPECT_TRUE(Mentions(v, "last events:")) << v;
}

TEST(Checker, CatchesAProxyThatRoutesToItselfWithoutAValidLease) {
  // A route that trusts the leader key naming this node, whatever its lease.
  auto tweak = [](SimOptions& o) {
    o.route = [](const core::Route&, Observation obs, const Decision& d,
                 const std::map<std::string, core::Endpoint>& addresses,
                 const core::RouteConfig& cfg) {
      if (obs.leader && obs.leader->holder == obs.self) {
        obs.lease = obs.leader->lease;
        obs.lease_deadline = obs.now + 3'600'000;
      }
      return core::ComputeRoute(obs, d, addresses, cfg);
    };
  };
  std::string v = FirstViolation(core::Decide, 2000, tweak);
  ASSERT_FALSE(v.empty()) << "a proxy routing on an expired lease went unnoticed";
  EXPECT_TRUE(Mentions(v, "Rule 5")) << v;
}

TEST(Checker, CatchesAPromotionWithoutTheLeaderKey) {
  auto broken = [](const Observation& obs, const HaConfig& cfg) {
    return Without(core::Decide(obs, cfg), ActionType::kAcquireLeader);
  };
  // Asynchronous: with a sync record, writing it before promoting already
  // checks the leader key (that promotion fails, and liveness is what breaks).
  std::string v =
      FirstViolation(broken, 200, [](SimOptions& o) { o.cfg.sync_mode = core::SyncMode::kOff; });
  ASSERT_FALSE(v.empty());
  EXPECT_TRUE(Mentions(v, "Rule 1")) << v;
}

TEST(Checker, CatchesAPrimaryThatOutlivesItsLease) {
  // Demotes only once the deadline is a full ttl behind: too late.
  auto broken = [](const Observation& obs, const HaConfig& cfg) {
    Observation late = obs;
    late.lease_deadline += cfg.safety_margin_ms + cfg.loop_interval_ms;
    return core::Decide(late, cfg);
  };
  std::string v = FirstViolation(broken, 500);
  ASSERT_FALSE(v.empty());
  EXPECT_TRUE(Mentions(v, "Rule 1") || Mentions(v, "Rule 2")) << v;
}

TEST(Checker, CatchesPromotingAReplicaBehindTheNewestTimeline) {
  auto broken = [](const Observation& obs, const HaConfig& cfg) {
    Observation blind = obs;
    blind.cluster_timeline = 0;
    return core::Decide(blind, cfg);
  };
  std::string v = FirstViolation(broken, 5000);
  ASSERT_FALSE(v.empty());
  EXPECT_TRUE(Mentions(v, "Rule 4")) << v;
}

TEST(Checker, CatchesAFormerPrimaryThatIsNeverRewound) {
  auto broken = [](const Observation& obs, const HaConfig& cfg) {
    Observation forgetful = obs;
    forgetful.pg.needs_rewind = false;
    return core::Decide(forgetful, cfg);
  };
  std::string v = FirstViolation(broken, 500);
  ASSERT_FALSE(v.empty());
  EXPECT_TRUE(Mentions(v, "liveness")) << v;  // real PostgreSQL refuses to stream
}

TEST(Checker, CatchesPromotingAReplicaOutsideTheSyncSet) {
  // Ignores the sync record: picks the most advanced replica by the async rule.
  auto broken = [](const Observation& obs, const HaConfig& cfg) {
    Observation async = obs;
    async.sync.reset();
    return core::Decide(async, cfg);
  };
  std::string v = FirstViolation(broken, 3000,
                                 [](SimOptions& o) { o.cfg.sync_mode = core::SyncMode::kQuorum; });
  ASSERT_FALSE(v.empty()) << "a decide that ignores the sync record went unnoticed";
  EXPECT_TRUE(Mentions(v, "Rule 3")) << v;
}

TEST(Checker, SeesAcknowledgedWritesLostInAsynchronousMode) {
  // The real Decide in async mode may lose acknowledged writes by design: the
  // Rule 3 check, switched on, must see it (so it can see a loss at all).
  std::string v = FirstViolation(core::Decide, 3000, [](SimOptions& o) {
    o.cfg.sync_mode = core::SyncMode::kOff;
    o.check_acknowledged_in_async = true;
  });
  ASSERT_FALSE(v.empty()) << "no acknowledged write was ever lost in async mode";
  EXPECT_TRUE(Mentions(v, "Rule 3")) << v;
}

}  // namespace
}  // namespace tandem::sim
