#include "proxy/proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <vector>

#include "base/clock.h"
#include "base/log.h"

namespace tandem::proxy {
namespace {

constexpr size_t kBufferSize = 64 * 1024;
// epoll tags: small numbers for the loop's own fds; connections use
// (id << 1) | side with ids from kFirstConnId, so the two never meet.
constexpr uint64_t kWakeTag = 1;
constexpr uint64_t kReadWriteListenerTag = 2;
constexpr uint64_t kReadOnlyListenerTag = 3;
constexpr uint64_t kFirstConnId = 8;
constexpr int kTickMs = 100;

std::string ErrnoText(int err) {
  return std::strerror(err);
}

// A numeric IPv4/IPv6 address and port as a sockaddr; false when not numeric
// (node addresses are IPs: no name lookup may block the loop).
bool ToSockaddr(const std::string& host, int port, sockaddr_storage* ss, socklen_t* len) {
  std::memset(ss, 0, sizeof *ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

std::string PeerText(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(v4->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(v6->sin6_port));
  }
  return "?";
}

void SetNoDelay(int fd) {
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// One direction's bytes in flight: read into [end, cap), written from [begin, end).
struct Buffer {
  std::unique_ptr<char[]> data{new char[kBufferSize]};
  size_t begin = 0;
  size_t end = 0;
  bool Empty() const { return begin == end; }
  size_t Free() const { return kBufferSize - end + begin; }
  // Room at the tail, moving the bytes to the front when that makes room.
  char* Tail(size_t* room) {
    if (begin == end) begin = end = 0;
    if (end == kBufferSize && begin > 0) {
      std::memmove(data.get(), data.get() + begin, end - begin);
      end -= begin;
      begin = 0;
    }
    *room = kBufferSize - end;
    return data.get() + end;
  }
};

Status Listen(const std::string& address, int port, const char* key, int* out) {
  sockaddr_storage ss;
  socklen_t len = 0;
  if (!ToSockaddr(address, port, &ss, &len)) {
    return Error(ErrorCode::kInvalidArgument,
                 "proxy listen address '" + address + "' is not an IP address");
  }
  const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(ErrorCode::kIo, std::string("socket: ") + ErrnoText(errno));
  int one = 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 1024) != 0) {
    const int err = errno;
    ::close(fd);
    return Error(ErrorCode::kIo, std::string("cannot listen on ") + address + ":" +
                                     std::to_string(port) + " (" + key + "): " + ErrnoText(err) +
                                     "; free the port or choose another in the config file");
  }
  *out = fd;
  return Ok();
}

}  // namespace

// What the event loops share: the listeners (each loop's epoll watches them
// with EPOLLEXCLUSIVE, so the kernel hands a new connection to one loop), the
// per-port connection counts the limit applies to, the read-only round
// robin, and the counters.
struct Proxy::Shared {
  int rw_listener = -1, ro_listener = -1;
  std::atomic<int> open[2] = {0, 0};
  std::atomic<uint64_t> accepted{0}, refused{0}, cut{0};
  std::atomic<size_t> next_read{0};  // read-only round robin, over every loop
  ~Shared() {
    for (int fd : {rw_listener, ro_listener}) {
      if (fd >= 0) ::close(fd);
    }
  }
};

class Proxy::Loop {
 public:
  Loop(const Options& opts, const Clock& clock, Shared* shared, int index)
      : opts_(opts), clock_(clock), shared_(*shared), index_(index) {}
  ~Loop() {
    for (auto& [id, c] : conns_) CloseFds(*c);
    for (int fd : {epoll_, wake_, reserve_fd_}) {
      if (fd >= 0) ::close(fd);
    }
  }

  Status Open() {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) return Error(ErrorCode::kIo, "epoll_create1: " + ErrnoText(errno));
    wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_ < 0) return Error(ErrorCode::kIo, "eventfd: " + ErrnoText(errno));
    TANDEM_TRY(Watch(wake_, kWakeTag, EPOLLIN));
    // Kept to give back when accept() runs out of descriptors (see Accept).
    reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (shared_.rw_listener >= 0) {
      TANDEM_TRY(Watch(shared_.rw_listener, kReadWriteListenerTag, EPOLLIN | EPOLLEXCLUSIVE));
    }
    if (shared_.ro_listener >= 0) {
      TANDEM_TRY(Watch(shared_.ro_listener, kReadOnlyListenerTag, EPOLLIN | EPOLLEXCLUSIVE));
    }
    return Ok();
  }

  void Run() {
    std::vector<epoll_event> events(256);
    while (!stop_.load()) {
      const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), kTickMs);
      if (n < 0 && errno != EINTR) {
        TANDEM_CHECK(false, "epoll_wait failed: " + ErrnoText(errno));
      }
      const MonoMs now = clock_.Now();  // read once per pass
      TakePendingRoute(now);
      for (int i = 0; i < n; ++i) Dispatch(events[i], now);
      CheckTimers(now);
    }
    for (auto it = conns_.begin(); it != conns_.end();) {
      Conn& c = *it->second;
      TLOG(Info, "proxy") << "closing " << Describe(c) << ": the proxy is stopping";
      CloseFds(c);
      --shared_.open[c.port];
      it = conns_.erase(it);
    }
  }

  void RequestStop() {
    stop_ = true;
    Wake();
  }

  void SetRoute(const core::Route& route) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_ = route;
      has_pending_ = true;
      last_set_ = route;
    }
    Wake();
  }

  core::Route LastSet() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_set_;
  }

 private:
  enum PortKind { kReadWrite = 0, kReadOnly = 1 };
  static const char* PortName(PortKind p) { return p == kReadWrite ? "read-write" : "read-only"; }

  struct Conn {
    uint64_t id = 0;
    PortKind port = kReadWrite;
    core::RouteTarget target;
    std::string peer;
    int client = -1;
    int backend = -1;
    bool connecting = true;
    MonoMs connect_deadline = 0;
    MonoMs last_activity = 0;
    Buffer to_backend, to_client;
    bool client_eof = false, backend_eof = false;    // the peer sent FIN
    bool client_shut = false, backend_shut = false;  // we sent FIN (after flushing)
    uint32_t client_mask = 0, backend_mask = 0;      // what epoll watches
    bool client_watched = false, backend_watched = false;
  };

  Status Watch(int fd, uint64_t tag, uint32_t mask) {
    epoll_event ev{};
    ev.events = mask;
    ev.data.u64 = tag;
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      return Error(ErrorCode::kIo, "epoll_ctl: " + ErrnoText(errno));
    }
    return Ok();
  }

  void Wake() {
    const uint64_t one = 1;
    if (wake_ >= 0) (void)!::write(wake_, &one, sizeof one);
  }

  std::string Describe(const Conn& c) const {
    return std::string(PortName(c.port)) + " connection from " + c.peer + " to " + c.target.member +
           " (" + c.target.endpoint.ToString() + ")";
  }

  // ---- routes

  void TakePendingRoute(MonoMs now) {
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

  // Puts `next` in force; cuts the connections it no longer allows.
  void Apply(core::Route next) {
    if (next.read_write != route_.read_write && index_ == 0) {
      TLOG(Info, "proxy") << "write target: "
                          << (route_.read_write ? route_.read_write->member : "none") << " -> "
                          << (next.read_write ? next.read_write->member : "none") << " ("
                          << next.reason << ")";
    }
    if (next.read_only != route_.read_only && index_ == 0) {
      std::string set;
      for (const auto& t : next.read_only) set += (set.empty() ? "" : ", ") + t.member;
      TLOG(Info, "proxy") << "read targets: " << (set.empty() ? "none" : set);
    }
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

  // A route the HA loop did not renew in time is void: a stuck loop must not
  // keep routing on an old view.
  void ExpireRoute(MonoMs now) {
    if (now < route_.valid_until || (!route_.read_write && route_.read_only.empty())) return;
    core::Route none;
    none.reason = "the route expired: no update from the HA loop in time";
    Apply(std::move(none));
  }

  bool Allowed(const Conn& c) const {
    if (c.port == kReadWrite) return route_.read_write && *route_.read_write == c.target;
    for (const auto& t : route_.read_only) {
      if (t == c.target) return true;
    }
    return false;
  }

  // ---- events

  void Dispatch(const epoll_event& ev, MonoMs now) {
    const uint64_t tag = ev.data.u64;
    if (tag == kWakeTag) {
      uint64_t v;
      while (::read(wake_, &v, sizeof v) > 0) {
      }
      return;
    }
    if (tag == kReadWriteListenerTag) return Accept(shared_.rw_listener, kReadWrite, now);
    if (tag == kReadOnlyListenerTag) return Accept(shared_.ro_listener, kReadOnly, now);
    auto it = conns_.find(tag >> 1);
    if (it == conns_.end()) return;  // closed earlier in this pass
    Conn& c = *it->second;
    const bool backend_side = (tag & 1) != 0;
    if (backend_side && c.connecting) return FinishConnect(c, now);
    if (ev.events & EPOLLERR) return Close(c.id, "socket error", /*cut=*/false);
    const bool eof = backend_side ? c.backend_eof : c.client_eof;
    if ((ev.events & EPOLLHUP) && eof) {
      // We already took this side's FIN; HUP now means a reset.
      return Close(c.id, "connection reset", false);
    }
    if (ev.events & (EPOLLIN | EPOLLHUP)) {
      if (!ReadSide(c, backend_side, now)) return;
    }
    Pump(c, now);
  }

  void Accept(int listener, PortKind port, MonoMs now) {
    for (;;) {
      sockaddr_storage ss;
      socklen_t len = sizeof ss;
      const int fd =
          accept4(listener, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if ((errno == EMFILE || errno == ENFILE) && reserve_fd_ >= 0) {
          // Out of descriptors: accept with the reserve and close at once,
          // or the level-triggered listener would wake us forever.
          TLOG(Warn, "proxy") << "refused a " << PortName(port)
                              << " connection: out of file descriptors";
          ::close(reserve_fd_);
          const int victim = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
          if (victim >= 0) ::close(victim);
          reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
          ++shared_.refused;
          continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          TLOG(Warn, "proxy") << "accept on the " << PortName(port)
                              << " port: " << ErrnoText(errno);
        }
        return;
      }
      ++shared_.accepted;
      StartConn(fd, PeerText(ss), port, now);
      // One per wake-up: the listener stays readable (level-triggered), so a
      // burst of connections spreads over the loops instead of landing on
      // whichever woke first.
      return;
    }
  }

  void Refuse(int fd, const std::string& peer, PortKind port, const std::string& why) {
    TLOG(Warn, "proxy") << "refused " << PortName(port) << " connection from " << peer << ": "
                        << why;
    ::close(fd);
    ++shared_.refused;
  }

  void StartConn(int fd, const std::string& peer, PortKind port, MonoMs now) {
    ExpireRoute(now);
    std::optional<core::RouteTarget> target;
    if (port == kReadWrite) {
      target = route_.read_write;
    } else if (!route_.read_only.empty()) {
      target = route_.read_only[shared_.next_read++ % route_.read_only.size()];
    }
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
    sockaddr_storage ss;
    socklen_t len = 0;
    if (!ToSockaddr(target->endpoint.host, target->endpoint.port, &ss, &len)) {
      return Refuse(fd, peer, port,
                    "the address of " + target->member + " ('" + target->endpoint.host +
                        "') is not an IP address");
    }
    const int be = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (be < 0) return Refuse(fd, peer, port, std::string("socket: ") + ErrnoText(errno));
    bool connecting = false;
    if (::connect(be, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      if (errno != EINPROGRESS) {
        const int err = errno;
        ::close(be);
        return Refuse(fd, peer, port,
                      "cannot connect to " + target->member + " (" + target->endpoint.ToString() +
                          "): " + ErrnoText(err));
      }
      connecting = true;
    }
    auto c = std::make_unique<Conn>();
    c->id = next_id_++;
    c->port = port;
    c->target = *target;
    c->peer = peer;
    c->client = fd;
    c->backend = be;
    c->connecting = connecting;
    c->connect_deadline = now + opts_.connect_timeout_ms;
    c->last_activity = now;
    SetNoDelay(fd);
    if (!connecting) SetNoDelay(be);
    Conn& ref = *c;
    conns_.emplace(c->id, std::move(c));
    slot.open = nullptr;  // the connection holds its slot until Close
    TLOG(Debug, "proxy") << "opened " << Describe(ref);
    UpdateInterest(ref);
  }

  void FinishConnect(Conn& c, MonoMs now) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c.backend, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == EINPROGRESS || err == EALREADY) return;
    if (err != 0) {
      TLOG(Warn, "proxy") << "refused " << PortName(c.port) << " connection from " << c.peer
                          << ": cannot connect to " << c.target.member << " ("
                          << c.target.endpoint.ToString() << "): " << ErrnoText(err);
      Close(c.id, "", false, /*quiet=*/true);
      ++shared_.refused;
      return;
    }
    c.connecting = false;
    c.last_activity = now;
    SetNoDelay(c.backend);
    Pump(c, now);
  }

  // Reads what the side has into the other direction's buffer. Returns false
  // when the connection was closed.
  bool ReadSide(Conn& c, bool backend_side, MonoMs now) {
    const int fd = backend_side ? c.backend : c.client;
    Buffer& buf = backend_side ? c.to_client : c.to_backend;
    bool& eof = backend_side ? c.backend_eof : c.client_eof;
    while (!eof) {
      size_t room = 0;
      char* tail = buf.Tail(&room);
      if (room == 0) break;
      const ssize_t n = ::read(fd, tail, room);
      if (n > 0) {
        buf.end += static_cast<size_t>(n);
        c.last_activity = now;
        // A short read drained the socket: the next read would only say
        // EAGAIN (level-triggered epoll reports anything that arrives later).
        if (static_cast<size_t>(n) < room) break;
        continue;
      }
      if (n == 0) {
        eof = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      Close(c.id, std::string(backend_side ? "backend" : "client") + " read: " + ErrnoText(errno),
            false);
      return false;
    }
    return true;
  }

  // Writes what can be written both ways, passes FINs on, and closes the
  // connection once both directions are done.
  void Pump(Conn& c, MonoMs now) {
    if (!c.connecting) {
      if (!WriteSide(c, /*to_backend=*/true, now)) return;
    }
    if (!WriteSide(c, /*to_backend=*/false, now)) return;
    if (!c.connecting && c.client_eof && c.to_backend.Empty() && !c.backend_shut) {
      ::shutdown(c.backend, SHUT_WR);
      c.backend_shut = true;
    }
    if (c.backend_eof && c.to_client.Empty() && !c.client_shut) {
      ::shutdown(c.client, SHUT_WR);
      c.client_shut = true;
    }
    if (c.client_shut && c.backend_shut) return Close(c.id, "closed by both ends", false);
    UpdateInterest(c);
  }

  bool WriteSide(Conn& c, bool to_backend, MonoMs now) {
    const int fd = to_backend ? c.backend : c.client;
    Buffer& buf = to_backend ? c.to_backend : c.to_client;
    while (!buf.Empty()) {
      const ssize_t n = ::send(fd, buf.data.get() + buf.begin, buf.end - buf.begin, MSG_NOSIGNAL);
      if (n > 0) {
        const bool all = static_cast<size_t>(n) == buf.end - buf.begin;
        buf.begin += static_cast<size_t>(n);
        c.last_activity = now;
        if (!all) break;  // the socket's send buffer is full: EPOLLOUT says when
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      Close(c.id, std::string(to_backend ? "backend" : "client") + " write: " + ErrnoText(errno),
            false);
      return false;
    }
    return true;
  }

  void UpdateInterest(Conn& c) {
    uint32_t cm = 0, bm = 0;
    if (!c.client_eof && c.to_backend.Free() > 0) cm |= EPOLLIN;
    if (!c.to_client.Empty()) cm |= EPOLLOUT;
    if (c.connecting) {
      bm = EPOLLOUT;
    } else {
      if (!c.backend_eof && c.to_client.Free() > 0) bm |= EPOLLIN;
      if (!c.to_backend.Empty()) bm |= EPOLLOUT;
    }
    // A side that sent and received its FIN has nothing left to report (and
    // would report HUP forever): stop watching it.
    const bool client_done = c.client_eof && c.client_shut;
    const bool backend_done = c.backend_eof && c.backend_shut;
    Rewatch(c.client, (c.id << 1), cm, client_done, &c.client_mask, &c.client_watched);
    Rewatch(c.backend, (c.id << 1) | 1, bm, backend_done, &c.backend_mask, &c.backend_watched);
  }

  void Rewatch(int fd, uint64_t tag, uint32_t mask, bool done, uint32_t* current, bool* watched) {
    if (done) {
      if (*watched) (void)epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
      *watched = false;
      return;
    }
    if (*watched && *current == mask) return;
    epoll_event ev{};
    ev.events = mask;
    ev.data.u64 = tag;
    const int rc = epoll_ctl(epoll_, *watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
    TANDEM_CHECK(rc == 0, "epoll_ctl on a connection socket: " + ErrnoText(errno));
    *watched = true;
    *current = mask;
  }

  void CheckTimers(MonoMs now) {
    ExpireRoute(now);
    std::vector<std::pair<uint64_t, std::string>> doomed;
    for (const auto& [id, c] : conns_) {
      if (c->connecting && now >= c->connect_deadline) {
        doomed.emplace_back(id, "");
      } else if (opts_.idle_timeout_ms > 0 && now - c->last_activity >= opts_.idle_timeout_ms) {
        doomed.emplace_back(
            id, "idle for " + std::to_string(opts_.idle_timeout_ms) + " ms (proxy.idle_timeout)");
      }
    }
    for (const auto& [id, why] : doomed) {
      Conn& c = *conns_[id];
      if (why.empty()) {
        TLOG(Warn, "proxy") << "refused " << PortName(c.port) << " connection from " << c.peer
                            << ": " << c.target.member << " (" << c.target.endpoint.ToString()
                            << ") did not answer within " << opts_.connect_timeout_ms << " ms";
        Close(id, "", false, /*quiet=*/true);
        ++shared_.refused;
      } else {
        Cut(id, why);
      }
    }
  }

  // A connection the proxy closes on purpose: always logged.
  void Cut(uint64_t id, const std::string& why) {
    TLOG(Info, "proxy") << "cut " << Describe(*conns_[id]) << ": " << why;
    ++shared_.cut;
    Close(id, why, true, /*quiet=*/true);
  }

  void Close(uint64_t id, const std::string& why, bool cut, bool quiet = false) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    Conn& c = *it->second;
    if (!quiet) TLOG(Debug, "proxy") << "closed " << Describe(c) << ": " << why;
    CloseFds(c);
    --shared_.open[c.port];
    conns_.erase(it);
  }

  void CloseFds(Conn& c) {
    // close() also takes the fds out of the epoll set (they are never dup'ed).
    if (c.client >= 0) ::close(c.client);
    if (c.backend >= 0) ::close(c.backend);
    c.client = c.backend = -1;
  }

  Options opts_;
  const Clock& clock_;
  Shared& shared_;
  const int index_;  // 0 logs route changes (every loop applies them)
  int epoll_ = -1, wake_ = -1, reserve_fd_ = -1;
  std::atomic<bool> stop_{false};

  mutable std::mutex mu_;  // guards pending_, has_pending_, last_set_
  core::Route pending_;
  bool has_pending_ = false;
  core::Route last_set_;

  // Loop thread only.
  core::Route route_;  // in force
  std::map<uint64_t, std::unique_ptr<Conn>> conns_;
  uint64_t next_id_ = kFirstConnId;
};

Proxy::Proxy(Options opts, const Clock& clock) : opts_(std::move(opts)), clock_(clock) {}

Proxy::~Proxy() {
  Stop();
}

int Proxy::LoopCount(const Options& opts) {
  if (opts.threads > 0) return opts.threads;
  const unsigned cores = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp<unsigned>(cores, 1, 4));
}

Status Proxy::Start() {
  if (!threads_.empty()) return Ok();
  auto shared = std::make_unique<Shared>();
  if (opts_.read_write_port > 0) {
    TANDEM_TRY(Listen(opts_.listen_address, opts_.read_write_port, "proxy.read_write_port",
                      &shared->rw_listener));
  }
  if (opts_.read_only_port > 0) {
    TANDEM_TRY(Listen(opts_.listen_address, opts_.read_only_port, "proxy.read_only_port",
                      &shared->ro_listener));
  }
  std::vector<std::unique_ptr<Loop>> loops;
  const int n = LoopCount(opts_);
  for (int i = 0; i < n; ++i) {
    auto loop = std::make_unique<Loop>(opts_, clock_, shared.get(), i);
    TANDEM_TRY(loop->Open());
    loops.push_back(std::move(loop));
  }
  shared_ = std::move(shared);
  loops_ = std::move(loops);
  for (auto& loop : loops_) threads_.emplace_back([l = loop.get()] { l->Run(); });
  TLOG(Info, "proxy") << "listening on " << opts_.listen_address << ": read-write port "
                      << opts_.read_write_port << ", read-only port " << opts_.read_only_port
                      << " (max " << opts_.max_connections << " connections per port, " << n
                      << " event loop" << (n == 1 ? "" : "s") << ")";
  return Ok();
}

void Proxy::Stop() {
  if (threads_.empty()) return;
  for (auto& loop : loops_) loop->RequestStop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  loops_.clear();
  shared_.reset();
  TLOG(Info, "proxy") << "stopped";
}

void Proxy::SetRoute(const core::Route& route) {
  for (auto& loop : loops_) loop->SetRoute(route);
}

Stats Proxy::GetStats() const {
  Stats s;
  if (!shared_) return s;
  s.read_write_open = shared_->open[0].load();
  s.read_only_open = shared_->open[1].load();
  s.accepted = shared_->accepted.load();
  s.refused = shared_->refused.load();
  s.cut = shared_->cut.load();
  return s;
}

core::Route Proxy::CurrentRoute() const {
  return loops_.empty() ? core::Route{} : loops_.front()->LastSet();
}

}  // namespace tandem::proxy
