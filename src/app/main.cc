// tandem: one binary for the node agent, the operator CLI and the sandbox.
//
// main() is wiring only: it creates the process's one real clock, builds the
// command line from each command group's registration (cli/registry.h),
// parses, and runs the handler of the command given.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "base/clock.h"
#include "cli/registry.h"

#ifndef TANDEM_VERSION
#define TANDEM_VERSION "0.1.0"
#endif

int main(int argc, char** argv) {
  using namespace tandem::cli;
  Context ctx(tandem::SystemClock::Get());
  CLI::App app{
      "Tandem: high availability for PostgreSQL (one agent per node, etcd for "
      "consensus, a stable client endpoint)",
      "tandem"};
  app.require_subcommand(1);
  app.add_option("-c,--config", ctx.config, "the node's config file")->capture_default_str();
  app.set_version_flag("--version", TANDEM_VERSION);
  RegisterAgentCommands(app, ctx);
  RegisterClusterCommands(app, ctx);
  RegisterSandboxCommands(app, ctx);
  RegisterPkiCommands(app, ctx);

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
  return ctx.Run();
}
