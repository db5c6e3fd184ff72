// Schema migrations as files: names, the set's rules, UTF-8, the
// no-transaction directive, statements and their lines (pure; see
// schema_files.h).
#include "core/schema_files.h"

#include <algorithm>
#include <cctype>
#include <map>

namespace tandem::core {
namespace {

Error Bad(const std::string& msg) {
  return Error(ErrorCode::kInvalidArgument, msg);
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string FirstLine(const std::string& s) {
  std::string l = s.substr(0, s.find('\n'));
  if (!l.empty() && l.back() == '\r') l.pop_back();
  while (!l.empty() && (l.back() == ' ' || l.back() == '\t')) l.pop_back();
  return l;
}

// The dollar-quote tag starting at s[i] ("$$", "$body$"), or "" when none.
std::string DollarTag(const std::string& s, size_t i) {
  size_t j = i + 1;
  while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
  if (j < s.size() && s[j] == '$') {
    if (j > i + 1 && std::isdigit(static_cast<unsigned char>(s[i + 1]))) return "";  // $1
    return s.substr(i, j - i + 1);
  }
  return "";
}

// Walks SQL calling on_code(i) for every character outside comments and
// literals, and on_end(i) at every top-level ';'.
template <class Code, class End>
void Scan(const std::string& s, Code on_code, End on_end) {
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    const char n = i + 1 < s.size() ? s[i + 1] : '\0';
    if (c == '-' && n == '-') {
      while (i < s.size() && s[i] != '\n') ++i;
    } else if (c == '/' && n == '*') {
      int depth = 0;
      do {
        if (s.compare(i, 2, "/*") == 0) {
          ++depth;
          i += 2;
        } else if (s.compare(i, 2, "*/") == 0) {
          --depth;
          i += 2;
        } else {
          ++i;
        }
      } while (i < s.size() && depth > 0);
    } else if (c == '\'' || c == '"') {
      const bool escapes = c == '\'' && i > 0 && (s[i - 1] == 'E' || s[i - 1] == 'e');
      ++i;
      while (i < s.size()) {
        if (escapes && s[i] == '\\') {
          i += 2;
        } else if (s[i] == c) {
          if (i + 1 < s.size() && s[i + 1] == c) {
            i += 2;  // doubled quote
          } else {
            break;
          }
        } else {
          ++i;
        }
      }
      ++i;
    } else if (c == '$' && !DollarTag(s, i).empty()) {
      const std::string tag = DollarTag(s, i);
      const size_t close = s.find(tag, i + tag.size());
      i = close == std::string::npos ? s.size() : close + tag.size();
    } else {
      if (c == ';') {
        on_end(i);
      } else {
        on_code(i);
      }
      ++i;
    }
  }
}

bool OnlyBlanksAndComments(const std::string& s) {
  bool code = false;
  Scan(
      s, [&](size_t i) { code = code || !std::isspace(static_cast<unsigned char>(s[i])); },
      [](size_t) {});
  return !code;
}

// The statement's first keyword, upper-cased ("" when none).
std::string FirstWord(const std::string& s) {
  std::string code(s.size(), ' ');
  Scan(
      s, [&](size_t i) { code[i] = s[i]; }, [](size_t) {});
  size_t i = 0;
  while (i < code.size() && std::isspace(static_cast<unsigned char>(code[i]))) ++i;
  std::string w;
  while (i < code.size() && std::isalpha(static_cast<unsigned char>(code[i]))) {
    w += static_cast<char>(std::toupper(static_cast<unsigned char>(code[i++])));
  }
  return w;
}

// A statement that would end or open the transaction Tandem wraps a file in.
bool IsTransactionControl(const std::string& word) {
  return word == "BEGIN" || word == "COMMIT" || word == "ROLLBACK" || word == "END" ||
         word == "START" || word == "ABORT";
}

}  // namespace

std::string VersionName(uint64_t version) {
  return "V" + std::to_string(version);
}

Result<Migration> ParseMigrationName(const std::string& name) {
  const std::string fix =
      "name it V<version>__<description>.sql, e.g. V0001__create_calls.sql (the version is "
      "digits, two underscores, a description of letters, digits and underscores)";
  if (name.empty() || name[0] != 'V') {
    return Bad("'" + name + "' does not start with V; " + fix);
  }
  if (!EndsWith(name, ".sql")) return Bad("'" + name + "' does not end in .sql; " + fix);
  size_t i = 1;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i]))) ++i;
  if (i == 1) return Bad("'" + name + "' has no version digits after V; " + fix);
  if (i - 1 > 18) return Bad("'" + name + "': the version has more than 18 digits; " + fix);
  if (name.compare(i, 2, "__") != 0) {
    return Bad("'" + name + "': the version is not followed by two underscores; " + fix);
  }
  const std::string desc = name.substr(i + 2, name.size() - 4 - (i + 2));
  if (desc.empty()) return Bad("'" + name + "' has no description; " + fix);
  for (char c : desc) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return Bad("'" + name + "': the description may hold only letters, digits and underscores; " +
                 fix);
    }
  }
  Migration m;
  m.version = std::stoull(name.substr(1, i - 1));
  if (m.version == 0) return Bad("'" + name + "': version 0 is not allowed (start at 1)");
  m.description = desc;
  std::replace(m.description.begin(), m.description.end(), '_', ' ');
  m.file = name;
  return m;
}

bool IsValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (int k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

std::vector<Statement> SplitStatements(const std::string& sql) {
  std::vector<Statement> out;
  size_t start = 0;
  auto emit = [&](size_t end) {
    std::string text = sql.substr(start, end - start);
    if (!OnlyBlanksAndComments(text)) {
      // The statement's line: that of its first character that is code.
      size_t first = start;
      Scan(
          text,
          [&](size_t i) {
            if (first == start && !std::isspace(static_cast<unsigned char>(text[i]))) {
              first = start + i;
            }
          },
          [](size_t) {});
      const int line = 1 + static_cast<int>(std::count(sql.begin(), sql.begin() + first, '\n'));
      const int first_line =
          1 + static_cast<int>(std::count(sql.begin(), sql.begin() + start, '\n'));
      out.push_back({std::move(text), line, first_line});
    }
    start = end + 1;
  };
  Scan(
      sql, [](size_t) {}, emit);
  if (start < sql.size()) emit(sql.size());
  return out;
}

bool TouchesHistoryTable(const std::string& sql) {
  std::string code(sql.size(), ' ');
  Scan(
      sql,
      [&](size_t i) {
        code[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(sql[i])));
      },
      [&](size_t i) { code[i] = ';'; });
  // Quoted identifiers are skipped by Scan: look for them in the raw text too.
  std::string lower = sql;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return code.find("schema_history") != std::string::npos ||
         lower.find("\"schema_history\"") != std::string::npos;
}

int LineOfPosition(const std::string& sql, int position) {
  if (position < 1 || static_cast<size_t>(position) > sql.size() + 1) return 1;
  return 1 + static_cast<int>(std::count(sql.begin(), sql.begin() + (position - 1), '\n'));
}

Result<std::vector<Migration>> CheckMigrationSet(const std::vector<MigrationFile>& files) {
  if (files.empty()) {
    return Bad("the directory holds no migration (V<version>__<description>.sql files)");
  }
  size_t total = 0;
  std::map<uint64_t, std::string> seen;
  std::vector<Migration> out;
  for (const auto& f : files) {
    auto parsed = ParseMigrationName(f.name);
    if (!parsed) return parsed.error();
    Migration m = std::move(*parsed);
    if (auto it = seen.find(m.version); it != seen.end()) {
      return Bad("'" + it->second + "' and '" + f.name + "' both have version " +
                 std::to_string(m.version) + "; give each file its own version");
    }
    seen[m.version] = f.name;
    if (!IsValidUtf8(f.sql)) {
      return Bad("'" + f.name + "' is not valid UTF-8; save it as UTF-8");
    }
    m.transactional = FirstLine(f.sql) != kNoTransactionDirective;
    const auto statements = SplitStatements(f.sql);
    if (statements.empty()) return Bad("'" + f.name + "' holds no SQL statement");
    for (const auto& st : statements) {
      const std::string w = FirstWord(st.sql);
      if (m.transactional && IsTransactionControl(w)) {
        return Bad("'" + f.name + "' line " + std::to_string(st.line) + ": " + w +
                   " in a migration; Tandem runs each file in one transaction of its own "
                   "(remove it, or make the file's first line " +
                   kNoTransactionDirective + ")");
      }
    }
    if (TouchesHistoryTable(f.sql)) {
      return Bad("'" + f.name + "' names " + kHistoryTable +
                 ", which only Tandem writes; remove that statement");
    }
    total += f.sql.size();
    m.sql = f.sql;
    m.sha256 = f.sha256;
    out.push_back(std::move(m));
  }
  if (total > kMaxMigrationBytes) {
    return Bad("the migrations hold " + std::to_string(total) + " bytes, over the limit of " +
               std::to_string(kMaxMigrationBytes) +
               " for one run; split the directory and run it in parts with --target");
  }
  std::sort(out.begin(), out.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].version != i + 1) {
      const std::string missing = VersionName(i + 1);
      return Bad("version " + std::to_string(i + 1) + " is missing (gap before '" + out[i].file +
                 "'); versions run 1, 2, 3, ... without a gap: add " + missing +
                 "__<description>.sql or renumber");
    }
  }
  return out;
}

}  // namespace tandem::core
