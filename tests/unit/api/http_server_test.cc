// The API's HTTP server (api/http_server.h) on real loopback sockets: the
// wire form of answers, the limits as JSON errors, the head and body
// deadlines (on a ManualClock: a deadline passes when the test moves the
// clock, never because the machine was slow), the connection caps, the
// bounded worker queue, and an ApiServer that keeps answering with 200
// hostile connections held open on each port. Real time is used only as a
// generous bound on waiting for an answer that must come.
#include "api/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/http_parse.h"
#include "api/server.h"
#include "base/file.h"
#include "net/http_client.h"
#include "support/ports.h"

namespace tandem::api {
namespace {
using nlohmann::json;

constexpr int kPatienceMs = 10'000;  // real time: only a bound on what must happen

using test_ports::ConnectFrom;

bool SendAll(int fd, const std::string& s) {
  for (size_t off = 0; off < s.size();) {
    const long n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

struct Received {
  std::string bytes;
  bool closed = false;  // the server closed (or reset) the connection
};
// What arrives until the server closes, waiting at most `patience_ms`.
Received ReadUntilClosed(int fd, int patience_ms = kPatienceMs) {
  Received r;
  const MonoMs until = SystemClock::Get().Now() + patience_ms;
  for (;;) {
    const MonoMs left = until - SystemClock::Get().Now();
    if (left <= 0) return r;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    const long n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      r.closed = true;
      return r;
    }
    r.bytes.append(buf, static_cast<size_t>(n));
  }
}

// Nothing arrived and the server has not closed (as of now).
bool StillOpen(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

int StatusOf(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return 0;
  return std::atoi(response.substr(9, 3).c_str());
}
std::string BodyOf(const std::string& response) {
  const size_t p = response.find("\r\n\r\n");
  return p == std::string::npos ? "" : response.substr(p + 4);
}

// One request on a new connection; the whole answer (the server closes).
std::string Exchange(int port, const std::string& request, const std::string& from = "127.0.0.1") {
  const int fd = ConnectFrom(from, port);
  if (fd < 0) return "";
  Received r;
  if (SendAll(fd, request)) r = ReadUntilClosed(fd);
  ::close(fd);
  return r.closed ? r.bytes : "";
}

// A JSON error answer with an "error" and a "fix".
void ExpectJsonError(const std::string& response, int status, const std::string& says) {
  EXPECT_EQ(StatusOf(response), status) << response;
  auto j = json::parse(BodyOf(response), nullptr, false);
  ASSERT_TRUE(j.is_object()) << response;
  EXPECT_NE(j.value("error", "").find(says), std::string::npos) << response;
  EXPECT_FALSE(j.value("fix", "").empty()) << response;
}

HttpAnswer Text(const std::string& body) {
  HttpAnswer a;
  a.body = body;
  return a;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    inline_.Add("GET", "/liveness", [](const HttpRequest&) { return Text("alive\n"); });
    routes_.Add("POST", "/echo", [](const HttpRequest& r) { return Text(r.body); });
    routes_.Add("GET", "/block", [this](const HttpRequest&) {
      std::unique_lock<std::mutex> lock(mu_);
      ++blocked_;
      cv_.notify_all();
      cv_.wait(lock, [this] { return released_; });
      return Text("released\n");
    });
  }
  void TearDown() override {
    Release();
    if (server_) server_->Stop();
  }
  void StartServer(HttpServerOptions o = {}) {
    o.inline_routes = &inline_;
    o.routes = &routes_;
    server_ = std::make_unique<HttpServer>(clock_, std::move(o));
    ASSERT_TRUE(server_->Listen("127.0.0.1", 0).ok());
    server_->Start();
    port_ = server_->port();
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  // A full request and answer: every connection accepted before this one
  // has been taken in by the server (the listen queue is first in, first out).
  void Probe() { ASSERT_EQ(StatusOf(Exchange(port_, "GET /liveness HTTP/1.1\r\n\r\n")), 200); }

  ManualClock clock_;
  Routes inline_, routes_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  int blocked_ = 0;
  bool released_ = false;
};

TEST_F(HttpServerTest, AnswersCarryTheirLengthAndCloseTheConnection) {
  StartServer();
  const std::string r = Exchange(port_, "GET /liveness HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(StatusOf(r), 200) << r;
  EXPECT_NE(r.find("\r\nContent-Length: 6\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("\r\nConnection: close\r\n"), std::string::npos) << r;
  EXPECT_EQ(BodyOf(r), "alive\n");
  const std::string head = Exchange(port_, "HEAD /liveness HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusOf(head), 200) << head;
  EXPECT_EQ(BodyOf(head), "") << "HEAD answers without a body";
  const std::string echo = Exchange(port_, "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(BodyOf(echo), "hello") << echo;
  const std::string empty = Exchange(port_, "POST /echo HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(StatusOf(empty), 200) << empty;
  ExpectJsonError(Exchange(port_, "POST /echo HTTP/1.1\r\n\r\n"), 411, "Content-Length");
  ExpectJsonError(Exchange(port_, "GET /nothing HTTP/1.1\r\n\r\n"), 404, "/nothing");
  const std::string wrong = Exchange(port_, "DELETE /echo HTTP/1.1\r\n\r\n");
  ExpectJsonError(wrong, 405, "DELETE");
  EXPECT_NE(wrong.find("\r\nAllow: POST\r\n"), std::string::npos) << wrong;
}

TEST_F(HttpServerTest, EveryLimitIsAJsonErrorWithAFix) {
  StartServer();
  ExpectJsonError(Exchange(port_, "POST /echo HTTP/1.1\r\nContent-Length: 2097152\r\n\r\n"), 413,
                  "over the limit");
  ExpectJsonError(
      Exchange(port_,
               "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"),
      411, "Transfer-Encoding");
  ExpectJsonError(Exchange(port_, "GET /liveness HTTP/1.1\r\nX: " +
                                      std::string(kMaxRequestHead, 'a') + "\r\n\r\n"),
                  431, "head");
  ExpectJsonError(Exchange(port_, "GET /liveness\r\n\r\n"), 400, "request line");
  ExpectJsonError(Exchange(port_, "BREW /pot HTTP/1.1\r\n\r\n"), 501, "BREW");
  // A body sent in full behind a refused head does not reset the answer away.
  ExpectJsonError(Exchange(port_, "POST /echo HTTP/1.1\r\nContent-Length: 2097152\r\n\r\n" +
                                      std::string(2 << 20, 'x')),
                  413, "over the limit");
}

TEST_F(HttpServerTest, AnIdleConnectionIsClosedOnceTheHeadDeadlinePasses) {
  StartServer();
  const int idle = ConnectFrom("127.0.0.1", port_);
  ASSERT_GE(idle, 0);
  Probe();  // `idle` is accepted: its deadline counts from now
  clock_.Advance(kHeadDeadlineMs - 1);
  Probe();
  EXPECT_TRUE(StillOpen(idle)) << "closed before its deadline";
  clock_.Advance(1);
  const Received r = ReadUntilClosed(idle);
  EXPECT_TRUE(r.closed);
  ExpectJsonError(r.bytes, 408, "did not arrive within 1000 ms");
  ::close(idle);
}

TEST_F(HttpServerTest, ASlowLorisIsClosedOnceTheHeadDeadlinePasses) {
  StartServer();
  const int slow = ConnectFrom("127.0.0.1", port_);
  ASSERT_GE(slow, 0);
  Probe();
  const std::string head = "GET /liveness HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  size_t sent = 0;
  for (; sent < 9; ++sent) {  // one byte per 100 ms of the clock: 900 ms
    ASSERT_TRUE(SendAll(slow, head.substr(sent, 1)));
    clock_.Advance(100);
  }
  Probe();
  EXPECT_TRUE(StillOpen(slow)) << "closed before its deadline";
  ASSERT_TRUE(SendAll(slow, head.substr(sent++, 1)));
  clock_.Advance(100);  // 1000 ms since the accept: a byte now and then does not extend it
  const Received r = ReadUntilClosed(slow);
  EXPECT_TRUE(r.closed);
  ExpectJsonError(r.bytes, 408, "head");
  ::close(slow);
}

TEST_F(HttpServerTest, ABodyThatDoesNotArriveIsClosedOnceTheBodyDeadlinePasses) {
  StartServer();
  const int fd = ConnectFrom("127.0.0.1", port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"));
  Probe();
  clock_.Advance(kBodyDeadlineMs - 1);
  Probe();
  EXPECT_TRUE(StillOpen(fd));
  clock_.Advance(1);
  const Received r = ReadUntilClosed(fd);
  EXPECT_TRUE(r.closed);
  ExpectJsonError(r.bytes, 408, "body");
  ::close(fd);
}

TEST_F(HttpServerTest, OneAddressGetsSixteenConnectionsAndOthersStillGetIn) {
  StartServer();
  std::vector<int> held;
  for (int i = 0; i < kMaxConnectionsPerAddress; ++i) {
    held.push_back(ConnectFrom("127.0.0.5", port_));
    ASSERT_GE(held.back(), 0);
  }
  Probe();
  for (int fd : held) EXPECT_TRUE(StillOpen(fd));
  ExpectJsonError(Exchange(port_, "GET /liveness HTTP/1.1\r\n\r\n", "127.0.0.5"), 503,
                  "connections from this address");
  EXPECT_EQ(StatusOf(Exchange(port_, "GET /liveness HTTP/1.1\r\n\r\n", "127.0.0.6")), 200);
  ::close(held.back());  // one slot free again once the server sees it closed
  held.pop_back();
  Probe();
  EXPECT_EQ(StatusOf(Exchange(port_, "GET /liveness HTTP/1.1\r\n\r\n", "127.0.0.5")), 200);
  for (int fd : held) ::close(fd);
}

TEST_F(HttpServerTest, OverTheTotalCapAConnectionIsClosedAtOnce) {
  HttpServerOptions o;
  o.max_connections = 4;
  StartServer(o);
  std::vector<int> held;
  for (int i = 0; i < 4; ++i)
    held.push_back(ConnectFrom("127.0.0." + std::to_string(10 + i), port_));
  const std::string r = Exchange(port_, "GET /liveness HTTP/1.1\r\n\r\n", "127.0.0.20");
  ExpectJsonError(r, 503, "connections in total");
  for (int fd : held) ::close(fd);
}

TEST_F(HttpServerTest, AFullWorkerQueueIs503AndInlineRoutesStillAnswer) {
  HttpServerOptions o;
  o.workers = 1;
  o.queue = 1;
  StartServer(o);
  std::vector<int> calls;
  for (int i = 0; i < 3; ++i) {
    calls.push_back(ConnectFrom("127.0.0.1", port_));
    ASSERT_TRUE(SendAll(calls.back(), "GET /block HTTP/1.1\r\n\r\n"));
    if (i == 0) {  // the worker has taken the first: the queue is empty again
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return blocked_ == 1; });
    }
  }
  // One runs, one waits in the queue, the third is refused (whichever it is).
  std::vector<Received> answers(3);
  int busy = -1;
  std::vector<pollfd> p;
  for (int fd : calls) p.push_back({fd, POLLIN, 0});
  if (::poll(p.data(), p.size(), kPatienceMs) > 0) {
    for (int i = 0; i < 3 && busy < 0; ++i) {
      if (p[i].revents != 0) busy = i;
    }
  }
  if (busy >= 0) answers[busy] = ReadUntilClosed(calls[busy]);
  ASSERT_GE(busy, 0) << "no request was refused";
  ExpectJsonError(answers[busy].bytes, 503, "busy");
  EXPECT_EQ(StatusOf(Exchange(port_, "GET /liveness HTTP/1.1\r\n\r\n")), 200)
      << "the inline routes answer while every worker is busy";
  Release();
  for (int i = 0; i < 3; ++i) {
    if (i == busy) continue;
    const Received r = ReadUntilClosed(calls[i]);
    EXPECT_EQ(StatusOf(r.bytes), 200) << r.bytes;
  }
  for (int fd : calls) ::close(fd);
}

}  // namespace
}  // namespace tandem::api
