// `tandem ui hash-password`: a yescrypt hash for the dashboard's ui.users
// (docs/dashboard.md). The password is read from the terminal without echo
// (asked twice) or, when stdin is not a terminal, as its first line; it is
// never an argument (the process list would show it). Main thread only.
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <string>

#include "api/ui_auth.h"
#include "cli/registry.h"

namespace tandem::cli {
namespace {

// One line from stdin; with echo off when it is a terminal.
bool ReadSecretLine(const char* prompt, std::string* out) {
  const bool tty = ::isatty(STDIN_FILENO) == 1;
  termios old{};
  if (tty) {
    std::fprintf(stderr, "%s", prompt);
    std::fflush(stderr);
    ::tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  const bool ok = static_cast<bool>(std::getline(std::cin, *out));
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::fprintf(stderr, "\n");
  }
  if (!out->empty() && out->back() == '\r') out->pop_back();
  return ok;
}

int HashPassword() {
  std::string password;
  if (!ReadSecretLine("Password: ", &password)) {
    std::fprintf(stderr, "error: no password on stdin; type it, or pipe it in on one line\n");
    return 2;
  }
  if (::isatty(STDIN_FILENO) == 1) {
    std::string again;
    if (!ReadSecretLine("Again: ", &again) || again != password) {
      std::fprintf(stderr, "error: the two passwords differ; nothing was printed\n");
      return 2;
    }
  }
  auto hash = api::UiHashPassword(password);
  if (!hash) {
    std::fprintf(stderr, "error: %s\n", hash.error().message().c_str());
    return hash.error().code() == ErrorCode::kInvalidArgument ? 2 : 1;
  }
  std::printf("%s\n", hash->c_str());
  return 0;
}

}  // namespace

void RegisterUiCommands(CLI::App& app, Context& ctx) {
  auto* ui = app.add_subcommand("ui", "the web dashboard (docs/dashboard.md)");
  ui->require_subcommand(1);
  auto* hash = ui->add_subcommand("hash-password",
                                  "print a yescrypt hash of a password for the config's ui.users");
  hash->footer(
      "Example: tandem ui hash-password    (type the password twice), then in tandem.yaml:\n"
      "  ui:\n    users:\n      admin: '$y$j9T$...'");
  ctx.Handle(hash, [] { return HashPassword(); });
}

}  // namespace tandem::cli
