// One connection's bytes, client to backend and back: finishing the backend
// connect, reading a side into the other direction's buffer, writing what can
// be written, passing each FIN on once its direction is flushed, and what
// epoll watches for each side. Bytes pass untouched. Runs on the thread of
// the loop that owns the connection.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "base/log.h"
#include "proxy/loop.h"

namespace tandem::proxy {
using internal::ErrnoText;

void Proxy::Loop::FinishConnect(Conn& c, MonoMs now) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c.backend, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err == EINPROGRESS || err == EALREADY) return;
  if (err != 0) {
    TLOG(Warn, "proxy") << "refused " << PortName(c.port) << " connection from " << c.peer
                        << ": cannot connect to " << c.target.member << " ("
                        << c.target.endpoint.ToString() << "): " << ErrnoText(err);
    ++shared_.refused;  // before the close, as in ConnectTimedOut
    Close(c.id, "", false, /*quiet=*/true);
    return;
  }
  c.connecting = false;
  c.last_activity = now;
  internal::SetNoDelay(c.backend);
  Pump(c, now);
}

bool Proxy::Loop::ReadSide(Conn& c, bool backend_side, MonoMs now) {
  const int fd = backend_side ? c.backend : c.client;
  internal::Buffer& buf = backend_side ? c.to_client : c.to_backend;
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

void Proxy::Loop::Pump(Conn& c, MonoMs now) {
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

bool Proxy::Loop::WriteSide(Conn& c, bool to_backend, MonoMs now) {
  const int fd = to_backend ? c.backend : c.client;
  internal::Buffer& buf = to_backend ? c.to_backend : c.to_client;
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

void Proxy::Loop::UpdateInterest(Conn& c) {
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

void Proxy::Loop::Rewatch(int fd, uint64_t tag, uint32_t mask, bool done, uint32_t* current,
                          bool* watched) {
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

}  // namespace tandem::proxy
