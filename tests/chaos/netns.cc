// The chaos suite's private network: creating and destroying the namespaces,
// the bridge and the veths (ip), entering the client's namespace, and the
// faults as iptables rules inside a node's namespace. Runs on the test's
// thread; needs root.
#include "chaos/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/process.h"

namespace tandem::chaos {
namespace {

Status Run(const std::vector<std::string>& argv) {
  auto r = RunCommand(argv, SpawnOptions{}, 30'000);
  if (!r) return r.error();
  if (r->exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    return Error(ErrorCode::kInternal, "`" + cmd + "` failed: " + r->output);
  }
  return Ok();
}

}  // namespace

Topology::~Topology() {
  Destroy();
}

std::string Topology::NodeNs(int i) const {
  return prefix_ + "-n" + std::to_string(i);
}
std::string Topology::ClientNs() const {
  return prefix_ + "-c";
}
std::string Topology::NodeAddr(int i) {
  return "10.213.0." + std::to_string(i);
}
std::string Topology::ClientAddr() {
  return "10.213.0.100";
}

Status Topology::Ip(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv);
}

std::vector<std::string> Topology::InNs(const std::string& ns,
                                        const std::vector<std::string>& argv) const {
  std::vector<std::string> out = {"ip", "netns", "exec", ns};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

Status Topology::Create(int nodes) {
  nodes_ = nodes;
  prefix_ = prefix_base_ + std::to_string(::getpid());
  const std::string br = prefix_ + "-br";
  TANDEM_TRY(Ip({"netns", "add", br}));
  created_.push_back(br);
  TANDEM_TRY(Ip({"-n", br, "link", "add", "br0", "type", "bridge"}));
  TANDEM_TRY(Ip({"-n", br, "link", "set", "br0", "up"}));
  auto attach = [&](const std::string& ns, const std::string& addr, int port) -> Status {
    TANDEM_TRY(Ip({"netns", "add", ns}));
    created_.push_back(ns);
    const std::string peer = "v" + std::to_string(port);
    TANDEM_TRY(Ip(
        {"link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", peer, "netns", br}));
    TANDEM_TRY(Ip({"-n", br, "link", "set", peer, "master", "br0", "up"}));
    TANDEM_TRY(Ip({"-n", ns, "addr", "add", addr + "/24", "dev", "eth0"}));
    TANDEM_TRY(Ip({"-n", ns, "link", "set", "eth0", "up"}));
    return Ip({"-n", ns, "link", "set", "lo", "up"});
  };
  for (int i = 1; i <= nodes; ++i) TANDEM_TRY(attach(NodeNs(i), NodeAddr(i), i));
  return attach(ClientNs(), ClientAddr(), 100);
}

void Topology::Destroy() {
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) (void)Ip({"netns", "del", *it});
  created_.clear();
}

Status Topology::EnterClient() const {
  const std::string path = "/var/run/netns/" + ClientNs();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error(ErrorCode::kInternal, "open " + path + ": " + std::strerror(errno));
  int rc = ::setns(fd, CLONE_NEWNET);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Error(ErrorCode::kInternal, "setns " + path + ": " + std::strerror(err));
  return Ok();
}

Status Topology::Iptables(int i, const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"iptables", "-w"};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(InNs(NodeNs(i), argv));
}

Status Topology::Isolate(int i) const {
  for (int j = 1; j <= nodes_; ++j) {
    if (j == i) continue;
    TANDEM_TRY(Iptables(i, {"-A", "INPUT", "-s", NodeAddr(j), "-j", "DROP"}));
    TANDEM_TRY(Iptables(i, {"-A", "OUTPUT", "-d", NodeAddr(j), "-j", "DROP"}));
  }
  return Ok();
}

Status Topology::CutEtcd(int i, int client_port, int peer_port) const {
  for (int j = 1; j <= nodes_; ++j) {
    if (j == i) continue;
    for (int port : {client_port, peer_port}) {
      for (const char* dir : {"--dport", "--sport"}) {
        TANDEM_TRY(Iptables(i, {"-A", "INPUT", "-s", NodeAddr(j), "-p", "tcp", dir,
                                std::to_string(port), "-j", "DROP"}));
        TANDEM_TRY(Iptables(i, {"-A", "OUTPUT", "-d", NodeAddr(j), "-p", "tcp", dir,
                                std::to_string(port), "-j", "DROP"}));
      }
    }
  }
  return Ok();
}

Status Topology::Heal(int i) const {
  return Iptables(i, {"-F"});
}

}  // namespace tandem::chaos
