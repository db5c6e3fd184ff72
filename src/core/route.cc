// ComputeRoute and RouteForCycle: where the read-write and read-only ports
// send connections, from the Observation Decide saw and the members'
// addresses (safety rule 5: no known writable leader, no write route). Pure.
#include "core/route.h"

#include <algorithm>

namespace tandem::core {
namespace {

const MemberState* FindMember(const Observation& obs, const std::string& name) {
  for (const auto& m : obs.members) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

Route Nowhere(const Observation& obs, const RouteConfig& cfg, std::string reason) {
  Route r;
  r.valid_until = obs.now + cfg.validity_ms;
  r.reason = std::move(reason);
  return r;
}

}  // namespace

bool GivesUpPrimary(const Decision& d) {
  for (const auto& a : d.actions) {
    if (a.type == ActionType::kDemote || a.type == ActionType::kStepDown ||
        a.type == ActionType::kReleaseLeader) {
      return true;
    }
  }
  return false;
}

std::string Endpoint::ToString() const {
  // An IPv6 literal needs brackets before the port.
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Route ComputeRoute(const Observation& obs, const Decision& decision,
                   const std::map<std::string, Endpoint>& addresses, const RouteConfig& cfg) {
  if (!obs.store_ok) {
    return Nowhere(obs, cfg, "the store cannot be read: no route (fail closed)");
  }
  if (!obs.leader || obs.leader->holder.empty()) {
    return Nowhere(obs, cfg, "no leader key: no route (fail closed)");
  }
  const std::string& holder = obs.leader->holder;
  const MemberState* primary = FindMember(obs, holder);
  if (primary == nullptr || primary->role != Role::kPrimary) {
    return Nowhere(obs, cfg,
                   "leader key holder " + holder + " does not report itself primary: no route");
  }
  auto addr = addresses.find(holder);
  if (addr == addresses.end() || addr->second.host.empty() || addr->second.port <= 0) {
    return Nowhere(obs, cfg, "no registered address for leader " + holder + ": no route");
  }
  MonoMs valid_until = obs.now + cfg.validity_ms;
  if (holder == obs.self) {
    // Our own PostgreSQL: only while our lease on the key is certainly valid.
    if (obs.lease == 0 || obs.leader->lease != obs.lease || obs.now >= obs.lease_deadline) {
      return Nowhere(obs, cfg, "this node holds the leader key without a valid lease: no route");
    }
    if (!obs.pg.running || obs.pg.in_recovery) {
      return Nowhere(obs, cfg, "this node holds the leader key but is not a running primary");
    }
    if (GivesUpPrimary(decision)) {
      return Nowhere(obs, cfg, "this node is giving up the primary role: no route");
    }
    valid_until = std::min(valid_until, obs.lease_deadline);
  }

  Route r;
  r.read_write = RouteTarget{holder, addr->second};
  r.valid_until = valid_until;
  for (const auto& m : obs.members) {
    if (m.name == holder || m.role != Role::kReplica || !m.streaming) continue;
    if (m.following != holder || m.timeline != primary->timeline) continue;
    const uint64_t lag = primary->lsn > m.lsn ? primary->lsn - m.lsn : 0;
    if (lag > cfg.read_only_max_lag_bytes) continue;
    auto a = addresses.find(m.name);
    if (a == addresses.end() || a->second.host.empty() || a->second.port <= 0) continue;
    r.read_only.push_back(RouteTarget{m.name, a->second});
  }
  std::sort(r.read_only.begin(), r.read_only.end(),
            [](const RouteTarget& a, const RouteTarget& b) { return a.member < b.member; });
  std::string ro;
  if (r.read_only.empty()) {
    if (cfg.read_only_fallback_to_primary) {
      r.read_only.push_back(*r.read_write);
      ro = "reads to the primary (no replica streaming within the lag limit)";
    } else {
      ro = "no replica streaming within the lag limit: no reads";
    }
  } else {
    for (const auto& t : r.read_only) ro += (ro.empty() ? "reads to " : ", ") + t.member;
  }
  r.reason = "writes to " + holder + " (" + addr->second.ToString() + "); " + ro;
  return r;
}

Route RouteForCycle(const Route& previous, const Observation& obs, const Decision& decision,
                    const std::map<std::string, Endpoint>& addresses, const RouteConfig& cfg) {
  Route next = ComputeRoute(obs, decision, addresses, cfg);
  if (obs.store_ok || !previous.read_write || obs.now >= previous.valid_until) return next;
  if (previous.read_write->member == obs.self && GivesUpPrimary(decision)) return next;
  Route kept = previous;
  kept.reason =
      "the store cannot be read: keeping the last route until it expires (" + previous.reason + ")";
  return kept;
}

}  // namespace tandem::core
