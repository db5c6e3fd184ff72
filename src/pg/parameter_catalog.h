// The catalog of PostgreSQL parameters a server binary accepts, read from
// `postgres --describe-config`, and the checks of a parameter's name and
// value against it (for postgresql.parameters at config load).
//
// What --describe-config prints (PostgreSQL 15, one line per parameter,
// tab-separated): name, context, group, type (BOOLEAN, INTEGER, REAL, STRING,
// ENUM), boot value, min, max, short and extra description. It does NOT print
// a parameter's unit, nor an enum's allowed values, and it leaves out the
// developer options (GUC_NOT_IN_SAMPLE) and the read-only preset ones. So:
//   - a number with a unit ("64MB", "5min") is checked for its form and for a
//     unit PostgreSQL knows (memory B kB MB GB TB, time us ms s min h d), but
//     not against the range (the base unit it converts to is not known);
//     a plain number is checked against min..max (it is in the base unit);
//   - an enum value is any single-line text (its words are not listed);
//   - the developer options (DeveloperOptions()) are accepted by name with
//     any single-line value.
// PostgreSQL itself refuses the rest when it starts (and the agent shows why).
//
// Parsing and checks are pure; ReadParameterCatalog runs the binary (caller's
// thread, at most 10 s) and caches the answer per path for the process.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"

namespace tandem::pg {

enum class ParamType { kBool, kInteger, kReal, kString, kEnum };
const char* ParamTypeName(ParamType t);  // "bool", "integer", "real", "string", "enum"

struct ParamInfo {
  std::string name;     // lower case, as PostgreSQL spells it
  std::string context;  // postmaster, sighup, superuser, user, ...
  ParamType type = ParamType::kString;
  std::string boot_value;  // as printed (often "0" for numbers; enums show their default)
  std::string min, max;    // integer and real only, as printed ("0", "1.79769e+308")
};

struct ParameterCatalog {
  std::map<std::string, ParamInfo> params;  // by lower-case name
};

// Parses --describe-config output. Lines that do not have the type column
// are skipped; an output with no parameter at all is kInternal.
Result<ParameterCatalog> ParseDescribeConfig(const std::string& output);

// Settable parameters that --describe-config does not list (PostgreSQL's
// "Developer Options", docs section 20.17, as of 15).
const std::set<std::string>& DeveloperOptions();

// "" when `value` is one PostgreSQL accepts for `p` (as far as the catalog
// tells, see above); else what is expected, e.g. "an integer from 1 to
// 262143 (optionally with a unit such as 64MB or 5min)".
std::string CheckParameterValue(const ParamInfo& p, const std::string& value);

// PostgreSQL's boolean words: on, off, true, false, yes, no, 1, 0 and their
// unambiguous prefixes, any case.
bool IsPostgresBool(const std::string& value);

// Up to 3 catalog names close to `name` (edit distance), closest first.
std::vector<std::string> SimilarParameterNames(const ParameterCatalog& catalog,
                                               const std::string& name);

// `<bin_dir>/postgres --describe-config`, parsed; one run per bin_dir per
// process (the answer, success or failure, is cached). `may_run` false:
// only the cache is consulted (kUnavailable when it holds nothing), for
// callers on the HA loop. Thread-safe.
Result<std::shared_ptr<const ParameterCatalog>> ReadParameterCatalog(const std::string& bin_dir,
                                                                     bool may_run = true);

}  // namespace tandem::pg
