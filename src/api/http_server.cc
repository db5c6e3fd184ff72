// The event loop of http_server.h: the listener, every connection's state
// and deadline, and the hand-over of requests to workers and of their
// answers back. Runs on its own event thread; workers only run handlers and
// post the serialized answer back through the completion queue + eventfd.
#include "api/http_server.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "api/http_parse.h"
#include "api/http_wire.h"
#include "api/http_workers.h"
#include "base/log.h"
#include "base/thread_name.h"

namespace tandem::api {
namespace {

constexpr MonoMs kNever = std::numeric_limits<MonoMs>::max();
constexpr MonoMs kRefusalLogEveryMs = 10'000;
constexpr MonoMs kAcceptPauseMs = 100;  // after EMFILE: the listener stays readable
constexpr int kAcceptsPerPass = 64;
// Bodies being read or waiting for a handler, all connections together: 512
// connections with 1 MiB each would be half a GiB; past this budget a new
// request with a body is a 503 (the clients' bodies are small JSON).
constexpr size_t kBodyBudget = 16 << 20;

}  // namespace

class HttpServer::Loop {
 public:
  Loop(const Clock& clock, HttpServerOptions o)
      : clock_(clock), o_(std::move(o)), workers_(o_.workers, o_.queue) {}
  ~Loop() { Stop(); }

  Status Listen(const std::string& host, int port);
  void Start();
  void Stop();
  int port() const { return port_; }

 private:
  enum class Phase { kHandshake, kHead, kBody, kHandling, kWrite, kLinger };
  struct Conn {
    uint64_t id = 0;
    int fd = -1;
    SSL* ssl = nullptr;
    std::string addr;
    Phase phase = Phase::kHead;
    MonoMs deadline = kNever;
    short events = POLLIN;
    std::string in;
    HeadParse head;
    std::string out;
    size_t out_pos = 0;
    size_t reserved = 0;  // of the body budget
  };
  struct Done {
    uint64_t id;
    std::string bytes;
  };

  void Run();
  void Accept(MonoMs now);
  void Refuse(int fd, const std::string& addr, const char* why, int open, MonoMs now);
  void Handle(Conn& c, short revents, MonoMs now);
  void Read(Conn& c, MonoMs now);
  void OnBytes(Conn& c, MonoMs now);
  void Dispatch(Conn& c, MonoMs now);
  void Reply(Conn& c, const std::string& bytes, MonoMs now);
  void Write(Conn& c, MonoMs now);
  void Linger(Conn& c, MonoMs now);
  void Expire(Conn& c);
  void Close(Conn& c);
  void TakeAnswers(MonoMs now);
  long ReadSome(Conn& c, char* buf, size_t len);  // IoRead on c
  long WriteSome(Conn& c);                        // IoWrite of c.out's rest

  const Clock& clock_;
  const HttpServerOptions o_;
  WorkerPool workers_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  bool started_ = false;

  // The event thread's own state.
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::unordered_map<std::string, int> per_address_;
  uint64_t next_id_ = 1;
  MonoMs accept_paused_until_ = 0;
  MonoMs last_refusal_log_ = std::numeric_limits<MonoMs>::min() / 2;
  int refusals_unlogged_ = 0;
  size_t body_bytes_ = 0;  // reserved by connections, <= kBodyBudget

  // Shared with the workers and Stop().
  std::mutex mu_;
  std::vector<Done> done_;
  bool stopping_ = false;
};

Status HttpServer::Loop::Listen(const std::string& host, int port) {
  auto fd = ListenSocket(host, port, o_.config_key);
  if (!fd.ok()) return fd.error();
  listen_fd_ = *fd;
  port_ = BoundPort(listen_fd_);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return Error(ErrorCode::kInternal, "cannot create an eventfd for the API");
  return Ok();
}

void HttpServer::Loop::Start() {
  if (started_ || listen_fd_ < 0) return;
  started_ = true;
  if (o_.routes != nullptr) workers_.Start();
  thread_ = std::thread([this] { Run(); });
}

void HttpServer::Loop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  if (wake_fd_ >= 0) {
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
  workers_.Stop();
  for (auto& [id, c] : conns_) {
    if (c->ssl != nullptr) SSL_free(c->ssl);
    ::close(c->fd);
  }
  conns_.clear();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
}

void HttpServer::Loop::Run() {
  // A TLS write to a peer that left raises SIGPIPE; here it is an error code.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  NameThisThread("http-" + o_.name);
  std::vector<pollfd> fds;
  std::vector<uint64_t> ids;
  for (;;) {
    MonoMs now = clock_.Now();
    MonoMs next = kNever;
    fds.clear();
    ids.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    const bool accepting = now >= accept_paused_until_;
    if (accepting) {
      fds.push_back({listen_fd_, POLLIN, 0});
    } else {
      next = accept_paused_until_;
    }
    for (auto& [id, c] : conns_) {
      fds.push_back({c->fd, c->events, 0});
      ids.push_back(id);
      next = std::min(next, c->deadline);
    }
    const int timeout =
        next == kNever ? -1 : static_cast<int>(std::clamp<MonoMs>(next - now, 0, 60'000));
    const int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) {
      TLOG(Error, "api") << o_.name << ": poll failed: " << strerror(errno);
      return;
    }
    now = clock_.Now();
    if (fds[0].revents != 0) {
      uint64_t v;
      (void)!::read(wake_fd_, &v, sizeof v);
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    TakeAnswers(now);
    if (accepting && fds[1].revents != 0) Accept(now);
    const size_t first = accepting ? 2 : 1;
    for (size_t i = 0; i < ids.size(); ++i) {
      auto it = conns_.find(ids[i]);
      if (it == conns_.end()) continue;
      if (fds[first + i].revents != 0) Handle(*it->second, fds[first + i].revents, now);
    }
    for (auto it = conns_.begin(); it != conns_.end();) {
      Conn& c = *it->second;
      ++it;
      if (c.fd >= 0 && c.deadline <= now) Expire(c);
    }
    for (auto it = conns_.begin(); it != conns_.end();) {
      it = it->second->fd < 0 ? conns_.erase(it) : std::next(it);
    }
  }
}

void HttpServer::Loop::Accept(MonoMs now) {
  for (int i = 0; i < kAcceptsPerPass; ++i) {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    const int fd =
        ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        accept_paused_until_ = now + kAcceptPauseMs;
        Refuse(-1, "?", "out of file descriptors", static_cast<int>(conns_.size()), now);
      }
      return;  // EAGAIN: nothing more to accept (other errors: the peer left)
    }
    std::string addr = AddressText(a);
    auto seen = per_address_.find(addr);
    const int from_addr = seen == per_address_.end() ? 0 : seen->second;
    if (static_cast<int>(conns_.size()) >= o_.max_connections) {
      Refuse(fd, addr, "connections in total", static_cast<int>(conns_.size()), now);
      continue;
    }
    if (from_addr >= o_.max_per_address) {
      Refuse(fd, addr, "connections from this address", from_addr, now);
      continue;
    }
    auto c = std::make_unique<Conn>();
    c->id = next_id_++;
    c->fd = fd;
    c->addr = addr;
    c->deadline = now + kHeadDeadlineMs;
    if (o_.new_ssl) {
      c->ssl = o_.new_ssl();
      if (c->ssl == nullptr || SSL_set_fd(c->ssl, fd) != 1) {
        if (c->ssl != nullptr) SSL_free(c->ssl);
        ::close(fd);
        continue;
      }
      SSL_set_accept_state(c->ssl);
      SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
      c->phase = Phase::kHandshake;
    }
    ++per_address_[addr];
    Conn& ref = *c;
    conns_.emplace(c->id, std::move(c));
    Handle(ref, POLLIN, now);  // the handshake or the head may already be there
  }
}

void HttpServer::Loop::Refuse(int fd, const std::string& addr, const char* why, int open,
                              MonoMs now) {
  if (fd >= 0) {
    if (!o_.new_ssl) {
      SendOnce(
          fd, Serialize(
                  JsonError(503,
                            "too many " + std::string(why) + " (" + std::to_string(open) + " open)",
                            "close idle connections and try again", "too many connections"),
                  false));
    }
    ::close(fd);
  }
  if (now - last_refusal_log_ < kRefusalLogEveryMs) {
    ++refusals_unlogged_;
    return;
  }
  TLOG(Warn, "api") << o_.name << ": refused a connection from " << addr << ": too many " << why
                    << " (" << open << " open; limits " << o_.max_per_address << " per address, "
                    << o_.max_connections << " in total)"
                    << (refusals_unlogged_ > 0 ? "; " + std::to_string(refusals_unlogged_) +
                                                     " more refused since the last such line"
                                               : std::string());
  last_refusal_log_ = now;
  refusals_unlogged_ = 0;
}

void HttpServer::Loop::Handle(Conn& c, short revents, MonoMs now) {
  if ((revents & (POLLERR | POLLNVAL)) != 0 ||
      ((revents & POLLHUP) != 0 && c.phase == Phase::kHandling)) {
    Close(c);
    return;
  }
  if (c.phase == Phase::kHandshake) {
    ERR_clear_error();
    const int r = SSL_accept(c.ssl);
    if (r != 1) {
      c.events = SslWants(c.ssl, r);
      if (c.events == 0) Close(c);  // not TLS, or a failed handshake
      return;
    }
    c.phase = Phase::kHead;
    c.events = POLLIN;
  }
  switch (c.phase) {
    case Phase::kHead:
    case Phase::kBody:
      Read(c, now);
      return;
    case Phase::kWrite:
      Write(c, now);
      return;
    case Phase::kLinger:
      Linger(c, now);
      return;
    default:
      return;
  }
}

void HttpServer::Loop::Read(Conn& c, MonoMs now) {
  char buf[16 * 1024];
  while (c.fd >= 0 && (c.phase == Phase::kHead || c.phase == Phase::kBody)) {
    // Never more than the request can hold: the rest stays in the kernel.
    const size_t limit =
        c.phase == Phase::kHead ? kMaxRequestHead + 1 : c.head.head_bytes + c.head.body_length;
    const size_t want = std::min(sizeof buf, limit > c.in.size() ? limit - c.in.size() : 0);
    if (want == 0) {
      OnBytes(c, now);
      return;
    }
    const long n = ReadSome(c, buf, want);
    if (n == -1) return;
    if (n <= 0) {
      Close(c);  // the client left (or failed) before its request was whole
      return;
    }
    const size_t before = c.in.size();
    c.in.append(buf, static_cast<size_t>(n));
    // Parse only once a blank line may have arrived (no quadratic re-parsing
    // of a head that trickles in byte by byte) or the head is over its limit.
    if (c.phase == Phase::kHead && c.in.size() <= kMaxRequestHead &&
        c.in.find("\n\n", before > 2 ? before - 2 : 0) == std::string::npos &&
        c.in.find("\n\r\n", before > 2 ? before - 2 : 0) == std::string::npos) {
      continue;
    }
    OnBytes(c, now);
  }
}

void HttpServer::Loop::OnBytes(Conn& c, MonoMs now) {
  if (c.phase == Phase::kHead) {
    c.head = ParseRequestHead(c.in);
    if (c.head.state == HeadParse::State::kIncomplete) return;
    if (c.head.state == HeadParse::State::kError) {
      Reply(c, Serialize(AnswerFor(c.head.error), false), now);
      return;
    }
    c.head.request.remote_addr = c.addr;
    if (c.ssl != nullptr) c.head.request.client_cert = ClientCertificateOf(c.ssl);
    if (o_.before_body) {
      if (auto refusal = o_.before_body(c.head.request)) {
        Reply(c, Serialize(*refusal, c.head.request.method == "HEAD"), now);
        return;
      }
    }
    if (body_bytes_ + c.head.body_length > kBodyBudget) {
      Reply(c,
            Serialize(JsonError(503, "the API is busy: too many request bodies are being read",
                                "try again in a moment", "busy"),
                      c.head.request.method == "HEAD"),
            now);
      return;
    }
    c.reserved = c.head.body_length;
    body_bytes_ += c.reserved;
    c.phase = Phase::kBody;
    c.deadline = now + kBodyDeadlineMs;
    if (c.head.expect_continue && c.head.body_length > 0 && c.in.size() == c.head.head_bytes) {
      // curl waits for this before it sends a body; a full socket buffer this
      // early is not worth waiting for (curl sends the body after 1 s anyway).
      const std::string go = "HTTP/1.1 100 Continue\r\n\r\n";
      if (c.ssl != nullptr) {
        ERR_clear_error();
        (void)SSL_write(c.ssl, go.data(), static_cast<int>(go.size()));
      } else {
        SendOnce(c.fd, go);
      }
    }
  }
  if (c.phase == Phase::kBody && c.in.size() >= c.head.head_bytes + c.head.body_length) {
    c.head.request.body = c.in.substr(c.head.head_bytes, c.head.body_length);
    c.in.clear();
    Dispatch(c, now);
  }
}

void HttpServer::Loop::Dispatch(Conn& c, MonoMs now) {
  HttpRequest& req = c.head.request;
  const bool head_only = req.method == "HEAD";
  const Routes* inline_routes = o_.inline_routes;
  if (inline_routes != nullptr &&
      (o_.routes == nullptr || inline_routes->Find(req.method, req.path).handler != nullptr)) {
    Reply(c, Serialize(Answer(*inline_routes, req), head_only), now);
    return;
  }
  if (o_.routes == nullptr) {
    Reply(c,
          Serialize(
              JsonError(404, "no such endpoint: " + req.path,
                        "see the REST API section of the README for the endpoints", "not found"),
              head_only),
          now);
    return;
  }
  c.phase = Phase::kHandling;
  c.events = 0;         // POLLHUP/POLLERR still arrive: a client that left
  c.deadline = kNever;  // a handler's own calls are bounded by their timeouts
  const uint64_t id = c.id;
  const Routes* routes = o_.routes;
  auto task = [this, id, routes, head_only, req = std::move(req)] {
    std::string bytes = Serialize(Answer(*routes, req), head_only);
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_.push_back({id, std::move(bytes)});
    }
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  };
  if (!workers_.TrySubmit(std::move(task))) {
    Reply(c,
          Serialize(JsonError(503,
                              "the API is busy: all " + std::to_string(o_.workers) +
                                  " workers are serving requests and " + std::to_string(o_.queue) +
                                  " more wait",
                              "try again in a moment", "busy"),
                    head_only),
          now);
  }
}

void HttpServer::Loop::TakeAnswers(MonoMs now) {
  std::vector<Done> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(done_);
  }
  for (auto& d : done) {
    auto it = conns_.find(d.id);
    if (it == conns_.end() || it->second->fd < 0) continue;  // the client left meanwhile
    Reply(*it->second, d.bytes, now);
  }
}

void HttpServer::Loop::Reply(Conn& c, const std::string& bytes, MonoMs now) {
  c.out = bytes;
  c.out_pos = 0;
  c.phase = Phase::kWrite;
  c.deadline = now + kWriteDeadlineMs;
  Write(c, now);
}

void HttpServer::Loop::Write(Conn& c, MonoMs now) {
  while (c.out_pos < c.out.size()) {
    const long n = WriteSome(c);
    if (n == -1) return;
    if (n < 0) {
      Close(c);
      return;
    }
    c.out_pos += static_cast<size_t>(n);
  }
  // Written: close_notify, our half of TCP closed, then drain what the client
  // still sends (an unread body would turn close() into a reset that can
  // destroy the answer before the client reads it) until it closes too.
  if (c.ssl != nullptr) {
    ERR_clear_error();
    (void)SSL_shutdown(c.ssl);
  }
  ::shutdown(c.fd, SHUT_WR);
  c.phase = Phase::kLinger;
  c.events = POLLIN;
  c.deadline = now + kLingerMs;
  Linger(c, now);
}

void HttpServer::Loop::Linger(Conn& c, MonoMs) {
  char buf[16 * 1024];
  for (;;) {
    const long n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    Close(c);  // end of stream or an error: done
    return;
  }
}

void HttpServer::Loop::Expire(Conn& c) {
  // A plain client that was too slow learns why (best effort); a TLS one
  // gets the close only (it may not even have finished its handshake).
  if (c.ssl == nullptr && (c.phase == Phase::kHead || c.phase == Phase::kBody)) {
    const bool head = c.phase == Phase::kHead;
    SendOnce(
        c.fd,
        Serialize(
            JsonError(408,
                      std::string("the request's ") + (head ? "head" : "body") +
                          " did not arrive within " +
                          std::to_string(head ? kHeadDeadlineMs : kBodyDeadlineMs) + " ms",
                      "send the whole request at once right after connecting", "request timeout"),
            false));
  }
  Close(c);
}

void HttpServer::Loop::Close(Conn& c) {
  if (c.fd < 0) return;
  if (c.ssl != nullptr) SSL_free(c.ssl);
  c.ssl = nullptr;
  ::close(c.fd);
  c.fd = -1;
  body_bytes_ -= c.reserved;
  c.reserved = 0;
  auto it = per_address_.find(c.addr);
  if (it != per_address_.end() && --it->second <= 0) per_address_.erase(it);
}

long HttpServer::Loop::ReadSome(Conn& c, char* buf, size_t len) {
  return IoRead(c.fd, c.ssl, buf, len, &c.events);
}

long HttpServer::Loop::WriteSome(Conn& c) {
  return IoWrite(c.fd, c.ssl, c.out.data() + c.out_pos, c.out.size() - c.out_pos, &c.events);
}

HttpServer::HttpServer(const Clock& clock, HttpServerOptions options)
    : loop_(std::make_unique<Loop>(clock, std::move(options))) {}
HttpServer::~HttpServer() = default;
Status HttpServer::Listen(const std::string& host, int port) {
  return loop_->Listen(host, port);
}
void HttpServer::Start() {
  loop_->Start();
}
void HttpServer::Stop() {
  loop_->Stop();
}
int HttpServer::port() const {
  return loop_->port();
}

}  // namespace tandem::api
