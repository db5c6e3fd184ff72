// tandem: one binary for the node agent, the operator CLI and the sandbox.
//
// main() is wiring only: it creates the process's one real clock, builds the
// command line from each command group's registration (cli/registry.h),
// parses, and runs the handler of the command given.
#include <CLI/CLI.hpp>
#include <string>

#include "base/clock.h"
#include "cli/registry.h"
#include "tandem_version.h"  // generated at build time (cmake/version.cmake)

int main(int argc, char** argv) {
  using namespace tandem::cli;
  Context ctx(tandem::SystemClock::Get());
  CLI::App app{
      "Tandem: high availability for PostgreSQL (one agent per node, etcd for "
      "consensus, a stable client endpoint)",
      "tandem"};
  BuildCommandLine(app, ctx, "tandem " TANDEM_VERSION " (commit " TANDEM_GIT_COMMIT ")");
  return ParseAndRun(app, ctx, argc, argv);
}
