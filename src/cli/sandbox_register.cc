// `tandem sandbox ...`: the subcommands, their options and handlers (the
// commands themselves: sandbox.cc).
#include <CLI/CLI.hpp>
#include <memory>

#include "cli/commands.h"
#include "cli/registry.h"

namespace tandem::cli {
namespace {

struct SandboxArgs {
  SandboxOptions opts;
  std::string node;  // kill, start
};

}  // namespace

void RegisterSandboxCommands(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<SandboxArgs>();
  SandboxOptions& sb = a->opts;
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
  up->add_flag("--witness", sb.witness,
               "add a witness (an etcd voter with no PostgreSQL), node \"witness\", after the "
               "data nodes: `--nodes 2 --witness` is a full two-data-node cluster");
  up->add_flag("!--no-tls", sb.tls,
               "no TLS: skip the CA and certificates, and leave the tls section out of the "
               "configs (PostgreSQL replication is plain)");
  ctx.Handle(up, [a, &ctx] { return SandboxUp(ctx.clock, a->opts); });
  auto* down = sandbox->add_subcommand("down", "stop every process of the sandbox");
  add_common(down);
  down->add_flag("--purge", sb.purge, "also delete the sandbox directory");
  ctx.Handle(down, [a, &ctx] { return SandboxDown(ctx.clock, a->opts); });
  auto* sstatus = sandbox->add_subcommand("status", "nodes, ports, configs and pids");
  add_common(sstatus);
  sstatus->add_flag("--json", sb.json, "machine-readable output");
  ctx.Handle(sstatus, [a] { return SandboxStatus(a->opts); });
  auto* kill =
      sandbox->add_subcommand("kill", "SIGKILL a node's agent, PostgreSQL and etcd (a crash)");
  add_common(kill);
  kill->add_option("NODE", a->node, "node name, e.g. node1 or witness")->required();
  ctx.Handle(kill, [a, &ctx] { return SandboxKill(ctx.clock, a->opts, a->node); });
  auto* start = sandbox->add_subcommand("start", "start a node's agent again");
  add_common(start);
  start->add_option("NODE", a->node, "node name, e.g. node1 or witness")->required();
  ctx.Handle(start, [a, &ctx] { return SandboxStart(ctx.clock, a->opts, a->node); });
}

}  // namespace tandem::cli
