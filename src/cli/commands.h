// The operator commands behind `tandem ...`. Each returns the process exit code
// (0 success, 1 failure, 2 bad usage) and prints what an operator needs.
//
// Time is an input: a command that reads the time (certificate validity,
// --at) or waits (polling the agent) takes the process's Clock, which main()
// creates; tests pass a ManualClock. How the commands are registered with the
// command line: cli/registry.h.
#pragma once

#include <csignal>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "agent/config.h"
#include "base/clock.h"
#include "base/result.h"

namespace tandem::cli {

constexpr const char* kDefaultConfig = "/etc/tandem/tandem.yaml";

// `tandem agent`: restart_on_sigterm (--on-sigterm=restart) makes SIGTERM and
// SIGINT a stop for a restart (Agent::ShutdownForRestart) instead of a stop
// of the node; `tandem agent stop`'s signal (kStopNodeSignal) always stops
// the node.
int RunAgent(const Clock& clock, const std::string& config_path, bool restart_on_sigterm = false);
// `tandem agent stop`: kStopNodeSignal to the agent that holds the node's
// lock, then waits for it to exit. 0 also when no agent runs.
int StopAgent(const Clock& clock, const std::string& config_path);
// `tandem agent reload`: SIGHUP to the agent that holds the node's lock (it
// checks the binary at its path, then executes it again as the same process:
// base/reexec.h), then waits until its status names a new image. 0 also
// when no agent runs; 1 when it did not come back within timeout_ms.
int ReloadAgent(const Clock& clock, const std::string& config_path, int64_t timeout_ms);
// The signal `tandem agent stop` sends: stop the node, whatever --on-sigterm says.
inline constexpr int kStopNodeSignal = SIGUSR2;
// `tandem agent --check-config`: loads the config and checks its TLS files as
// the agent's start does; 0 and one line when it would start, 2 and the
// first problem (ERROR : ...) otherwise. Starts and writes nothing.
int CheckAgentConfig(const Clock& clock, const std::string& config_path);

int ClusterInitialize(const Clock& clock, const std::string& config_path);
// `tandem cluster localnode [INTERFACE|ADDRESS]` (localnode.cc): shows, or
// sets before the node is a member, the interface or address it clusters on.
int ClusterLocalnode(const Clock& clock, const std::string& config_path, const std::string& target);
// witness: `join --witness` (no PostgreSQL on this node).
int ClusterJoin(const Clock& clock, const std::string& config_path, const std::string& address,
                bool witness = false);
int ClusterStatus(const std::string& config_path, bool json);
int ClusterRemove(const std::string& config_path, const std::string& node, bool force);
int ClusterClearError(const std::string& config_path);
// at: "" (now), "+DURATION" (e.g. +10m) or an ISO 8601 UTC time (2026-11-22T03:00:00Z).
int ClusterSwitchover(const Clock& clock, const std::string& config_path, const std::string& to,
                      const std::string& at, int64_t wait_ms);
// `cluster switchover --cancel`: deletes the scheduled switchover (not yet due).
int ClusterSwitchoverCancel(const std::string& config_path);
int ClusterFailover(const Clock& clock, const std::string& config_path, const std::string& to,
                    bool accept_data_loss, int64_t wait_ms);
int ClusterPause(const std::string& config_path, bool pause);
int ClusterHistory(const std::string& config_path, bool json);
// `cluster alarms [--history] [--json]`: the alarms in the store (docs/alarms.md).
int ClusterAlarms(const std::string& config_path, bool history, bool json);
// `cluster uri`: libpq multi-host connection URIs for the cluster.
int ClusterUri(const std::string& config_path, bool read_only);
// `tandem cluster certs`: 5 files (server key, server cert, client key, client
// cert, CA) or 3 (client key, client cert, CA; the server pair is kept). Checks
// them as the agent's start-up does, copies them into <state_dir>/certs and
// points the config's tls section at them; a bad file or a new CA (without
// force) changes nothing.
int ClusterCerts(const Clock& clock, const std::string& config_path,
                 const std::vector<std::string>& files, bool force);
struct TlsPaths {
  std::string server_key, server_cert, client_key, client_cert, ca_cert;
};
// The config text with its tls section's five paths set (the section added at
// the end when there is none); every other line kept. Refuses an inline
// (flow-style) tls section.
Result<std::string> WithTlsPaths(const std::string& yaml, const TlsPaths& paths);
// The same for any keys of the tls section (name, value), e.g. {"mode", "enforce"}.
Result<std::string> WithTlsKeys(const std::string& yaml,
                                const std::vector<std::pair<std::string, std::string>>& keys);
// Replaces the config file at path with text once text loads as a config
// (keeping the file's mode, atomically); the file is untouched otherwise.
Result<agent::Config> RewriteConfig(const std::string& path, const std::string& text);
// `tandem cluster tls-mode enforce|permissive [--force]`: switching to enforce
// first checks, from this node, every peer's API and PostgreSQL server
// certificate as enforce would (CA, validity, serverAuth, the peer's address)
// and each peer's own report of its certificates; any failure is listed and
// nothing changes unless force. Then this node's config gets the new
// tls.mode (the agent applies it when it restarts).
int ClusterTlsMode(const Clock& clock, const std::string& config_path, const std::string& mode,
                   bool force);
// From the status document: the URI with every node's PostgreSQL and
// target_session_attrs=read-write (read_only: prefer-standby), then, when any
// node registered a proxy port of that kind, the same through the proxies.
// One URI per line; "" when the document names no node.
std::string ClusterUris(const nlohmann::json& status, bool read_only);
// Parses --at for a switchover: wall-clock ms (0 for "now"), or an error
// message. now_ms is the caller's Clock::WallNow(); a UTC time up to one
// second before now counts as now, anything earlier is "in the past".
bool ParseAt(const std::string& at, int64_t now_ms, int64_t* out_ms, std::string* error);

// The human status view (seed 1's shape) from the status document.
std::string RenderStatus(const nlohmann::json& status);
// `cluster history`'s table from the history document (times in UTC from
// each entry's at_ms: the record's own time, never the reader's clock).
std::string RenderHistory(const nlohmann::json& history);
// `cluster alarms`'s tables from GET /v1/alarms's document: the active alarms
// (id, name, node, since, detail) and, when it has one, the history.
std::string RenderAlarms(const nlohmann::json& alarms);

// tandem pki ... (local files; no agent needed). days: validity from now
// (clock.WallSeconds()).
int PkiCaInit(const Clock& clock, const std::string& dir, const std::string& cn, int days);
int PkiCsr(const std::string& name, const std::string& cn, const std::vector<std::string>& sans,
           const std::string& dir);
// usage: "server", "client" or "both".
int PkiSign(const Clock& clock, const std::string& csr, const std::string& ca_dir, int days,
            const std::string& usage);
int PkiIssue(const Clock& clock, const std::string& node, const std::string& ca_dir,
             const std::string& address, const std::vector<std::string>& dns,
             const std::string& out, int days, bool force);
struct PkiInspectOptions {
  std::vector<std::string> files;
  std::string ca, key, host;
  std::string role;  // "", "server" or "client"
  bool json = false;
};
// Exit code 1 when any check of any file fails.
int PkiInspect(const Clock& clock, const PkiInspectOptions& opts);

struct SandboxOptions {
  int nodes = 3;
  std::string dir = "sandbox";
  int base_port = 15400;
  bool json = false;
  bool purge = false;
  // up: a CA in DIR/ca and each node's certificates in DIR/nodeI/certs, and the
  // tls section (enforce) in each config. false (--no-tls): plain connections.
  bool tls = true;
  // up: one more node, "witness" (ports P+100 .. P+106, DIR/witness), joined
  // with `join --witness` after the data nodes.
  bool witness = false;
};
int SandboxUp(const Clock& clock, const SandboxOptions& opts);
int SandboxDown(const Clock& clock, const SandboxOptions& opts);
int SandboxStatus(const SandboxOptions& opts);
int SandboxKill(const Clock& clock, const SandboxOptions& opts, const std::string& node);
// Starts the node's agent and returns once it serves its API (1, with the
// end of its log, when it exits first or does not serve within 90 s).
int SandboxStart(const Clock& clock, const SandboxOptions& opts, const std::string& node);

}  // namespace tandem::cli
