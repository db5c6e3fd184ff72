// Failover candidate ranking: who should become primary when there is no leader.
//
// Pure, like Decide(): a function of one Observation and the config.
#pragma once

#include <string>
#include <vector>

#include "core/types.h"

namespace tandem::core {

// One member considered for promotion, with the position used to rank it.
struct Candidate {
  std::string name;
  uint32_t timeline = 0;
  uint64_t lsn = 0;
};

// Ranks the members that may be promoted automatically, best first.
//
// A candidate is a live member (obs.members) that reports role kReplica and is
// not marked nofailover. A witness (role kWitness, or self when obs.witness)
// never is, whatever else it reports (docs/design/witness.md). For obs.self the LOCAL values
// (obs.pg.timeline, obs.pg.lsn) replace the published ones, which may be a cycle old; self is a
// candidate only while its PostgreSQL is a running standby and it has published
// itself (so its nofailover setting is known).
//
// A member on a timeline older than obs.cluster_timeline is not a candidate
// (it may hold WAL the newest timeline forked away from), so it cannot block
// one that is.
//
// Order: timeline descending (a newer timeline carries every promotion so far),
// then lsn descending, then name ascending (a stable tie-break every node
// computes the same way). A candidate further behind the best one's lsn than
// cfg.max_lag_bytes is dropped: it would lose too much WAL to be worth it.
std::vector<Candidate> RankCandidateDetails(const Observation& obs, const HaConfig& cfg);

// The failover rule under synchronous replication (obs.sync present, mode not
// off; safety rule 3). The record (writer W, members S, quorum k) claims every
// write W acknowledged is on W and on k members of S. So if W itself is a live
// replica, or any |S| - k + 1 members of S are, one of those seen holds every
// acknowledged write, and the most advanced of them holds them all. Members
// count when they are live replicas (self: a running standby); positions are
// compared as (timeline, lsn). Eligible are the counted members at the most
// advanced position that may be promoted (not nofailover, not behind the
// cluster timeline), by name. Otherwise nobody may be promoted automatically
// and `why` says so (an alarm for the operator).
struct SyncVerdict {
  bool applies = false;  // a sync record rules this failover
  bool ok = false;       // eligible is the answer; else why
  std::vector<Candidate> eligible;
  std::string why;
};
SyncVerdict SyncCandidates(const Observation& obs);

// Whether the record would allow an automatic failover if its writer died now
// and `live_replicas` stayed: |S| - k + 1 members of S other than the writer
// must be live (the rule of SyncCandidates() with the writer gone). False when
// the record counts no standby. Shown in the status ("failover_ready") so an
// operator, and a test, can tell a protected primary from one whose loss
// would need `failover --accept-data-loss`.
bool SyncSurvivesWriterLoss(const SyncRecord& rec, const std::vector<std::string>& live_replicas);

// The names of RankCandidateDetails(), best first.
std::vector<std::string> RankCandidates(const Observation& obs, const HaConfig& cfg);

}  // namespace tandem::core
