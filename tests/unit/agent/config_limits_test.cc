// The YAML of a config is parsed with limits before any tree is built: an
// alias bomb, deep nesting or a huge file is refused at once, naming why.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "agent/config.h"
#include "agent/yaml_limits.h"
#include "base/file.h"
#include "unit/agent/config_text.h"

namespace tandem::agent {
namespace {

using config_testing::ErrorOf;
constexpr const char* kMinimal = config_testing::kMinimalNode;

// The "billion laughs": 9 levels of 9 aliases, about 1.2 KB, expanding to
// 9^9 scalars when a tree is built (minutes of yaml-cpp and gigabytes).
std::string AliasBomb() {
  std::string y = std::string(kMinimal) + "postgresql:\n  parameters:\n    a0: &a0 lol\n";
  for (int level = 1; level <= 9; ++level) {
    y += "    a" + std::to_string(level) + ": &a" + std::to_string(level) + " [";
    for (int i = 0; i < 9; ++i) y += std::string(i ? ", " : "") + "*a" + std::to_string(level - 1);
    y += "]\n";
  }
  return y;
}

TEST(ConfigYamlLimits, AnAliasBombIsRefusedWithoutBeingExpanded) {
  const std::string bomb = AliasBomb();
  EXPECT_LT(bomb.size(), 1500u);
  const std::string e = ErrorOf(bomb);
  EXPECT_NE(e.find("/etc/tandem/tandem.yaml: line 7"), std::string::npos) << e;
  EXPECT_NE(e.find("anchors"), std::string::npos) << e;
  EXPECT_NE(e.find("write the value out"), std::string::npos) << e;
}

TEST(ConfigYamlLimits, AnchorsAndAliasesAreRefusedEvenWhenHarmless) {
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "api:\n  port: &p 8008\n").find("line 6: YAML anchors"),
            std::string::npos);
  // An alias of an undefined anchor, and a merge key.
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "api:\n  port: *p\n").find("line 6"),
            std::string::npos);
  EXPECT_NE(ErrorOf("base: &b {port: 1}\napi:\n  <<: *b\n").find("anchors"), std::string::npos);
}

TEST(ConfigYamlLimits, DeepNestingIsRefusedNamingTheLine) {
  const std::string deep = std::string(kMinimal) + "api:\n  port: " + std::string(100000, '[') +
                           std::string(100000, ']') + "\n";
  const std::string e = ErrorOf(deep);
  EXPECT_NE(e.find("line 6: nested deeper than the depth limit of 16 levels"), std::string::npos)
      << e;
  // Within the cap the loader's own type check answers.
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "api:\n  port: [[[1]]]\n").find("'api.port'"),
            std::string::npos);
}

TEST(ConfigYamlLimits, AHugeDocumentIsRefusedNamingTheFileAndItsSize) {
  std::string huge = std::string(kMinimal) + "# " + std::string(2 << 20, 'x') + "\n";
  const std::string e = ErrorOf(huge);
  EXPECT_NE(e.find("/etc/tandem/tandem.yaml: the file is " + std::to_string(huge.size()) +
                   " bytes, over the limit of 1048576"),
            std::string::npos)
      << e.substr(0, 200);
}

TEST(ConfigYamlLimits, AHugeOrEndlessFileIsNotEvenRead) {
  auto dev = LoadConfig("/dev/zero");
  ASSERT_FALSE(dev.ok());
  EXPECT_NE(dev.error().message().find("/dev/zero: is not a regular file"), std::string::npos)
      << dev.error().message();
  const std::string path = "/tmp/tandem_config_limits_" + std::to_string(::getpid()) + ".yaml";
  {
    std::ofstream out(path);
    out << kMinimal << "# " << std::string(3 << 20, 'y') << "\n";
  }
  auto big = LoadConfig(path);
  ::unlink(path.c_str());
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message().find(path + ": the file is "), std::string::npos);
  EXPECT_NE(big.error().message().find("bytes, over the limit"), std::string::npos);
}

TEST(ConfigYamlLimits, OneDocumentOnlyAndNoNulBytes) {
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "---\ncluster: other\n").find("second YAML document"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string(kMinimal) + std::string("x: \0", 4)).find("NUL"),
            std::string::npos);
}

TEST(ConfigYamlLimits, SyntaxErrorsNameTheLine) {
  const std::string e = ErrorOf(std::string(kMinimal) + "api:\n  port: [8008\n");
  EXPECT_NE(e.find("not valid YAML"), std::string::npos) << e;
  EXPECT_NE(e.find("line"), std::string::npos) << e;
}

// Just under the size cap, the widest document a config can hold (40000
// parameters) is still read in one linear pass (this test's run time shows it).
TEST(ConfigYamlLimits, TheWidestDocumentUnderTheCapLoads) {
  std::string y = std::string(kMinimal) + "postgresql:\n  parameters:\n";
  for (int i = 0; y.size() < (1u << 20) - 64; ++i) y += "    my.p" + std::to_string(i) + ": 1\n";
  auto c = ParseConfig(y, "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_GT(c->pg_parameters.size(), 40000u);
}

TEST(ConfigYamlLimits, AnOrdinaryConfigPasses) {
  EXPECT_TRUE(CheckYamlLimits(kMinimal, "t.yaml").ok());
  EXPECT_TRUE(ParseConfig(kMinimal, "t.yaml").ok());
}

}  // namespace
}  // namespace tandem::agent
