// The text views of `tandem cluster status`, `cluster alarms` and `cluster history`, from the
// documents the agent's API returns (pure: no I/O, no clock).
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace tandem::cli {
using nlohmann::json;

namespace {

// The status's "intent" in words: a scheduled switchover with its time and
// how to cancel it, or a request under way.
std::string RenderIntent(const json& i) {
  const bool switchover = i.value("kind", "") == "switchover";
  std::string what = switchover ? "switchover" : "failover";
  if (!i.value("from", "").empty()) what += " from " + i.value("from", "");
  what +=
      " to " + (i.value("to", "").empty() ? std::string("the best replica") : i.value("to", ""));
  if (i.value("scheduled", false) && i["at"].is_string()) {
    return what + ", scheduled for " + i["at"].get<std::string>() +
           " (cancel: tandem cluster switchover --cancel)";
  }
  return what + ", under way";
}

std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

// "key                   : value"
std::string Line(const std::string& k, const std::string& v) {
  return Pad(k, 22) + ": " + v + "\n";
}

// One member's line under "Nodes:".
std::string RenderMember(const json& m) {
  const bool witness = m.value("witness", false);
  // A witness has no PostgreSQL port to show.
  std::string name = "  " + m.value("name", "") + "  " + m.value("host", "") +
                     (witness ? "" : ":" + std::to_string(m.value("port", 0)));
  if (m.value("me", false)) name += " (me)";
  std::string state = m.value("connected", false) ? "Connected" : "Not connected";
  std::string role = m.value("role", "unknown");
  if (witness) {
    state += " Witness";
  } else if (role == "primary") {
    state += " Primary";
  } else if (role == "replica") {
    state += " Replica";
    state += m.value("in_sync", false)
                 ? " ( In Sync )"
                 : " ( Not In Sync, lag " + std::to_string(m.value("lag_bytes", 0)) + " bytes )";
  } else if (m.value("connected", false)) {
    state += " (database not running)";
  }
  // Seed 2's per-peer "Clustering:" beside its "Certificate:".
  if (m.contains("clustering") && m["clustering"].is_string()) {
    state += ", Clustering: " + m["clustering"].get<std::string>();
  }
  if (m.contains("certificate") && m["certificate"].is_string() &&
      m["certificate"].get<std::string>() != "no TLS") {
    state += ", Certificate: " + m["certificate"].get<std::string>();
  }
  return Pad(name, 36) + ": " + state + "\n";
}

std::string RenderSync(const json& y) {
  std::string v = y.value("mode", "") + ", " + y.value("description", "");
  if (y.value("mode", "") != "off") {
    v += y.value("failover_ready", false) ? " (automatic failover ready)"
                                          : " (no automatic failover if the primary is lost now)";
  }
  return Line("Synchronous", v);
}

std::string RenderProxy(const json& p) {
  std::string out;
  const std::string host = p.value("listen", "");
  auto port_line = [&](const char* label, const char* port_key, const std::string& to) {
    const int port = p.value(port_key, 0);
    if (port <= 0) return;
    out += Pad(std::string("  ") + label, 22) + ": " + host + ":" + std::to_string(port) + " -> " +
           to + "\n";
  };
  std::string ro;
  for (const auto& t : p.value("read_only_targets", json::array())) {
    ro += (ro.empty() ? "" : ", ") + t.get<std::string>();
  }
  out += "Proxy\n";
  port_line("Read-write", "read_write_port",
            p["read_write_target"].is_string() ? p["read_write_target"].get<std::string>()
                                               : "none (refusing: " + p.value("reason", "") + ")");
  port_line("Read-only", "read_only_port", ro.empty() ? "none (refusing)" : ro);
  return out;
}

std::string RenderVip(const json& v) {
  std::string where = v["holder"].is_string() ? v["holder"].get<std::string>() : "nobody";
  std::string text = v.value("address", "") + " on " + v.value("interface", "") + " -> " + where;
  text += v.value("here", false) ? " (on this node)" : " (not on this node)";
  std::string out = Line("Floating IP", text);
  if (!v.value("error", "").empty()) out += Line("  Error", v.value("error", ""));
  return out;
}

// "Certificates": the TLS mode and each file with its state.
std::string RenderCertificates(const json& s) {
  std::string out = "Certificates\n";
  const auto& c = s.value("certificates", json::object());
  const json tls = s.contains("tls") && s["tls"].is_object() ? s["tls"] : json::object();
  const json states = tls.value("certificates", json::object());
  auto cert = [&](const char* label, const char* key) {
    std::string v = c.value(key, "");
    // "server_cert" -> its state under "server".
    const std::string name = std::string(key).substr(0, std::string(key).find('_'));
    if (std::string(key).find("_cert") != std::string::npos && states.contains(name)) {
      v += " (" + states[name].value("text", "") + ")";
    }
    out += Pad(std::string("  ") + label, 22) + ": " + (v.empty() ? "(none)" : v) + "\n";
  };
  if (!tls.empty()) {
    out += Pad("  TLS", 22) + ": " + tls.value("mode", "") +
           (tls.value("verify_hostname", true) ? "" : ", no host name check") + "\n";
  }
  cert("Server Key", "server_key");
  cert("Server Certificate", "server_cert");
  cert("Client Key", "client_key");
  cert("Client Certificate", "client_cert");
  cert("CA Certificate", "ca_cert");
  return out;
}

std::string UtcOf(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return when;
}

// One alarm's row: id, name, node, since (and, in the history, cleared).
std::string AlarmRow(const std::string& id, const std::string& name, const std::string& node,
                     const std::string& since, const std::string& cleared, bool with_cleared,
                     const std::string& detail) {
  char buf[512];
  if (with_cleared) {
    std::snprintf(buf, sizeof buf, "  %-5s %-30s %-10s %-21s %-21s ", id.c_str(), name.c_str(),
                  node.c_str(), since.c_str(), cleared.c_str());
  } else {
    std::snprintf(buf, sizeof buf, "  %-5s %-30s %-10s %-21s ", id.c_str(), name.c_str(),
                  node.c_str(), since.c_str());
  }
  return std::string(buf) + detail + "\n";
}

std::string AlarmRows(const json& alarms, bool with_cleared) {
  std::string out =
      AlarmRow("ID", "NAME", "NODE", "SINCE (UTC)", "CLEARED (UTC)", with_cleared, "DETAIL");
  for (const auto& a : alarms) {
    const std::string node = a.value("node", "");
    const int64_t cleared = a.value("cleared_ms", int64_t{0});
    out += AlarmRow(std::to_string(a.value("id", 0)), a.value("name", ""),
                    node.empty() ? "(cluster)" : node, UtcOf(a.value("raised_ms", int64_t{0})),
                    cleared != 0 ? UtcOf(cleared) : "", with_cleared, a.value("detail", ""));
  }
  return out;
}

// The status's "Alarms" section (docs/alarms.md); nothing without the field.
std::string RenderAlarmsSection(const json& s) {
  if (!s.contains("alarms") || !s["alarms"].is_array()) return "";
  if (s["alarms"].empty()) return Line("Alarms", "none");
  return "Alarms\n" + AlarmRows(s["alarms"], false);
}

std::string RenderLastCommand(const json& lc) {
  if (lc.value("command", "").empty()) return Line("Last command", "none");
  std::string v = "'" + lc.value("command", "") + "' (" + lc.value("result", "") + ")";
  if (lc.value("result", "") == "Running" && !lc.value("progress", "").empty()) {
    v += " - " + lc.value("progress", "");
  }
  return Line("Last command", v);
}

}  // namespace

std::string RenderStatus(const json& s) {
  std::string out;
  const auto& lc = s.value("last_command", json::object());
  if (!s.value("error", std::string()).empty()) {
    out += "ERROR : " + s.value("error", std::string()) + "\n";
  }
  out += Line("Status", s.value("status", "unknown"));
  out += Line("Cluster", s.value("cluster", ""));
  out += "Nodes:\n";
  for (const auto& m : s.value("members", json::array())) out += RenderMember(m);
  if (s["node_in_use"].is_string()) {
    out += Line("Node in use", s["node_in_use"].get<std::string>() + " (" +
                                   s.value("primary", std::string()) + ")");
  } else {
    out += Line("Node in use", s.value("member", false) ? "none (no primary)" : "none");
  }
  if (s.contains("sync") && s["sync"].is_object()) out += RenderSync(s["sync"]);
  if (s.contains("intent") && s["intent"].is_object()) {
    out += Line("Operator request", RenderIntent(s["intent"]));
  }
  if (s.contains("schema_upgrade") && s["schema_upgrade"].is_object()) {
    const json& op = s["schema_upgrade"];
    const std::string state = op.value("state", "");
    std::string v =
        "'" + op.value("command", std::string()) + "' " +
        (state == "running" ? "running on " + op.value("runner", std::string("?")) : state);
    const std::string detail =
        state == "failed" ? op.value("error", std::string()) : op.value("progress", std::string());
    if (!detail.empty()) v += ": " + detail;
    out += Line("Schema upgrade", v);
  }
  out += Line("Interface", s.value("interface", ""));
  if (s.contains("agent_version")) {
    // Which build this node's agent runs (a rolling upgrade shows here).
    out += Line("Agent", "pid " + std::to_string(s.value("agent_pid", 0)) + ", tandem " +
                             s.value("agent_version", std::string()));
  }
  if (s.contains("proxy") && s["proxy"].is_object()) out += RenderProxy(s["proxy"]);
  if (s.contains("vip") && s["vip"].is_object()) out += RenderVip(s["vip"]);
  out += RenderCertificates(s);
  out += RenderLastCommand(lc);
  out += RenderAlarmsSection(s);
  for (const auto& w : s.value("warnings", json::array())) {
    out += "WARNING : " + w.get<std::string>() + "\n";
  }
  return out;
}

std::string RenderAlarms(const json& doc) {
  std::string out;
  const json active = doc.value("active", json::array());
  out += active.empty() ? "No active alarm.\n" : "Active alarms\n" + AlarmRows(active, false);
  if (doc.contains("history")) {
    const json history = doc.value("history", json::array());
    out += history.empty() ? "No cleared alarm recorded.\n"
                           : "Cleared alarms (oldest first)\n" + AlarmRows(history, true);
  }
  return out;
}

std::string RenderHistory(const json& history) {
  if (history.empty()) return "No leader change recorded yet.\n";
  auto row = [](const char* when, const std::string& leader, const std::string& timeline,
                const std::string& reason) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "%-24s %-10s %-8s ", when, leader.c_str(), timeline.c_str());
    return std::string(buf) + reason + "\n";
  };
  std::string out = row("TIME (UTC)", "PRIMARY", "TIMELINE", "REASON");
  for (const auto& h : history) {
    const std::time_t t = static_cast<std::time_t>(h.value("at_ms", int64_t{0}) / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    out += row(when, h.value("leader", std::string()), std::to_string(h.value("timeline", 0u)),
               h.value("reason", std::string()));
  }
  return out;
}

}  // namespace tandem::cli
