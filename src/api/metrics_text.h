// The Prometheus text exposition format, version 0.0.4, as a pure function:
// metric families (plain data) in, the text a scraper reads out. No I/O, no
// clock, no knowledge of what the metrics mean (api/metrics.h builds them).
//
// Each family is written as its "# HELP" and "# TYPE" lines followed by its
// samples, families and samples in the order given. Label values and help
// text are escaped as the format says (label values: \\, \" and \n; help:
// \\ and \n). A histogram becomes <name>_bucket{...,le="..."} lines with
// cumulative counts ending in le="+Inf", then <name>_sum and <name>_count,
// where _count equals the +Inf bucket by construction.
//
// A family that breaks the format (an invalid metric or label name, a name
// used twice, a reserved label "le" on a histogram, bucket bounds that do not
// increase) is a bug in the caller: TANDEM_CHECK, never a silently bad scrape.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace tandem::api::prom {

// The content type of what Render returns.
inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class Type { kGauge, kCounter, kHistogram };

using Labels = std::vector<std::pair<std::string, std::string>>;  // name, value; in order

// A sample's value: integers are written exactly (an LSN does not fit a
// double), doubles as the shortest text that reads back the same, NaN as
// "NaN" and the infinities as "+Inf" / "-Inf".
using Value = std::variant<uint64_t, int64_t, double>;

struct Sample {
  Labels labels;
  Value value;
};

struct HistogramSample {
  Labels labels;
  std::vector<double> upper_bounds;  // strictly increasing, finite; +Inf is implied
  std::vector<uint64_t> counts;      // per bucket, not cumulative: upper_bounds.size() + 1
  double sum = 0;
};

struct Family {
  std::string name;
  std::string help;
  Type type = Type::kGauge;
  std::vector<Sample> samples;              // gauge, counter
  std::vector<HistogramSample> histograms;  // histogram
};

std::string Render(const std::vector<Family>& families);

// The pieces, for the tests.
bool ValidMetricName(std::string_view name);  // [a-zA-Z_:][a-zA-Z0-9_:]*
bool ValidLabelName(std::string_view name);   // [a-zA-Z_][a-zA-Z0-9_]*, not "__" first
std::string EscapeLabelValue(std::string_view value);
std::string EscapeHelp(std::string_view help);
std::string FormatValue(const Value& value);

}  // namespace tandem::api::prom
