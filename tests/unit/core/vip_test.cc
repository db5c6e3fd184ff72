// Who holds the floating IP (core/vip.h): safety rule 5 applied to the address.
#include "core/vip.h"

#include <gtest/gtest.h>

#include "unit/core/observation_builder.h"

namespace tandem::core {
namespace {
using testing::Key;
using testing::kLease;
using testing::kNow;

Decision With(ActionType type) {
  Decision d;
  d.actions.push_back(Action{type, ""});
  return d;
}

TEST(DecideVip, ThePrimaryHoldingTheKeyOnItsLeaseTakesIt) {
  EXPECT_TRUE(DecideVip(testing::Leader(), Decision{}, false).hold);
  EXPECT_TRUE(DecideVip(testing::Leader(), Decision{}, true).hold);
}

TEST(DecideVip, AReplicaNeverHoldsIt) {
  Observation obs = testing::Replica();
  obs.leader = Key("n2", 77);
  EXPECT_FALSE(DecideVip(obs, Decision{}, true).hold);
}

TEST(DecideVip, AStandbyThatHoldsTheKeyWaitsForItsPromotion) {
  // The cycle that promotes decides on the standby's state; the next cycle
  // (within 50 ms) sees a primary and takes the address.
  Observation obs = testing::Leader();
  obs.pg.in_recovery = true;
  EXPECT_FALSE(DecideVip(obs, With(ActionType::kPromote), false).hold);
}

TEST(DecideVip, APrimaryWithoutTheKeyGivesItUp) {
  Observation obs = testing::Leader();
  obs.leader = Key("n2", 77);
  EXPECT_FALSE(DecideVip(obs, Decision{}, true).hold);
  obs.leader.reset();
  EXPECT_FALSE(DecideVip(obs, Decision{}, true).hold);
}

TEST(DecideVip, TheKeyOnAnOlderLeaseIsNotEnough) {
  Observation obs = testing::Leader();
  obs.leader = Key("n1", kLease + 1);
  EXPECT_FALSE(DecideVip(obs, Decision{}, true).hold);
}

TEST(DecideVip, GivenUpBeforeEveryActionThatEndsThePrimaryRole) {
  for (ActionType t : {ActionType::kDemote, ActionType::kStepDown, ActionType::kReleaseLeader}) {
    EXPECT_FALSE(DecideVip(testing::Leader(), With(t), true).hold) << ActionName(t);
  }
}

TEST(DecideVip, NeverPastTheLeaseDeadline) {
  Observation obs = testing::Leader();
  obs.lease_deadline = kNow;
  EXPECT_FALSE(DecideVip(obs, Decision{}, true).hold);
  obs = testing::Leader();
  obs.lease = 0;
  EXPECT_FALSE(DecideVip(obs, Decision{}, true).hold);
}

TEST(DecideVip, StoreUnreadableKeepsButNeverTakes) {
  Observation obs = testing::Leader();
  obs.store_ok = false;
  obs.leader.reset();
  obs.members.clear();
  EXPECT_TRUE(DecideVip(obs, Decision{}, true).hold);
  EXPECT_FALSE(DecideVip(obs, Decision{}, false).hold);
  obs.lease_deadline = kNow - 1;
  EXPECT_FALSE(DecideVip(obs, Decision{}, true).hold);
}

TEST(DecideVip, PostgresDownReleases) {
  Observation obs = testing::Leader();
  obs.pg.running = false;
  EXPECT_FALSE(DecideVip(obs, Decision{}, true).hold);
}

}  // namespace
}  // namespace tandem::core
