// The Prometheus text exposition format 0.0.4 (api/metrics_text.h): the
// escaping, the order, the special values and the histogram's invariants,
// each as the format's specification states it.
#include "api/metrics_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace tandem::api::prom {
namespace {

Family Gauge(const std::string& name, std::vector<Sample> samples) {
  return Family{name, "help of " + name, Type::kGauge, std::move(samples), {}};
}

TEST(MetricsText, FamilyIsHelpThenTypeThenSamples) {
  const std::string text =
      Render({Gauge("a_metric", {{{{"x", "1"}}, uint64_t{5}}, {{{"x", "2"}}, uint64_t{6}}})});
  EXPECT_EQ(text,
            "# HELP a_metric help of a_metric\n"
            "# TYPE a_metric gauge\n"
            "a_metric{x=\"1\"} 5\n"
            "a_metric{x=\"2\"} 6\n");
}

TEST(MetricsText, FamiliesSamplesAndLabelsKeepTheGivenOrder) {
  const std::string text = Render({Gauge("zeta", {{{{"b", "1"}, {"a", "2"}}, uint64_t{1}}}),
                                   Gauge("alpha", {{{}, uint64_t{2}}})});
  EXPECT_LT(text.find("# HELP zeta"), text.find("# HELP alpha"));
  EXPECT_NE(text.find("zeta{b=\"1\",a=\"2\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("\nalpha 2\n"), std::string::npos) << "no labels: no braces";
}

TEST(MetricsText, CounterAndTypeLines) {
  const std::string text =
      Render({Family{"x_total", "n", Type::kCounter, {{{}, uint64_t{3}}}, {}}});
  EXPECT_NE(text.find("# TYPE x_total counter\n"), std::string::npos);
}

TEST(MetricsText, LabelValuesEscapeBackslashQuoteAndNewline) {
  EXPECT_EQ(EscapeLabelValue(R"(a\b"c)"
                             "\n"
                             "d"),
            R"(a\\b\"c\nd)");
  // Nothing else is escaped: UTF-8, tabs and braces pass as they are.
  EXPECT_EQ(EscapeLabelValue("é\t{}="), "é\t{}=");
  const std::string text = Render({Gauge("m", {{{{"file", "/etc/\"x\"\\n"}}, uint64_t{1}}})});
  EXPECT_NE(text.find(R"(m{file="/etc/\"x\"\\n"} 1)"), std::string::npos) << text;
}

TEST(MetricsText, HelpEscapesBackslashAndNewlineButNotQuotes) {
  EXPECT_EQ(EscapeHelp("a\\b\n\"c\""), "a\\\\b\\n\"c\"");
  const std::string text =
      Render({Family{"m", "two\nlines", Type::kGauge, {{{}, uint64_t{1}}}, {}}});
  EXPECT_NE(text.find("# HELP m two\\nlines\n"), std::string::npos);
}

TEST(MetricsText, ValuesNaNInfinitiesAndExactIntegers) {
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  // An LSN near 2^64 is written exactly (a double would round it).
  EXPECT_EQ(FormatValue(uint64_t{18446744073709551615u}), "18446744073709551615");
  EXPECT_EQ(FormatValue(int64_t{-3}), "-3");
  EXPECT_EQ(FormatValue(0.005), "0.005");
  EXPECT_EQ(FormatValue(1733234567.25), "1733234567.25");
  EXPECT_EQ(FormatValue(0.0), "0");
  const std::string text = Render({Gauge("m", {{{}, std::numeric_limits<double>::quiet_NaN()}})});
  EXPECT_NE(text.find("\nm NaN\n"), std::string::npos);
}

TEST(MetricsText, HistogramBucketsAreCumulativeEndInInfAndCountEqualsInf) {
  HistogramSample h{{{"node", "n1"}}, {0.001, 0.01, 0.1}, {2, 0, 3, 1}, 0.25};
  const std::string text = Render({Family{"d_seconds", "d", Type::kHistogram, {}, {h}}});
  EXPECT_EQ(text,
            "# HELP d_seconds d\n"
            "# TYPE d_seconds histogram\n"
            "d_seconds_bucket{node=\"n1\",le=\"0.001\"} 2\n"
            "d_seconds_bucket{node=\"n1\",le=\"0.01\"} 2\n"
            "d_seconds_bucket{node=\"n1\",le=\"0.1\"} 5\n"
            "d_seconds_bucket{node=\"n1\",le=\"+Inf\"} 6\n"
            "d_seconds_sum{node=\"n1\"} 0.25\n"
            "d_seconds_count{node=\"n1\"} 6\n");
}

TEST(MetricsText, EmptyHistogramHasZeroBucketsAndNoLabelsIsFine) {
  HistogramSample h{{}, {1}, {0, 0}, 0};
  const std::string text = Render({Family{"d", "d", Type::kHistogram, {}, {h}}});
  EXPECT_NE(text.find("d_bucket{le=\"1\"} 0\nd_bucket{le=\"+Inf\"} 0\nd_sum 0\nd_count 0\n"),
            std::string::npos)
      << text;
}

TEST(MetricsText, Names) {
  EXPECT_TRUE(ValidMetricName("patroni_xlog_location"));
  EXPECT_TRUE(ValidMetricName("a:b_c9"));
  EXPECT_FALSE(ValidMetricName("9a"));
  EXPECT_FALSE(ValidMetricName("a-b"));
  EXPECT_FALSE(ValidMetricName(""));
  EXPECT_TRUE(ValidLabelName("scope"));
  EXPECT_FALSE(ValidLabelName("a:b"));
  EXPECT_FALSE(ValidLabelName("__name__"));
  EXPECT_FALSE(ValidLabelName("1x"));
}

// A family that breaks the format is the caller's bug: a crash naming it,
// never a scrape Prometheus would reject.
TEST(MetricsTextDeathTest, BrokenFamiliesAreBugs) {
  EXPECT_DEATH(Render({Gauge("bad-name", {})}), "invalid metric name");
  EXPECT_DEATH(Render({Gauge("m", {}), Gauge("m", {})}), "written twice");
  EXPECT_DEATH(Render({Gauge("m", {{{{"1x", "v"}}, uint64_t{1}}})}), "invalid label name");
  EXPECT_DEATH(Render({Gauge("m", {{{{"a", "v"}, {"a", "w"}}, uint64_t{1}}})}), "repeated");
  HistogramSample le{{{"le", "1"}}, {1}, {0, 0}, 0};
  EXPECT_DEATH(Render({Family{"h", "h", Type::kHistogram, {}, {le}}}), "label 'le'");
  HistogramSample down{{}, {2, 1}, {0, 0, 0}, 0};
  EXPECT_DEATH(Render({Family{"h", "h", Type::kHistogram, {}, {down}}}), "must increase");
  HistogramSample short_counts{{}, {1, 2}, {0, 0}, 0};
  EXPECT_DEATH(Render({Family{"h", "h", Type::kHistogram, {}, {short_counts}}}), "one count");
  EXPECT_DEATH(Render({Family{"g", "g", Type::kGauge, {}, {short_counts}}}), "wrong kind");
}

}  // namespace
}  // namespace tandem::api::prom
