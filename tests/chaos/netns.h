// A private network for the chaos suite: one network namespace per node and
// one for the client, each with a veth on a bridge that lives in a namespace
// of its own, so nothing of the host's network is touched. Addresses are in
// 10.213.0.0/24 and exist only inside these namespaces (no default route).
// Faults are iptables rules inside a node's namespace. Also used by
// tests/integration/vip_test.cc (its own namespace prefix).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/result.h"

namespace tandem::chaos {

class Topology {
 public:
  // Namespaces are named <prefix><pid>-n1 ...: each suite its own prefix, so
  // two suites can run at once.
  explicit Topology(std::string prefix = "tdm") : prefix_base_(std::move(prefix)) {}
  ~Topology();  // removes every namespace it created
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  // Creates the bridge, `nodes` node namespaces (10.213.0.1 ...) and the
  // client's (10.213.0.100). Fails with the command's output.
  Status Create(int nodes);
  void Destroy();

  std::string NodeNs(int i) const;  // 1-based
  std::string ClientNs() const;
  static std::string NodeAddr(int i);
  static std::string ClientAddr();
  int nodes() const { return nodes_; }

  // Moves the calling thread (and threads it starts later) into the client's
  // namespace: every socket it opens from then on is the client's.
  Status EnterClient() const;

  // Node i can no longer exchange anything with the other nodes; the client
  // still reaches it (the dangerous case: clients keep writing to it).
  Status Isolate(int i) const;
  // Node i can no longer reach the other nodes' etcd members, nor they its
  // own; PostgreSQL replication and the agents' APIs still pass.
  Status CutEtcd(int i, int client_port, int peer_port) const;
  // Removes every rule in node i's namespace.
  Status Heal(int i) const;

  // `ip netns exec NS argv...`
  std::vector<std::string> InNs(const std::string& ns, const std::vector<std::string>& argv) const;

 private:
  Status Ip(const std::vector<std::string>& args) const;
  Status Iptables(int i, const std::vector<std::string>& args) const;

  std::string prefix_base_;
  std::string prefix_;
  int nodes_ = 0;
  std::vector<std::string> created_;
};

}  // namespace tandem::chaos
