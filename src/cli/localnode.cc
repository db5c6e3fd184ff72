// `tandem cluster localnode [INTERFACE|ADDRESS]`: which interface or address
// this node clusters on (PostgreSQL replication, etcd peers, agent calls),
// chosen before `initialize` or `join` (seed 1's `localnode`). Checks that the
// interface exists, is up and has an IPv4 address (or that the address is on
// an interface that is up), writes node.interface or node.address into the
// node's config file (the rest of the file kept as it is), and reloads a
// running agent so it uses it. Refused once the node is a member.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/config_edit.h"
#include "agent/local_state.h"
#include "agent/node_lock.h"
#include "base/file.h"
#include "cli/commands.h"

namespace tandem::cli {
namespace {

struct Interface {
  bool up = false;  // IFF_UP and IFF_RUNNING
  std::vector<std::string> v4, v6;
};

std::map<std::string, Interface> ListInterfaces() {
  std::map<std::string, Interface> out;
  struct ifaddrs* addrs = nullptr;
  if (getifaddrs(&addrs) != 0) return out;
  for (auto* a = addrs; a != nullptr; a = a->ifa_next) {
    Interface& i = out[a->ifa_name];
    i.up = (a->ifa_flags & IFF_UP) != 0 && (a->ifa_flags & IFF_RUNNING) != 0;
    if (a->ifa_addr == nullptr) continue;
    char buf[INET6_ADDRSTRLEN];
    if (a->ifa_addr->sa_family == AF_INET &&
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, buf,
                  sizeof buf) != nullptr) {
      i.v4.push_back(buf);
    } else if (a->ifa_addr->sa_family == AF_INET6 &&
               inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ifa_addr)->sin6_addr, buf,
                         sizeof buf) != nullptr) {
      i.v6.push_back(buf);
    }
  }
  freeifaddrs(addrs);
  return out;
}

std::string Describe(const std::map<std::string, Interface>& all) {
  std::string out;
  for (const auto& [name, i] : all) {
    std::string addrs;
    for (const auto& a : i.v4) addrs += (addrs.empty() ? "" : ", ") + a;
    for (const auto& a : i.v6) addrs += (addrs.empty() ? "" : ", ") + a;
    out += "  " + name + (i.up ? " (up)" : " (down)") + (addrs.empty() ? "" : ": " + addrs) + "\n";
  }
  return out;
}

bool IsAddress(const std::string& s) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// "" when `target` can carry this node's clustering traffic, else why not.
std::string TargetProblem(const std::string& target, const std::map<std::string, Interface>& all) {
  const std::string list = "this machine's interfaces:\n" + Describe(all);
  if (IsAddress(target)) {
    for (const auto& [name, i] : all) {
      for (const auto* addrs : {&i.v4, &i.v6}) {
        for (const auto& a : *addrs) {
          if (a != target) continue;
          if (!i.up)
            return target + " is on " + name + ", which is down (ip link set " + name + " up); " +
                   list;
          return "";
        }
      }
    }
    return "no interface of this machine has the address " + target + "; " + list;
  }
  auto it = all.find(target);
  if (it == all.end()) {
    return "'" + target + "' is neither an IP address nor an interface of this machine; " + list;
  }
  if (!it->second.up) return "interface " + target + " is down (ip link set " + target + " up)";
  if (it->second.v4.empty()) {
    return "interface " + target +
           " has no IPv4 address (give an address instead: tandem cluster localnode ADDRESS)";
  }
  return "";
}

int Fail(const std::string& msg, int rc = 1) {
  std::fprintf(stderr, "ERROR : %s\n", msg.c_str());
  return rc;
}

// The new file, checked by loading it as the agent would, then renamed over
// the old one with its mode and owner.
Status ReplaceConfig(const std::string& path, const std::string& text) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Error(ErrorCode::kIo, "cannot stat " + path);
  const std::string tmp = path + ".localnode.tmp";
  TANDEM_TRY(WriteFileAtomic(tmp, text, st.st_mode & 07777));
  auto loaded = agent::LoadConfig(tmp);
  if (!loaded) {
    ::unlink(tmp.c_str());
    return Error(ErrorCode::kInvalidArgument, "the changed file would not load (" +
                                                  loaded.error().message() + "); " + path +
                                                  " is unchanged");
  }
  if (::chown(tmp.c_str(), st.st_uid, st.st_gid) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Error(ErrorCode::kIo, "cannot replace " + path + "; it is unchanged");
  }
  return Ok();
}

bool AgentRuns(const agent::Config& cfg) {
  const std::string lock = cfg.state_dir + "/" + agent::NodeLock::kFileName;
  if (::access(lock.c_str(), F_OK) != 0) return false;
  auto probe = agent::NodeLock::Acquire(cfg.state_dir);
  return !probe && probe.error().code() == ErrorCode::kFailedPrecondition;
}

}  // namespace

int ClusterLocalnode(const Clock& clock, const std::string& config_path,
                     const std::string& target) {
  auto cfg = agent::LoadConfig(config_path);
  if (!cfg) return Fail(cfg.error().message(), 2);
  const auto all = ListInterfaces();
  const std::string now = cfg->node_interface.empty()
                              ? cfg->node_address
                              : cfg->node_interface + " (" + cfg->node_address + ")";
  if (target.empty()) {
    std::printf("Interface             : %s\n\nthis machine's interfaces:\n%s", now.c_str(),
                Describe(all).c_str());
    return 0;
  }
  auto state = agent::LoadLocalState(cfg->state_path());
  if (state && state->member) {
    return Fail("node " + cfg->node_name + " is a member of cluster " + state->cluster +
                " and clusters on " + now +
                ": its peers, etcd and replication know it by that address, so it is not "
                "changed under them. To move it, remove the node (`tandem cluster remove " +
                cfg->node_name + "` from another node), set `tandem cluster localnode " + target +
                "`, then join again; moving a member in place, one node at a time, is the "
                "configuration issue's `tandem cluster set-address`, not built yet");
  }
  if (std::string why = TargetProblem(target, all); !why.empty()) return Fail(why);
  auto text = ReadFile(cfg->path);
  if (!text) return Fail("cannot read " + cfg->path + ": " + text.error().message());
  const bool address = IsAddress(target);
  auto edited = agent::SetClusteringEndpoint(*text, address ? "" : target, address ? target : "");
  if (!edited) return Fail(edited.error().message() + " in " + cfg->path);
  if (*edited == *text) {
    std::printf("node %s already clusters on %s; nothing changed\n", cfg->node_name.c_str(),
                now.c_str());
    return 0;
  }
  if (auto st = ReplaceConfig(cfg->path, *edited); !st.ok()) return Fail(st.error().message());
  auto after = agent::LoadConfig(cfg->path);
  const std::string shown = after ? (after->node_interface.empty()
                                         ? after->node_address
                                         : after->node_interface + " (" + after->node_address + ")")
                                  : target;
  std::printf("node %s clusters on %s now (%s: node.%s)\n", cfg->node_name.c_str(), shown.c_str(),
              cfg->path.c_str(), address ? "address" : "interface");
  std::fflush(stdout);
  if (AgentRuns(*cfg)) return ReloadAgent(clock, cfg->path, 120'000);
  std::printf("the agent uses it when it starts (tandem agent -c %s)\n", cfg->path.c_str());
  return 0;
}

}  // namespace tandem::cli
