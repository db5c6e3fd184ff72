#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/config.h"
#include "agent/http_client.h"
#include "base/clock.h"
#include "base/strings.h"
#include "cli/commands.h"

namespace tandem::cli {
using nlohmann::json;

namespace {

int PrintError(const std::string& msg) {
  std::fprintf(stderr, "ERROR : %s\n", msg.c_str());
  return 1;
}

std::string LocalApiUrl(const agent::Config& cfg) {
  std::string host =
      cfg.api_listen == "0.0.0.0" || cfg.api_listen == "::" ? "127.0.0.1" : cfg.api_listen;
  return "http://" + host + ":" + std::to_string(cfg.api_port);
}

// Calls the local agent; prints the error and returns nullopt on failure.
std::optional<json> CallAgent(const agent::Config& cfg, const std::string& method,
                              const std::string& path, const json& body, int64_t timeout_ms,
                              int* http_status = nullptr) {
  const std::string url = LocalApiUrl(cfg);
  auto r = agent::HttpCall(method, url + path, body.is_null() ? "" : body.dump(), timeout_ms);
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
  return *cfg;
}

std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

}  // namespace

std::string RenderStatus(const json& s) {
  std::string out;
  auto line = [&](const std::string& k, const std::string& v) {
    out += Pad(k, 22) + ": " + v + "\n";
  };
  const auto& lc = s.value("last_command", json::object());
  if (!s.value("error", std::string()).empty()) {
    out += "ERROR : " + s.value("error", std::string()) + "\n";
  }
  line("Status", s.value("status", "unknown"));
  line("Cluster", s.value("cluster", ""));
  out += "Nodes:\n";
  for (const auto& m : s.value("members", json::array())) {
    std::string name = "  " + m.value("name", "") + "  " + m.value("host", "") + ":" +
                       std::to_string(m.value("port", 0));
    if (m.value("me", false)) name += " (me)";
    std::string state = m.value("connected", false) ? "Connected" : "Not connected";
    std::string role = m.value("role", "unknown");
    if (role == "primary") {
      state += " Primary";
    } else if (role == "replica") {
      state += " Replica";
      state += m.value("in_sync", false)
                   ? " ( In Sync )"
                   : " ( Not In Sync, lag " + std::to_string(m.value("lag_bytes", 0)) + " bytes )";
    } else if (m.value("connected", false)) {
      state += " (database not running)";
    }
    out += Pad(name, 36) + ": " + state + "\n";
  }
  if (s["node_in_use"].is_string()) {
    line("Node in use",
         s["node_in_use"].get<std::string>() + " (" + s.value("primary", std::string()) + ")");
  } else {
    line("Node in use", s.value("member", false) ? "none (no primary)" : "none");
  }
  line("Interface", s.value("interface", ""));
  out += "Certificates\n";
  const auto& c = s.value("certificates", json::object());
  auto cert = [&](const char* label, const char* key) {
    std::string v = c.value(key, "");
    out += Pad(std::string("  ") + label, 22) + ": " + (v.empty() ? "(none)" : v) + "\n";
  };
  cert("Server Key", "server_key");
  cert("Server Certificate", "server_cert");
  cert("Client Key", "client_key");
  cert("Client Certificate", "client_cert");
  cert("CA Certificate", "ca_cert");
  if (lc.value("command", "").empty()) {
    line("Last command", "none");
  } else {
    std::string v = "'" + lc.value("command", "") + "' (" + lc.value("result", "") + ")";
    if (lc.value("result", "") == "Running" && !lc.value("progress", "").empty()) {
      v += " - " + lc.value("progress", "");
    }
    line("Last command", v);
  }
  for (const auto& w : s.value("warnings", json::array())) {
    out += "WARNING : " + w.get<std::string>() + "\n";
  }
  return out;
}

int ClusterInitialize(const std::string& path) {
  auto cfg = Load(path);
  if (!cfg) return 1;
  std::printf("Initializing cluster '%s' with %s as its primary...\n", cfg->cluster.c_str(),
              cfg->node_name.c_str());
  if (!CallAgent(*cfg, "POST", "/v1/cluster/initialize", json(), 180'000)) return 1;
  auto st = CallAgent(*cfg, "GET", "/v1/status", json(), 10'000);
  if (st) std::printf("%s", RenderStatus(*st).c_str());
  return 0;
}

int ClusterJoin(const std::string& path, const std::string& address) {
  auto cfg = Load(path);
  if (!cfg) return 1;
  if (!CallAgent(*cfg, "POST", "/v1/cluster/join", json{{"address", address}}, 30'000)) return 1;
  std::printf("Joining %s to the cluster through %s...\n", cfg->node_name.c_str(), address.c_str());
  std::string last_progress;
  const MonoMs start = SystemClock::Get().Now();
  while (SystemClock::Get().Now() - start < 30 * 60 * 1000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
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
  if (!CallAgent(*cfg, "POST", "/v1/cluster/remove", json{{"node", node}, {"force", force}},
                 180'000)) {
    return 1;
  }
  std::printf("Removed %s from the cluster.\n",
              node.empty() ? cfg->node_name.c_str() : node.c_str());
  return 0;
}

int ClusterClearError(const std::string& path) {
  auto cfg = Load(path);
  if (!cfg) return 1;
  if (!CallAgent(*cfg, "POST", "/v1/cluster/clear-error", json(), 10'000)) return 1;
  std::printf("Error state cleared.\n");
  return 0;
}

}  // namespace tandem::cli
