// Thousands of random fault schedules against the real Decide(). Each schedule
// is reproducible from its seed: SIM_SEED=<seed> runs just that one;
// SIM_FIRST_SEED=<s> and SIM_SCHEDULES=<n> choose another range (default 1..10000).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "sim/sim.h"

namespace tandem::sim {
namespace {

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);  // tests only: src/core never reads the environment
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

TEST(RandomSchedules, SafetyAndLivenessHoldUnderRandomFaults) {
  const uint64_t first = EnvOr("SIM_SEED", EnvOr("SIM_FIRST_SEED", 1));
  const uint64_t count = std::getenv("SIM_SEED") ? 1 : EnvOr("SIM_SCHEDULES", 10000);
  const auto start = std::chrono::steady_clock::now();
  int64_t simulated = 0, faults = 0, stale_views = 0;
  int failures = 0;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    // Every other schedule observes stale, consistent snapshots of the store
    // (the agent's watched copy, docs/design/watched-view.md).
    ScheduleResult r = RunRandomSchedule(seed, core::Decide, [&](SimOptions& o) {
      if (seed % 2 == 0) o.stale_view_ms = o.cfg.ttl_ms / 2;
    });
    simulated += r.simulated_ms;
    faults += r.faults;
    stale_views += r.stale_views;
    if (!r.violation.empty()) {
      ADD_FAILURE() << "schedule failed (rerun with SIM_SEED=" << seed << "):\n" << r.violation;
      if (++failures >= 3) break;
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%llu schedules, %lld faults, %lld stale views, %.1f simulated hours in %.1fs\n",
              static_cast<unsigned long long>(count), static_cast<long long>(faults),
              static_cast<long long>(stale_views), static_cast<double>(simulated) / 3.6e6, secs);
  EXPECT_EQ(failures, 0) << "safety or liveness violated in some schedules (see above)";
  // The schedules really injected faults: a run without any would prove nothing.
  EXPECT_GT(faults, static_cast<int64_t>(count));
  // And half of them decided on stale snapshots, not just in name.
  if (count >= 2) {
    EXPECT_GT(stale_views, static_cast<int64_t>(count));
  }
}

}  // namespace
}  // namespace tandem::sim
