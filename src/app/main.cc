// tandem: one binary for the node agent, the operator CLI and the sandbox.
//
// main() is wiring only: it remembers how it was invoked (for a reload in
// place, base/reexec.h), creates the process's one real clock, builds the
// command line from each command group's registration (cli/registry.h),
// parses, and runs the handler of the command given.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <string>

#include "base/clock.h"
#include "base/reexec.h"
#include "cli/registry.h"
#include "tandem_version.h"  // generated at build time (cmake/version.cmake)

int main(int argc, char** argv) {
  using namespace tandem::cli;
  // Before anything else: what `tandem agent reload` executes again.
  tandem::RememberInvocation(argc, argv);
  tandem::SetBuildVersion(TANDEM_VERSION " (commit " TANDEM_GIT_COMMIT ")");
  // A write to a peer that closed (an agent restarting under a TLS call) is
  // an error to report, never the end of the command.
  ::signal(SIGPIPE, SIG_IGN);
  Context ctx(tandem::SystemClock::Get());
  CLI::App app{
      "Tandem: high availability for PostgreSQL (one agent per node, etcd for "
      "consensus, a stable client endpoint)",
      "tandem"};
  BuildCommandLine(app, ctx, "tandem " TANDEM_VERSION " (commit " TANDEM_GIT_COMMIT ")");
  return ParseAndRun(app, ctx, argc, argv);
}
