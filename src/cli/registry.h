// How `tandem`'s command line is put together. main() builds the CLI::App (its
// description, -c and --version) and calls each command group's Register*
// function, which adds the group's subcommands and options and records, with
// Context::Handle, the handler that runs each command; then main parses and
// calls Context::Run. Options are stored in state each group owns (captured
// by its handlers), so the groups share nothing but the Context.
//
// The order of registration is the order `tandem --help` lists the groups:
// agent, cluster, sandbox, pki.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"

namespace CLI {
class App;
}

namespace tandem::cli {

class Context {
 public:
  explicit Context(const Clock& clock);
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // The process's clock (main's SystemClock), handed to every command.
  const Clock& clock;
  // -c/--config: the node's config file (the top level's and `agent`'s).
  std::string config;

  // `run` runs when `command` is the subcommand given on the command line.
  void Handle(CLI::App* command, std::function<int()> run);
  // After a successful parse: the exit code of the handler of the command
  // that was given (the first registered that matches); 2 when none.
  int Run() const;

 private:
  std::vector<std::pair<CLI::App*, std::function<int()>>> handlers_;
};

// `tandem agent` (cli/agent_command.cc).
void RegisterAgentCommands(CLI::App& app, Context& ctx);
// `tandem cluster ...` (cli/cluster_register.cc).
void RegisterClusterCommands(CLI::App& app, Context& ctx);
// `tandem sandbox ...` (cli/sandbox_register.cc).
void RegisterSandboxCommands(CLI::App& app, Context& ctx);
// `tandem pki ...` (cli/pki_register.cc).
void RegisterPkiCommands(CLI::App& app, Context& ctx);

}  // namespace tandem::cli
