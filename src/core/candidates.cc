#include "core/candidates.h"

#include <algorithm>

namespace tandem::core {

std::vector<Candidate> RankCandidateDetails(const Observation& obs, const HaConfig& cfg) {
  std::vector<Candidate> ranked;
  for (const MemberState& m : obs.members) {
    if (m.nofailover) continue;
    Candidate c;
    if (m.name == obs.self) {
      // What we see of our own PostgreSQL now beats what we published a cycle ago.
      if (!obs.pg.running || !obs.pg.in_recovery) continue;
      c = {m.name, obs.pg.timeline, obs.pg.lsn};
    } else if (m.role == Role::kReplica) {
      c = {m.name, m.timeline, m.lsn};
    } else {
      continue;
    }
    // Behind the newest recorded timeline: may hold WAL that timeline forked away from.
    if (c.timeline < obs.cluster_timeline) continue;
    ranked.push_back(std::move(c));
  }
  std::sort(ranked.begin(), ranked.end(), [](const Candidate& a, const Candidate& b) {
    if (a.timeline != b.timeline) return a.timeline > b.timeline;
    if (a.lsn != b.lsn) return a.lsn > b.lsn;
    return a.name < b.name;
  });
  // A member listed twice can only come from a corrupt store; keep its best entry.
  std::vector<Candidate> unique;
  for (Candidate& c : ranked) {
    bool seen = std::any_of(unique.begin(), unique.end(),
                            [&](const Candidate& u) { return u.name == c.name; });
    if (!seen) unique.push_back(std::move(c));
  }
  ranked = std::move(unique);
  if (!ranked.empty()) {
    const uint64_t best = ranked.front().lsn;
    ranked.erase(std::remove_if(ranked.begin(), ranked.end(),
                                [&](const Candidate& c) {
                                  return c.lsn < best && best - c.lsn > cfg.max_lag_bytes;
                                }),
                 ranked.end());
  }
  return ranked;
}

std::vector<std::string> RankCandidates(const Observation& obs, const HaConfig& cfg) {
  std::vector<std::string> names;
  for (const Candidate& c : RankCandidateDetails(obs, cfg)) names.push_back(c.name);
  return names;
}

}  // namespace tandem::core
