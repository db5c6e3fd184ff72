// tandem: one binary for the node agent, the operator CLI and the sandbox.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"

#ifndef TANDEM_VERSION
#define TANDEM_VERSION "0.1.0"
#endif

int main(int argc, char** argv) {
  using namespace tandem::cli;
  CLI::App app{
      "Tandem: high availability for PostgreSQL (one agent per node, etcd for "
      "consensus, a stable client endpoint)",
      "tandem"};
  app.require_subcommand(1);
  std::string config = kDefaultConfig;
  app.add_option("-c,--config", config, "the node's config file")->capture_default_str();
  app.set_version_flag("--version", TANDEM_VERSION);

  // tandem agent
  auto* agent =
      app.add_subcommand("agent", "run the node agent in the foreground (systemd runs this)");
  agent->add_option("-c,--config", config, "the node's config file")->capture_default_str();

  // tandem cluster ...
  auto* cluster = app.add_subcommand("cluster", "operate the cluster (talks to the local agent)");
  cluster->require_subcommand(1);
  auto* init = cluster->add_subcommand("initialize",
                                       "make this node's database the primary of a new cluster");
  std::string join_address;
  auto* join = cluster->add_subcommand(
      "join", "become a replica: copy the database from the cluster (the local one is kept aside)");
  join->add_option("ADDRESS", join_address, "HOST:PORT of any member's agent API")->required();
  bool status_json = false;
  auto* status = cluster->add_subcommand("status", "show the cluster as this node sees it");
  status->add_flag("--json", status_json, "machine-readable output");
  std::string remove_node;
  bool remove_force = false;
  auto* remove = cluster->add_subcommand(
      "remove",
      "remove NODE (default: this node) from the cluster; a removed node's pre-join "
      "database is put back");
  remove->add_option("NODE", remove_node, "the node to remove (default: this node)");
  remove->add_flag("--force", remove_force, "allow removing the primary (a replica takes over)");
  auto* clear = cluster->add_subcommand("clear-error", "clear the error state of the last command");
  std::string sw_to, sw_at;
  int64_t wait_s = 60;
  auto* switchover = cluster->add_subcommand(
      "switchover",
      "move the primary role to a replica cleanly (no write lost; the old primary "
      "becomes a replica without a rewind)");
  switchover->add_option("--to", sw_to, "the replica to promote (default: the most advanced one)");
  switchover->add_option("--at", sw_at,
                         "when: +DURATION (e.g. +10m) or a UTC time like 2026-11-22T03:00:00Z "
                         "(default: now)");
  switchover->add_option("--wait", wait_s, "seconds to wait for it to complete")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  std::string fo_to;
  bool fo_accept = false;
  auto* failover = cluster->add_subcommand(
      "failover", "promote NODE when there is no primary (with a primary: a switchover to NODE)");
  failover->add_option("--to", fo_to, "the replica to promote")->required();
  failover->add_flag("--accept-data-loss", fo_accept,
                     "promote it even if it may miss acknowledged writes (when the primary and "
                     "every synchronous replica were lost)");
  failover->add_option("--wait", wait_s, "seconds to wait for it to complete")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  auto* pause = cluster->add_subcommand(
      "pause", "maintenance mode: the agents take no automatic action until resume");
  auto* resume = cluster->add_subcommand("resume", "end maintenance mode");
  bool history_json = false;
  auto* history = cluster->add_subcommand(
      "history", "every leader change: time, new primary, timeline, reason");
  history->add_flag("--json", history_json, "machine-readable output");
  bool uri_read_only = false;
  auto* uri = cluster->add_subcommand(
      "uri",
      "print a libpq connection URI with every node (and, when the proxy is on, one through "
      "the proxies)");
  uri->add_flag("--read-only", uri_read_only,
                "for reads: target_session_attrs=prefer-standby, the read-only proxy ports");

  // tandem sandbox ...
  SandboxOptions sb;
  auto* sandbox = app.add_subcommand("sandbox", "a whole cluster on 127.0.0.1 in one directory");
  sandbox->require_subcommand(1);
  auto add_common = [&sb](CLI::App* c) {
    c->add_option("--dir", sb.dir, "the sandbox directory")->capture_default_str();
  };
  auto* up = sandbox->add_subcommand("up", "start an N-node cluster and wait until it is healthy");
  add_common(up);
  up->add_option("--nodes", sb.nodes, "number of nodes (1-9)")
      ->capture_default_str()
      ->check(CLI::Range(1, 9));
  up->add_option("--base-port", sb.base_port, "node i uses ports P+10i .. P+10i+5")
      ->capture_default_str()
      ->check(CLI::Range(1024, 65435));
  auto* down = sandbox->add_subcommand("down", "stop every process of the sandbox");
  add_common(down);
  down->add_flag("--purge", sb.purge, "also delete the sandbox directory");
  auto* sstatus = sandbox->add_subcommand("status", "nodes, ports, configs and pids");
  add_common(sstatus);
  sstatus->add_flag("--json", sb.json, "machine-readable output");
  std::string node;
  auto* kill =
      sandbox->add_subcommand("kill", "SIGKILL a node's agent, PostgreSQL and etcd (a crash)");
  add_common(kill);
  kill->add_option("NODE", node, "node name, e.g. node1")->required();
  auto* start = sandbox->add_subcommand("start", "start a node's agent again");
  add_common(start);
  start->add_option("NODE", node, "node name, e.g. node1")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "ERROR : %s (see `tandem --help`, or --help after any command)\n",
                 e.what());
    return 2;
  }

  if (*agent) return RunAgent(config);
  if (*init) return ClusterInitialize(config);
  if (*join) return ClusterJoin(config, join_address);
  if (*status) return ClusterStatus(config, status_json);
  if (*remove) return ClusterRemove(config, remove_node, remove_force);
  if (*clear) return ClusterClearError(config);
  if (*switchover) return ClusterSwitchover(config, sw_to, sw_at, wait_s * 1000);
  if (*failover) return ClusterFailover(config, fo_to, fo_accept, wait_s * 1000);
  if (*pause) return ClusterPause(config, true);
  if (*resume) return ClusterPause(config, false);
  if (*history) return ClusterHistory(config, history_json);
  if (*uri) return ClusterUri(config, uri_read_only);
  if (*up) return SandboxUp(sb);
  if (*down) return SandboxDown(sb);
  if (*sstatus) return SandboxStatus(sb);
  if (*kill) return SandboxKill(sb, node);
  if (*start) return SandboxStart(sb, node);
  return 2;
}
