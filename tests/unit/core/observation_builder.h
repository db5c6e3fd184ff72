// Small builders for core tests: an Observation reads like the sentence it encodes.
#pragma once

#include <string>
#include <vector>

#include "core/types.h"

namespace tandem::core::testing {

inline constexpr MonoMs kNow = 1'000'000;
inline constexpr int64_t kLease = 42;

inline MemberState Member(std::string name, Role role, uint32_t timeline, uint64_t lsn,
                          bool nofailover = false) {
  MemberState m;
  m.name = std::move(name);
  m.role = role;
  m.timeline = timeline;
  m.lsn = lsn;
  m.replay_lsn = lsn;
  m.nofailover = nofailover;
  return m;
}

inline LeaderKey Key(std::string holder, int64_t lease, int64_t mod_revision = 7) {
  return LeaderKey{std::move(holder), mod_revision, lease};
}

// "n1", store reachable, a lease valid for another 5s, no leader key, and a
// running standby on timeline 2 at 0/3000000 that has published itself.
inline Observation Replica() {
  Observation obs;
  obs.now = kNow;
  obs.self = "n1";
  obs.store_ok = true;
  obs.lease = kLease;
  obs.lease_deadline = kNow + 5000;
  obs.pg.running = true;
  obs.pg.in_recovery = true;
  obs.pg.timeline = 2;
  obs.pg.lsn = 0x3000000;
  obs.members.push_back(Member("n1", Role::kReplica, 2, 0x3000000));
  return obs;
}

// As Replica(), but postgres is a running primary and n1 holds the leader key on its lease.
inline Observation Leader() {
  Observation obs = Replica();
  obs.pg.in_recovery = false;
  obs.members[0].role = Role::kPrimary;
  obs.leader = Key("n1", kLease);
  return obs;
}

inline std::vector<Action> Acts(std::initializer_list<Action> list) {
  return list;
}

}  // namespace tandem::core::testing
