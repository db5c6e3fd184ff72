// `tandem cluster ...`: the subcommands, their options and handlers (the
// commands themselves: cluster_commands.cc, certs.cc).
#include <CLI/CLI.hpp>
#include <memory>

#include "cli/commands.h"
#include "cli/log_command.h"
#include "cli/registry.h"
#include "cli/schema_commands.h"

namespace tandem::cli {
namespace {

// What the cluster subcommands' options are parsed into.
struct ClusterArgs {
  std::string join_address;
  bool join_witness = false;
  std::string localnode;
  bool status_json = false;
  std::string remove_node;
  bool remove_force = false;
  std::string sw_to, sw_at;
  bool sw_cancel = false;
  int64_t wait_s = 60;  // switchover and failover
  std::string fo_to;
  bool fo_accept = false;
  bool history_json = false;
  bool alarms_history = false, alarms_json = false;
  bool uri_read_only = false;
  LogOptions log;
  std::vector<std::string> certs_files;
  bool certs_force = false;
  std::string tls_mode;
  bool tls_mode_force = false;
};

using Args = std::shared_ptr<ClusterArgs>;

// initialize, join, status, remove, clear-error.
void AddMembershipCommands(CLI::App* cluster, const Args& a, Context& ctx) {
  auto* init = cluster->add_subcommand("initialize",
                                       "make this node's database the primary of a new cluster");
  ctx.Handle(init, [&ctx] { return ClusterInitialize(ctx.clock, ctx.config); });
  auto* join = cluster->add_subcommand(
      "join", "become a replica: copy the database from the cluster (the local one is kept aside)");
  join->add_option("ADDRESS", a->join_address, "HOST:PORT of any member's agent API")->required();
  join->add_flag("--witness", a->join_witness,
                 "join as a witness: an etcd voter with no PostgreSQL (a local database is left "
                 "untouched); the third vote of a two-data-node cluster");
  ctx.Handle(join, [a, &ctx] {
    return ClusterJoin(ctx.clock, ctx.config, a->join_address, a->join_witness);
  });
  auto* localnode = cluster->add_subcommand(
      "localnode",
      "show, or set before initialize or join, the interface or address this node clusters on "
      "(replication, etcd peers, agent calls): checked to exist and be up, written to the "
      "config file as node.interface or node.address; refused once the node is a member");
  localnode->add_option("target", a->localnode,
                        "an interface (eth1) or an address of this machine");
  ctx.Handle(localnode,
             [&ctx, a] { return ClusterLocalnode(ctx.clock, ctx.config, a->localnode); });
  auto* status = cluster->add_subcommand("status", "show the cluster as this node sees it");
  status->add_flag("--json", a->status_json, "machine-readable output");
  ctx.Handle(status, [a, &ctx] { return ClusterStatus(ctx.config, a->status_json); });
  auto* remove = cluster->add_subcommand(
      "remove",
      "remove NODE (default: this node) from the cluster; a removed node's pre-join "
      "database is put back");
  remove->add_option("NODE", a->remove_node, "the node to remove (default: this node)");
  remove->add_flag("--force", a->remove_force,
                   "allow removing the primary (a replica takes over), or the witness of a "
                   "two-data-node cluster");
  ctx.Handle(remove,
             [a, &ctx] { return ClusterRemove(ctx.config, a->remove_node, a->remove_force); });
  auto* clear = cluster->add_subcommand("clear-error", "clear the error state of the last command");
  ctx.Handle(clear, [&ctx] { return ClusterClearError(ctx.config); });
}

// switchover, failover.
void AddPrimaryCommands(CLI::App* cluster, const Args& a, Context& ctx) {
  auto* switchover = cluster->add_subcommand(
      "switchover",
      "move the primary role to a replica cleanly (no write lost; the old primary "
      "becomes a replica without a rewind)");
  switchover->add_option("--to", a->sw_to,
                         "the replica to promote (default: the most advanced one)");
  auto* at = switchover->add_option(
      "--at", a->sw_at,
      "when: +DURATION (e.g. +10m) or a UTC time like 2026-11-22T03:00:00Z, at most 366 days "
      "ahead (default: now)");
  switchover->add_option("--wait", a->wait_s, "seconds to wait for it to complete")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  switchover
      ->add_flag("--cancel", a->sw_cancel,
                 "cancel the scheduled switchover (one whose --at time has not come yet)")
      ->excludes(at)
      ->excludes("--to");
  ctx.Handle(switchover, [a, &ctx] {
    if (a->sw_cancel) return ClusterSwitchoverCancel(ctx.config);
    return ClusterSwitchover(ctx.clock, ctx.config, a->sw_to, a->sw_at, a->wait_s * 1000);
  });
  auto* failover = cluster->add_subcommand(
      "failover", "promote NODE when there is no primary (with a primary: a switchover to NODE)");
  failover->add_option("--to", a->fo_to, "the replica to promote")->required();
  failover->add_flag("--accept-data-loss", a->fo_accept,
                     "promote it even if it may miss acknowledged writes (when the primary and "
                     "every synchronous replica were lost)");
  failover->add_option("--wait", a->wait_s, "seconds to wait for it to complete")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  ctx.Handle(failover, [a, &ctx] {
    return ClusterFailover(ctx.clock, ctx.config, a->fo_to, a->fo_accept, a->wait_s * 1000);
  });
}

// pause, resume, history, alarms, uri.
void AddMaintenanceCommands(CLI::App* cluster, const Args& a, Context& ctx) {
  auto* pause = cluster->add_subcommand(
      "pause", "maintenance mode: the agents take no automatic action until resume");
  ctx.Handle(pause, [&ctx] { return ClusterPause(ctx.config, true); });
  auto* resume = cluster->add_subcommand("resume", "end maintenance mode");
  ctx.Handle(resume, [&ctx] { return ClusterPause(ctx.config, false); });
  auto* history = cluster->add_subcommand(
      "history", "every leader change: time, new primary, timeline, reason");
  history->add_flag("--json", a->history_json, "machine-readable output");
  ctx.Handle(history, [a, &ctx] { return ClusterHistory(ctx.config, a->history_json); });
  auto* alarms = cluster->add_subcommand(
      "alarms", "the alarms raised now: id, name, node, since (docs/alarms.md lists them)");
  alarms->add_flag("--history", a->alarms_history, "also the cleared ones, oldest first");
  alarms->add_flag("--json", a->alarms_json, "machine-readable output");
  ctx.Handle(alarms,
             [a, &ctx] { return ClusterAlarms(ctx.config, a->alarms_history, a->alarms_json); });
  auto* log = cluster->add_subcommand(
      "log", "the cluster's events (leader changes, alarms, operations), oldest first");
  log->add_option("--node", a->log.node, "only the events this node wrote");
  log->add_option("--since", a->log.since, "a duration before now (10m, 2h) or an RFC 3339 time");
  log->add_flag("--follow", a->log.follow, "keep printing new events until interrupted");
  log->add_flag("--json", a->log.json, "one JSON object per line (GET /v1/events's form)");
  ctx.Handle(log, [a, &ctx] { return ClusterLog(ctx.clock, ctx.config, a->log); });
  auto* uri = cluster->add_subcommand(
      "uri",
      "print a libpq connection URI with every node (and, when the proxy is on, one through "
      "the proxies)");
  uri->add_flag("--read-only", a->uri_read_only,
                "for reads: target_session_attrs=prefer-standby, the read-only proxy ports");
  ctx.Handle(uri, [a, &ctx] { return ClusterUri(ctx.config, a->uri_read_only); });
}

// certs, tls-mode.
void AddTlsCommands(CLI::App* cluster, const Args& a, Context& ctx) {
  auto* certs = cluster->add_subcommand(
      "certs",
      "install this node's certificates, checked first: SERVER_KEY SERVER_CERT CLIENT_KEY "
      "CLIENT_CERT CA_CERT, or CLIENT_KEY CLIENT_CERT CA_CERT to keep the server pair");
  certs->add_option("files", a->certs_files, "the key and certificate files (PEM)")
      ->required()
      ->expected(3, 5);
  certs->add_flag("--force", a->certs_force,
                  "install a CA other than the one this node uses now (the other nodes must "
                  "get it too)");
  ctx.Handle(certs, [a, &ctx] {
    return ClusterCerts(ctx.clock, ctx.config, a->certs_files, a->certs_force);
  });

  auto* tlsmode = cluster->add_subcommand(
      "tls-mode",
      "set this node's tls.mode; switching to enforce first checks every peer's certificates "
      "from here and refuses, listing each failing peer, unless --force");
  tlsmode->add_option("mode", a->tls_mode, "enforce or permissive")
      ->required()
      ->check(CLI::IsMember({"enforce", "permissive"}));
  tlsmode->add_flag("--force", a->tls_mode_force, "switch to enforce even with failing peers");
  ctx.Handle(tlsmode, [a, &ctx] {
    return ClusterTlsMode(ctx.clock, ctx.config, a->tls_mode, a->tls_mode_force);
  });
}

}  // namespace

void RegisterClusterCommands(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<ClusterArgs>();
  auto* cluster = app.add_subcommand("cluster", "operate the cluster (talks to the local agent)");
  cluster->require_subcommand(1);
  AddMembershipCommands(cluster, a, ctx);
  AddPrimaryCommands(cluster, a, ctx);
  AddMaintenanceCommands(cluster, a, ctx);
  AddTlsCommands(cluster, a, ctx);
  AddSchemaCommands(cluster, ctx);  // upgrade-schema, schema (schema_commands.cc)
}

}  // namespace tandem::cli
