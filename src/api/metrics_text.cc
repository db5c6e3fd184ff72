// The text exposition format 0.0.4 (metrics_text.h): pure; runs on the
// caller's thread.
#include "api/metrics_text.h"

#include <charconv>
#include <cmath>
#include <set>

#include "base/result.h"

namespace tandem::api::prom {

namespace {

bool NameChar(char c, bool first, bool colon_ok) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return alpha || (colon_ok && c == ':') || (!first && c >= '0' && c <= '9');
}

bool ValidName(std::string_view name, bool colon_ok) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!NameChar(name[i], i == 0, colon_ok)) return false;
  }
  return true;
}

void AppendLabels(std::string& out, const Labels& labels, const std::string* le) {
  if (labels.empty() && le == nullptr) return;
  out += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    out += EscapeLabelValue(value);
    out += '"';
  }
  if (le != nullptr) {
    if (!first) out += ',';
    out += "le=\"";
    out += *le;
    out += '"';
  }
  out += '}';
}

void CheckLabels(const std::string& family, const Labels& labels, bool histogram) {
  std::set<std::string_view> seen;
  for (const auto& [name, value] : labels) {
    TANDEM_CHECK(ValidLabelName(name), family + ": invalid label name '" + name + "'");
    TANDEM_CHECK(!histogram || name != "le", family + ": a histogram cannot have a label 'le'");
    TANDEM_CHECK(seen.insert(name).second, family + ": label '" + name + "' repeated");
  }
}

void RenderHistogram(std::string& out, const std::string& name, const HistogramSample& h) {
  TANDEM_CHECK(h.counts.size() == h.upper_bounds.size() + 1,
               name + ": a histogram needs one count per bound and one for +Inf");
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= h.upper_bounds.size(); ++i) {
    std::string le = "+Inf";
    if (i < h.upper_bounds.size()) {
      const double b = h.upper_bounds[i];
      TANDEM_CHECK(std::isfinite(b), name + ": a bucket bound must be finite");
      TANDEM_CHECK(i == 0 || b > h.upper_bounds[i - 1], name + ": bucket bounds must increase");
      le = FormatValue(b);
    }
    cumulative += h.counts[i];
    out += name + "_bucket";
    AppendLabels(out, h.labels, &le);
    out += ' ' + std::to_string(cumulative) + '\n';
  }
  out += name + "_sum";
  AppendLabels(out, h.labels, nullptr);
  out += ' ' + FormatValue(h.sum) + '\n';
  out += name + "_count";
  AppendLabels(out, h.labels, nullptr);
  out += ' ' + std::to_string(cumulative) + '\n';
}

const char* TypeName(Type t) {
  switch (t) {
    case Type::kGauge:
      return "gauge";
    case Type::kCounter:
      return "counter";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

bool ValidMetricName(std::string_view name) {
  return ValidName(name, true);
}

bool ValidLabelName(std::string_view name) {
  return ValidName(name, false) && name.substr(0, 2) != "__";
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(const Value& value) {
  if (const auto* u = std::get_if<uint64_t>(&value)) return std::to_string(*u);
  if (const auto* i = std::get_if<int64_t>(&value)) return std::to_string(*i);
  const double d = std::get<double>(value);
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);  // the shortest text that reads back as d
  return std::string(buf, r.ptr);
}

std::string Render(const std::vector<Family>& families) {
  std::string out;
  std::set<std::string> names;
  for (const auto& f : families) {
    TANDEM_CHECK(ValidMetricName(f.name), "invalid metric name '" + f.name + "'");
    TANDEM_CHECK(names.insert(f.name).second, "metric family '" + f.name + "' written twice");
    const bool histogram = f.type == Type::kHistogram;
    TANDEM_CHECK(histogram ? f.samples.empty() : f.histograms.empty(),
                 f.name + ": samples of the wrong kind for its type");
    out += "# HELP " + f.name + ' ' + EscapeHelp(f.help) + '\n';
    out += "# TYPE " + f.name + ' ' + TypeName(f.type) + '\n';
    for (const auto& s : f.samples) {
      CheckLabels(f.name, s.labels, false);
      out += f.name;
      AppendLabels(out, s.labels, nullptr);
      out += ' ' + FormatValue(s.value) + '\n';
    }
    for (const auto& h : f.histograms) {
      CheckLabels(f.name, h.labels, true);
      RenderHistogram(out, f.name, h);
    }
  }
  return out;
}

}  // namespace tandem::api::prom
