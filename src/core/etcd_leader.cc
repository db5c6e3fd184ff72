// The etcd leadership handoff decision (etcd_leader.h). Pure.
#include "core/etcd_leader.h"

#include <algorithm>

namespace tandem::core {

EtcdLeaderHandoff HandOffEtcdLeadership(const EtcdLeadership& in) {
  EtcdLeaderHandoff out;
  if (!in.embedded) {
    out.reason = "the etcd cluster is not ours (external): its leadership is left alone";
    return out;
  }
  if (!in.primary) {
    out.reason = "not the primary: whoever leads etcd may keep it";
    return out;
  }
  if (in.self_member_id == 0 || in.leader_member_id != in.self_member_id) {
    out.reason = "the primary's etcd member does not lead: nothing to hand away";
    return out;
  }
  for (const auto& p : in.peers) {
    if (p.name == in.self || p.member_id == 0 || p.member_id == in.self_member_id) continue;
    // A replica that publishes its state is a live node, so its member can
    // lead; a stopped node or one that publishes nothing may be down.
    if (p.role != Role::kReplica) continue;
    out.targets.push_back(p);
  }
  std::sort(out.targets.begin(), out.targets.end(),
            [](const EtcdPeer& a, const EtcdPeer& b) { return a.name < b.name; });
  out.reason = out.targets.empty()
                   ? "the primary leads etcd, but no replica runs an etcd member to take it"
                   : "the primary leads etcd: a crash of its node would also cost an etcd "
                     "election; handing it to " +
                         out.targets.front().name;
  return out;
}

}  // namespace tandem::core
