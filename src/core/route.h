// Where the client endpoint sends connections: the routing decision.
//
// Pure, like Decide(): the agent hands over the Observation Decide saw and
// the members' PostgreSQL addresses; ComputeRoute returns the targets and a
// one-line reason. No I/O, no clock (time comes in as obs.now). The proxy
// (src/proxy) only carries the route out.
//
// Safety rule 5: writes go only to the member that holds the leader key AND
// reports itself primary; when this node cannot tell (store unreadable, no
// key, the holder not a primary, its address unknown), writes go nowhere.
// Reads go to replicas that stream from that primary on its timeline within
// a lag limit; a replica's lag is measured against the primary, so with no
// write route there is no read route either.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/types.h"

namespace tandem::core {

// A TCP address: host (IP or name) and port.
struct Endpoint {
  std::string host;
  int port = 0;
  bool operator==(const Endpoint& o) const { return host == o.host && port == o.port; }
  bool operator!=(const Endpoint& o) const { return !(*this == o); }
  std::string ToString() const;  // "10.0.0.1:5432"
};

// A member's PostgreSQL, as the proxy connects to it.
struct RouteTarget {
  std::string member;
  Endpoint endpoint;
  bool operator==(const RouteTarget& o) const {
    return member == o.member && endpoint == o.endpoint;
  }
};

struct RouteConfig {
  // A replica further behind the primary than this (bytes of WAL, as the
  // members published them) takes no read-only connections.
  uint64_t read_only_max_lag_bytes = 16ull << 20;
  // With no replica that qualifies, read-only connections go to the primary
  // (reads keep working on a one-node cluster or while replicas catch up).
  bool read_only_fallback_to_primary = true;
  // How long a route stays valid without a newer one (the proxy treats an
  // expired route as none: a stuck HA loop must not route on an old view).
  int64_t validity_ms = 2'000;
};

struct Route {
  std::optional<RouteTarget> read_write;  // none = refuse writes (fail closed)
  std::vector<RouteTarget> read_only;     // sorted by member; empty = refuse reads
  // Monotonic time after which the route is void (obs.now + validity, and
  // never past this node's lease deadline when it is the write target).
  MonoMs valid_until = 0;
  std::string reason;  // one line: why writes go where they go
  bool operator==(const Route& o) const {
    return read_write == o.read_write && read_only == o.read_only;
  }
};

// Whether the decision gives up this node's primary role (demote, step down,
// release the key): what it serves as primary is taken away before it runs.
bool GivesUpPrimary(const Decision& decision);

// addresses: member name -> its PostgreSQL address (from the registrations).
// decision: what this cycle's Decide returned; actions that give up this
// node's primary role (demote, step down, release the key) take the write
// route away from this node before they run.
Route ComputeRoute(const Observation& obs, const Decision& decision,
                   const std::map<std::string, Endpoint>& addresses, const RouteConfig& cfg);

// The route to use this cycle, given the last one published: while the store
// cannot be read, the previous route stands until it expires, so one slow
// read (an etcd election, a timeout) does not cut every client. Safe because
// a remote primary fences itself before its lease can expire (rule 2), and a
// route to this node never outlives its lease deadline; a decision that gives
// up this node's primary role still takes the route away at once.
Route RouteForCycle(const Route& previous, const Observation& obs, const Decision& decision,
                    const std::map<std::string, Endpoint>& addresses, const RouteConfig& cfg);

}  // namespace tandem::core
