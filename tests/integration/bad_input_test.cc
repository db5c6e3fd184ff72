// Bad input never harms (issue #19): one table of bad inputs across every
// surface an operator or a client touches (the CLI's words and flags, `cluster
// certs`, `pki`, config files, the REST API and its transport, the health
// port, a node's state directory), run against ONE shared 3-node sandbox.
// Each row asserts the exit code or HTTP status, that the message names the
// problem (a substring), and that the cluster did not change: the snapshot
// (leader, members with role and timeline, pause, a pending intent, and each
// node's status and last command) is the same before and after.
//
// Rows whose fix belongs to another part of #19 are written against the
// issue's stated behaviour and say whose in `owner`; the summary printed at
// the end lists every failing row with it. Rows that would harm a cluster on
// a branch without the fix (a second agent for a node, a switchover in 2099)
// run last.
//
// Ports: TestBasePort(28400) = P; node i uses P+10i .. P+10i+6 (the sandbox's
// scheme, below the kernel's ephemeral range 32768-60999 so no outgoing
// connection holds one); the state-directory rows' extra agents use P+70 .. P+76.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/strings.h"
#include "integration/harness/harness.h"
#include "integration/harness/raw_http.h"

namespace tandem::testing {
namespace {
using nlohmann::json;

// Raw exchanges: RawExchange (harness/raw_http.h), presenting the client pair
// unless told otherwise.
RawAnswer Raw(int port, const std::string& request, const std::string& cert_dir,
              bool with_cert = true) {
  return RawExchange(port, request, cert_dir, with_cert);
}

// A well-formed request (Content-Length, JSON, Connection: close).
std::string Request(const std::string& method, const std::string& target, const std::string& body) {
  return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
         "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

enum Kind {
  kCli,     // input: tandem's arguments; {c} the replica's config, {primary}, {dir}, {tmp}
  kConfig,  // input: YAML added to a minimal valid node file; run `cluster status`
  kApi,     // input: "METHOD TARGET BODY" to the replica's API (TLS, its client pair)
  kRaw,     // input: raw request bytes to the replica's API (TLS, its client pair)
  kNoCert,  // as kApi, without a client certificate
  kHealth,  // input: "METHOD TARGET BODY" to the replica's plain health port
  kState,   // input: a state-directory scenario (RunState)
};
constexpr int kFails = -1000;  // any non-zero exit within the row's time
constexpr int k4xx = -4;       // any 4xx status
// Keeps running until timeout(1) stops it (exit 124) and its log names the
// problem: a node whose state file is gone waits as a new node, saying why.
constexpr int kRunsAndWarns = -1001;

struct Row {
  Kind kind;
  std::string input;
  int expect;         // exit code, HTTP status, kFails or k4xx
  std::string names;  // a substring of the output / the answer's body
  std::string owner;  // "" = the schema branch; else the part of #19 that fixes it
};

const std::string kBomb =
    "postgresql:\n  parameters:\n    a: &a [x, x, x, x, x, x, x, x, x]\n"
    "    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, "
    "*b]\n"
    "    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, "
    "*d]\n"
    "    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, "
    "*f]\n"
    "    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n    i: &i [*h, *h, *h, *h, *h, *h, *h, *h, "
    "*h]\n";

// The table. One row per line where it fits.
std::vector<Row> Rows() {
  const std::string cli = "CLI words (ops)", cfg = "config checks", http = "HTTP transport";
  const std::string ops = "operations (ops)", lock = "agent lock / state dir";
  return {
      // ---- tandem's words and flags
      {kCli, "-c {c} cluster frobnicate", kFails, "frobnicate", cli},
      {kCli, "frobnicate", kFails, "frobnicate", cli},
      {kCli, "--frobnicate", kFails, "--frobnicate", cli},
      {kCli, "-c {c} cluster status --frob", kFails, "--frob", ""},
      {kCli, "-c {c} cluster remove node2 node3", kFails, "node3", ""},
      {kCli, "-c {c} cluster remove nosuchnode", kFails, "nosuchnode", ops},
      {kCli, "-c {c} cluster remove Node/3", kFails, "Node/3", ""},
      {kCli, "-c {c} cluster switchover --to nosuchnode", kFails, "nosuchnode", ""},
      {kCli, "-c {c} cluster switchover --to {primary}", kFails, "already the primary", ""},
      {kCli, "-c {c} cluster switchover --at yesterday", kFails, "--at", ""},
      {kCli, "-c {c} cluster switchover --at +400d", kFails, "--at", ""},
      {kCli, "-c {c} cluster switchover --wait 0", kFails, "--wait", ""},
      {kCli, "-c {c} cluster switchover --wait 99999999999999999999", kFails, "--wait", ""},
      {kCli, "-c {c} cluster failover", kFails, "--to", ""},
      {kCli, "-c {c} cluster failover --to nosuchnode", kFails, "nosuchnode", ""},
      {kCli, "-c {c} cluster failover --to {primary} --accept-data-loss", kFails, "primary", ""},
      {kCli, "-c {c} cluster join", kFails, "ADDRESS", ""},
      {kCli, "-c {c} cluster join 127.0.0.1:1", kFails, "already a member", ops},
      {kCli, "-c {c} cluster initialize", kFails, "already a member", ops},
      {kCli, "-c {c} cluster tls-mode bogus", kFails, "bogus", ""},
      {kCli, "-c /nonexistent/tandem.yaml cluster status", kFails, "/nonexistent/tandem.yaml", ""},
      {kCli, "agent --frob", kFails, "--frob", ""},
      {kCli, "sandbox frobnicate", kFails, "frobnicate", cli},
      // ---- tandem cluster certs
      {kCli, "-c {c} cluster certs", kFails, "required", ""},
      {kCli, "-c {c} cluster certs --frob", kFails, "--frob", cli},
      {kCli, "-c {c} cluster certs /nonexistent/a.key /nonexistent/a.crt /nonexistent/ca.crt",
       kFails, "/nonexistent/a", ""},
      {kCli, "-c {c} cluster certs {dir}/node1/certs/client.key {dir}/node1/certs/client.crt",
       kFails, "3", ""},
      {kCli, "-c {c} cluster certs {c} {c} {c}", kFails, "{c}", ""},
      // ---- tandem pki
      {kCli, "pki frobnicate", kFails, "frobnicate", cli},
      {kCli, "pki ca frobnicate", kFails, "frobnicate", cli},
      {kCli, "pki ca init", kFails, "--dir", ""},
      {kCli, "pki issue node9 --ca-dir /nonexistent --address 127.0.0.1 --out {tmp}/i1", kFails,
       "/nonexistent/ca.crt", ""},
      {kCli, "pki issue N/1 --ca-dir {dir}/ca --address 127.0.0.1 --out {tmp}/i2", kFails, "N/1",
       ""},
      {kCli, "pki issue node9 --ca-dir {dir}/ca --address notanip --out {tmp}/i3", kFails,
       "notanip", ""},
      {kCli, "pki inspect /nonexistent.crt", kFails, "no such file", ""},
      {kCli, "pki inspect {c}", kFails, "{c}", ""},
      {kCli, "pki sign", kFails, "CSR", ""},
      // ---- config files
      {kConfig, "bogus_key: 1\n", kFails, "bogus_key", ""},
      {kConfig, "dcs:\n  ttll: 2s\n", kFails, "dcs.ttll", ""},
      {kConfig, "postgresql:\n  port: abc\n", kFails, "postgresql.port", ""},
      {kConfig, "postgresql:\n  port: 70000\n", kFails, "postgresql.port", ""},
      {kConfig, "dcs:\n  ttl: forever\n", kFails, "dcs.ttl", ""},
      {kConfig, "dcs:\n  ttl: 1s\n", kFails, "dcs.ttl", ""},
      {kConfig, "dcs:\n  endpoints: 5\n", kFails, "dcs.endpoints", ""},
      {kConfig, "cluster: a\ncluster: b\n", kFails, "appears twice", ""},
      {kConfig, "postgresql:\n  parameters:\n    max_connections: 500\n", kFails, "max_connections",
       cfg},
      {kConfig, "postgresql:\n  parameters:\n    port: 5433\n", kFails, "postgresql.port", cfg},
      {kConfig, "postgresql:\n  parameters:\n    no_such_param: 1\n", kFails, "no_such_param", cfg},
      {kConfig, "postgresql:\n  parameters:\n    shared_buffers: lots\n", kFails, "shared_buffers",
       cfg},
      {kConfig, kBomb, kFails, "alias", cfg},
      {kConfig, "log:\n  level: " + std::string(3000, '[') + std::string(3000, ']') + "\n", kFails,
       "depth", cfg},
      // ---- the REST API: the findings, unknown fields, wrong types
      {kApi, R"(POST /v1/cluster/remove {"node": 3})", 400, R"(\"node\" must be a node name)", ""},
      {kApi, R"(POST /v1/cluster/remove {"nodename": "node3"})", 400, "unknown field", ""},
      {kApi, R"(POST /v1/cluster/remove {})", 400, R"(\"node\" is required)", ""},
      {kApi, "POST /v1/cluster/remove ", 400, R"(\"node\" is required)", ""},
      {kApi, R"(POST /v1/cluster/remove {"node": "node3", "force": "true"})", 400,
       R"(\"force\" must be true or false (a JSON boolean), got the string \"true\")", ""},
      {kApi, R"(POST /v1/cluster/remove {"node": "node2", "node": "node3"})", 400, "more than once",
       ""},
      {kApi, R"(POST /v1/cluster/switchover {"at": 4102444800000})", 400, R"(unknown field \"at\")",
       ""},
      {kApi, R"(POST /v1/cluster/switchover {"at_ms": "soon"})", 400, R"(\"at_ms\" must be)", ""},
      {kApi, R"(POST /v1/cluster/switchover {"to": 2})", 400, R"(\"to\" must be a node name)", ""},
      {kApi, R"(POST /v1/cluster/failover {})", 400, R"(\"to\" is required)", ""},
      {kApi, R"(POST /v1/cluster/failover {"to": "node3", "accept_data_loss": "true"})", 400,
       R"(\"accept_data_loss\" must be true or false)", ""},
      {kApi, R"(POST /v1/cluster/clear-error {})", 400, R"(\"node\" is required)", ""},
      {kApi, R"(POST /v1/cluster/clear-error {"node": "node3"})", 409, "send it to node3", ""},
      {kApi, R"(POST /v1/cluster/join {"address": 5})", 400, R"(\"address\" must be)", ""},
      {kApi, R"(POST /v1/cluster/initialize {"force": true})", 400, "takes no fields", ""},
      {kApi, R"(POST /v1/cluster/pause {"paused": true})", 400, R"(unknown field \"paused\")", ""},
      {kApi, "POST /v1/cluster/resume []", 400, "not a JSON object", ""},
      {kApi, R"(POST /v1/cluster/remove {"node": )", 400, "not a JSON object", ""},
      {kApi, "GET /v1/status?verbose=1 ", 400, R"(unknown query parameter \"verbose\")", ""},
      {kApi, R"(POST /v1/internal/join {"name": "node9", "host": "127.0.0.1", "pg_port": "1"})",
       400, R"(\"pg_port\" must be)", ""},
      {kApi, R"(POST /v1/internal/join {"name": "node9", "host": "h", "pg_port": 1, "x": 1})", 400,
       R"(unknown field \"x\")", ""},
      // ---- the REST API: paths, methods and the transport
      {kApi, "GET /v1/nosuch ", 404, "no such endpoint", ""},
      {kApi, "DELETE /v1/status ", 405, "not allowed", ""},
      {kApi, "GET /v1/cluster/remove ", 405, "not allowed", ""},
      {kApi, "POST /v1/cluster/remove " + std::string(2 << 20, ' '), 413, "", http},
      {kRaw,
       "POST /v1/cluster/remove HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: "
       "application/json\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n{\"nodename\":\"node3\"}\r\n0"
       "\r\n\r\n",
       k4xx, "", ""},
      {kRaw, "POST /v1/cluster/remove HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 411, "",
       http},
      {kRaw, "GARBAGE\r\n\r\n", 400, "", http},
      {kRaw,
       "POST /v1/cluster/remove HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "
       "abc\r\n\r\n",
       400, "", http},
      {kRaw,
       "POST /v1/cluster/remove HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: "
       "application/x-www-form-urlencoded\r\nContent-Length: 20\r\n\r\n{\"nodename\":\"node3\"}",
       400, "nodename", http},
      {kNoCert, "POST /v1/cluster/pause {}", 401, "client certificate", http},
      // ---- the health port
      {kHealth, "GET /replica?lagg=1MB ", 400, R"(unknown query parameter \"lagg\")", ""},
      {kHealth, "GET /nosuch ", 404, "no such endpoint", ""},
      {kHealth, "POST /v1/cluster/pause {}", 404, "no such endpoint", ""},
      // ---- a node's state directory
      {kState, "half-written state file", kFails, "state.json", ""},
      {kState, "state file of the wrong shape", kFails, "state.json", ""},
      {kState, "missing state file beside secrets.json", kRunsAndWarns, "state.json is missing",
       ""},
      // ---- last: would harm a cluster on a branch without their fix
      {kApi, R"(POST /v1/cluster/switchover {"at_ms": 4102444800000})", k4xx, "at_ms", ops},
      {kCli, "-c {c} cluster switchover --at 2099-01-01T00:00:00Z", kFails, "--at", ops},
      {kState, "a second agent for node2", kFails, "lock", lock},
  };
}

class BadInputTest : public SandboxSuite<BadInputTest> {
 protected:
  static void SetUpTestSuite() {
    ::signal(SIGPIPE, SIG_IGN);
    UpSandbox("tandem-badinput", 28400);
  }
  static void TearDownTestSuite() {
    DownSandbox();
    RemoveSandboxDir();
  }
  static int ApiPort(int i) { return base_ + 10 * i + 1; }
  static int HealthPort(int i) { return base_ + 10 * i + 6; }
  static std::string Certs(int i) { return NodeDir(i) + "/certs"; }

  // A node's status document (three tries: one slow answer is not a change).
  static std::optional<json> StatusOf(int i) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto a = Raw(ApiPort(i), Request("GET", "/v1/status", ""), Certs(i));
      if (!a.ok || a.status != 200) continue;
      auto j = json::parse(a.body, nullptr, false);
      if (!j.is_discarded()) return j;
    }
    return std::nullopt;
  }

  // The cluster as a string that changes only when something changed.
  static std::string Snapshot() {
    std::string out;
    for (int i = 1; i <= 3; ++i) {
      auto s = StatusOf(i);
      if (!s) {
        out += "node" + std::to_string(i) + ": no status\n";
        continue;
      }
      const auto& lc = (*s)["last_command"];
      out += "node" + std::to_string(i) + ": " + s->value("status", "?") + ", last command '" +
             lc.value("command", "") + "' " + lc.value("result", "") + "\n";
      if (i != 1) continue;
      out += "leader " + (*s)["primary"].dump() + ", paused " + (*s)["paused"].dump() +
             ", intent " + ((*s)["intent"].is_null() ? "none" : (*s)["intent"].dump()) + "\n";
      for (const auto& m : (*s)["members"]) {
        out += "  member " + m.value("name", "") + " " + m.value("role", "") + " timeline " +
               m["timeline"].dump() + "\n";
      }
    }
    return out;
  }

  struct Outcome {
    int code = 0;  // exit code or HTTP status (-1: none)
    std::string text;
    bool is_http = false;
  };

  Outcome Run(const Row& r) {
    switch (r.kind) {
      case kCli:
        return RunCli(r.input);
      case kConfig:
        return RunConfig(r.input);
      case kApi:
      case kNoCert:
      case kHealth:
      case kRaw:
        return RunHttp(r);
      case kState:
        return RunState(r.input);
    }
    return {};
  }

  std::string Expand(std::string s) {
    const std::map<std::string, std::string> vars = {{"{c}", Config(replica_)},
                                                     {"{primary}", primary_},
                                                     {"{dir}", Dir()},
                                                     {"{tmp}", scratch_->path()}};
    for (const auto& [k, v] : vars) {
      for (size_t p; (p = s.find(k)) != std::string::npos;) s.replace(p, k.size(), v);
    }
    return s;
  }

  Outcome RunCli(const std::string& input) {
    std::vector<std::string> args;
    for (const auto& w : Split(Expand(input), ' ')) {
      if (!w.empty()) args.push_back(w);
    }
    auto res = RunTandem(args, 30'000);
    return {res.exit_code, res.output};
  }

  Outcome RunConfig(const std::string& yaml) {
    const std::string path = scratch_->path() + "/bad.yaml";
    const std::string base =
        "node:\n  name: probe\n  address: 127.0.0.1\n  state_dir: " + scratch_->path() +
        "/probe\napi:\n  port: " + std::to_string(base_ + 71) + "\n";
    EXPECT_TRUE(WriteFileAtomic(path, base + yaml).ok());
    auto res = RunTandem({"-c", path, "cluster", "status"}, 5'000);
    return {res.exit_code, res.output};
  }

  Outcome RunHttp(const Row& r) {
    std::string request = r.input;
    if (r.kind != kRaw) {
      const auto sp1 = r.input.find(' ');
      const auto sp2 = r.input.find(' ', sp1 + 1);
      request = Request(r.input.substr(0, sp1), r.input.substr(sp1 + 1, sp2 - sp1 - 1),
                        sp2 == std::string::npos ? "" : r.input.substr(sp2 + 1));
    }
    RawAnswer a = r.kind == kHealth ? Raw(HealthPort(replica_), request, "")
                                    : Raw(ApiPort(replica_), request, Certs(replica_),
                                          /*with_cert=*/r.kind != kNoCert);
    if (!a.ok) return {-1, a.error, true};
    return {a.status, a.head + "\n\n" + a.body, true};
  }

  // A node file for a second agent of node `name` on the spare ports P+70..
  // with its own state directory `state_dir` (no TLS).
  std::string SpareConfig(const std::string& state_dir) {
    const int p = base_ + 70;
    const std::string path = state_dir + ".yaml";
    EXPECT_TRUE(WriteFileAtomic(path, NodeYaml("node2", state_dir, p)).ok());
    return path;
  }

  Outcome RunAgent(const std::string& config, int64_t timeout_ms) {
    auto res = RunTandem({"agent", "-c", config}, timeout_ms);
    return {res.exit_code, res.output};
  }

  Outcome RunState(const std::string& scenario) {
    const std::string dir = scratch_->path() + "/state-" + std::to_string(++state_rows_);
    EXPECT_TRUE(MakeDirs(dir, 0755).ok());
    if (scenario == "half-written state file") {
      EXPECT_TRUE(WriteFileAtomic(dir + "/state.json", R"({"member": true, "clus)").ok());
    } else if (scenario == "state file of the wrong shape") {
      EXPECT_TRUE(WriteFileAtomic(dir + "/state.json", R"({"member": "yes"})").ok());
    } else if (scenario == "missing state file beside secrets.json") {
      auto secrets = ReadFile(NodeDir(replica_) + "/secrets.json");
      EXPECT_TRUE(secrets.ok());
      EXPECT_TRUE(WriteFileAtomic(dir + "/secrets.json", secrets.ok() ? *secrets : "{}").ok());
      // It runs on: timeout(1) stops it with SIGINT after 6 s (exit 124) and
      // what it logged until then is the outcome.
      auto res = RunCmd({"timeout", "-s", "INT", "6", TandemBin(), "agent", "-c", SpareConfig(dir)},
                        30'000);
      return {res.exit_code, res.output};
    } else if (scenario == "a second agent for node2") {
      return RunAgent(Config(replica_), 10'000);
    }
    return RunAgent(SpareConfig(dir), 8'000);
  }

  // "" when the outcome is what the row says; else why not.
  static std::string Judge(const Row& r, const Outcome& o) {
    if (r.expect == kFails) {
      if (o.code == 0) return "exit code 0, expected a refusal";
      if (o.code < 0) return "no exit code (timed out?)";
    } else if (r.expect == kRunsAndWarns) {
      if (o.code != 124) return "exit code " + std::to_string(o.code) + ", expected it to run on";
    } else if (r.expect == k4xx) {
      if (o.code < 400 || o.code > 499) return "HTTP " + std::to_string(o.code) + ", expected 4xx";
    } else if (o.code != r.expect) {
      return (o.is_http ? "HTTP " : "exit code ") + std::to_string(o.code) + ", expected " +
             std::to_string(r.expect);
    }
    if (o.text.find(r.names) == std::string::npos)
      return "the message does not name '" + r.names + "'";
    if (o.is_http && o.code >= 400 && !(r.kind == kHealth && o.code == 503)) {
      const auto sep = o.text.find("\n\n");
      auto j = json::parse(sep == std::string::npos ? "" : o.text.substr(sep + 2), nullptr, false);
      if (j.is_discarded() || !j.is_object()) return "the error answer is not JSON";
      if (j.value("error", "").empty() || j.value("fix", "").empty()) {
        return "the error answer lacks \"error\" or \"fix\"";
      }
      if (o.code == 405 && o.text.find("Allow:") == std::string::npos) return "405 without Allow";
    }
    return "";
  }

  int replica_ = 0;
  std::string primary_;
  std::unique_ptr<TempDir> scratch_;
  int state_rows_ = 0;
};

TEST_F(BadInputTest, NoBadInputChangesTheClusterAndEachIsNamed) {
  ASSERT_TRUE(WaitUntil(
      [] {
        auto s = ClusterStatusJson(Config(1));
        return s && UnhealthyBecause(*s, 3, /*failover_ready=*/false).empty();
      },
      90'000))
      << Snapshot();
  auto s = ClusterStatusJson(Config(1));
  ASSERT_TRUE(s);
  primary_ = (*s)["primary"].get<std::string>();
  replica_ = primary_ == "node2" ? 3 : 2;  // requests go to a replica: "me" must never be implied
  scratch_ = std::make_unique<TempDir>("tandem-badinput-scratch");
  const auto rows = Rows();
  ASSERT_GE(rows.size(), 60u);
  std::string summary;
  int failed = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    Row r = rows[i];
    r.names = Expand(r.names);
    const std::string before = Snapshot();
    const Outcome o = Run(r);
    const std::string after = Snapshot();
    std::string why = Judge(r, o);
    if (why.empty() && after != before) why = "the cluster changed:\n" + before + "->\n" + after;
    std::string shown = Expand(r.input);
    if (shown.size() > 90) shown = shown.substr(0, 87) + "...";
    for (auto& c : shown) {
      if (c == '\r' || c == '\n') c = ' ';
    }
    if (!why.empty()) {
      ++failed;
      summary += "  row " + std::to_string(i + 1) + " FAILS [" +
                 (r.owner.empty() ? "schema" : r.owner) + "] " + shown + ": " + why + "\n";
      ADD_FAILURE() << "row " << i + 1 << " (" << shown << "): " << why
                    << "\n  output: " << o.text.substr(0, 600)
                    << (r.owner.empty() ? "" : "\n  (fixed by: " + r.owner + ")");
    }
  }
  std::printf("bad-input table: %zu rows, %d fail\n%s", rows.size(), failed, summary.c_str());
}

}  // namespace
}  // namespace tandem::testing
