// core::LeaseRenewalInterval: who renews the session lease how often.
#include "core/lease_cadence.h"

#include <gtest/gtest.h>

namespace tandem::core {
namespace {

HaConfig Timing(int64_t ttl, int64_t loop, int64_t margin) {
  HaConfig c;
  c.ttl_ms = ttl;
  c.loop_interval_ms = loop;
  c.safety_margin_ms = margin;
  return c;
}

TEST(LeaseCadence, ThePrimaryRenewsEveryLoopInterval) {
  EXPECT_EQ(LeaseRenewalInterval(Timing(2'000, 250, 500), true, true), 250);
  EXPECT_EQ(LeaseRenewalInterval(Timing(4'000, 400, 900), true, true), 400);
}

TEST(LeaseCadence, AReplicaRenewsEveryThirdOfTheDemotionWindowAtMostTheMargin) {
  // (2000 - 500) / 3 = 500 = the margin.
  EXPECT_EQ(LeaseRenewalInterval(Timing(2'000, 250, 500), false, true), 500);
  // (4000 - 900) / 3 = 1033 > the margin: the margin.
  EXPECT_EQ(LeaseRenewalInterval(Timing(4'000, 400, 900), false, true), 900);
  // (10000 - 4000) / 3 = 2000 < the margin.
  EXPECT_EQ(LeaseRenewalInterval(Timing(10'000, 1'000, 4'000), false, true), 2'000);
}

TEST(LeaseCadence, AReplicaNeverRenewsMoreOftenThanTheLoop) {
  // (1500 - 600) / 3 = 300 < loop 400: the loop interval.
  EXPECT_EQ(LeaseRenewalInterval(Timing(1'500, 400, 600), false, true), 400);
}

TEST(LeaseCadence, AFailedRenewalIsRetriedAfterOneLoopIntervalByAnyone) {
  EXPECT_EQ(LeaseRenewalInterval(Timing(2'000, 250, 500), false, false), 250);
  EXPECT_EQ(LeaseRenewalInterval(Timing(2'000, 250, 500), true, false), 250);
}

TEST(LeaseCadence, AReplicaLateByOneElectionAndARetryStillRenewsInsideTheTtl) {
  // The embedded etcd's election timeout at ttl 2 s is 500 ms; an election
  // takes one to two of them. interval + 2 elections + one retry <= ttl.
  const HaConfig c = Timing(2'000, 250, 500);
  const MonoMs interval = LeaseRenewalInterval(c, false, true);
  EXPECT_LE(interval + 2 * 500 + c.loop_interval_ms, c.ttl_ms);
  // And its own deadline (sent + ttl - margin) stays two thirds of the
  // window ahead right before the next renewal.
  EXPECT_GE((c.ttl_ms - c.safety_margin_ms) - interval, 2 * (c.ttl_ms - c.safety_margin_ms) / 3);
}

}  // namespace
}  // namespace tandem::core
