// The catalog of `postgres --describe-config` (a sample captured from this
// machine's PostgreSQL 15 in testdata/) and the value checks behind
// postgresql.parameters.
#include "pg/parameter_catalog.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace tandem::pg {
namespace {

const ParameterCatalog& Sample() {
  static const ParameterCatalog catalog = [] {
    std::ifstream in(std::string(TANDEM_SOURCE_DIR) +
                     "/tests/unit/pg/testdata/describe_config_pg15.txt");
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = ParseDescribeConfig(text.str());
    EXPECT_TRUE(parsed.ok()) << parsed.error().message();
    return parsed.ok() ? *parsed : ParameterCatalog{};
  }();
  return catalog;
}

const ParamInfo& Param(const std::string& name) {
  static const ParamInfo none;
  auto it = Sample().params.find(name);
  EXPECT_NE(it, Sample().params.end()) << name;
  return it == Sample().params.end() ? none : it->second;
}

TEST(DescribeConfig, TheSampleParsesIntoTypesAndRanges) {
  EXPECT_EQ(Sample().params.size(), 307u);
  const auto& mc = Param("max_connections");
  EXPECT_EQ(mc.type, ParamType::kInteger);
  EXPECT_EQ(mc.context, "postmaster");
  EXPECT_EQ(mc.min, "1");
  EXPECT_EQ(mc.max, "262143");
  EXPECT_EQ(Param("wal_level").type, ParamType::kEnum);
  EXPECT_EQ(Param("wal_level").boot_value, "replica");
  EXPECT_EQ(Param("ssl").type, ParamType::kBool);
  EXPECT_EQ(Param("random_page_cost").type, ParamType::kReal);
  EXPECT_EQ(Param("random_page_cost").max, "1.79769e+308");
  EXPECT_EQ(Param("search_path").type, ParamType::kString);
}

TEST(DescribeConfig, JunkLinesAreSkippedAndNothingAtAllIsAnError) {
  auto c = ParseDescribeConfig("garbage\nwork_mem\tuser\tg\tINTEGER\t0\t64\t2147483647\td\t\n\n");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->params.size(), 1u);
  EXPECT_FALSE(ParseDescribeConfig("").ok());
  EXPECT_FALSE(ParseDescribeConfig("postgres: unrecognized option\n").ok());
  EXPECT_FALSE(ParseDescribeConfig("a\tb\tc\tWEIRD\t1\t2\t3\n").ok());
}

struct ValueCase {
  const char* param;
  const char* value;
  bool ok;
};

TEST(ParameterValue, EachTypeAcceptsWhatPostgresAcceptsAndNothingElse) {
  const ValueCase cases[] = {
      // booleans: PostgreSQL's words and their unambiguous prefixes, any case
      {"enable_seqscan", "on", true},
      {"enable_seqscan", "OFF", true},
      {"enable_seqscan", "true", true},
      {"enable_seqscan", "f", true},
      {"enable_seqscan", "yes", true},
      {"enable_seqscan", "n", true},
      {"enable_seqscan", "1", true},
      {"enable_seqscan", "0", true},
      {"enable_seqscan", "o", false},  // on or off?
      {"enable_seqscan", "maybe", false},
      {"enable_seqscan", "2", false},
      {"enable_seqscan", "", false},
      // integers: range in the base unit when plain; units checked for form
      {"shared_buffers", "16384", true},
      {"shared_buffers", "1GB", true},
      {"shared_buffers", "1 GB", true},
      {"shared_buffers", "1.5GB", true},
      {"shared_buffers", "15", false},  // below min 16
      {"shared_buffers", "1073741824", false},
      {"shared_buffers", "1gb", false},  // PostgreSQL's units are case-sensitive
      {"shared_buffers", "1XB", false},
      {"shared_buffers", "lots", false},
      {"shared_buffers", "", false},
      {"statement_timeout", "5min", true},
      {"statement_timeout", "0", true},
      {"statement_timeout", "-1", false},
      {"statement_timeout", "0x10", true},
      {"statement_timeout", "99999999999999999999", false},
      {"log_rotation_age", "1d", true},
      // reals
      {"random_page_cost", "1.1", true},
      {"random_page_cost", "4", true},
      {"random_page_cost", "-1", false},
      {"random_page_cost", "fast", false},
      {"vacuum_cost_delay", "2ms", true},
      {"vacuum_cost_delay", "101", false},
      // enums: the words are not listed by --describe-config
      {"log_min_messages", "warning", true},
      {"default_transaction_isolation", "read committed", true},
      {"log_min_messages", "", false},
      // strings: anything on one line
      {"search_path", "\"$user\", public", true},
      {"search_path", "", true},
      {"search_path", "a\nb", false},
  };
  for (const auto& c : cases) {
    const std::string expected = CheckParameterValue(Param(c.param), c.value);
    EXPECT_EQ(expected.empty(), c.ok) << c.param << " = '" << c.value << "': " << expected;
  }
}

TEST(ParameterValue, TheExpectationNamesTheTypeAndRange) {
  EXPECT_NE(CheckParameterValue(Param("shared_buffers"), "x").find("an integer from 16 to"),
            std::string::npos);
  EXPECT_NE(CheckParameterValue(Param("ssl"), "x").find("a boolean"), std::string::npos);
}

TEST(ParameterNames, ATypoGetsTheNearestNames) {
  auto near = SimilarParameterNames(Sample(), "shared_buffer");
  ASSERT_FALSE(near.empty());
  EXPECT_EQ(near[0], "shared_buffers");
  near = SimilarParameterNames(Sample(), "Max_Conections");
  ASSERT_FALSE(near.empty());
  EXPECT_EQ(near[0], "max_connections");
  EXPECT_TRUE(SimilarParameterNames(Sample(), "zzzzzzzzzzzzzzzzqqq").empty());
}

TEST(ParameterCatalogRun, AMissingBinaryIsAnErrorAndIsRemembered) {
  auto r = ReadParameterCatalog("/nonexistent/pg/bin");
  EXPECT_FALSE(r.ok());
  auto again = ReadParameterCatalog("/nonexistent/pg/bin", /*may_run=*/false);
  EXPECT_FALSE(again.ok());
  EXPECT_EQ(again.error().message(), r.error().message());
  EXPECT_EQ(ReadParameterCatalog("/never/read", false).error().code(), ErrorCode::kUnavailable);
}

TEST(ParameterCatalogRun, TheInstalledBinaryIsReadOnce) {
  const std::string bin = "/usr/lib/postgresql/15/bin";
  if (::access((bin + "/postgres").c_str(), X_OK) != 0) GTEST_SKIP() << "no PostgreSQL 15";
  auto first = ReadParameterCatalog(bin);
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_GT((*first)->params.count("work_mem"), 0u);
  auto cached = ReadParameterCatalog(bin, /*may_run=*/false);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(cached->get(), first->get());
}

}  // namespace
}  // namespace tandem::pg
