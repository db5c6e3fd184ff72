// The agent's API under hostile connections (issue 19): with 100 idle and
// 100 slow connections held open on the API port and on the health port,
// both still answer (generous real-time bounds, never a speed); and one port
// serves one agent (no SO_REUSEPORT: a second ApiServer on it fails).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "api/server.h"
#include "base/file.h"
#include "net/http_client.h"
#include "support/ports.h"

namespace tandem::api {
namespace {

using test_ports::ConnectFrom;

class HostileApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tandem-hostile-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    port_ = test_ports::FreeLoopbackPort();
    health_port_ = test_ports::FreeLoopbackPort();
    auto cfg = agent::ParseConfig("node:\n  name: n1\n  address: 127.0.0.1\n  state_dir: " + dir_ +
                                      "\napi:\n  port: " + std::to_string(port_) + "\n",
                                  "t.yaml");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message();
    agent::AgentDeps deps;
    deps.clock = &clock_;
    agent_ = std::make_unique<agent::Agent>(*cfg, std::move(deps));
    server_ = std::make_unique<ApiServer>(*agent_);
    auto st = server_->Start("127.0.0.1", port_, {}, health_port_);
    ASSERT_TRUE(st.ok()) << st.error().message();
  }
  void TearDown() override {
    server_.reset();
    agent_.reset();
    (void)RemoveAll(dir_);
  }
  int Status(int port, const std::string& path) {
    auto r = net::HttpCall("GET", "http://127.0.0.1:" + std::to_string(port) + path, "", 5000);
    return r.ok() ? r->status : -1;
  }

  std::string dir_;
  int port_ = 0;
  int health_port_ = 0;
  ManualClock clock_;  // never moved: the hostile connections stay open
  std::unique_ptr<agent::Agent> agent_;
  std::unique_ptr<ApiServer> server_;
};

TEST_F(HostileApiTest, TwoHundredIdleAndSlowConnectionsDoNotStallEitherPort) {
  // 100 idle + 100 slow on each port, 10 per client address (under the cap
  // of 16), none from 127.0.0.1, where the checks come from.
  std::vector<int> idle, slow;
  for (int port : {port_, health_port_}) {
    for (int i = 0; i < 200; ++i) {
      const std::string from =
          "127.0." + std::to_string(port == port_ ? 1 : 2) + "." + std::to_string(1 + i / 10);
      const int fd = ConnectFrom(from, port);
      ASSERT_GE(fd, 0) << from;
      (i % 2 == 0 ? idle : slow).push_back(fd);
    }
  }
  // The slow ones send a head one byte at a time and never finish it.
  std::atomic<bool> done{false};
  std::thread loris([&] {
    const std::string head = "GET /health HTTP/1.1\r\nX-Slow: ";
    for (size_t i = 0; !done; ++i) {
      const char byte = i < head.size() ? head[i] : 'a';
      for (int fd : slow) (void)::send(fd, &byte, 1, MSG_NOSIGNAL);
      ::poll(nullptr, 0, 100);  // pacing of the load only
    }
  });
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(Status(health_port_, "/liveness"), 200) << "health port, check " << i;
    EXPECT_EQ(Status(port_, "/liveness"), 200) << "API port, check " << i;
    EXPECT_EQ(Status(port_, "/health"), 503) << "API port, check " << i;
  }
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Status(port_, "/v1/status"), 200) << "a worker route";
  done = true;
  loris.join();
  // They were held open all along (the clock never moved past a deadline).
  int open = 0;
  for (int fd : idle) {
    pollfd p{fd, POLLIN, 0};
    open += ::poll(&p, 1, 0) == 0 ? 1 : 0;
  }
  EXPECT_EQ(open, static_cast<int>(idle.size()));
  for (int fd : idle) ::close(fd);
  for (int fd : slow) ::close(fd);
}

TEST_F(HostileApiTest, ASecondServerOnTheSamePortsFailsToStart) {
  ApiServer second(*agent_);
  auto st = second.Start("127.0.0.1", port_);
  ASSERT_FALSE(st.ok()) << "two agents must never share an API port (SO_REUSEPORT)";
  EXPECT_NE(st.error().message().find(std::to_string(port_)), std::string::npos)
      << st.error().message();
  EXPECT_NE(st.error().message().find("api.port"), std::string::npos) << st.error().message();
  ApiServer third(*agent_);
  const int free_port = test_ports::FreeLoopbackPort();
  st = third.Start("127.0.0.1", free_port, {}, health_port_);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("api.health_port"), std::string::npos)
      << st.error().message();
  EXPECT_EQ(Status(port_, "/liveness"), 200) << "the first server still serves";
}

}  // namespace
}  // namespace tandem::api
