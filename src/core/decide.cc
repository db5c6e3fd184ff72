// Decide(): the HA decision, one branch per row of
// docs/design/state-machine.md (store unreachable, this node the leader,
// another node the leader, an intent without a leader, no leader), each
// returning the actions and a one-line reason; and CheckTiming, the timing
// invariants between the knobs. Pure: no I/O, no clock (time is obs.now).
#include "core/decide.h"

#include <optional>
#include <string>

#include "base/strings.h"
#include "core/candidates.h"

namespace tandem::core {
namespace {

bool IsRunningPrimary(const LocalPostgres& pg) {
  return pg.running && !pg.in_recovery;
}

// The lease is certainly still alive in the store (see Observation::lease_deadline).
bool LeaseValid(const Observation& obs) {
  return obs.lease != 0 && obs.now < obs.lease_deadline;
}

// "1s", "1500ms": how the config file spells a duration.
std::string Dur(int64_t ms) {
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// A newer timeline than ours was recorded: ours may hold WAL it forked away from.
bool BehindClusterTimeline(const Observation& obs) {
  return obs.cluster_timeline != 0 && obs.pg.timeline < obs.cluster_timeline;
}

std::string Position(uint32_t timeline, uint64_t lsn) {
  return "timeline " + std::to_string(timeline) + ", lsn " + FormatLsn(lsn);
}

std::string LocalRole(const LocalPostgres& pg) {
  if (!pg.running) return "stopped";
  return pg.in_recovery ? "a standby" : "a primary";
}

Decision Make(std::string reason) {
  return Decision{{}, std::move(reason)};
}
Decision Make(std::vector<Action> actions, std::string reason) {
  return Decision{std::move(actions), std::move(reason)};
}

Decision StoreUnreachable(const Observation& obs) {
  if (!IsRunningPrimary(obs.pg)) {
    return Make("store unreachable; postgres is " + LocalRole(obs.pg) + ", no role change");
  }
  if (!LeaseValid(obs)) {
    return Make({{ActionType::kDemote, ""}},
                "cannot reach the store and the lease deadline passed: demoting");
  }
  return Make("cannot reach the store; still primary, demoting in " +
              std::to_string(obs.lease_deadline - obs.now) +
              "ms at the lease deadline unless a renewal succeeds");
}

// The switchover target this primary may hand over to: a live replica that
// streams from us and may be promoted ("" = none).
std::string SwitchoverTarget(const Observation& obs, const std::string& wanted) {
  std::string best;
  uint64_t best_lsn = 0;
  for (const MemberState& m : obs.members) {
    if (m.name == obs.self || m.role != Role::kReplica || !m.streaming || m.nofailover) continue;
    if (m.following != obs.self) continue;
    if (!wanted.empty() && m.name != wanted) continue;
    if (best.empty() || m.lsn > best_lsn || (m.lsn == best_lsn && m.name < best)) {
      best = m.name;
      best_lsn = m.lsn;
    }
  }
  return best;
}

// A running primary with a valid lease and the leader key: an operator asked
// for a switchover.
std::optional<Decision> SwitchoverAsLeader(const Observation& obs) {
  const Intent& in = *obs.intent;
  if (in.kind != Intent::Kind::kSwitchover || in.final_lsn != 0) return std::nullopt;
  if (!in.from.empty() && in.from != obs.self) return std::nullopt;
  if (!in.due) return std::nullopt;
  const std::string target = SwitchoverTarget(obs, in.to);
  if (target.empty()) {
    return Make("I am the leader with the lock; a switchover to " +
                (in.to.empty() ? std::string("any replica") : in.to) +
                " waits for it to stream from me (the request expires otherwise)");
  }
  return Make({{ActionType::kStepDown, target}},
              "switchover: stopping cleanly and handing over to " + target);
}

// Rules when the leader key names this node.
Decision SelfIsLeader(const Observation& obs, const HaConfig& cfg) {
  const LocalPostgres& pg = obs.pg;
  if (!LeaseValid(obs)) {
    if (IsRunningPrimary(pg)) {
      return Make({{ActionType::kDemote, ""}},
                  "I hold the leader key but my lease deadline passed: demoting");
    }
    return Make("I hold the leader key but have no valid lease; waiting for a new lease");
  }
  std::vector<Action> actions;
  std::string prefix;
  const bool take_over = obs.leader->lease != obs.lease;
  if (take_over) {
    prefix = "leader key is on my old lease " + std::to_string(obs.leader->lease) +
             ", moving it to lease " + std::to_string(obs.lease) + "; ";
  }
  if (!pg.running) {
    if (pg.start_failures >= cfg.max_start_failures) {
      // Releasing needs no take-over: the delete compares the mod_revision we read.
      return Make({{ActionType::kReleaseLeader, ""}},
                  "I hold the leader key but postgres failed to start " +
                      std::to_string(pg.start_failures) +
                      " times: releasing the key so a replica can take over");
    }
    if (take_over) actions.push_back({ActionType::kTakeOverLeader, ""});
    actions.push_back({ActionType::kStartPrimary, ""});
    return Make(std::move(actions), prefix +
                                        "I hold the leader key and postgres is not running: "
                                        "starting it as primary (attempt " +
                                        std::to_string(pg.start_failures + 1) + " of " +
                                        std::to_string(cfg.max_start_failures) + ")");
  }
  if (!take_over && !pg.in_recovery && obs.intent) {
    if (auto d = SwitchoverAsLeader(obs)) return *d;
  }
  if (take_over) actions.push_back({ActionType::kTakeOverLeader, ""});
  if (pg.in_recovery) {
    actions.push_back({ActionType::kPromote, ""});
    return Make(std::move(actions),
                prefix + "I hold the leader key and postgres is a standby: promoting");
  }
  return Make(std::move(actions), prefix + "I am the leader with the lock");
}

// Rules when the leader key names another member.
Decision OtherIsLeader(const Observation& obs) {
  const LocalPostgres& pg = obs.pg;
  const std::string& leader = obs.leader->holder;
  if (IsRunningPrimary(pg)) {
    return Make({{ActionType::kDemote, ""}}, leader + " holds the leader key; demoting");
  }
  if (leader.empty()) {
    return Make("the leader key names no member; waiting for it to be replaced or to expire");
  }
  if (pg.needs_reclone || pg.needs_rewind) {
    // The key is taken before the promotion: until the leader reports itself a
    // running primary, its server may still be a standby on the old timeline,
    // and pg_rewind against it finds "no rewind required" for WAL that will
    // diverge (this node could then never stream from it). Wait for it.
    const MemberState* lm = nullptr;
    for (const MemberState& m : obs.members) {
      if (m.name == leader) lm = &m;
    }
    if (lm == nullptr || lm->role != Role::kPrimary) {
      return Make(leader +
                  " holds the leader key but does not report a running primary yet: "
                  "waiting for its promotion before " +
                  (pg.needs_reclone ? "re-cloning" : "rewinding") + " onto it");
    }
  }
  if (pg.needs_reclone) {
    return Make(
        {{ActionType::kReclone, leader}},
        leader + " holds the leader key and my data cannot be rewound: re-cloning from " + leader);
  }
  if (pg.needs_rewind) {
    return Make({{ActionType::kRewind, leader}},
                leader + " holds the leader key and my timeline diverged from it: rewinding onto " +
                    leader);
  }
  if (!pg.running) {
    return Make({{ActionType::kStartReplica, leader}},
                leader + " holds the leader key: starting postgres as its replica");
  }
  if (pg.following != leader) {
    std::string from = pg.following.empty() ? "no upstream" : pg.following;
    return Make(
        {{ActionType::kFollow, leader}},
        leader + " holds the leader key: re-pointing replication from " + from + " to " + leader);
  }
  return Make("no action. following " + leader);
}

// Take the key and promote, if this node's lease can take the key.
Decision PromoteIfLeased(const Observation& obs, const std::string& why) {
  if (!LeaseValid(obs)) return Make(why + ", but I have no valid lease to take the key with");
  return Make({{ActionType::kAcquireLeader, ""}, {ActionType::kPromote, ""}},
              why + ": acquiring the leader key and promoting");
}

// A switchover whose primary stepped down (final_lsn recorded) and released
// the key. nullopt = the automatic rules decide.
std::optional<Decision> SwitchoverWithoutLeader(const Observation& obs, const HaConfig& cfg) {
  const Intent& in = *obs.intent;
  const LocalPostgres& pg = obs.pg;
  // The old primary lost the key without stepping down: the automatic rules apply.
  if (in.final_lsn == 0) return std::nullopt;
  const std::string here = Position(pg.timeline, pg.lsn);
  const std::string final_pos = Position(in.final_timeline, in.final_lsn);
  std::string target = in.to;
  if (target.empty()) {
    // Whoever received the old primary's last record, best first.
    for (const Candidate& c : RankCandidateDetails(obs, cfg)) {
      if (c.name != in.from && c.timeline == in.final_timeline && c.lsn > in.final_lsn) {
        target = c.name;
        break;
      }
    }
    if (target.empty()) {
      return Make(
          "no leader; switchover in progress: no replica has received the old "
          "primary's final position " +
          final_pos + " yet");
    }
  }
  if (target != obs.self) {
    bool live = false;
    for (const MemberState& m : obs.members) {
      live = live || (m.name == target && m.role == Role::kReplica);
    }
    // A target that died after the hand-over must not hold up a failover:
    // the automatic rules apply (the old primary, alive, holds every write).
    if (!live) return std::nullopt;
    return Make("no leader; switchover to " + target + " in progress: waiting for it");
  }
  if (pg.timeline != in.final_timeline || pg.lsn <= in.final_lsn) {
    return Make(
        "no leader; switchover to me: waiting to receive the old primary's final "
        "position " +
        final_pos + " (I am at " + here + ")");
  }
  return PromoteIfLeased(obs,
                         "no leader; switchover to me, and I hold the old primary's final "
                         "position " +
                             final_pos + " (" + here + ")");
}

// The operator asked to fail over to this node (without data loss): it must
// hold every acknowledged write (the sync record's rule, or no candidate ahead).
Decision FailoverToMe(const Observation& obs, const HaConfig& cfg, const std::string& here) {
  const LocalPostgres& pg = obs.pg;
  const SyncVerdict sync = SyncCandidates(obs);
  if (sync.applies) {
    bool eligible = false;
    for (const Candidate& c : sync.eligible) eligible = eligible || c.name == obs.self;
    if (!eligible) {
      return Make("no leader; the operator asked to fail over to me, but " +
                  (sync.ok ? "I may not hold every acknowledged write (" +
                                 sync.eligible.front().name + " does)"
                           : sync.why) +
                  "; use --accept-data-loss to promote me anyway");
    }
    return PromoteIfLeased(obs,
                           "no leader; the operator asked to fail over to me and I hold every "
                           "acknowledged write (" +
                               here + ")");
  }
  const std::vector<Candidate> ranked = RankCandidateDetails(obs, cfg);
  const bool best = !ranked.empty() && ranked.front().timeline == pg.timeline &&
                    ranked.front().lsn <= pg.lsn && !BehindClusterTimeline(obs);
  if (!best) {
    return Make("no leader; the operator asked to fail over to me, but " +
                (ranked.empty() ? std::string("I am not a failover candidate")
                                : ranked.front().name + " is at " +
                                      Position(ranked.front().timeline, ranked.front().lsn)) +
                " (" + here + "); use --accept-data-loss to promote me anyway");
  }
  return PromoteIfLeased(
      obs,
      "no leader; the operator asked to fail over to me and no candidate is ahead (" + here + ")");
}

// No leader, a running standby, and an operator intent. nullopt = the intent
// does not apply (any more) and the automatic rules decide.
std::optional<Decision> IntentWithoutLeader(const Observation& obs, const HaConfig& cfg) {
  const Intent& in = *obs.intent;
  const std::string here = Position(obs.pg.timeline, obs.pg.lsn);
  if (in.kind == Intent::Kind::kSwitchover) return SwitchoverWithoutLeader(obs, cfg);
  // Failover to a named member.
  if (in.to != obs.self) {
    return Make("no leader; the operator asked to fail over to " + in.to + ": waiting for it");
  }
  if (in.accept_data_loss) {
    return PromoteIfLeased(
        obs, "no leader; the operator asked to fail over to me accepting data loss (" + here + ")");
  }
  return FailoverToMe(obs, cfg, here);
}

// No leader key while this node runs a primary: keep it only on a live lease
// and the newest timeline.
Decision NoLeaderAsPrimary(const Observation& obs) {
  const LocalPostgres& pg = obs.pg;
  if (BehindClusterTimeline(obs)) {
    return Make({{ActionType::kDemote, ""}},
                "no leader key and a newer timeline " + std::to_string(obs.cluster_timeline) +
                    " exists than mine (" + std::to_string(pg.timeline) + "): demoting");
  }
  if (LeaseValid(obs)) {
    return Make({{ActionType::kAcquireLeader, ""}},
                "no leader key and postgres is a running primary (" +
                    Position(pg.timeline, pg.lsn) + "): acquiring the leader key");
  }
  return Make({{ActionType::kDemote, ""}},
              "no leader key and no valid lease while primary: demoting");
}

// Automatic failover under a sync record: only its most advanced eligible
// standby may promote.
Decision SyncFailover(const Observation& obs, const SyncVerdict& sync, const std::string& here) {
  if (!sync.ok) {
    return Make("no leader and no automatic failover: " + sync.why +
                "; to promote a node anyway run `tandem cluster failover --to NODE "
                "--accept-data-loss`");
  }
  if (sync.eligible.front().name != obs.self) {
    return Make("no leader; " + sync.eligible.front().name +
                " is the most advanced synchronous standby (" +
                Position(sync.eligible.front().timeline, sync.eligible.front().lsn) +
                "), not me (" + here + ")");
  }
  if (!LeaseValid(obs)) {
    return Make("no leader; I am the most advanced synchronous standby (" + here +
                ") but have no valid lease to take the key with");
  }
  return Make({{ActionType::kAcquireLeader, ""}, {ActionType::kPromote, ""}},
              "no leader; I am the most advanced synchronous standby (" + here +
                  "): acquiring the leader key and promoting");
}

// Automatic failover without a sync record: the top-ranked candidate promotes.
Decision RankedFailover(const Observation& obs, const HaConfig& cfg, const std::string& here) {
  const std::vector<Candidate> ranked = RankCandidateDetails(obs, cfg);
  bool listed = false;
  for (const Candidate& c : ranked) listed = listed || c.name == obs.self;
  if (!listed) {
    std::string others = ranked.empty() ? "nor is any other member"
                                        : ranked.front().name + " is the best at " +
                                              Position(ranked.front().timeline, ranked.front().lsn);
    return Make("no leader; I am not a failover candidate (" + here + "); " + others);
  }
  if (ranked.front().name != obs.self) {
    const Candidate& best = ranked.front();
    return Make("no leader; " + best.name + " is ahead (" + Position(best.timeline, best.lsn) +
                ") of me (" + here + ")");
  }
  if (obs.pg.needs_reclone) {
    return Make("no leader; I am the most advanced replica (" + here +
                ") but my data needs a re-clone");
  }
  // No needs_rewind check: with no leader there is nothing to rewind onto, and
  // a former primary still on the newest timeline is the best source there is.
  if (!LeaseValid(obs)) {
    return Make("no leader; I am the most advanced replica (" + here +
                ") but have no valid lease to take the key with");
  }
  return Make({{ActionType::kAcquireLeader, ""}, {ActionType::kPromote, ""}},
              "no leader; I am the most advanced healthy replica (" + here +
                  "): acquiring the leader key and promoting");
}

// Rules when nobody holds the leader key.
Decision NoLeader(const Observation& obs, const HaConfig& cfg) {
  const LocalPostgres& pg = obs.pg;
  if (IsRunningPrimary(pg)) return NoLeaderAsPrimary(obs);
  if (!pg.running) {
    return Make({{ActionType::kStartReplica, ""}},
                "no leader key and postgres is not running: starting it as a standby to learn "
                "its position");
  }
  const std::string here = Position(pg.timeline, pg.lsn);
  if (obs.intent) {
    if (auto d = IntentWithoutLeader(obs, cfg)) return *d;
  }
  if (BehindClusterTimeline(obs)) {
    return Make("no leader; I am on timeline " + std::to_string(pg.timeline) +
                " but the cluster reached timeline " + std::to_string(obs.cluster_timeline) +
                ": I may hold WAL it forked away from, waiting for a member on it");
  }
  const SyncVerdict sync = SyncCandidates(obs);
  if (sync.applies) return SyncFailover(obs, sync, here);
  return RankedFailover(obs, cfg, here);
}

// Row X1: a witness runs no PostgreSQL, so it has no role to change and no
// key to take; it only votes in the store and follows the routes.
Decision Witness(const Observation& obs) {
  std::string leader = "the store cannot be read";
  if (obs.store_ok) {
    leader = obs.leader && !obs.leader->holder.empty() ? obs.leader->holder + " is the primary"
                                                       : "no member holds the leader key";
  }
  return Make("witness (no PostgreSQL here; votes in the store only): " + leader);
}

}  // namespace

Decision Decide(const Observation& obs, const HaConfig& cfg) {
  if (obs.witness) return Witness(obs);
  if (!obs.store_ok) return StoreUnreachable(obs);
  if (obs.paused) {
    std::string who = obs.leader ? obs.leader->holder + " holds the leader key" : "no leader key";
    return Make("paused (maintenance mode): no automatic role changes; " + who + ", postgres is " +
                LocalRole(obs.pg));
  }
  if (obs.leader && obs.leader->holder == obs.self) return SelfIsLeader(obs, cfg);
  if (obs.leader) return OtherIsLeader(obs);
  return NoLeader(obs, cfg);
}

std::string CheckTiming(const HaConfig& cfg) {
  if (cfg.loop_interval_ms <= 0) {
    return "dcs.loop_interval (" + Dur(cfg.loop_interval_ms) +
           ") must be positive: set it to e.g. 1s";
  }
  if (cfg.ttl_ms < 2000) {
    return "dcs.ttl (" + Dur(cfg.ttl_ms) +
           ") must be at least 2s: etcd leases are whole seconds and a shorter lease leaves no "
           "room to renew; raise dcs.ttl";
  }
  if (cfg.safety_margin_ms <= cfg.loop_interval_ms) {
    return "dcs.safety_margin (" + Dur(cfg.safety_margin_ms) +
           ") must be larger than dcs.loop_interval (" + Dur(cfg.loop_interval_ms) +
           "): a cycle must run between the local lease deadline and the lease's expiry in the "
           "store; raise dcs.safety_margin or lower dcs.loop_interval";
  }
  if (cfg.ttl_ms - cfg.safety_margin_ms < 2 * cfg.loop_interval_ms) {
    return "dcs.ttl (" + Dur(cfg.ttl_ms) + ") minus dcs.safety_margin (" +
           Dur(cfg.safety_margin_ms) + ") must be at least twice dcs.loop_interval (" +
           Dur(cfg.loop_interval_ms) +
           ") so two renewals fit before the local deadline; raise dcs.ttl, or lower "
           "dcs.safety_margin or dcs.loop_interval";
  }
  return "";
}

}  // namespace tandem::core
