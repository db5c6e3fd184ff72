// A refused command line names the word that was wrong (issue 19, item 5):
// an unknown command or option, with a did-you-mean, never just "a
// subcommand is required".
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include "base/clock.h"
#include "cli/registry.h"

namespace tandem::cli {
namespace {

// The usage error tandem prints for `tandem ARGS` ("" when it parses).
std::string ErrorFor(std::vector<std::string> args) {
  ManualClock clock;
  Context ctx(clock);
  CLI::App app{"test", "tandem"};
  BuildCommandLine(app, ctx, "test");
  std::vector<const char*> argv{"tandem"};
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return UsageError(app, args, e.what());
  }
  return "";
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(UsageError, AnUnknownTopLevelCommandIsNamedWithTheValidOnes) {
  const auto e = ErrorFor({"clustr", "status"});
  EXPECT_TRUE(Has(e, "unknown command 'clustr'")) << e;
  EXPECT_TRUE(Has(e, "did you mean 'cluster'?")) << e;
  EXPECT_TRUE(Has(e, "agent, cluster, sandbox, pki")) << e;
  EXPECT_FALSE(Has(e, "subcommand is required")) << e;
  EXPECT_TRUE(Has(ErrorFor({"xyzzy"}), "unknown command 'xyzzy'"));
  EXPECT_FALSE(Has(ErrorFor({"xyzzy"}), "did you mean")) << "nothing close";
}

TEST(UsageError, AnUnknownSubcommandIsNamedInItsGroup) {
  auto e = ErrorFor({"cluster", "stauts"});
  EXPECT_TRUE(Has(e, "unknown command 'stauts' for 'tandem cluster'")) << e;
  EXPECT_TRUE(Has(e, "did you mean 'status'?")) << e;
  EXPECT_TRUE(Has(e, "switchover")) << e;
  EXPECT_TRUE(Has(e, "`tandem cluster --help`")) << e;
  // After a top-level option and its value.
  e = ErrorFor({"-c", "/etc/x.yaml", "sandbox", "upp"});
  EXPECT_TRUE(Has(e, "unknown command 'upp' for 'tandem sandbox'")) << e;
  EXPECT_TRUE(Has(e, "did you mean 'up'?")) << e;
}

TEST(UsageError, AMissingCommandListsTheGroupsCommands) {
  auto e = ErrorFor({"cluster"});
  EXPECT_TRUE(Has(e, "'tandem cluster' needs a command: one of initialize")) << e;
  e = ErrorFor({});
  EXPECT_TRUE(Has(e, "'tandem' needs a command: one of agent, cluster")) << e;
}

TEST(UsageError, AnUnknownOptionIsNamedWithItsCommand) {
  auto e = ErrorFor({"cluster", "status", "--jsn"});
  EXPECT_TRUE(Has(e, "unknown option '--jsn' for 'tandem cluster status'")) << e;
  EXPECT_TRUE(Has(e, "did you mean '--json'?")) << e;
  e = ErrorFor({"cluster", "switchover", "--too", "n2"});
  EXPECT_TRUE(Has(e, "unknown option '--too'")) << e;
  EXPECT_TRUE(Has(e, "did you mean '--to'?")) << e;
  e = ErrorFor({"cluster", "switchover", "--wait=x", "--bogus=1"});
  EXPECT_TRUE(Has(e, "unknown option '--bogus'")) << e;
}

TEST(UsageError, AGroupsOptionAfterACommandSaysWhereItGoes) {
  const auto e = ErrorFor({"cluster", "status", "-c", "/etc/x.yaml"});
  EXPECT_TRUE(Has(e, "option '-c' belongs to 'tandem'")) << e;
  EXPECT_TRUE(Has(e, "`tandem -c VALUE cluster status ...`")) << e;
  // `agent` has its own -c.
  EXPECT_EQ(ErrorFor({"agent", "-c", "/etc/x.yaml", "--help"}).find("belongs"), std::string::npos);
}

TEST(UsageError, OtherErrorsKeepCli11sMessageWithTheHelpHint) {
  auto e = ErrorFor({"cluster", "status", "extra"});
  EXPECT_TRUE(Has(e, "extra")) << e;
  EXPECT_TRUE(Has(e, "`tandem cluster status --help`")) << e;
  EXPECT_EQ(ErrorFor({"cluster", "status", "--json"}), "");
}

}  // namespace
}  // namespace tandem::cli
