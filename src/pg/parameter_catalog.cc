// The --describe-config parser, the value checks (after PostgreSQL's own
// parse_bool, parse_int and parse_real in guc.c) and the cached run of the
// binary. See parameter_catalog.h for what the catalog can and cannot tell.
#include "pg/parameter_catalog.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <mutex>

#include "base/process.h"
#include "base/strings.h"
#include "pg/conf.h"

namespace tandem::pg {
namespace {

std::optional<ParamType> TypeFromText(const std::string& t) {
  if (t == "BOOLEAN") return ParamType::kBool;
  if (t == "INTEGER") return ParamType::kInteger;
  if (t == "REAL") return ParamType::kReal;
  if (t == "STRING") return ParamType::kString;
  if (t == "ENUM") return ParamType::kEnum;
  return std::nullopt;
}

bool HasLineBreak(const std::string& v) {
  return v.find_first_of(std::string("\n\r\0", 3)) != std::string::npos;
}

// The units PostgreSQL accepts after a number (case-sensitive, as it is).
bool IsUnit(const std::string& u) {
  static const std::set<std::string> units = {"B",  "kB", "MB",  "GB", "TB", "us",
                                              "ms", "s",  "min", "h",  "d"};
  return units.count(u) != 0;
}

// A number as parse_int/parse_real read it: optional sign, decimal (or, for
// integers, 0x hex), optional fraction and exponent, optional whitespace and
// unit. Sets *number and *has_unit; false when malformed.
bool ParseNumber(const std::string& text, bool integer, double* number, bool* has_unit) {
  const std::string v = Trim(text);
  if (v.empty()) return false;
  const char* begin = v.c_str();
  char* end = nullptr;
  double d = 0;
  if (integer) {
    errno = 0;
    long long i = std::strtoll(begin, &end, 0);
    if (end == begin || errno == ERANGE) return false;
    d = static_cast<double>(i);
    if (*end == '.' || *end == 'e' || *end == 'E') {
      d = std::strtod(begin, &end);
      if (!std::isfinite(d)) return false;
    }
  } else {
    d = std::strtod(begin, &end);
    if (end == begin || std::isnan(d)) return false;
  }
  std::string rest = Trim(std::string(end));
  *has_unit = !rest.empty();
  if (*has_unit && !IsUnit(rest)) return false;
  *number = d;
  return true;
}

std::string RangeText(const ParamInfo& p) {
  return p.min.empty() ? std::string() : " from " + p.min + " to " + p.max;
}

}  // namespace

const char* ParamTypeName(ParamType t) {
  switch (t) {
    case ParamType::kBool:
      return "bool";
    case ParamType::kInteger:
      return "integer";
    case ParamType::kReal:
      return "real";
    case ParamType::kString:
      return "string";
    case ParamType::kEnum:
      return "enum";
  }
  return "?";
}

Result<ParameterCatalog> ParseDescribeConfig(const std::string& output) {
  ParameterCatalog c;
  for (const auto& line : Split(output, '\n')) {
    const auto f = Split(line, '\t');
    if (f.size() < 7) continue;
    auto type = TypeFromText(f[3]);
    if (!type || f[0].empty()) continue;
    ParamInfo p;
    p.name = ToLower(f[0]);
    p.context = f[1];
    p.type = *type;
    p.boot_value = f[4];
    if (*type == ParamType::kInteger || *type == ParamType::kReal) {
      p.min = f[5];
      p.max = f[6];
    }
    c.params[p.name] = std::move(p);
  }
  if (c.params.empty()) {
    return Error(ErrorCode::kInternal,
                 "postgres --describe-config printed no parameter: " + OutputTail(output, 3));
  }
  return c;
}

const std::set<std::string>& DeveloperOptions() {
  static const std::set<std::string> names = {
      "allow_in_place_tablespaces",
      "allow_system_table_mods",
      "backtrace_functions",
      "debug_discard_caches",
      "debug_deadlocks",
      "force_parallel_mode",
      "ignore_checksum_failure",
      "ignore_invalid_pages",
      "ignore_system_indexes",
      "jit_debugging_support",
      "jit_dump_bitcode",
      "jit_expressions",
      "jit_profiling_support",
      "jit_tuple_deforming",
      "log_btree_build_stats",
      "post_auth_delay",
      "pre_auth_delay",
      "remove_temp_files_after_crash",
      "trace_locks",
      "trace_lock_oidmin",
      "trace_lock_table",
      "trace_lwlocks",
      "trace_notify",
      "trace_recovery_messages",
      "trace_sort",
      "trace_userlocks",
      "wal_consistency_checking",
      "wal_debug",
      "zero_damaged_pages",
  };
  return names;
}

bool IsPostgresBool(const std::string& value) {
  const std::string v = ToLower(value);
  if (v.empty()) return false;
  auto prefix_of = [&](const std::string& word, size_t min_len) {
    return v.size() >= min_len && v.size() <= word.size() && word.compare(0, v.size(), v) == 0;
  };
  return prefix_of("true", 1) || prefix_of("false", 1) || prefix_of("yes", 1) ||
         prefix_of("no", 1) || prefix_of("on", 2) || prefix_of("off", 2) || v == "1" || v == "0";
}

std::string CheckParameterValue(const ParamInfo& p, const std::string& value) {
  if (HasLineBreak(value)) return "a single line (no newline, carriage return or NUL)";
  switch (p.type) {
    case ParamType::kBool:
      return IsPostgresBool(value) ? "" : "a boolean: on, off, true, false, yes, no, 1 or 0";
    case ParamType::kString:
      return "";
    case ParamType::kEnum:
      // --describe-config does not list an enum's words: PostgreSQL checks
      // them when it starts.
      return Trim(value).empty() ? "one of the parameter's words (not empty)" : "";
    case ParamType::kInteger:
    case ParamType::kReal:
      break;
  }
  const bool integer = p.type == ParamType::kInteger;
  const std::string expected =
      std::string(integer ? "an integer" : "a number") + RangeText(p) +
      " (a plain number is in the parameter's base unit; a unit such as 64MB or 5min may "
      "follow where the parameter has one)";
  double n = 0;
  bool has_unit = false;
  if (!ParseNumber(value, integer, &n, &has_unit)) return expected;
  if (has_unit || p.min.empty()) return "";  // the base unit is unknown: no range check
  const double lo = std::strtod(p.min.c_str(), nullptr);
  const double hi = std::strtod(p.max.c_str(), nullptr);
  const double x = integer ? std::rint(n) : n;
  if (x < lo || x > hi) return expected;
  return "";
}

std::vector<std::string> SimilarParameterNames(const ParameterCatalog& catalog,
                                               const std::string& name) {
  const std::string want = ToLower(name);
  const size_t limit = std::max<size_t>(2, want.size() / 4);
  std::vector<std::pair<size_t, std::string>> near;
  for (const auto& [n, info] : catalog.params) {
    const size_t d = EditDistance(want, n);
    const bool contains = want.size() >= 4 && n.find(want) != std::string::npos;
    if (d <= limit || contains) near.emplace_back(contains ? std::min(d, limit) : d, n);
  }
  std::sort(near.begin(), near.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < near.size() && i < 3; ++i) out.push_back(near[i].second);
  return out;
}

Result<std::shared_ptr<const ParameterCatalog>> ReadParameterCatalog(const std::string& bin_dir,
                                                                     bool may_run) {
  using Entry = Result<std::shared_ptr<const ParameterCatalog>>;
  static std::mutex mu;
  static std::map<std::string, Entry> cache;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache.find(bin_dir); it != cache.end()) return it->second;
  if (!may_run) {
    return Error(ErrorCode::kUnavailable,
                 "the parameter catalog of " + bin_dir + " has not been read in this process");
  }
  const std::string binary = bin_dir + "/postgres";
  Entry entry = [&]() -> Entry {
    auto run = RunCommand({binary, "--describe-config"}, SpawnOptions{}, 10'000);
    if (!run) return run.error().Wrap(binary + " --describe-config");
    if (run->exit_code != 0) {
      return Error(ErrorCode::kIo, binary + " --describe-config exited with " +
                                       std::to_string(run->exit_code) + ": " +
                                       OutputTail(run->output, 3));
    }
    auto parsed = ParseDescribeConfig(run->output);
    if (!parsed) return parsed.error();
    return std::shared_ptr<const ParameterCatalog>(
        std::make_shared<ParameterCatalog>(std::move(*parsed)));
  }();
  cache.emplace(bin_dir, entry);
  return entry;
}

}  // namespace tandem::pg
