// How `tandem`'s command line is put together. main() makes the CLI::App and
// calls BuildCommandLine (-c, --version and each command group's Register*
// function, which adds the group's subcommands and options and records, with
// Context::Handle, the handler that runs each command), then ParseAndRun,
// which parses, names the wrong word of a refused command line (usage.cc)
// and calls Context::Run. Options are stored in state each group owns (captured
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
// `tandem ui hash-password` (cli/ui_commands.cc).
void RegisterUiCommands(CLI::App& app, Context& ctx);

// The hidden `tandem help-man --out DIR` and `tandem help-completion`
// (cli/manual.cc): the man pages and the bash completion, generated from the
// command tree as registered (so they cannot drift from it). Registered last.
void RegisterManualCommands(CLI::App& app, Context& ctx);

// The whole command line into app: the top level's -c and --version, a
// command required, every group (agent, cluster, sandbox, pki) and the
// hidden generators (help-man, help-completion).
void BuildCommandLine(CLI::App& app, Context& ctx, const std::string& version);
// Parses argv into app and runs the command given. Help and --version print
// and exit 0; a usage error prints "ERROR : " + UsageError(...) to stderr and
// returns 2; otherwise the command's exit code.
int ParseAndRun(CLI::App& app, const Context& ctx, int argc, const char* const* argv);
// What to tell an operator whose command line (argv without argv[0]) CLI11
// refused with cli11_message: the unknown command word ("unknown command
// 'clustr'", a did-you-mean when one is close, and the valid commands), the
// unknown option ("unknown option '--jsn' for 'tandem cluster status'", a
// did-you-mean), or the command missing after a group; otherwise CLI11's
// own message. Each ends with where --help is.
std::string UsageError(const CLI::App& app, const std::vector<std::string>& args,
                       const std::string& cli11_message);

}  // namespace tandem::cli
