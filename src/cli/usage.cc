// The command line's parse and its usage errors: BuildCommandLine,
// ParseAndRun and UsageError (cli/registry.h). A refused command line names
// the word that was wrong (an unknown command or option), with a did-you-mean
// when a valid one is close, never just "a subcommand is required".
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>

#include "base/strings.h"
#include "cli/registry.h"

namespace tandem::cli {
namespace {

// " (did you mean 'x'?)" for the closest candidate within a typo's reach.
std::string DidYouMean(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const size_t d = EditDistance(word, c);
    if (d < best_d || (d == best_d && !best.empty() && c < best)) {
      best = c;
      best_d = d;
    }
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

std::vector<std::string> CommandNames(const CLI::App* app) {
  std::vector<std::string> out;
  for (const CLI::App* sub : app->get_subcommands(std::function<bool(const CLI::App*)>{})) {
    // Hidden commands (no group: help-man, help-completion) are not offered.
    if (!sub->get_disabled() && !sub->get_name().empty() && !sub->get_group().empty()) {
      out.push_back(sub->get_name());
    }
  }
  return out;
}

std::vector<std::string> OptionNames(const CLI::App* app) {
  std::vector<std::string> out;
  for (const CLI::App* a = app; a != nullptr; a = a->get_parent()) {
    for (const CLI::Option* o : a->get_options()) {
      for (const auto& l : o->get_lnames()) out.push_back("--" + l);
      for (const auto& s : o->get_snames()) out.push_back("-" + s);
    }
  }
  return out;
}

// The option `name` ("--json", "-c") of app or of an app above it (*owner:
// the app that has it).
const CLI::Option* FindOption(const CLI::App* app, const std::string& name,
                              const CLI::App** owner) {
  for (const CLI::App* a = app; a != nullptr; a = a->get_parent()) {
    if (const CLI::Option* o = a->get_option_no_throw(name)) {
      *owner = a;
      return o;
    }
  }
  return nullptr;
}

// "tandem cluster" for the app `cluster` (its parents' names before it).
std::string PathOf(const CLI::App* app) {
  std::string path;
  for (const CLI::App* a = app; a != nullptr; a = a->get_parent()) {
    path = a->get_parent() == nullptr ? "tandem" + path : " " + a->get_name() + path;
  }
  return path;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

std::string UsageError(const CLI::App& app, const std::vector<std::string>& args,
                       const std::string& cli11_message) {
  const CLI::App* cur = &app;
  std::string path = "tandem";
  auto help = [&] { return "; see `" + path + " --help`"; };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& w = args[i];
    if (w == "--") break;
    if (w.size() > 1 && w[0] == '-') {
      const bool is_long = w.rfind("--", 0) == 0;
      const size_t eq = w.find('=');
      const std::string name = is_long ? w.substr(0, eq) : w.substr(0, 2);
      const CLI::App* owner = nullptr;
      const CLI::Option* opt = FindOption(cur, name, &owner);
      if (opt == nullptr) {
        return "unknown option '" + name + "' for '" + path + "'" +
               DidYouMean(name, OptionNames(cur)) + help();
      }
      if (owner != cur && !(opt->get_type_size() == 0 && name == "--help")) {
        // An option of a group above (-c of `tandem`) is read only before
        // the next command word.
        return "option '" + name + "' belongs to '" + PathOf(owner) +
               "': put it before the command that follows, e.g. `" + PathOf(owner) + " " + name +
               (opt->get_type_size() > 0 ? " VALUE" : "") + path.substr(PathOf(owner).size()) +
               " ...`" + help();
      }
      const bool value_attached = is_long ? eq != std::string::npos : w.size() > 2;
      if (opt->get_type_size() > 0 && !value_attached) ++i;  // its value
      continue;
    }
    const std::vector<std::string> commands = CommandNames(cur);
    if (commands.empty()) continue;  // a leaf's argument: CLI11 names an extra one
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : cur->get_subcommands(std::function<bool(const CLI::App*)>{})) {
      if (sub->check_name(w)) next = sub;
    }
    if (next == nullptr) {
      return "unknown command '" + w + "'" + (path == "tandem" ? "" : " for '" + path + "'") +
             DidYouMean(w, commands) + "; the commands are: " + Join(commands) + help();
    }
    cur = next;
    path += " " + w;
  }
  if (const auto commands = CommandNames(cur); !commands.empty()) {
    return "'" + path + "' needs a command: one of " + Join(commands) + help();
  }
  return cli11_message + help();
}

void BuildCommandLine(CLI::App& app, Context& ctx, const std::string& version) {
  app.require_subcommand(1);
  app.add_option("-c,--config", ctx.config, "the node's config file")->capture_default_str();
  app.set_version_flag("--version", version);
  RegisterAgentCommands(app, ctx);
  RegisterClusterCommands(app, ctx);
  RegisterSandboxCommands(app, ctx);
  RegisterPkiCommands(app, ctx);
  RegisterUiCommands(app, ctx);
  RegisterManualCommands(app, ctx);
}

int ParseAndRun(CLI::App& app, const Context& ctx, int argc, const char* const* argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
    std::fprintf(stderr, "ERROR : %s\n", UsageError(app, args, e.what()).c_str());
    return 2;
  }
  return ctx.Run();
}

}  // namespace tandem::cli
