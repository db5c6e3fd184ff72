// The man pages and the bash completion come from the command tree (issue
// 17, item 3): every command and every option registered appears in its
// group's page and in the completion, tandem.yaml(5) lists every config key,
// and the hidden generators are never offered to an operator.
#include <gtest/gtest.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "agent/config_keys.h"
#include "base/clock.h"
#include "base/file.h"
#include "cli/registry.h"

namespace tandem::cli {
namespace {

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Roff escapes '-' as "\-": the page's text with that undone.
std::string Plain(std::string roff) {
  std::string out;
  for (size_t i = 0; i < roff.size(); ++i) {
    if (roff[i] == '\\' && i + 1 < roff.size() && roff[i + 1] == '-') continue;
    out += roff[i];
  }
  return out;
}

class ManualTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BuildCommandLine(app_, ctx_, "tandem 9.9.9 (commit abc)");
    char tmpl[] = "/tmp/tandem-manual-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)RemoveAll(dir_); }

  int Run(std::vector<std::string> args) {
    std::vector<const char*> argv{"tandem"};
    for (const auto& a : args) argv.push_back(a.c_str());
    CLI::App app{"test", "tandem"};
    ManualClock clock;
    Context ctx(clock);
    BuildCommandLine(app, ctx, "tandem 9.9.9 (commit abc)");
    return ParseAndRun(app, ctx, static_cast<int>(argv.size()), argv.data());
  }
  std::string Page(const std::string& name) {
    auto text = ReadFile(dir_ + "/" + name);
    EXPECT_TRUE(text.ok()) << name;
    return text.ok() ? Plain(*text) : "";
  }

  ManualClock clock_;
  Context ctx_{clock_};
  CLI::App app_{"test", "tandem"};
  std::string dir_;
};

// Every visible command under app, with its path ("tandem cluster status").
void Walk(const CLI::App* app, const std::string& path,
          const std::function<void(const CLI::App*, const std::string&)>& f) {
  for (const CLI::App* s : app->get_subcommands(std::function<bool(const CLI::App*)>{})) {
    if (s->get_group().empty()) continue;
    const std::string p = path + " " + s->get_name();
    f(s, p);
    Walk(s, p, f);
  }
}

TEST_F(ManualTest, EveryCommandAndOptionIsInItsGroupsPage) {
  ASSERT_EQ(Run({"help-man", "--out", dir_}), 0);
  int checked = 0;
  Walk(&app_, "tandem", [&](const CLI::App* cmd, const std::string& path) {
    const std::string group = path.substr(7, path.find(' ', 7) - 7);
    const std::string page = Page("tandem-" + group + ".1");
    EXPECT_TRUE(Has(page, path)) << path << " missing from tandem-" << group << "(1)";
    for (const CLI::Option* o : cmd->get_options()) {
      if (o->get_group().empty()) continue;
      for (const auto& l : o->get_lnames()) {
        if (l == "help") continue;
        EXPECT_TRUE(Has(page, "--" + l)) << path << " --" << l;
        ++checked;
      }
    }
  });
  EXPECT_GT(checked, 20);
  const std::string top = Page("tandem.1");
  for (const char* g : {"agent", "cluster", "sandbox", "pki"}) {
    EXPECT_TRUE(Has(top, std::string("tandem-") + g)) << g;
  }
  EXPECT_TRUE(Has(top, ".TH TANDEM 1 \"\" \"tandem 9.9.9 (commit abc)\"")) << top.substr(0, 300);
  EXPECT_FALSE(Has(top, "\\fBhelp")) << "the generators are not listed as commands";
  EXPECT_TRUE(Has(Page("tandem-agent.1"), "Reloading the agent is not a failover"));
  EXPECT_TRUE(Has(Page("tandem-agent.1"), "systemctl reload tandem"));
}

TEST_F(ManualTest, TheConfigPageListsEveryKeyOfTheLoadersTable) {
  ASSERT_EQ(Run({"help-man", "--out", dir_, "--readme", TANDEM_SOURCE_DIR "/README.md"}), 0);
  const std::string page = Page("tandem.yaml.5");
  for (const auto& k : agent::config_internal::Keys()) {
    EXPECT_TRUE(Has(page, "\\fB" + k.path + "\\fR")) << k.path;
  }
  EXPECT_TRUE(Has(page, ".SH EXAMPLE")) << "the README's commented reference";
  EXPECT_TRUE(Has(page, "loop_interval: 250ms"));
}

TEST_F(ManualTest, AReadmeWithoutTheReferenceIsRefusedNamingIt) {
  const std::string bad = dir_ + "/NOTREADME.md";
  ASSERT_TRUE(WriteFileAtomic(bad, "# nothing here\n").ok());
  testing::internal::CaptureStderr();
  EXPECT_EQ(Run({"help-man", "--out", dir_ + "/out", "--readme", bad}), 2);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(Has(err, bad)) << err;
  EXPECT_TRUE(Has(err, "Configuration reference")) << err;
}

TEST_F(ManualTest, TheCompletionKnowsEveryCommandAndFlag) {
  testing::internal::CaptureStdout();
  ASSERT_EQ(Run({"help-completion"}), 0);
  const std::string script = testing::internal::GetCapturedStdout();
  Walk(&app_, "tandem", [&](const CLI::App* cmd, const std::string& path) {
    EXPECT_TRUE(Has(script, "_tandem_flags[\"" + path + "\"]=")) << path;
    for (const CLI::Option* o : cmd->get_options()) {
      for (const auto& l : o->get_lnames()) EXPECT_TRUE(Has(script, "--" + l)) << path << l;
    }
  });
  EXPECT_TRUE(Has(script, "_tandem_cmds[\"tandem\"]=\"agent cluster sandbox pki ui\""));
  EXPECT_TRUE(Has(script, "_tandem_node_arg[\"tandem cluster remove\"]=1"));
  EXPECT_TRUE(Has(script, "complete -F _tandem tandem"));
}

}  // namespace
}  // namespace tandem::cli
