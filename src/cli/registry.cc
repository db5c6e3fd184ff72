// Context: the handlers the command groups register, and picking the one to run.
#include "cli/registry.h"

#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace tandem::cli {

Context::Context(const Clock& clock) : clock(clock), config(kDefaultConfig) {}

void Context::Handle(CLI::App* command, std::function<int()> run) {
  handlers_.emplace_back(command, std::move(run));
}

int Context::Run() const {
  for (const auto& [command, run] : handlers_) {
    if (*command) return run();
  }
  return 2;
}

}  // namespace tandem::cli
