// The proxy on real sockets on 127.0.0.1, with small in-process backends that
// greet with their name and then echo.
//
// Time: the proxy runs on a ManualClock. Every timer it keeps (route expiry,
// connect and idle timeouts) fires only when a test advances that clock, so no
// verdict depends on how fast the machine is. What the tests wait for in real
// time is socket traffic only (a greeting, a close), each wait bounded by
// poll() with a generous timeout that a passing run never approaches.
#include "proxy/proxy.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "support/ports.h"

namespace tandem::proxy {
namespace {

int ListenOn(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 64) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int PortOf(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

using test_ports::FreeLoopbackPort;

// Greets every connection with "<name>\n", then echoes what it receives.
class Backend {
 public:
  explicit Backend(std::string name) : name_(std::move(name)) {
    listener_ = ListenOn(0);
    port_ = PortOf(listener_);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~Backend() {
    ::shutdown(listener_, SHUT_RDWR);
    acceptor_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : workers_) t.join();
    for (int fd : fds_) ::close(fd);
    ::close(listener_);
  }
  core::RouteTarget Target() const { return {name_, {"127.0.0.1", port_}}; }
  int accepted() const { return accepted_.load(); }

 private:
  void AcceptLoop() {
    for (;;) {
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      ++accepted_;
      std::lock_guard<std::mutex> lock(mu_);
      fds_.push_back(fd);
      workers_.emplace_back([this, fd] {
        const std::string hello = name_ + "\n";
        if (::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) < 0) return;
        char buf[16384];
        for (;;) {
          const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
          if (n <= 0) break;
          for (ssize_t off = 0; off < n;) {
            const ssize_t w = ::send(fd, buf + off, n - off, MSG_NOSIGNAL);
            if (w <= 0) return;
            off += w;
          }
        }
        ::shutdown(fd, SHUT_WR);
      });
    }
  }

  std::string name_;
  int listener_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> workers_;
  std::atomic<int> accepted_{0};
};

// A client socket connected to 127.0.0.1:port (blocking), -1 on failure.
int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads up to a newline; "" on EOF, "<timeout>" when nothing came for
// timeout_ms (one poll() per byte: a real-time bound on socket traffic).
std::string ReadLine(int fd, int timeout_ms = 5'000) {
  std::string line;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return "<timeout>";
    char ch;
    const ssize_t n = ::recv(fd, &ch, 1, 0);
    if (n <= 0) return line;
    if (ch == '\n') return line;
    line += ch;
  }
}

// True once the peer closed (EOF or reset); false when nothing at all
// happened on the socket for timeout_ms. Data that arrives is dropped.
bool ClosedWithin(int fd, int timeout_ms) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return true;
  }
}

// Polls a counter the proxy's loops update (they run on their own threads):
// up to `tries` looks, 10 ms of real time apart (poll() as the pause).
bool WaitFor(const std::function<bool()>& cond, int tries = 500) {
  for (int i = 0; i < tries; ++i) {
    if (cond()) return true;
    (void)::poll(nullptr, 0, 10);
  }
  return cond();
}

// The test's clock starts here; a route is valid until kStart + valid_for_ms
// (the clock moves only when a test advances it).
constexpr MonoMs kStart = 1'000'000;

core::Route RouteTo(std::optional<core::RouteTarget> rw, std::vector<core::RouteTarget> ro,
                    int64_t valid_for_ms = 60'000) {
  core::Route r;
  r.read_write = std::move(rw);
  r.read_only = std::move(ro);
  r.valid_until = kStart + valid_for_ms;
  r.reason = "test";
  return r;
}

class ProxyTest : public ::testing::Test {
 protected:
  void Start(Options o = {}) {
    o.listen_address = "127.0.0.1";
    o.read_write_port = rw_port_ = FreeLoopbackPort();
    o.read_only_port = ro_port_ = FreeLoopbackPort();
    proxy_ = std::make_unique<Proxy>(o, clock_);
    auto st = proxy_->Start();
    ASSERT_TRUE(st.ok()) << st.error().message();
  }
  void TearDown() override {
    for (int fd : fds_) ::close(fd);
    if (proxy_) proxy_->Stop();
  }
  int Open(int port) {
    const int fd = Connect(port);
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }
  ManualClock clock_{kStart};
  std::unique_ptr<Proxy> proxy_;
  int rw_port_ = 0, ro_port_ = 0;
  std::vector<int> fds_;
};

TEST_F(ProxyTest, Rule5_WritesAreRefusedBeforeAnyRoute) {
  Start();
  const int fd = Open(rw_port_);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(ClosedWithin(fd, 3'000));
  EXPECT_TRUE(WaitFor([&] { return proxy_->GetStats().refused >= 1; }));
}

TEST_F(ProxyTest, Rule5_WritesAreRefusedWithNoWriteTarget) {
  Backend a("a");
  Start();
  proxy_->SetRoute(RouteTo(std::nullopt, {a.Target()}));
  const int fd = Open(rw_port_);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(ClosedWithin(fd, 3'000));
  EXPECT_EQ(a.accepted(), 0);
  // The read-only port still works.
  const int ro = Open(ro_port_);
  EXPECT_EQ(ReadLine(ro), "a");
}

TEST_F(ProxyTest, BytesPassBothWaysUntouched) {
  Backend a("a");
  Start();
  proxy_->SetRoute(RouteTo(a.Target(), {a.Target()}));
  const int fd = Open(rw_port_);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ReadLine(fd), "a");
  // More than the 64 KiB buffers, every byte value, written and read at once.
  std::string data(300'000, '\0');
  std::mt19937 rng(7);
  for (auto& ch : data) ch = static_cast<char>(rng() & 0xff);
  std::thread writer([&] {
    for (size_t off = 0; off < data.size();) {
      const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);  // half-close: the echo still comes back
  });
  std::string got;
  char buf[8192];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5'000) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  writer.join();
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data) << "bytes changed on the way";
}

TEST_F(ProxyTest, Rule5_ChangingTheWriteTargetCutsEveryWriteConnectionAtOnce) {
  Backend a("a"), b("b");
  Start();
  proxy_->SetRoute(RouteTo(a.Target(), {b.Target()}));
  std::vector<int> to_a;
  for (int i = 0; i < 3; ++i) {
    to_a.push_back(Open(rw_port_));
    ASSERT_EQ(ReadLine(to_a.back()), "a");
  }
  const int ro = Open(ro_port_);
  ASSERT_EQ(ReadLine(ro), "b");
  proxy_->SetRoute(RouteTo(b.Target(), {b.Target()}));
  for (int fd : to_a) EXPECT_TRUE(ClosedWithin(fd, 2'000)) << "a connection to a stayed open";
  // New connections reach the new target; the read-only one to b is untouched.
  const int fresh = Open(rw_port_);
  EXPECT_EQ(ReadLine(fresh), "b");
  const std::string ping = "ping\n";
  ASSERT_EQ(::send(ro, ping.data(), ping.size(), MSG_NOSIGNAL), 5);
  EXPECT_EQ(ReadLine(ro), "ping");
  EXPECT_EQ(proxy_->GetStats().cut, 3u);
}

TEST_F(ProxyTest, Rule5_LosingTheWriteTargetCutsWriteConnections) {
  Backend a("a");
  Start();
  proxy_->SetRoute(RouteTo(a.Target(), {}));
  const int fd = Open(rw_port_);
  ASSERT_EQ(ReadLine(fd), "a");
  proxy_->SetRoute(RouteTo(std::nullopt, {}));
  EXPECT_TRUE(ClosedWithin(fd, 2'000));
}

TEST_F(ProxyTest, ReadConnectionsToANodeLeavingTheSetAreCut) {
  Backend a("a"), b("b");
  Start();
  proxy_->SetRoute(RouteTo(std::nullopt, {a.Target(), b.Target()}));
  // Round robin over the set.
  const int first = Open(ro_port_);
  const int second = Open(ro_port_);
  std::string n1 = ReadLine(first), n2 = ReadLine(second);
  EXPECT_NE(n1, n2);
  const int on_a = n1 == "a" ? first : second;
  const int on_b = n1 == "a" ? second : first;
  proxy_->SetRoute(RouteTo(std::nullopt, {b.Target()}));
  EXPECT_TRUE(ClosedWithin(on_a, 2'000));
  const std::string ping = "x\n";
  ASSERT_EQ(::send(on_b, ping.data(), ping.size(), MSG_NOSIGNAL), 2);
  EXPECT_EQ(ReadLine(on_b), "x");
}

TEST_F(ProxyTest, Rule5_AnExpiredRouteCountsAsNone) {
  Backend a("a");
  Start();
  proxy_->SetRoute(RouteTo(a.Target(), {a.Target()}, /*valid_for_ms=*/400));
  const int fd = Open(rw_port_);
  ASSERT_EQ(ReadLine(fd), "a");
  // Short of valid_until the route holds, however long the test takes.
  clock_.Advance(399);
  const int still = Open(rw_port_);
  ASSERT_EQ(ReadLine(still), "a");
  // Not renewed by valid_until: the open connections are cut and new ones
  // are refused.
  clock_.Advance(1);
  EXPECT_TRUE(ClosedWithin(fd, 3'000));
  EXPECT_TRUE(ClosedWithin(still, 3'000));
  const int late = Open(rw_port_);
  EXPECT_TRUE(ClosedWithin(late, 2'000));
  EXPECT_EQ(a.accepted(), 2);
}

TEST_F(ProxyTest, Rule5_ARouteThatArrivesExpiredCountsAsNone) {
  Backend a("a");
  Start();
  clock_.Advance(1'000);
  proxy_->SetRoute(RouteTo(a.Target(), {a.Target()}, /*valid_for_ms=*/1'000));
  const int fd = Open(rw_port_);
  EXPECT_TRUE(ClosedWithin(fd, 3'000));
  EXPECT_EQ(a.accepted(), 0);
}

TEST_F(ProxyTest, ConnectionsOverTheLimitAreRefused) {
  Backend a("a");
  Options o;
  o.max_connections = 2;
  Start(o);
  proxy_->SetRoute(RouteTo(a.Target(), {a.Target()}));
  const int c1 = Open(rw_port_), c2 = Open(rw_port_);
  ASSERT_EQ(ReadLine(c1), "a");
  ASSERT_EQ(ReadLine(c2), "a");
  const int c3 = Open(rw_port_);
  EXPECT_TRUE(ClosedWithin(c3, 2'000));
  // The limit is per port.
  const int r1 = Open(ro_port_);
  EXPECT_EQ(ReadLine(r1), "a");
  // A slot freed is a slot usable again.
  ::shutdown(c1, SHUT_RDWR);
  EXPECT_TRUE(WaitFor([&] { return proxy_->GetStats().read_write_open == 1; }));
  const int c4 = Open(rw_port_);
  EXPECT_EQ(ReadLine(c4), "a");
}

TEST_F(ProxyTest, SeveralEventLoopsShareTheLimitAndAllApplyARouteChange) {
  Backend a("a"), b("b");
  Options o;
  o.threads = 4;
  o.max_connections = 12;
  Start(o);
  proxy_->SetRoute(RouteTo(a.Target(), {}));
  std::vector<int> open;
  for (int i = 0; i < 12; ++i) open.push_back(Open(rw_port_));
  for (int fd : open) ASSERT_EQ(ReadLine(fd), "a");
  // The loops count one limit: the 13th is refused whichever loop takes it.
  const int over = Open(rw_port_);
  EXPECT_TRUE(ClosedWithin(over, 2'000));
  EXPECT_EQ(proxy_->GetStats().read_write_open, 12);
  // A new write target: every loop cuts its connections to the old one.
  proxy_->SetRoute(RouteTo(b.Target(), {}));
  for (int fd : open) EXPECT_TRUE(ClosedWithin(fd, 3'000));
  EXPECT_TRUE(WaitFor([&] { return proxy_->GetStats().read_write_open == 0; }));
  EXPECT_EQ(proxy_->GetStats().cut, 12u);
  const int fresh = Open(rw_port_);
  EXPECT_EQ(ReadLine(fresh), "b");
}

TEST_F(ProxyTest, UnreachableBackendClosesTheClient) {
  Start();
  proxy_->SetRoute(RouteTo(core::RouteTarget{"gone", {"127.0.0.1", FreeLoopbackPort()}}, {}));
  const int fd = Open(rw_port_);
  EXPECT_TRUE(ClosedWithin(fd, 5'000));
  EXPECT_TRUE(WaitFor([&] { return proxy_->GetStats().refused >= 1; }));
  EXPECT_TRUE(WaitFor([&] { return proxy_->GetStats().read_write_open == 0; }));
}

TEST_F(ProxyTest, ABackendThatDoesNotAnswerClosesTheClientAfterTheConnectTimeout) {
  // A listener that never accepts, its queue filled: further SYNs go unanswered.
  const int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(silent, 0), 0);
  const int port = PortOf(silent);
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in t = a;
    t.sin_port = htons(static_cast<uint16_t>(port));
    (void)::connect(fd, reinterpret_cast<sockaddr*>(&t), sizeof t);
    fillers.push_back(fd);
  }
  Options o;
  o.connect_timeout_ms = 300;
  Start(o);
  proxy_->SetRoute(RouteTo(core::RouteTarget{"silent", {"127.0.0.1", port}}, {}));
  const int fd = Open(rw_port_);
  // The proxy took the client and is connecting to the backend; it waits
  // for it until the connect timeout passes on its clock.
  ASSERT_TRUE(WaitFor([&] { return proxy_->GetStats().read_write_open == 1; }));
  clock_.Advance(299);
  EXPECT_FALSE(ClosedWithin(fd, 300)) << "closed before the connect timeout";
  clock_.Advance(1);
  EXPECT_TRUE(ClosedWithin(fd, 5'000));
  EXPECT_TRUE(WaitFor([&] { return proxy_->GetStats().read_write_open == 0; }));
  EXPECT_GE(proxy_->GetStats().refused, 1u);
  for (int f : fillers) ::close(f);
  ::close(silent);
}

TEST_F(ProxyTest, IdleConnectionsAreCutAfterTheIdleTimeout) {
  Backend a("a");
  Options o;
  o.idle_timeout_ms = 300;
  Start(o);
  proxy_->SetRoute(RouteTo(a.Target(), {}));
  const int fd = Open(rw_port_);
  ASSERT_EQ(ReadLine(fd), "a");
  clock_.Advance(299);
  EXPECT_FALSE(ClosedWithin(fd, 300)) << "cut before the idle timeout";
  clock_.Advance(1);
  EXPECT_TRUE(ClosedWithin(fd, 3'000));
  EXPECT_EQ(proxy_->GetStats().cut, 1u);
}

TEST_F(ProxyTest, ABusyPortIsAClearStartError) {
  const int taken = ListenOn(0);
  Options o;
  o.listen_address = "127.0.0.1";
  o.read_write_port = PortOf(taken);
  Proxy p(o, clock_);
  auto st = p.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("proxy.read_write_port"), std::string::npos)
      << st.error().message();
  ::close(taken);
}

}  // namespace
}  // namespace tandem::proxy
