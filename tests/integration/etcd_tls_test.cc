// A 3-node cluster with a tls section (enforce) on 127.0.0.1-3: etcd and the
// agents' API speak only TLS with the cluster CA. Plain HTTP to etcd's client
// or peer port is refused, so is TLS to etcd without a client certificate; a
// change through the API needs a client certificate of the cluster CA (401
// without, 403 with another CA's), while reads and the plain health port need
// none; the cluster elects a primary and a switchover through the CLI works.
// The tests share one cluster and run in order.
//
// Ports: TestBasePort(31400); node i: PostgreSQL P+10i, API +1, etcd client
// +4, peer +5, health port +6, on 127.0.0.i.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/process.h"
#include "base/strings.h"
#include "dcs/etcd_dcs.h"
#include "dcs/tls_client.h"
#include "integration/harness/harness.h"

namespace tandem::testing {
namespace {
using nlohmann::json;

constexpr int kNodes = 3;

struct Answer {
  int status = 0;
  std::string body;
};
// One request with the given TLS client settings; an error when no HTTP
// answer came (refused connection, failed TLS handshake).
Result<Answer> Call(const dcs::TlsClientOptions& tls, const std::string& method,
                    const std::string& url, const std::string& body = "") {
  auto path_start = url.find('/', url.find("://") + 3);
  const std::string base = url.substr(0, path_start);
  const std::string path = url.substr(path_start);
  auto c = dcs::MakeHttpClient(base, tls);
  c->set_connection_timeout(std::chrono::seconds(3));
  c->set_read_timeout(std::chrono::seconds(5));
  httplib::Result r{nullptr, httplib::Error::Unknown};
  if (method == "GET") {
    r = c->Get(path);
  } else if (method == "OPTIONS") {
    r = c->Options(path);
  } else {
    r = c->Post(path, body, "application/json");
  }
  if (!r) return Error(ErrorCode::kUnavailable, base + ": " + httplib::to_string(r.error()));
  return Answer{r->status, r->body};
}

class EtcdTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    BecomeSubreaper();  // PostgreSQL and etcd may be reparented to us: reap them
    // A TLS write to a peer that closed raises SIGPIPE (the agent ignores it too).
    ::signal(SIGPIPE, SIG_IGN);
    dir_ = new TempDir("tandem-etcdtls");
    base_ = TestBasePort(31400);
    setup_error_ = new std::string(StartCluster());
  }
  static void TearDownTestSuite() {
    for (pid_t pid : agents_) {
      if (pid > 0 && IsAlive(pid)) ::kill(pid, SIGTERM);
    }
    for (pid_t pid : agents_) {
      if (pid > 0 && !WaitForExit(pid, 60'000)) KillProcessTree(pid, SIGKILL);
    }
    // Anything an agent left behind (killed, or crashed).
    for (int i = 1; i <= kNodes; ++i) {
      for (const auto& [file, needle] :
           {std::pair<std::string, std::string>{NodeDir(i) + "/pgdata/postmaster.pid", "postgres"},
            {NodeDir(i) + "/etcd.pid", "etcd"}}) {
        pid_t p = PidIn(file, needle);
        if (p > 0) {
          ::kill(p, SIGKILL);
          (void)WaitForExit(p, 10'000);
        }
      }
    }
    delete dir_;
    delete setup_error_;
  }
  void SetUp() override { ASSERT_TRUE(setup_error_->empty()) << *setup_error_; }

  // The pid in file when that process lives and its command line has needle.
  static pid_t PidIn(const std::string& file, const std::string& needle) {
    auto text = ReadFile(file);
    if (!text) return 0;
    auto v = ParseInt(Trim(Split(*text, '\n')[0]));
    if (!v || *v <= 0 || !IsAlive(static_cast<pid_t>(*v))) return 0;
    auto cmd = ReadFile("/proc/" + std::to_string(*v) + "/cmdline");
    return cmd && cmd->find(needle) != std::string::npos ? static_cast<pid_t>(*v) : 0;
  }

  static std::string D() { return dir_->path(); }
  static std::string Addr(int i) { return "127.0.0." + std::to_string(i); }
  static std::string NodeDir(int i) { return D() + "/node" + std::to_string(i); }
  static std::string Certs(int i) { return D() + "/certs" + std::to_string(i); }
  static std::string Config(int i) { return NodeDir(i) + "/tandem.yaml"; }
  static int Port(int i, int offset) { return base_ + 10 * i + offset; }
  static std::string ApiUrl(int i) {
    return "https://" + Addr(i) + ":" + std::to_string(Port(i, 1));
  }
  static std::string EtcdClient(int i, const char* scheme = "https") {
    return std::string(scheme) + "://" + Addr(i) + ":" + std::to_string(Port(i, 4));
  }
  static std::string EtcdPeer(int i, const char* scheme) {
    return std::string(scheme) + "://" + Addr(i) + ":" + std::to_string(Port(i, 5));
  }
  static std::string HealthUrl(int i) {
    return "http://" + Addr(i) + ":" + std::to_string(Port(i, 6));
  }
  // What node i presents and checks (its client pair, the cluster CA, enforce).
  static dcs::TlsClientOptions NodeTls(int i) {
    dcs::TlsClientOptions t;
    t.ca_file = Certs(i) + "/ca.crt";
    t.cert_file = Certs(i) + "/client.crt";
    t.key_file = Certs(i) + "/client.key";
    return t;
  }

  static std::string Yaml(int i) {
    const std::string c = Certs(i);
    return "cluster: etcdtls\nnode:\n  name: node" + std::to_string(i) + "\n  address: " + Addr(i) +
           "\n  state_dir: " + NodeDir(i) + "\napi:\n  listen: " + Addr(i) +
           "\n  port: " + std::to_string(Port(i, 1)) +
           "\n  health_port: " + std::to_string(Port(i, 6)) +
           "\npostgresql:\n  port: " + std::to_string(Port(i, 0)) +
           "\ndcs:\n  etcd_client_port: " + std::to_string(Port(i, 4)) +
           "\n  etcd_peer_port: " + std::to_string(Port(i, 5)) + "\ntls:\n  server_key: " + c +
           "/server.key\n  server_cert: " + c + "/server.crt\n  client_key: " + c +
           "/client.key\n  client_cert: " + c + "/client.crt\n  ca_cert: " + c +
           "/ca.crt\n  mode: enforce\n";
  }

  // "" when the cluster is up with node1 primary and two replicas.
  static std::string StartCluster() {
    auto ca = RunTandem({"pki", "ca", "init", "--dir", D() + "/ca"});
    if (ca.exit_code != 0) return "ca init: " + ca.output;
    auto other = RunTandem({"pki", "ca", "init", "--dir", D() + "/other-ca"});
    if (other.exit_code != 0) return "other ca init: " + other.output;
    auto foreign = RunTandem({"pki", "issue", "node1", "--ca-dir", D() + "/other-ca", "--address",
                              Addr(1), "--out", D() + "/other-certs"});
    if (foreign.exit_code != 0) return "issue (other CA): " + foreign.output;
    for (int i = 1; i <= kNodes; ++i) {
      // DNS:localhost as well: on loopback every connection comes from
      // 127.0.0.1, and etcd checks a peer's client certificate against the
      // address it connects from (a DNS SAN that resolves to it passes).
      auto issue = RunTandem({"pki", "issue", "node" + std::to_string(i), "--ca-dir", D() + "/ca",
                              "--address", Addr(i), "--dns", "localhost", "--out", Certs(i)});
      if (issue.exit_code != 0) return "issue node" + std::to_string(i) + ": " + issue.output;
      if (auto s = MakeDirs(NodeDir(i), 0755); !s.ok()) return s.error().message();
      if (auto s = WriteFileAtomic(Config(i), Yaml(i)); !s.ok()) return s.error().message();
      const char* bin = std::getenv("TANDEM_BIN");
      SpawnOptions opts;
      opts.output_file = NodeDir(i) + "/agent.log";
      auto pid = Spawn({bin != nullptr ? bin : "build/tandem", "agent", "-c", Config(i)}, opts);
      if (!pid) return "agent " + std::to_string(i) + ": " + pid.error().message();
      agents_.push_back(*pid);
    }
    for (int i = 1; i <= kNodes; ++i) {
      if (!WaitUntil(
              [&] {
                return RunTandem({"-c", Config(i), "cluster", "status"}).exit_code == 0;
              },
              30'000)) {
        return "agent " + std::to_string(i) + " did not answer over HTTPS; see " + NodeDir(i) +
               "/agent.log";
      }
    }
    auto init = RunTandem({"-c", Config(1), "cluster", "initialize"}, 300'000);
    if (init.exit_code != 0) return "initialize: " + init.output;
    for (int i = 2; i <= kNodes; ++i) {
      auto join = RunTandem(
          {"-c", Config(i), "cluster", "join", Addr(1) + ":" + std::to_string(Port(1, 1))},
          600'000);
      if (join.exit_code != 0) return "join node" + std::to_string(i) + ": " + join.output;
    }
    if (!WaitUntil([] { return Healthy(1); }, 120'000)) {
      auto s = ClusterStatusJson(Config(1));
      return "the cluster did not become healthy: " + (s ? s->dump(2) : std::string("no status"));
    }
    return "";
  }

  static std::optional<json> Status(int i) { return ClusterStatusJson(Config(i)); }
  static std::string Primary(int via) {
    auto s = Status(via);
    if (!s || !(*s)["primary"].is_string()) return "";
    return (*s)["primary"].get<std::string>();
  }
  static bool Healthy(int via) {
    auto s = Status(via);
    return s && UnhealthyBecause(*s, kNodes, /*failover_ready=*/false).empty();
  }

  static TempDir* dir_;
  static int base_;
  static std::string* setup_error_;
  static std::vector<pid_t> agents_;
};
TempDir* EtcdTlsTest::dir_ = nullptr;
int EtcdTlsTest::base_ = 0;
std::string* EtcdTlsTest::setup_error_ = nullptr;
std::vector<pid_t> EtcdTlsTest::agents_;

TEST_F(EtcdTlsTest, TheClusterComesUpOverTlsWithHttpsUrlsEverywhere) {
  auto s = Status(1);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(Primary(1), "node1") << s->dump(2);
  // The store holds https URLs only: etcd's member list, read over TLS.
  dcs::EtcdOptions o;
  o.endpoints = {EtcdClient(2)};
  o.tls = NodeTls(2);
  dcs::EtcdDcs store(o, SystemClock::Get());
  auto members = store.MemberList();
  ASSERT_TRUE(members.ok()) << members.error().message();
  ASSERT_EQ(members->size(), 3u);
  for (const auto& m : *members) {
    for (const auto& u : m.peer_urls) EXPECT_TRUE(StartsWith(u, "https://")) << u;
    for (const auto& u : m.client_urls) EXPECT_TRUE(StartsWith(u, "https://")) << u;
  }
  // etcd's copies of the pair are private to its run user.
  auto key = RunCmd({"stat", "-c", "%a %U", NodeDir(1) + "/tls/etcd/server.key"});
  EXPECT_EQ(Trim(key.output),
            "600 " + (ServiceUser().empty() ? Trim(RunCmd({"id", "-un"}).output) : ServiceUser()));
  auto dir = RunCmd({"stat", "-c", "%a", NodeDir(1) + "/tls/etcd"});
  EXPECT_EQ(Trim(dir.output), "700");
}

TEST_F(EtcdTlsTest, EtcdRefusesPlainHttpAndTlsWithoutAClientCertificate) {
  for (int i = 1; i <= kNodes; ++i) {
    // Plain HTTP to the TLS client port: no etcd answer (Go answers 400).
    auto plain = Call({}, "GET", EtcdClient(i, "http") + "/version");
    EXPECT_TRUE(!plain.ok() || plain->status != 200) << plain->body;
    // TLS, a verified server, but no client certificate: the handshake fails.
    dcs::TlsClientOptions anon;
    anon.ca_file = Certs(1) + "/ca.crt";
    auto no_cert = Call(anon, "GET", EtcdClient(i) + "/version");
    EXPECT_FALSE(no_cert.ok()) << "node" << i << " answered HTTP " << no_cert->status;
    // Another CA's client certificate: refused as well.
    dcs::TlsClientOptions foreign = anon;
    foreign.cert_file = D() + "/other-certs/client.crt";
    foreign.key_file = D() + "/other-certs/client.key";
    auto other = Call(foreign, "GET", EtcdClient(i) + "/version");
    EXPECT_TRUE(!other.ok() || other->status != 200);
    // The node's own pair works.
    auto ok = Call(NodeTls(1), "GET", EtcdClient(i) + "/version");
    ASSERT_TRUE(ok.ok()) << ok.error().message();
    EXPECT_EQ(ok->status, 200);
    // The peer port speaks only TLS too.
    auto peer = Call({}, "GET", EtcdPeer(i, "http") + "/members");
    EXPECT_TRUE(!peer.ok() || peer->status != 200) << peer->body;
    auto peer_no_cert = Call(anon, "GET", EtcdPeer(i, "https") + "/members");
    EXPECT_FALSE(peer_no_cert.ok()) << "peer port of node" << i << " answered without a cert";
  }
  // An etcd client with the wrong CA does not trust the server.
  dcs::EtcdOptions o;
  o.endpoints = {EtcdClient(1)};
  o.tls = NodeTls(1);
  o.tls.ca_file = D() + "/other-ca/ca.crt";
  dcs::EtcdDcs store(o, SystemClock::Get());
  auto r = store.Get("/tandem/etcdtls/leader");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable) << r.error().message();
}

TEST_F(EtcdTlsTest, ApiChangesNeedAClientCertificateOfTheClusterCa) {
  dcs::TlsClientOptions anon;
  anon.ca_file = Certs(1) + "/ca.crt";
  for (int i = 1; i <= kNodes; ++i) {
    auto none = Call(anon, "POST", ApiUrl(i) + "/v1/cluster/pause", "{}");
    ASSERT_TRUE(none.ok()) << none.error().message();
    EXPECT_EQ(none->status, 401) << none->body;
    EXPECT_NE(none->body.find("needs a client certificate signed by the cluster CA"),
              std::string::npos)
        << none->body;
    dcs::TlsClientOptions foreign = anon;
    foreign.cert_file = D() + "/other-certs/client.crt";
    foreign.key_file = D() + "/other-certs/client.key";
    auto other = Call(foreign, "POST", ApiUrl(i) + "/v1/cluster/switchover", "{}");
    ASSERT_TRUE(other.ok()) << other.error().message();
    EXPECT_EQ(other->status, 403) << other->body;
    auto join = Call(anon, "POST", ApiUrl(i) + "/v1/internal/join", "{}");
    ASSERT_TRUE(join.ok());
    EXPECT_EQ(join->status, 401) << "the join grant carries the cluster's passwords";
    EXPECT_EQ(join->body.find("password"), std::string::npos);
    // Reads need no client certificate.
    auto health = Call(anon, "GET", ApiUrl(i) + "/health");
    ASSERT_TRUE(health.ok()) << health.error().message();
    EXPECT_EQ(health->status, 200);
    auto status = Call(anon, "GET", ApiUrl(i) + "/v1/status");
    ASSERT_TRUE(status.ok());
    EXPECT_EQ(status->status, 200);
    // Plain HTTP to the API port gets no API answer.
    auto plain =
        Call({}, "GET", "http://" + Addr(i) + ":" + std::to_string(Port(i, 1)) + "/health");
    EXPECT_TRUE(!plain.ok() || plain->status != 200);
  }
  // Nothing was paused by the refused requests.
  auto s = Status(1);
  ASSERT_TRUE(s.has_value());
  EXPECT_NE(s->value("paused", false), true) << s->dump(2);
}

TEST_F(EtcdTlsTest, TheHealthPortServesPlainHttpForLoadBalancers) {
  const std::string primary = Primary(1);
  ASSERT_FALSE(primary.empty());
  const int p = primary.back() - '0';
  for (int i = 1; i <= kNodes; ++i) {
    EXPECT_TRUE(WaitUntil(
        [&] {
          auto r = Call({}, "GET", HealthUrl(i) + "/primary");
          return r.ok() && r->status == (i == p ? 200 : 503);
        },
        30'000))
        << "node" << i;
    auto replica = Call({}, "OPTIONS", HealthUrl(i) + "/replica");  // HAProxy's check
    ASSERT_TRUE(replica.ok()) << replica.error().message();
    EXPECT_EQ(replica->status, i == p ? 503 : 200) << "node" << i;
    auto api = Call({}, "GET", HealthUrl(i) + "/v1/status");
    ASSERT_TRUE(api.ok());
    EXPECT_EQ(api->status, 404) << "only the health endpoints are served without TLS";
  }
}

TEST_F(EtcdTlsTest, ASwitchoverThroughTheCliWorksOverHttps) {
  ASSERT_TRUE(WaitUntil([] { return Healthy(1); }, 60'000)) << Status(1)->dump(2);
  const std::string old = Primary(1);
  const std::string target = old == "node2" ? "node3" : "node2";
  auto sw = RunTandem({"-c", Config(3), "cluster", "switchover", "--to", target}, 180'000);
  ASSERT_EQ(sw.exit_code, 0) << sw.output;
  EXPECT_TRUE(WaitUntil([&] { return Primary(1) == target && Healthy(1); }, 120'000))
      << Status(1)->dump(2);
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto r = Call({}, "GET", HealthUrl(target.back() - '0') + "/primary");
        return r.ok() && r->status == 200;
      },
      30'000));
}

// Permissive: etcd encrypts but asks for no client certificate, clients do
// not verify the server, and API changes still need a CA-signed certificate.
// One node on 127.0.0.1, ports P+50 (PostgreSQL), +51 (API), +54/+55 (etcd).
class PermissiveTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);
    BecomeSubreaper();
    dir_ = std::make_unique<TempDir>("tandem-etcdtls-permissive");
    const int p = TestBasePort(31400) + 50;
    api_ = "https://127.0.0.1:" + std::to_string(p + 1);
    etcd_ = "https://127.0.0.1:" + std::to_string(p + 4);
    peer_port_ = p + 5;
    const std::string d = dir_->path();
    ASSERT_EQ(RunTandem({"pki", "ca", "init", "--dir", d + "/ca"}).exit_code, 0);
    ASSERT_EQ(RunTandem({"pki", "ca", "init", "--dir", d + "/other-ca"}).exit_code, 0);
    auto issue = RunTandem({"pki", "issue", "p1", "--ca-dir", d + "/ca", "--address", "127.0.0.1",
                            "--out", d + "/certs"});
    ASSERT_EQ(issue.exit_code, 0) << issue.output;
    const std::string c = d + "/certs";
    config_ = d + "/node/tandem.yaml";
    ASSERT_TRUE(MakeDirs(d + "/node", 0755).ok());
    ASSERT_TRUE(WriteFileAtomic(
                    config_,
                    "cluster: permissive\nnode:\n  name: p1\n  address: 127.0.0.1\n"
                    "  state_dir: " +
                        d + "/node\napi:\n  listen: 127.0.0.1\n  port: " + std::to_string(p + 1) +
                        "\npostgresql:\n  port: " + std::to_string(p) +
                        "\ndcs:\n  etcd_client_port: " + std::to_string(p + 4) +
                        "\n  etcd_peer_port: " + std::to_string(p + 5) +
                        "\ntls:\n  server_key: " + c + "/server.key\n  server_cert: " + c +
                        "/server.crt\n  client_key: " + c + "/client.key\n  client_cert: " + c +
                        "/client.crt\n  ca_cert: " + c + "/ca.crt\n  mode: permissive\n")
                    .ok());
    const char* bin = std::getenv("TANDEM_BIN");
    SpawnOptions opts;
    opts.output_file = d + "/node/agent.log";
    auto pid = Spawn({bin != nullptr ? bin : "build/tandem", "agent", "-c", config_}, opts);
    ASSERT_TRUE(pid.ok()) << pid.error().message();
    agent_ = *pid;
    ASSERT_TRUE(WaitUntil(
        [&] {
          return RunTandem({"-c", config_, "cluster", "status"}).exit_code == 0;
        },
        30'000));
    auto init = RunTandem({"-c", config_, "cluster", "initialize"}, 300'000);
    ASSERT_EQ(init.exit_code, 0) << init.output;
  }
  void TearDown() override {
    if (agent_ > 0 && IsAlive(agent_)) {
      ::kill(agent_, SIGTERM);
      if (!WaitForExit(agent_, 60'000)) KillProcessTree(agent_, SIGKILL);
    }
    for (const auto& [file, needle] :
         {std::pair<std::string, std::string>{dir_->path() + "/node/pgdata/postmaster.pid",
                                              "postgres"},
          {dir_->path() + "/node/etcd.pid", "etcd"}}) {
      auto text = ReadFile(file);
      auto v = text ? ParseInt(Trim(Split(*text, '\n')[0])) : std::nullopt;
      if (v && *v > 0 && IsAlive(static_cast<pid_t>(*v))) {
        auto cmd = ReadFile("/proc/" + std::to_string(*v) + "/cmdline");
        if (cmd && cmd->find(needle) != std::string::npos) {
          ::kill(static_cast<pid_t>(*v), SIGKILL);
          (void)WaitForExit(static_cast<pid_t>(*v), 10'000);
        }
      }
    }
    dir_.reset();
  }
  std::unique_ptr<TempDir> dir_;
  std::string config_, api_, etcd_;
  int peer_port_ = 0;
  pid_t agent_ = 0;
};

TEST_F(PermissiveTlsTest, EncryptsWithoutClientCertificatesButApiChangesStillNeedOne) {
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto s = ClusterStatusJson(config_);
        return s && (*s)["primary"] == "p1";
      },
      60'000));
  // etcd: TLS only, but no client certificate asked for.
  auto plain = Call({}, "GET", "http" + etcd_.substr(5) + "/version");
  EXPECT_TRUE(!plain.ok() || plain->status != 200);
  dcs::TlsClientOptions anon;
  anon.ca_file = dir_->path() + "/certs/ca.crt";
  auto v = Call(anon, "GET", etcd_ + "/version");
  ASSERT_TRUE(v.ok()) << v.error().message();
  EXPECT_EQ(v->status, 200);
  // Peers verify each other even in permissive mode (etcd cannot do less).
  auto peer = Call(anon, "GET", "https://127.0.0.1:" + std::to_string(peer_port_) + "/members");
  EXPECT_FALSE(peer.ok()) << "the peer port answered without a client certificate";
  // A permissive client does not verify: another CA's anchor still connects.
  dcs::TlsClientOptions unverified;
  unverified.ca_file = dir_->path() + "/other-ca/ca.crt";
  unverified.verify_peer = false;
  auto st = Call(unverified, "GET", api_ + "/v1/status");
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->status, 200);
  // API changes still need a certificate of the cluster CA.
  auto none = Call(anon, "POST", api_ + "/v1/cluster/pause", "{}");
  ASSERT_TRUE(none.ok()) << none.error().message();
  EXPECT_EQ(none->status, 401) << none->body;
  // The CLI (the node's client pair) may.
  auto pause = RunTandem({"-c", config_, "cluster", "pause"});
  EXPECT_EQ(pause.exit_code, 0) << pause.output;
  auto resume = RunTandem({"-c", config_, "cluster", "resume"});
  EXPECT_EQ(resume.exit_code, 0) << resume.output;
}

}  // namespace
}  // namespace tandem::testing
