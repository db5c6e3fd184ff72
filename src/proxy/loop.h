// Internal to src/proxy: what the files behind proxy::Proxy share. The event
// loop (Proxy::Loop), one connection's state (Conn) and its buffers, what the
// loops share (Proxy::Shared), and the socket helpers. Which file does what:
//   proxy.cc    Proxy's public side: Start (listeners, loops), Stop, SetRoute
//   loop.cc     one epoll loop: its pass, event dispatch, timers, closing
//   routing.cc  the route in force and accepting a connection onto it
//   conn.cc     one connection's bytes: connect, read, write, FINs, interest
//   sockets.cc  addresses, listeners, socket options
// A Loop's methods run on its own thread, but for SetRoute/LastSet/
// RequestStop (any thread, under mu_ or an atomic).
#pragma once

#include <sys/epoll.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "base/clock.h"
#include "base/result.h"
#include "core/route.h"
#include "proxy/proxy.h"

namespace tandem::proxy {
namespace internal {

constexpr size_t kBufferSize = 64 * 1024;
// epoll tags: small numbers for the loop's own fds; connections use
// (id << 1) | side with ids from kFirstConnId, so the two never meet.
constexpr uint64_t kWakeTag = 1;
constexpr uint64_t kReadWriteListenerTag = 2;
constexpr uint64_t kReadOnlyListenerTag = 3;
constexpr uint64_t kFirstConnId = 8;
// The timer tick while connections are open (connect and idle timeouts, a
// route expiring under open connections). With none open the loop sleeps
// until an event: a route's expiry then matters only to the next accept,
// which checks it first.
constexpr int kTickMs = 100;

// ---- sockets.cc

std::string ErrnoText(int err);
// A numeric IPv4/IPv6 address and port as a sockaddr; false when not numeric
// (node addresses are IPs: no name lookup may block the loop).
bool ToSockaddr(const std::string& host, int port, sockaddr_storage* ss, socklen_t* len);
std::string PeerText(const sockaddr_storage& ss);
void SetNoDelay(int fd);
// A non-blocking listener on address:port; the error names `key` (the config
// key that sets the port) and the fix.
Status Listen(const std::string& address, int port, const char* key, int* out);

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

}  // namespace internal

// What the event loops share: the listeners (each loop's epoll watches them
// with EPOLLEXCLUSIVE, so the kernel hands a new connection to one loop), the
// per-port connection counts the limit applies to, the read-only round
// robin, and the counters.
struct Proxy::Shared {
  int rw_listener = -1, ro_listener = -1;
  std::atomic<int> open[2] = {0, 0};
  std::atomic<uint64_t> accepted{0}, refused{0}, cut{0};
  std::atomic<size_t> next_read{0};  // read-only round robin, over every loop
  ~Shared();
};

class Proxy::Loop {
 public:
  Loop(const Options& opts, const Clock& clock, Shared* shared, int index)
      : opts_(opts), clock_(clock), shared_(*shared), index_(index) {}
  ~Loop();

  // The epoll set, the wake-up eventfd and the listeners in it.
  Status Open();
  // The loop's thread: passes until RequestStop, then closes its connections.
  void Run();
  // Any thread.
  void RequestStop();
  void SetRoute(const core::Route& route);
  core::Route LastSet() const;

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
    internal::Buffer to_backend, to_client;
    bool client_eof = false, backend_eof = false;    // the peer sent FIN
    bool client_shut = false, backend_shut = false;  // we sent FIN (after flushing)
    uint32_t client_mask = 0, backend_mask = 0;      // what epoll watches
    bool client_watched = false, backend_watched = false;
  };

  // ---- loop.cc: the pass, its events and timers, closing
  Status Watch(int fd, uint64_t tag, uint32_t mask);
  void Wake();
  std::string Describe(const Conn& c) const;
  void Dispatch(const epoll_event& ev, MonoMs now);
  void DrainWake();
  void CloseAll();
  void CheckTimers(MonoMs now);
  void ConnectTimedOut(uint64_t id);
  // A connection the proxy closes on purpose: always logged.
  void Cut(uint64_t id, const std::string& why);
  void Close(uint64_t id, const std::string& why, bool cut, bool quiet = false);
  void CloseFds(Conn& c);

  // ---- routing.cc: the route in force, accepting onto it
  void TakePendingRoute(MonoMs now);
  // Puts `next` in force; cuts the connections it no longer allows.
  void Apply(core::Route next);
  void LogRouteChange(const core::Route& next) const;
  // A route the HA loop did not renew in time is void: a stuck loop must not
  // keep routing on an old view.
  void ExpireRoute(MonoMs now);
  bool Allowed(const Conn& c) const;
  void Accept(int listener, PortKind port, MonoMs now);
  void RefuseOutOfFds(int listener, PortKind port);
  void Refuse(int fd, const std::string& peer, PortKind port, const std::string& why);
  void StartConn(int fd, const std::string& peer, PortKind port, MonoMs now);
  std::optional<core::RouteTarget> PickTarget(PortKind port);
  // A non-blocking connect to the target; the reason it failed, or "".
  std::string ConnectBackend(const core::RouteTarget& target, int* backend, bool* connecting);
  Conn& AddConn(int client, int backend, bool connecting, const std::string& peer, PortKind port,
                const core::RouteTarget& target, MonoMs now);

  // ---- conn.cc: one connection's bytes
  void FinishConnect(Conn& c, MonoMs now);
  // Reads what the side has into the other direction's buffer. Returns false
  // when the connection was closed.
  bool ReadSide(Conn& c, bool backend_side, MonoMs now);
  // Writes what can be written both ways, passes FINs on, and closes the
  // connection once both directions are done.
  void Pump(Conn& c, MonoMs now);
  bool WriteSide(Conn& c, bool to_backend, MonoMs now);
  void UpdateInterest(Conn& c);
  void Rewatch(int fd, uint64_t tag, uint32_t mask, bool done, uint32_t* current, bool* watched);

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
  uint64_t next_id_ = internal::kFirstConnId;
};

}  // namespace tandem::proxy
