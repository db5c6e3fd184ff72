// Where a connection goes: the route in force in one loop (a new route taken
// from SetRoute, applied, and expired when the HA loop stops renewing it,
// each change cutting the connections it no longer allows), and accepting a
// connection onto it: the target, the per-port limit, the backend connect,
// or a refusal with its reason. Runs on the loop's thread.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "base/log.h"
#include "proxy/loop.h"

namespace tandem::proxy {
using internal::ErrnoText;

// ---- the route

void Proxy::Loop::TakePendingRoute(MonoMs now) {
  core::Route next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!has_pending_) return;
    next = std::move(pending_);
    has_pending_ = false;
  }
  if (now >= next.valid_until && (next.read_write || !next.read_only.empty())) {
    next.read_write.reset();
    next.read_only.clear();
    next.reason = "the route arrived already expired: no route";
  }
  Apply(std::move(next));
}

void Proxy::Loop::LogRouteChange(const core::Route& next) const {
  if (index_ != 0) return;
  if (next.read_write != route_.read_write) {
    TLOG(Info, "proxy") << "write target: "
                        << (route_.read_write ? route_.read_write->member : "none") << " -> "
                        << (next.read_write ? next.read_write->member : "none") << " ("
                        << next.reason << ")";
  }
  if (next.read_only != route_.read_only) {
    std::string set;
    for (const auto& t : next.read_only) set += (set.empty() ? "" : ", ") + t.member;
    TLOG(Info, "proxy") << "read targets: " << (set.empty() ? "none" : set);
  }
}

void Proxy::Loop::Apply(core::Route next) {
  LogRouteChange(next);
  route_ = std::move(next);
  std::vector<uint64_t> doomed;
  for (const auto& [id, c] : conns_) {
    if (!Allowed(*c)) doomed.push_back(id);
  }
  for (uint64_t id : doomed) {
    Conn& c = *conns_[id];
    const std::string why =
        c.port == kReadWrite
            ? (route_.read_write ? "the write target changed to " + route_.read_write->member
                                 : "no write target any more (" + route_.reason + ")")
            : std::string("the node is no longer a read target");
    Cut(id, why);
  }
}

void Proxy::Loop::ExpireRoute(MonoMs now) {
  if (now < route_.valid_until || (!route_.read_write && route_.read_only.empty())) return;
  core::Route none;
  none.reason = "the route expired: no update from the HA loop in time";
  Apply(std::move(none));
}

bool Proxy::Loop::Allowed(const Conn& c) const {
  if (c.port == kReadWrite) return route_.read_write && *route_.read_write == c.target;
  for (const auto& t : route_.read_only) {
    if (t == c.target) return true;
  }
  return false;
}

// ---- accepting

void Proxy::Loop::Accept(int listener, PortKind port, MonoMs now) {
  for (;;) {
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    const int fd =
        accept4(listener, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && reserve_fd_ >= 0) {
        RefuseOutOfFds(listener, port);
        continue;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        TLOG(Warn, "proxy") << "accept on the " << PortName(port) << " port: " << ErrnoText(errno);
      }
      return;
    }
    ++shared_.accepted;
    StartConn(fd, internal::PeerText(ss), port, now);
    // One per wake-up: the listener stays readable (level-triggered), so a
    // burst of connections spreads over the loops instead of landing on
    // whichever woke first.
    return;
  }
}

// Out of descriptors: accept with the reserve and close at once, or the
// level-triggered listener would wake us forever.
void Proxy::Loop::RefuseOutOfFds(int listener, PortKind port) {
  TLOG(Warn, "proxy") << "refused a " << PortName(port) << " connection: out of file descriptors";
  ++shared_.refused;  // before the close, as in Refuse
  ::close(reserve_fd_);
  const int victim = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (victim >= 0) ::close(victim);
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void Proxy::Loop::Refuse(int fd, const std::string& peer, PortKind port, const std::string& why) {
  TLOG(Warn, "proxy") << "refused " << PortName(port) << " connection from " << peer << ": " << why;
  ++shared_.refused;  // before the close: whoever sees it end sees it counted
  ::close(fd);
}

std::optional<core::RouteTarget> Proxy::Loop::PickTarget(PortKind port) {
  if (port == kReadWrite) return route_.read_write;
  if (route_.read_only.empty()) return std::nullopt;
  return route_.read_only[shared_.next_read++ % route_.read_only.size()];
}

std::string Proxy::Loop::ConnectBackend(const core::RouteTarget& target, int* backend,
                                        bool* connecting) {
  sockaddr_storage ss;
  socklen_t len = 0;
  if (!internal::ToSockaddr(target.endpoint.host, target.endpoint.port, &ss, &len)) {
    return "the address of " + target.member + " ('" + target.endpoint.host +
           "') is not an IP address";
  }
  const int be = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (be < 0) return std::string("socket: ") + ErrnoText(errno);
  *connecting = false;
  if (::connect(be, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno != EINPROGRESS) {
      const int err = errno;
      ::close(be);
      return "cannot connect to " + target.member + " (" + target.endpoint.ToString() +
             "): " + ErrnoText(err);
    }
    *connecting = true;
  }
  *backend = be;
  return "";
}

void Proxy::Loop::StartConn(int fd, const std::string& peer, PortKind port, MonoMs now) {
  ExpireRoute(now);
  const std::optional<core::RouteTarget> target = PickTarget(port);
  if (!target) {
    return Refuse(fd, peer, port,
                  port == kReadWrite ? "no primary known, fail closed (" + route_.reason + ")"
                                     : "no read target (" + route_.reason + ")");
  }
  // Counted before the connection exists, so two loops cannot both take
  // the last slot.
  if (shared_.open[port].fetch_add(1) >= opts_.max_connections) {
    --shared_.open[port];
    return Refuse(fd, peer, port,
                  "connection limit reached (" + std::to_string(opts_.max_connections) +
                      " open; proxy.max_connections)");
  }
  struct Slot {
    std::atomic<int>* open;
    ~Slot() {
      if (open != nullptr) --*open;
    }
  } slot{&shared_.open[port]};
  int be = -1;
  bool connecting = false;
  if (std::string why = ConnectBackend(*target, &be, &connecting); !why.empty()) {
    return Refuse(fd, peer, port, why);
  }
  Conn& c = AddConn(fd, be, connecting, peer, port, *target, now);
  slot.open = nullptr;  // the connection holds its slot until Close
  TLOG(Debug, "proxy") << "opened " << Describe(c);
  UpdateInterest(c);
}

Proxy::Loop::Conn& Proxy::Loop::AddConn(int client, int backend, bool connecting,
                                        const std::string& peer, PortKind port,
                                        const core::RouteTarget& target, MonoMs now) {
  auto c = std::make_unique<Conn>();
  c->id = next_id_++;
  c->port = port;
  c->target = target;
  c->peer = peer;
  c->client = client;
  c->backend = backend;
  c->connecting = connecting;
  c->connect_deadline = now + opts_.connect_timeout_ms;
  c->last_activity = now;
  internal::SetNoDelay(client);
  if (!connecting) internal::SetNoDelay(backend);
  Conn& ref = *c;
  conns_.emplace(c->id, std::move(c));
  return ref;
}

}  // namespace tandem::proxy
