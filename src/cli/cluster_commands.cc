// `tandem cluster ...`: the operator commands that talk to the local agent (status,
// initialize, join, switchover, failover, pause, history, uri, tls-mode); their
// text views are in render.cc. Commands that read the time or wait take the
// process's Clock.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "agent/config.h"
#include "agent/tls_files.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/strings.h"
#include "cli/commands.h"
#include "core/switchover_time.h"
#include "net/http_client.h"
#include "net/peer_certs.h"

namespace tandem::cli {
using nlohmann::json;

namespace {

int PrintError(const std::string& msg) {
  std::fprintf(stderr, "ERROR : %s\n", msg.c_str());
  return 1;
}

std::string LocalApiUrl(const agent::Config& cfg) {
  const bool wildcard = cfg.api_listen == "0.0.0.0" || cfg.api_listen == "::";
  // With TLS the server's certificate names the node's address, not loopback.
  std::string host =
      wildcard ? (cfg.tls_enabled() ? cfg.node_address : "127.0.0.1") : cfg.api_listen;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return cfg.url_scheme() + host + ":" + std::to_string(cfg.api_port);
}

// Calls the local agent; prints the error and returns nullopt on failure.
std::optional<json> CallAgent(const agent::Config& cfg, const std::string& method,
                              const std::string& path, const json& body, int64_t timeout_ms,
                              int* http_status = nullptr) {
  const std::string url = LocalApiUrl(cfg);
  auto r = net::HttpCall(method, url + path, body.is_null() ? "" : body.dump(), timeout_ms);
  if (!r) {
    PrintError("cannot reach the local agent at " + url + " (" + r.error().message() +
               "); is `tandem agent -c " + cfg.path + "` running?");
    return std::nullopt;
  }
  if (http_status != nullptr) *http_status = r->status;
  try {
    auto j = json::parse(r->body);
    if (r->status != 200) {
      PrintError(j.value("error", r->body));
      return std::nullopt;
    }
    return j;
  } catch (...) {
    PrintError("unexpected answer from the agent (HTTP " + std::to_string(r->status) + ")");
    return std::nullopt;
  }
}

std::optional<agent::Config> Load(const std::string& path) {
  auto cfg = agent::LoadConfig(path);
  if (!cfg) {
    PrintError(cfg.error().message());
    return std::nullopt;
  }
  // The CLI calls its agent as the node does: the node's client pair and CA.
  // A TLS write to a server that closed raises SIGPIPE: an error, not a crash.
  net::SetHttpClientTls(agent::ClientTlsFor(*cfg));
  ::signal(SIGPIPE, SIG_IGN);
  return *cfg;
}

// For the commands that make this node use its certificates (initialize,
// join): the same check as the agent's start-up, before anything changes.
std::optional<agent::Config> LoadWithTls(const Clock& clock, const std::string& path) {
  auto cfg = Load(path);
  if (!cfg) return std::nullopt;
  if (auto st = agent::ValidateTlsFiles(*cfg, clock.WallSeconds()); !st.ok()) {
    PrintError(st.error().message());
    return std::nullopt;
  }
  return cfg;
}

}  // namespace

int ClusterInitialize(const Clock& clock, const std::string& path) {
  auto cfg = LoadWithTls(clock, path);
  if (!cfg) return 1;
  std::printf("Initializing cluster '%s' with %s as its primary...\n", cfg->cluster.c_str(),
              cfg->node_name.c_str());
  std::fflush(stdout);  // before a refusal on stderr
  if (!CallAgent(*cfg, "POST", "/v1/cluster/initialize", json(), 180'000)) return 1;
  auto st = CallAgent(*cfg, "GET", "/v1/status", json(), 10'000);
  if (st) std::printf("%s", RenderStatus(*st).c_str());
  return 0;
}

int ClusterJoin(const Clock& clock, const std::string& path, const std::string& address,
                bool witness) {
  auto cfg = LoadWithTls(clock, path);
  if (!cfg) return 1;
  if (!CallAgent(*cfg, "POST", "/v1/cluster/join", json{{"address", address}, {"witness", witness}},
                 30'000)) {
    return 1;
  }
  std::printf("Joining %s to the cluster%s through %s...\n", cfg->node_name.c_str(),
              witness ? " as a witness" : "", address.c_str());
  std::string last_progress;
  const MonoMs start = clock.Now();
  while (clock.Now() - start < 30 * 60 * 1000) {
    clock.SleepFor(300);
    auto st = CallAgent(*cfg, "GET", "/v1/status", json(), 10'000);
    if (!st) return 1;
    const auto& lc = (*st)["last_command"];
    std::string progress = lc.value("progress", "");
    if (!progress.empty() && progress != last_progress) {
      std::printf("  %s\n", progress.c_str());
      std::fflush(stdout);
      last_progress = progress;
    }
    std::string result = lc.value("result", "");
    if (result == "Success") {
      std::printf("%s", RenderStatus(*st).c_str());
      return 0;
    }
    if (result == "Failed") return PrintError(lc.value("error", std::string("join failed")));
  }
  return PrintError("the join is still running after 30 minutes; see `tandem cluster status`");
}

int ClusterStatus(const std::string& path, bool as_json) {
  auto cfg = Load(path);
  if (!cfg) return 1;
  auto st = CallAgent(*cfg, "GET", "/v1/status", json(), 10'000);
  if (!st) return 1;
  if (as_json) {
    std::printf("%s\n", st->dump(2).c_str());
  } else {
    std::printf("%s", RenderStatus(*st).c_str());
  }
  return 0;
}

int ClusterRemove(const std::string& path, const std::string& node, bool force) {
  auto cfg = Load(path);
  if (!cfg) return 1;
  // The wire always names the target: no NODE means this node, said so.
  const std::string target = node.empty() ? cfg->node_name : node;
  if (!CallAgent(*cfg, "POST", "/v1/cluster/remove", json{{"node", target}, {"force", force}},
                 180'000)) {
    return 1;
  }
  std::printf("Removed %s from the cluster.\n", target.c_str());
  return 0;
}

int ClusterClearError(const std::string& path) {
  auto cfg = Load(path);
  if (!cfg) return 1;
  if (!CallAgent(*cfg, "POST", "/v1/cluster/clear-error", json{{"node", cfg->node_name}}, 10'000)) {
    return 1;
  }
  std::printf("Error state cleared.\n");
  return 0;
}

// ------------------------------------------------------------ operator control

bool ParseAt(const std::string& at, int64_t now_ms, int64_t* out_ms, std::string* error) {
  if (at.empty()) {
    *out_ms = 0;
    return true;
  }
  // Both forms meet the same rule (core/switchover_time.h), which the agent
  // checks again for a request that did not come from this CLI.
  auto checked = [&](int64_t ms) {
    if (auto st = core::CheckSwitchoverTime(ms, now_ms); !st.ok()) {
      *error = "--at '" + at + "': " + st.error().message();
      return false;
    }
    *out_ms = ms;
    return true;
  };
  if (at[0] == '+') {
    auto d = ParseDurationMs(at.substr(1));
    if (!d || *d < 0) {
      *error = "--at '" + at +
               "': use +DURATION (e.g. +90s, +10m, +2h) or a UTC time like "
               "2026-11-22T03:00:00Z";
      return false;
    }
    return checked(now_ms + *d);
  }
  std::tm tm{};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  char z = 0;
  const int n =
      std::sscanf(at.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &sec, &z);
  if (n != 7 || z != 'Z' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
    *error = "--at '" + at + "': use a UTC time like 2026-11-22T03:00:00Z or +DURATION (+10m)";
    return false;
  }
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return checked(static_cast<int64_t>(timegm(&tm)) * 1000);
}

namespace {

// Polls the local agent until `done(status)` or the deadline; prints progress.
bool WaitForPrimary(const Clock& clock, const agent::Config& cfg, const std::string& old_primary,
                    const std::string& want, int64_t wait_ms, int64_t* took_ms) {
  const MonoMs begin = clock.Now();
  while (clock.Now() - begin < wait_ms) {
    auto r = net::HttpCall("GET", LocalApiUrl(cfg) + "/v1/status", "", 2'000);
    if (r && r->status == 200) {
      try {
        auto j = json::parse(r->body);
        std::string p = j["primary"].is_string() ? j["primary"].get<std::string>() : "";
        bool writable = false;
        for (const auto& m : j["members"]) {
          if (m.value("name", "") == p && m.value("role", "") == "primary") writable = true;
        }
        if (!p.empty() && writable && p != old_primary && (want.empty() || p == want)) {
          *took_ms = clock.Now() - begin;
          std::printf("%s is the primary now.\n", p.c_str());
          return true;
        }
      } catch (...) {
      }
    }
    clock.SleepFor(50);
  }
  return false;
}

std::string CurrentPrimary(const agent::Config& cfg) {
  auto r = net::HttpCall("GET", LocalApiUrl(cfg) + "/v1/status", "", 5'000);
  if (!r || r->status != 200) return "";
  try {
    auto j = json::parse(r->body);
    return j["primary"].is_string() ? j["primary"].get<std::string>() : "";
  } catch (...) {
    return "";
  }
}

}  // namespace

int ClusterSwitchover(const Clock& clock, const std::string& path, const std::string& to,
                      const std::string& at, int64_t wait_ms) {
  auto cfg = Load(path);
  if (!cfg) return 1;
  int64_t at_ms = 0;
  std::string err;
  if (!ParseAt(at, clock.WallNow(), &at_ms, &err)) return PrintError(err);
  const std::string old = CurrentPrimary(*cfg);
  auto r =
      CallAgent(*cfg, "POST", "/v1/cluster/switchover", json{{"to", to}, {"at_ms", at_ms}}, 20'000);
  if (!r) return 1;
  std::printf("%s.\n", r->value("message", std::string("requested")).c_str());
  if (at_ms != 0 && at_ms > clock.WallNow()) {
    std::printf("It runs at the scheduled time; follow it with `tandem cluster status`.\n");
    return 0;
  }
  int64_t took = 0;
  if (!WaitForPrimary(clock, *cfg, old, to, wait_ms, &took)) {
    return PrintError("the switchover did not complete within " + std::to_string(wait_ms / 1000) +
                      "s; see `tandem cluster status` and the agents' logs (the request expires "
                      "after 30s and the old primary keeps or regains the role)");
  }
  std::printf("Switchover complete in %.1f s.\n", static_cast<double>(took) / 1000.0);
  return 0;
}

int ClusterSwitchoverCancel(const std::string& path) {
  auto cfg = Load(path);
  if (!cfg) return 1;
  auto r = CallAgent(*cfg, "POST", "/v1/cluster/switchover/cancel", json(), 10'000);
  if (!r) return 1;
  std::printf("%s.\n", r->value("message", std::string("cancelled")).c_str());
  return 0;
}

int ClusterFailover(const Clock& clock, const std::string& path, const std::string& to,
                    bool accept_data_loss, int64_t wait_ms) {
  auto cfg = Load(path);
  if (!cfg) return 1;
  const std::string old = CurrentPrimary(*cfg);
  auto r = CallAgent(*cfg, "POST", "/v1/cluster/failover",
                     json{{"to", to}, {"accept_data_loss", accept_data_loss}}, 10'000);
  if (!r) return 1;
  std::printf("%s.\n", r->value("message", std::string("requested")).c_str());
  int64_t took = 0;
  if (!WaitForPrimary(clock, *cfg, old, to, wait_ms, &took)) {
    return PrintError(to + " did not become the primary within " + std::to_string(wait_ms / 1000) +
                      "s; `tandem cluster status` on " + to + " shows why (its reason line)");
  }
  std::printf("Failover complete in %.1f s.\n", static_cast<double>(took) / 1000.0);
  return 0;
}

int ClusterPause(const std::string& path, bool pause) {
  auto cfg = Load(path);
  if (!cfg) return 1;
  auto r =
      CallAgent(*cfg, "POST", pause ? "/v1/cluster/pause" : "/v1/cluster/resume", json(), 10'000);
  if (!r) return 1;
  std::printf("Cluster %s.\n", r->value("message", std::string()).c_str());
  return 0;
}

int ClusterHistory(const std::string& path, bool as_json) {
  auto cfg = Load(path);
  if (!cfg) return 1;
  auto r = CallAgent(*cfg, "GET", "/v1/cluster/history", json(), 10'000);
  if (!r) return 1;
  if (as_json) {
    std::printf("%s\n", r->dump(2).c_str());
    return 0;
  }
  std::printf("%s", RenderHistory(*r).c_str());
  return 0;
}

int ClusterAlarms(const std::string& path, bool history, bool as_json) {
  auto cfg = Load(path);
  if (!cfg) return 1;
  auto r =
      CallAgent(*cfg, "GET", history ? "/v1/alarms?history=true" : "/v1/alarms", json(), 10'000);
  if (!r) return 1;
  std::printf("%s", as_json ? (r->dump(2) + "\n").c_str() : RenderAlarms(*r).c_str());
  return 0;
}

namespace {
std::string HostPort(const std::string& host, int port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}
}  // namespace

std::string ClusterUris(const json& status, bool read_only) {
  std::string direct, proxied;
  const char* key = read_only ? "proxy_read_only_port" : "proxy_read_write_port";
  for (const auto& m : status.value("members", json::array())) {
    const std::string host = m.value("host", "");
    if (host.empty()) continue;
    // A witness has no PostgreSQL to connect to directly (its proxy, below, works).
    if (!m.value("witness", false)) {
      direct += (direct.empty() ? "" : ",") + HostPort(host, m.value("port", 0));
    }
    const int pp = m.value(key, 0);
    if (pp > 0) proxied += (proxied.empty() ? "" : ",") + HostPort(host, pp);
  }
  if (direct.empty()) return "";
  const std::string query = std::string("/postgres?target_session_attrs=") +
                            (read_only ? "prefer-standby" : "read-write");
  std::string out = "postgresql://" + direct + query + "\n";
  if (!proxied.empty()) out += "postgresql://" + proxied + query + "\n";
  return out;
}

int ClusterUri(const std::string& path, bool read_only) {
  auto cfg = Load(path);
  if (!cfg) return 1;
  auto st = CallAgent(*cfg, "GET", "/v1/status", json(), 10'000);
  if (!st) return 1;
  const std::string uris = ClusterUris(*st, read_only);
  if (uris.empty()) {
    if (st->value("store", "") == "unreachable") {
      return PrintError(
          "the consensus store cannot be reached from this node, so the members "
          "are unknown; try on another node");
    }
    return PrintError(
        "this node is not in a cluster; run `tandem cluster initialize` or "
        "`tandem cluster join` first");
  }
  std::printf("%s", uris.c_str());
  return 0;
}

namespace {

// One peer's line of the enforce check: its API and PostgreSQL server
// certificates judged here as enforce mode will, and what it reports of its
// own files. Adds what would fail to *failures.
std::string CheckPeerForEnforce(const json& m, const agent::Config& cfg, int64_t now,
                                std::vector<std::string>* failures) {
  const std::string name = m.value("name", "");
  const std::string host = m.value("host", "");
  const auto [api_host, api_port] = net::HostPortOfUrl(m.value("api_url", ""));
  struct Probe {
    const char* what;
    std::string host;
    int port;
    net::TlsService service;
  };
  const Probe probes[] = {
      {"API", api_host.empty() ? host : api_host, api_port, net::TlsService::kHttps},
      {"PostgreSQL", host, m.value("port", 0), net::TlsService::kPostgres}};
  std::string line = "  " + name + " (" + host + ")";
  for (const auto& p : probes) {
    if (p.port <= 0) continue;
    auto pc = net::CheckPeerCertificate(name + "'s " + p.what + " certificate", p.host, p.port,
                                        p.service, cfg.tls_ca_cert, cfg.tls_client_cert,
                                        cfg.tls_client_key, cfg.tls_verify_hostname, now, 3000);
    line += std::string("  ") + p.what + ": " + pc.summary.text;
    if (pc.summary.state == pki::CertState::kInvalid) {
      failures->push_back(name + " " + p.what + ": " + pc.summary.text +
                          (pc.detail.empty() ? "" : " - " + pc.detail));
    }
  }
  // What the peer reports of its own files (its client certificate is
  // seen only by the servers it connects to).
  const std::string own = m.value("certificate_reported", "Unknown");
  line += "  its own report: " + own;
  if (own.rfind("Valid", 0) != 0 && own.rfind("Expiring", 0) != 0) {
    failures->push_back(name + " reports its certificates as: " + own);
  }
  return line;
}

// Before switching to enforce: this node's files as enforce checks them, then
// every peer's. The exit code when the switch is refused, nullopt to go on.
std::optional<int> RefuseEnforce(const agent::Config& cfg, const agent::Config& next, int64_t now,
                                 bool force) {
  // This node's own files, as the agent will check them in enforce (the
  // server certificate must name node.address).
  if (auto st = agent::ValidateTlsFiles(next, now); !st.ok()) {
    return PrintError("this node's certificates would not pass in enforce mode: " +
                      st.error().message());
  }
  auto st = CallAgent(cfg, "GET", "/v1/status", json(), 10'000);
  if (!st) return 1;
  std::printf("Checking every peer's certificates as enforce mode will (CA %s%s):\n",
              cfg.tls_ca_cert.c_str(),
              cfg.tls_verify_hostname ? ", the certificate names the peer's address" : "");
  std::vector<std::string> failures;
  for (const auto& m : st->value("members", json::array())) {
    if (m.value("me", false) || m.value("name", "").empty()) continue;
    std::printf("%s\n", CheckPeerForEnforce(m, cfg, now, &failures).c_str());
  }
  if (failures.empty()) {
    std::printf("Every peer passes.\n");
    return std::nullopt;
  }
  std::string all;
  for (const auto& f : failures) all += "\n  " + f;
  if (!force) {
    return PrintError(
        "not switching to enforce: these peers would fail to connect or be refused:" + all +
        "\nFix each one (`tandem pki issue NODE --address ADDRESS` with this CA, then "
        "`tandem -c CONFIG cluster certs ...` on that node) and run this again, or give "
        "--force to switch anyway");
  }
  std::fprintf(stderr, "WARNING : switching to enforce with failing peers (--force):%s\n",
               all.c_str());
  return std::nullopt;
}

}  // namespace

int ClusterTlsMode(const Clock& clock, const std::string& path, const std::string& mode,
                   bool force) {
  auto cfg = Load(path);
  if (!cfg) return 1;
  if (mode != "enforce" && mode != "permissive") {
    return PrintError("tls-mode takes enforce or permissive, not '" + mode + "'");
  }
  if (!cfg->tls_enabled()) {
    return PrintError(cfg->path +
                      " has no tls section: install this node's certificates first (`tandem "
                      "cluster certs ...`), then choose the mode");
  }
  const agent::TlsMode want =
      mode == "enforce" ? agent::TlsMode::kEnforce : agent::TlsMode::kPermissive;
  if (cfg->tls_mode == want) {
    std::printf("tls.mode is already %s in %s; nothing to do.\n", mode.c_str(), cfg->path.c_str());
    return 0;
  }
  agent::Config next = *cfg;
  next.tls_mode = want;
  if (want == agent::TlsMode::kEnforce) {
    if (auto refused = RefuseEnforce(*cfg, next, clock.WallSeconds(), force)) return *refused;
  }
  auto text = ReadFile(cfg->path);
  if (!text) return PrintError(text.error().message());
  auto updated = WithTlsKeys(*text, {{"mode", mode}});
  if (!updated) return PrintError(updated.error().message());
  if (auto written = RewriteConfig(cfg->path, *updated); !written) {
    return PrintError(written.error().message());
  }
  std::printf(
      "tls.mode is now %s in %s.\n"
      "Restart this node's agent to apply it (on the primary, `tandem cluster switchover` "
      "first, so the restart costs no write gap); until then `tandem cluster status` shows "
      "\"restart required\". Then do the same on every other node.\n",
      mode.c_str(), cfg->path.c_str());
  return 0;
}

}  // namespace tandem::cli
