// The witness's membership rules on one view (witness.h): voters, the join
// refusal (an even voter count), the removal that needs --force. Pure.
#include "agent/witness.h"

#include "base/strings.h"

namespace tandem::agent {

int VotingMembers(const ClusterView& view) {
  int voters = 0;
  for (const auto& [name, n] : view.nodes) {
    if (n.etcd_member_id != 0) ++voters;
  }
  return voters;
}

std::vector<std::string> Witnesses(const ClusterView& view) {
  std::vector<std::string> out;
  for (const auto& [name, n] : view.nodes) {
    if (n.witness) out.push_back(name);
  }
  return out;
}

std::string WitnessJoinRefusal(int voters, const std::vector<std::string>& witnesses,
                               bool external_etcd) {
  if (external_etcd) {
    return "this cluster keeps its state in an external etcd, so a witness (an embedded etcd "
           "voter with no PostgreSQL) adds nothing; add a member to that etcd cluster instead; "
           "nothing was changed";
  }
  if ((voters + 1) % 2 != 0) return "";
  const std::string after = std::to_string(voters + 1);
  if (!witnesses.empty()) {
    return "this cluster already has " + std::to_string(voters) + " voting members (witness " +
           Join(witnesses, ", ") + "); another witness would make " + after +
           ", an even count that tolerates no more failures than " + std::to_string(voters) +
           "; nothing was changed. Join a data node instead (`tandem cluster join ADDRESS` "
           "without --witness), or remove the witness first (`tandem cluster remove " +
           witnesses.front() + "`)";
  }
  std::string fix = voters == 1 ? "Join a second data node first (`tandem cluster join ADDRESS` "
                                  "without --witness), then the witness"
                                : "A witness makes an even count odd (two data nodes and a "
                                  "witness); this cluster needs none";
  return "this cluster has " + std::to_string(voters) + " voting member" +
         (voters == 1 ? "" : "s") + "; a witness would make " + after +
         ", an even count that tolerates no more failures than " + std::to_string(voters) +
         "; nothing was changed. " + fix;
}

std::string WitnessRemovalRefusal(const ClusterView& view, const std::string& target, bool force) {
  auto it = view.nodes.find(target);
  if (force || it == view.nodes.end() || !it->second.witness) return "";
  const size_t data_nodes = view.nodes.size() - Witnesses(view).size();
  if (data_nodes != 2) return "";
  return "'" + target +
         "' is the witness of a cluster with two data nodes: without it the cluster has 2 "
         "voting members, and losing either data node stops the store and automatic failover; "
         "nothing was changed. Add a third data node first, or pass --force to remove it anyway";
}

}  // namespace tandem::agent
