// Failover candidates: RankCandidates (timeline, then LSN, then name; rules 3
// and 4 drop the lagging and the ones behind the cluster timeline),
// SyncCandidates (who the sync record allows to take over) and
// SyncSurvivesWriterLoss. Pure: a function of one Observation and the config.
#include "core/candidates.h"

#include <algorithm>

#include "base/strings.h"
#include "core/sync.h"

namespace tandem::core {

std::vector<Candidate> RankCandidateDetails(const Observation& obs, const HaConfig& cfg) {
  std::vector<Candidate> ranked;
  for (const MemberState& m : obs.members) {
    // A witness runs no PostgreSQL: never a candidate, whatever else it says.
    if (m.nofailover || m.role == Role::kWitness) continue;
    if (m.name == obs.self && obs.witness) continue;
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

// With the record's writer gone: how many members of S must be live replicas
// for one of them to hold every acknowledged write (|S| - k + 1); 0 when the
// record counts no standby, so no number of them is enough.
static size_t LiveMembersNeeded(const SyncRecord& rec) {
  if (rec.quorum <= 0 || rec.members.empty() || static_cast<int>(rec.members.size()) < rec.quorum) {
    return 0;
  }
  return rec.members.size() - static_cast<size_t>(rec.quorum) + 1;
}

namespace {

// A live holder of the record's writes: the standby's position as this node
// sees it.
struct Seen {
  std::string name;
  uint32_t timeline;
  uint64_t lsn;
  bool nofailover;
};

// The record's writer is the primary that acknowledged the writes: it holds
// them all itself. Every acknowledged write is on it and on `quorum` of the
// members. Which of them are live replicas (this node by its local position).
std::vector<Seen> LiveHolders(const Observation& obs, const SyncRecord& rec) {
  std::vector<std::string> pool = rec.members;
  if (std::find(pool.begin(), pool.end(), rec.leader) == pool.end()) pool.push_back(rec.leader);
  std::vector<Seen> seen;
  for (const std::string& name : pool) {
    if (name == obs.self) {
      if (!obs.witness && obs.pg.running && obs.pg.in_recovery) {
        bool nofailover = false;
        for (const MemberState& m : obs.members) {
          if (m.name == name) nofailover = m.nofailover;
        }
        seen.push_back({name, obs.pg.timeline, obs.pg.lsn, nofailover});
      }
      continue;
    }
    for (const MemberState& m : obs.members) {
      if (m.name == name && m.role == Role::kReplica) {
        seen.push_back({name, m.timeline, m.lsn, m.nofailover});
        break;
      }
    }
  }
  return seen;
}

// With the writer gone, why the live members cannot be sure to hold every
// acknowledged write ("" when they can, or the writer is live).
std::string WriterLossRefusal(const SyncRecord& rec, const std::vector<Seen>& seen) {
  const bool writer_seen =
      std::any_of(seen.begin(), seen.end(), [&](const Seen& s) { return s.name == rec.leader; });
  if (writer_seen) return "";
  size_t members_seen = 0;
  for (const Seen& s : seen) {
    if (std::find(rec.members.begin(), rec.members.end(), s.name) != rec.members.end()) {
      ++members_seen;
    }
  }
  const size_t need = LiveMembersNeeded(rec);
  if (need == 0) {
    return "the primary that wrote the sync record (" + rec.leader +
           ") is gone and the record counts no standby as holding every acknowledged write";
  }
  if (members_seen < need) {
    return "only " + std::to_string(members_seen) + " of the sync set " +
           DescribeSync(rec.members, rec.quorum) + " are live replicas and its writer " +
           rec.leader + " is gone; " + std::to_string(need) +
           " are needed to be sure one holds every acknowledged write";
  }
  return "";
}

// The most advanced holders that may be promoted, by name, into *eligible;
// the ones that may not, with why, into *blocked.
void MostAdvanced(const Observation& obs, const std::vector<Seen>& seen,
                  std::vector<Candidate>* eligible, std::string* blocked) {
  uint32_t best_tl = 0;
  uint64_t best_lsn = 0;
  for (const Seen& s : seen) {
    if (s.timeline > best_tl || (s.timeline == best_tl && s.lsn > best_lsn)) {
      best_tl = s.timeline;
      best_lsn = s.lsn;
    }
  }
  for (const Seen& s : seen) {
    if (s.timeline != best_tl || s.lsn != best_lsn) continue;
    if (s.nofailover) {
      *blocked += (blocked->empty() ? "" : ", ") + s.name + " (nofailover)";
    } else if (s.timeline < obs.cluster_timeline) {
      *blocked += (blocked->empty() ? "" : ", ") + s.name + " (behind timeline " +
                  std::to_string(obs.cluster_timeline) + ")";
    } else {
      eligible->push_back({s.name, s.timeline, s.lsn});
    }
  }
  std::sort(eligible->begin(), eligible->end(),
            [](const Candidate& a, const Candidate& b) { return a.name < b.name; });
}

}  // namespace

SyncVerdict SyncCandidates(const Observation& obs) {
  SyncVerdict v;
  if (!obs.sync || obs.sync->mode == SyncMode::kOff) return v;
  v.applies = true;
  const SyncRecord& rec = *obs.sync;
  const std::vector<Seen> seen = LiveHolders(obs, rec);
  v.why = WriterLossRefusal(rec, seen);
  if (!v.why.empty()) return v;
  std::string blocked;
  MostAdvanced(obs, seen, &v.eligible, &blocked);
  if (v.eligible.empty()) {
    v.why = "the most advanced sync standby may not be promoted: " + blocked;
    return v;
  }
  v.ok = true;
  return v;
}

bool SyncSurvivesWriterLoss(const SyncRecord& rec, const std::vector<std::string>& live_replicas) {
  const size_t need = LiveMembersNeeded(rec);
  if (rec.mode == SyncMode::kOff || need == 0) return false;
  size_t live = 0;
  for (const std::string& m : rec.members) {
    if (m != rec.leader &&
        std::find(live_replicas.begin(), live_replicas.end(), m) != live_replicas.end()) {
      ++live;
    }
  }
  return live >= need;
}

std::vector<std::string> RankCandidates(const Observation& obs, const HaConfig& cfg) {
  std::vector<std::string> names;
  for (const Candidate& c : RankCandidateDetails(obs, cfg)) names.push_back(c.name);
  return names;
}

}  // namespace tandem::core
