// One event loop of the proxy (Proxy::Loop): its epoll set and wake-up
// eventfd, the pass (read the clock once, take a new route, dispatch the
// events, check the timers), and closing connections. Runs on the loop's own
// thread; SetRoute, LastSet and RequestStop are the only calls from other
// threads (under mu_, or the stop_ atomic and the eventfd).
#include "proxy/loop.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "base/log.h"

namespace tandem::proxy {
using internal::ErrnoText;

Proxy::Shared::~Shared() {
  for (int fd : {rw_listener, ro_listener}) {
    if (fd >= 0) ::close(fd);
  }
}

Proxy::Loop::~Loop() {
  for (auto& [id, c] : conns_) CloseFds(*c);
  for (int fd : {epoll_, wake_, reserve_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

Status Proxy::Loop::Open() {
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) return Error(ErrorCode::kIo, "epoll_create1: " + ErrnoText(errno));
  wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_ < 0) return Error(ErrorCode::kIo, "eventfd: " + ErrnoText(errno));
  TANDEM_TRY(Watch(wake_, internal::kWakeTag, EPOLLIN));
  // Kept to give back when accept() runs out of descriptors (see Accept).
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (shared_.rw_listener >= 0) {
    TANDEM_TRY(
        Watch(shared_.rw_listener, internal::kReadWriteListenerTag, EPOLLIN | EPOLLEXCLUSIVE));
  }
  if (shared_.ro_listener >= 0) {
    TANDEM_TRY(
        Watch(shared_.ro_listener, internal::kReadOnlyListenerTag, EPOLLIN | EPOLLEXCLUSIVE));
  }
  return Ok();
}

void Proxy::Loop::Run() {
  std::vector<epoll_event> events(256);
  while (!stop_.load()) {
    // No timer can fire with no connection open (kTickMs): an idle proxy
    // costs no wake-ups.
    const int timeout = conns_.empty() ? -1 : internal::kTickMs;
    const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0 && errno != EINTR) {
      TANDEM_CHECK(false, "epoll_wait failed: " + ErrnoText(errno));
    }
    const MonoMs now = clock_.Now();  // read once per pass
    TakePendingRoute(now);
    for (int i = 0; i < n; ++i) Dispatch(events[i], now);
    CheckTimers(now);
  }
  CloseAll();
}

void Proxy::Loop::CloseAll() {
  for (auto it = conns_.begin(); it != conns_.end();) {
    Conn& c = *it->second;
    TLOG(Info, "proxy") << "closing " << Describe(c) << ": the proxy is stopping";
    CloseFds(c);
    --shared_.open[c.port];
    it = conns_.erase(it);
  }
}

void Proxy::Loop::RequestStop() {
  stop_ = true;
  Wake();
}

void Proxy::Loop::SetRoute(const core::Route& route) {
  bool urgent = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The HA loop hands over the same targets every cycle with a later
    // expiry: that needs no wake-up. The loop takes it at its next pass (an
    // accept takes it before routing; open connections tick), long before
    // the expiry it replaces, which was at least one TTL minus a cycle ahead.
    urgent = !(route.read_write == last_set_.read_write &&
               route.read_only == last_set_.read_only &&
               route.valid_until >= last_set_.valid_until);
    pending_ = route;
    has_pending_ = true;
    last_set_ = route;
  }
  if (urgent) Wake();
}

core::Route Proxy::Loop::LastSet() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_set_;
}

Status Proxy::Loop::Watch(int fd, uint64_t tag, uint32_t mask) {
  epoll_event ev{};
  ev.events = mask;
  ev.data.u64 = tag;
  if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    return Error(ErrorCode::kIo, "epoll_ctl: " + ErrnoText(errno));
  }
  return Ok();
}

void Proxy::Loop::Wake() {
  const uint64_t one = 1;
  if (wake_ >= 0) (void)!::write(wake_, &one, sizeof one);
}

std::string Proxy::Loop::Describe(const Conn& c) const {
  return std::string(PortName(c.port)) + " connection from " + c.peer + " to " + c.target.member +
         " (" + c.target.endpoint.ToString() + ")";
}

void Proxy::Loop::DrainWake() {
  uint64_t v;
  while (::read(wake_, &v, sizeof v) > 0) {
  }
}

void Proxy::Loop::Dispatch(const epoll_event& ev, MonoMs now) {
  const uint64_t tag = ev.data.u64;
  if (tag == internal::kWakeTag) return DrainWake();
  if (tag == internal::kReadWriteListenerTag) return Accept(shared_.rw_listener, kReadWrite, now);
  if (tag == internal::kReadOnlyListenerTag) return Accept(shared_.ro_listener, kReadOnly, now);
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

void Proxy::Loop::CheckTimers(MonoMs now) {
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
    if (why.empty()) {
      ConnectTimedOut(id);
    } else {
      Cut(id, why);
    }
  }
}

void Proxy::Loop::ConnectTimedOut(uint64_t id) {
  Conn& c = *conns_[id];
  TLOG(Warn, "proxy") << "refused " << PortName(c.port) << " connection from " << c.peer << ": "
                      << c.target.member << " (" << c.target.endpoint.ToString()
                      << ") did not answer within " << opts_.connect_timeout_ms << " ms";
  // Counted before the close: whoever sees the client's connection end
  // (a test, a scrape) sees the refusal counted.
  ++shared_.refused;
  Close(id, "", false, /*quiet=*/true);
}

void Proxy::Loop::Cut(uint64_t id, const std::string& why) {
  TLOG(Info, "proxy") << "cut " << Describe(*conns_[id]) << ": " << why;
  ++shared_.cut;
  Close(id, why, true, /*quiet=*/true);
}

void Proxy::Loop::Close(uint64_t id, const std::string& why, bool /*cut*/, bool quiet) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  if (!quiet) TLOG(Debug, "proxy") << "closed " << Describe(c) << ": " << why;
  CloseFds(c);
  --shared_.open[c.port];
  conns_.erase(it);
}

void Proxy::Loop::CloseFds(Conn& c) {
  // close() also takes the fds out of the epoll set (they are never dup'ed).
  if (c.client >= 0) ::close(c.client);
  if (c.backend >= 0) ::close(c.backend);
  c.client = c.backend = -1;
}

}  // namespace tandem::proxy
