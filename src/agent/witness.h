// The witness's membership rules as the agent applies them to one view of
// the cluster (docs/design/witness.md): who votes, when a witness may join,
// and when removing one needs --force. Pure functions of the view; the HA
// rules themselves are in src/core (a witness never acts, is never a
// candidate, never a sync standby).
#pragma once

#include <string>
#include <vector>

#include "agent/cluster_view.h"

namespace tandem::agent {

// The registered nodes that vote in the embedded etcd (an etcd member id).
int VotingMembers(const ClusterView& view);
// The registered witnesses, by name.
std::vector<std::string> Witnesses(const ClusterView& view);

// Why a witness may not join a cluster with `voters` voting members of which
// `witnesses` are witnesses ("" = it may): a witness that would make the count
// even adds a vote but survives no more failures, so it is refused, naming the
// fix. `external_etcd`: the cluster's store is not embedded (a witness is an
// embedded etcd voter and nothing else).
std::string WitnessJoinRefusal(int voters, const std::vector<std::string>& witnesses,
                               bool external_etcd);

// Why `target` may not be removed without --force ("" = it may): the witness
// of a cluster with two data nodes, whose loss stops automatic failover.
std::string WitnessRemovalRefusal(const ClusterView& view, const std::string& target, bool force);

}  // namespace tandem::agent
