// GET /metrics on a live 3-node sandbox (TLS, enforce): every node's scrape
// passes `promtool check metrics`; a real Prometheus server scrapes the three
// agents over HTTPS and its HTTP API says `up` is 1 for each and
// patroni_primary is 1 on exactly one; the bad inputs (an unknown query
// parameter, a POST, the health port's /metrics while it is off) are refused
// with the right status; and with api.health_port_metrics the health port
// serves the same text over plain HTTP.
//
// Ports: TestBasePort(28600) = P; node i uses P+10i .. P+10i+6 (the sandbox's
// scheme), Prometheus listens on P+90.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>

#include "base/file.h"
#include "base/process.h"
#include "base/strings.h"
#include "integration/harness/harness.h"
#include "integration/harness/raw_http.h"

namespace tandem::testing {
namespace {
using nlohmann::json;

using Answer = RawAnswer;

// One request to 127.0.0.1:port and its whole answer (the server closes).
// TLS when cert_dir is set: the server is not verified here (promtool and
// Prometheus below verify it against the CA); the client pair is presented
// only when with_cert.
Answer Exchange(int port, const std::string& method, const std::string& target,
                const std::string& cert_dir, bool with_cert) {
  return RawExchange(port, HttpRequest(method, target), cert_dir, with_cert);
}

// The value of the one sample `name{...}` of a scrape (nullopt when absent).
std::optional<double> SampleOf(const std::string& text, const std::string& name) {
  for (const auto& line : Split(text, '\n')) {
    if (StartsWith(line, name + "{") || StartsWith(line, name + " ")) {
      return std::strtod(line.substr(line.rfind(' ') + 1).c_str(), nullptr);
    }
  }
  return std::nullopt;
}

// promtool's lint of Patroni's own names: its xlog positions are counters
// without the _total suffix, kept for compatibility (docs/design/metrics.md).
const std::set<std::string> kPatroniLints = {
    "patroni_xlog_location counter metrics should have \"_total\" suffix",
    "patroni_xlog_received_location counter metrics should have \"_total\" suffix",
    "patroni_xlog_replayed_location counter metrics should have \"_total\" suffix"};

// `promtool check metrics` on text: "" when it accepts it (its only findings
// the Patroni names' lints), else what it said.
std::string PromtoolProblems(const std::string& text, const std::string& dir) {
  const std::string file = dir + "/scrape.txt";
  if (!WriteFileAtomic(file, text).ok()) return "cannot write " + file;
  auto r = RunCmd({"sh", "-c", "promtool check metrics < " + file}, 60'000);
  std::string problems;
  for (const auto& line : Split(r.output, '\n')) {
    if (!line.empty() && kPatroniLints.count(line) == 0) problems += line + "\n";
  }
  if (r.exit_code != 0 && r.exit_code != 3) {
    problems += "promtool exit code " + std::to_string(r.exit_code) + "\n";
  }
  return problems;
}

// A Prometheus server of our own, stopped (by its pid) when this dies.
class PrometheusServer {
 public:
  PrometheusServer() = default;
  ~PrometheusServer() { Stop(); }
  Status Start(const std::string& dir, int port, const std::string& config) {
    TANDEM_TRY(WriteFileAtomic(dir + "/prometheus.yml", config));
    SpawnOptions o;
    o.output_file = dir + "/prometheus.log";
    auto pid = Spawn({"prometheus", "--config.file=" + dir + "/prometheus.yml",
                      "--storage.tsdb.path=" + dir + "/data",
                      "--web.listen-address=127.0.0.1:" + std::to_string(port)},
                     o);
    if (!pid) return pid.error();
    pid_ = *pid;
    return Ok();
  }
  void Stop() {
    if (pid_ <= 0) return;
    KillProcessTree(pid_, SIGTERM);
    if (!WaitForExit(pid_, 20'000)) KillProcessTree(pid_, SIGKILL);
    (void)WaitForExit(pid_, 5'000);
    pid_ = 0;
  }

 private:
  pid_t pid_ = 0;
};

class MetricsTest : public SandboxSuite<MetricsTest> {
 protected:
  static void SetUpTestSuite() {
    ::signal(SIGPIPE, SIG_IGN);
    UpSandbox("tandem-metrics", 28600);
  }
  static void TearDownTestSuite() {
    DownSandbox();
    RemoveSandboxDir();
  }
  static int ApiPort(int i) { return base_ + 10 * i + 1; }
  static int HealthPort(int i) { return base_ + 10 * i + 6; }
  static int PrometheusPort() { return base_ + 90; }
  static std::string Certs(int i) { return NodeDir(i) + "/certs"; }
  static Answer Scrape(int i) { return Exchange(ApiPort(i), "GET", "/metrics", Certs(i), false); }
  // Every node's scrape, once each answers and one of them is the primary.
  static bool WaitForOnePrimary() {
    return WaitUntil(
        [] {
          int primaries = 0;
          for (int i = 1; i <= 3; ++i) {
            auto a = Scrape(i);
            if (a.status != 200) return false;
            primaries += SampleOf(a.body, "patroni_primary").value_or(0) == 1 ? 1 : 0;
          }
          return primaries == 1;
        },
        90'000);
  }
};

TEST_F(MetricsTest, EveryNodesScrapePassesPromtoolWithOnePrimary) {
  ASSERT_TRUE(WaitForOnePrimary()) << Scrape(1).body;
  TempDir scratch("tandem-metrics-scratch");
  int primaries = 0, replicas = 0;
  for (int i = 1; i <= 3; ++i) {
    const Answer a = Scrape(i);
    ASSERT_EQ(a.status, 200) << a.error << a.head;
    EXPECT_EQ(a.Header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(PromtoolProblems(a.body, scratch.path()), "") << "node" << i << ":\n" << a.body;
    EXPECT_EQ(SampleOf(a.body, "patroni_postgres_running"), 1.0) << "node" << i;
    EXPECT_EQ(SampleOf(a.body, "patroni_cluster_unlocked"), 0.0) << "node" << i;
    EXPECT_EQ(SampleOf(a.body, "tandem_store_reachable"), 1.0) << "node" << i;
    EXPECT_GT(SampleOf(a.body, "patroni_postmaster_start_time").value_or(0), 1.6e9);
    EXPECT_GE(SampleOf(a.body, "patroni_postgres_server_version").value_or(0), 150000);
    EXPECT_NE(
        a.body.find("tandem_certificate_expiry_timestamp_seconds{cluster=\"sandbox\",node=\"node" +
                    std::to_string(i) + "\",certificate=\"server\""),
        std::string::npos);
    if (SampleOf(a.body, "patroni_primary") == 1.0) {
      ++primaries;
      EXPECT_GT(SampleOf(a.body, "patroni_xlog_location").value_or(0), 0);
      // The primary reports its two replicas' lag.
      EXPECT_NE(a.body.find("tandem_replication_lag_bytes{"), std::string::npos) << a.body;
    }
    if (SampleOf(a.body, "patroni_replica") == 1.0) {
      ++replicas;
      EXPECT_GT(SampleOf(a.body, "patroni_xlog_replayed_location").value_or(0), 0);
      EXPECT_GT(SampleOf(a.body, "patroni_xlog_received_location").value_or(0), 0);
      EXPECT_EQ(SampleOf(a.body, "patroni_xlog_location"), 0.0);
    }
  }
  EXPECT_EQ(primaries, 1);
  EXPECT_EQ(replicas, 2);
}

TEST_F(MetricsTest, PrometheusScrapesTheSandboxOverHttps) {
  ASSERT_TRUE(WaitForOnePrimary());
  TempDir dir("tandem-metrics-prometheus");
  std::string targets;
  for (int i = 1; i <= 3; ++i) {
    targets += std::string(i > 1 ? ", " : "") + "'127.0.0.1:" + std::to_string(ApiPort(i)) + "'";
  }
  // The API's reads need no client certificate; the server's is verified
  // against the sandbox's CA.
  const std::string config =
      "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
      "scrape_configs:\n  - job_name: tandem\n    scheme: https\n"
      "    tls_config:\n      ca_file: " +
      Dir() + "/ca/ca.crt\n    static_configs:\n      - targets: [" + targets + "]\n";
  PrometheusServer prometheus;
  ASSERT_TRUE(prometheus.Start(dir.path(), PrometheusPort(), config).ok());
  auto query = [](const std::string& promql) -> std::optional<json> {
    std::string q;
    for (char c : promql) {
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
        q += c;
      } else {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
        q += buf;
      }
    }
    auto j = HttpGetJson("127.0.0.1", PrometheusPort(), "/api/v1/query?query=" + q);
    if (!j || (*j)["status"] != "success") return std::nullopt;
    return (*j)["data"]["result"];
  };
  // `up` is 1 for the three targets.
  std::string last;
  const bool all_up = WaitUntil(
      [&] {
        auto r = query("up{job=\"tandem\"} == 1");
        last = r ? r->dump() : "(no answer)";
        return r && r->size() == 3;
      },
      60'000);
  auto log = ReadFile(dir.path() + "/prometheus.log");
  ASSERT_TRUE(all_up) << "up: " << last << "\nprometheus.log (tail):\n"
                      << (log ? log->substr(log->size() > 3000 ? log->size() - 3000 : 0) : "");
  // patroni_primary: one series per node, 1 on exactly one of them.
  std::optional<json> primary, ones;
  ASSERT_TRUE(WaitUntil(
      [&] {
        primary = query("patroni_primary");
        ones = query("patroni_primary == 1");
        return primary && primary->size() == 3 && ones && ones->size() == 1;
      },
      30'000))
      << "patroni_primary: " << (primary ? primary->dump() : "?");
  EXPECT_EQ((*ones)[0]["metric"]["scope"], "sandbox");
  prometheus.Stop();
}

TEST_F(MetricsTest, BadRequestsAreRefused) {
  // An unknown query parameter: a 400 naming it.
  Answer a = Exchange(ApiPort(1), "GET", "/metrics?name[]=up", Certs(1), false);
  EXPECT_EQ(a.status, 400) << a.body;
  EXPECT_NE(a.body.find("name[]"), std::string::npos) << a.body;
  // A POST: without a client certificate the TLS rule refuses it first (401);
  // with one, the route has no POST: a 405 naming what it has.
  a = Exchange(ApiPort(1), "POST", "/metrics", Certs(1), false);
  EXPECT_EQ(a.status, 401) << a.body;
  a = Exchange(ApiPort(1), "POST", "/metrics", Certs(1), true);
  EXPECT_EQ(a.status, 405) << a.body;
  EXPECT_EQ(a.Header("allow"), "GET, HEAD") << a.head;
  // The plain health port serves no metrics unless configured to.
  a = Exchange(HealthPort(1), "GET", "/metrics", "", false);
  EXPECT_EQ(a.status, 404) << a.body;
  // ... while its health checks answer (200 or 503, as the node's role says).
  const int primary_check = Exchange(HealthPort(1), "GET", "/primary", "", false).status;
  EXPECT_TRUE(primary_check == 200 || primary_check == 503) << primary_check;
}

// Last: restarts one replica's agent with api.health_port_metrics.
TEST_F(MetricsTest, HealthPortServesMetricsWhenConfigured) {
  ASSERT_TRUE(WaitForOnePrimary());
  int replica = 0;
  for (int i = 1; i <= 3 && replica == 0; ++i) {
    if (SampleOf(Scrape(i).body, "patroni_replica") == 1.0) replica = i;
  }
  ASSERT_NE(replica, 0);
  auto cfg = ReadFile(Config(replica));
  ASSERT_TRUE(cfg.ok());
  const std::string key = "\n  health_port: " + std::to_string(HealthPort(replica)) + "\n";
  auto at = cfg->find(key);
  ASSERT_NE(at, std::string::npos) << *cfg;
  std::string changed = *cfg;
  changed.insert(at + key.size(), "  health_port_metrics: true\n");
  ASSERT_TRUE(WriteFileAtomic(Config(replica), changed).ok());
  const std::string node = "node" + std::to_string(replica);
  ASSERT_EQ(RunTandem({"sandbox", "kill", "--dir", Dir(), node}).exit_code, 0);
  auto started = RunTandem({"sandbox", "start", "--dir", Dir(), node});
  ASSERT_EQ(started.exit_code, 0) << started.output;
  Answer a;
  ASSERT_TRUE(WaitUntil(
      [&] {
        a = Exchange(HealthPort(replica), "GET", "/metrics", "", false);
        return a.status == 200 && SampleOf(a.body, "patroni_replica") == 1.0;
      },
      90'000))
      << a.status << " " << a.body;
  EXPECT_EQ(a.Header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  TempDir scratch("tandem-metrics-scratch");
  EXPECT_EQ(PromtoolProblems(a.body, scratch.path()), "");
  // The health checks still answer there, and a wrong method is still a 405.
  EXPECT_EQ(Exchange(HealthPort(replica), "GET", "/replica", "", false).status, 200);
  EXPECT_EQ(Exchange(HealthPort(replica), "POST", "/metrics", "", false).status, 405);
}

}  // namespace
}  // namespace tandem::testing
