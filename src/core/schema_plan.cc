// Schema upgrades as decisions: the directory against the history, the plan,
// the settle check (pure; see schema_plan.h).
#include "core/schema_plan.h"

#include <algorithm>
#include <cctype>

namespace tandem::core {
namespace {

Error Bad(const std::string& msg) {
  return Error(ErrorCode::kInvalidArgument, msg);
}

}  // namespace

Result<uint64_t> ParseTargetVersion(const std::string& text) {
  std::string t = text;
  if (!t.empty() && (t[0] == 'V' || t[0] == 'v')) t = t.substr(1);
  if (t.empty() || t.size() > 18 ||
      !std::all_of(t.begin(), t.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return Bad("--target '" + text + "' is not a version; give it as 7, V7 or V0007");
  }
  const uint64_t v = std::stoull(t);
  if (v == 0) return Bad("--target 0 is not a version (versions start at 1)");
  return v;
}

Result<SchemaPlan> PlanSchemaUpgrade(const std::vector<Migration>& dir,
                                     const std::vector<HistoryRow>& history, uint64_t target) {
  std::map<uint64_t, const Migration*> by_version;
  for (const auto& m : dir) by_version[m.version] = &m;
  SchemaPlan plan;
  std::map<uint64_t, bool> done;  // version -> success
  for (const auto& row : history) {
    auto it = by_version.find(row.version);
    if (it == by_version.end()) {
      return Error(ErrorCode::kFailedPrecondition,
                   "version " + std::to_string(row.version) + " (" + row.description +
                       ") is applied but the directory has no file for it; nothing was run: "
                       "restore its file (migrations are never removed once applied)");
    }
    if (row.success && row.sha256 != it->second->sha256) {
      return Error(ErrorCode::kFailedPrecondition,
                   "'" + it->second->file + "' changed after it was applied (sha256 " +
                       it->second->sha256.substr(0, 12) + "..., applied as " +
                       row.sha256.substr(0, 12) +
                       "...); nothing was run: restore the applied text and put the change in a "
                       "new version");
    }
    done[row.version] = row.success;
    (row.success ? plan.applied : plan.failed).push_back(row.version);
  }
  std::sort(plan.applied.begin(), plan.applied.end());
  std::sort(plan.failed.begin(), plan.failed.end());
  if (target != 0) {
    if (by_version.count(target) == 0) {
      return Bad("--target " + std::to_string(target) +
                 " is not a version in the directory (it has 1 to " +
                 std::to_string(dir.empty() ? 0 : dir.back().version) + ")");
    }
    if (!plan.applied.empty() && plan.applied.back() > target) {
      return Bad("--target " + std::to_string(target) + " is below the applied version " +
                 std::to_string(plan.applied.back()) + "; Tandem never undoes a migration");
    }
  }
  for (const auto& m : dir) {
    auto d = done.find(m.version);
    if (d != done.end() && d->second) continue;
    if (target != 0 && m.version > target) {
      plan.beyond_target.push_back(m.version);
    } else {
      plan.pending.push_back(m);
    }
  }
  return plan;
}

std::string SettleProblem(const SettleInput& in) {
  if (in.paused) return "the cluster is paused; run `tandem cluster resume` first";
  if (in.other_operation) return "a switchover or failover is under way; wait for it to finish";
  for (const auto& name : in.replicas) {
    auto it = in.members.find(name);
    if (it == in.members.end()) {
      if (in.only_live) continue;
      return name + " is not running (its agent publishes no state)";
    }
    const MemberState& m = it->second;
    if (m.role != Role::kReplica)
      return name + " is not a replica (it is " + RoleName(m.role) + ")";
    if (!m.streaming || m.following != in.primary) {
      return name + " is not streaming from " + in.primary;
    }
    if (m.timeline != in.primary_timeline) return name + " is not on the primary's timeline yet";
    const uint64_t lag = in.primary_lsn > m.lsn ? in.primary_lsn - m.lsn : 0;
    if (lag > in.max_lag_bytes) {
      return name + " is " + std::to_string(lag) + " bytes behind " + in.primary + " (not in sync)";
    }
  }
  return "";
}

}  // namespace tandem::core
