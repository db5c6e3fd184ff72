// Edits of a node's config file made by a command (agent/config_edit.h).
#include "agent/config_edit.h"

#include <vector>

#include "base/strings.h"

namespace tandem::agent {
namespace {

bool IsTopLevel(const std::string& line) {
  return !line.empty() && line[0] != ' ' && line[0] != '\t' && line[0] != '#';
}

// "  address: 1.2.3.4  # x" -> "address" at indent 2; "" when not a key line.
std::string KeyOf(const std::string& line, size_t* indent) {
  size_t i = 0;
  while (i < line.size() && line[i] == ' ') ++i;
  *indent = i;
  if (i == line.size() || line[i] == '#') return "";
  const size_t colon = line.find(':', i);
  if (colon == std::string::npos) return "";
  return line.substr(i, colon - i);
}

}  // namespace

Result<std::string> SetClusteringEndpoint(const std::string& yaml, const std::string& interface,
                                          const std::string& address) {
  const std::string key = interface.empty() ? "address" : "interface";
  const std::string value = interface.empty() ? address : interface;
  std::vector<std::string> lines = Split(yaml, '\n');
  const bool final_newline = !yaml.empty() && yaml.back() == '\n';
  if (final_newline) lines.pop_back();
  size_t section = lines.size();
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind("node:", 0) != 0) continue;
    const std::string rest = Trim(lines[i].substr(5));
    if (!rest.empty() && rest[0] != '#') {
      return Error(ErrorCode::kInvalidArgument,
                   "the node section is written on one line ('" + lines[i] +
                       "'); write it as a block (node: then one key per line) or set node." + key +
                       " by hand");
    }
    section = i;
    break;
  }
  if (section == lines.size()) {
    lines.push_back("node:");
    lines.push_back("  " + key + ": " + value);
  } else {
    size_t end = section + 1;
    while (end < lines.size() && !IsTopLevel(lines[end])) ++end;
    size_t indent_of_keys = 0;
    size_t insert_at = 0;  // 0: not yet known
    std::vector<std::string> kept;
    for (size_t i = section + 1; i < end; ++i) {
      size_t indent = 0;
      const std::string k = KeyOf(lines[i], &indent);
      if (!k.empty() && indent_of_keys == 0) indent_of_keys = indent;
      if (!k.empty() && indent == indent_of_keys && (k == "address" || k == "interface")) {
        if (insert_at == 0) insert_at = kept.size() + 1;
        continue;  // the old clustering endpoint, replaced below
      }
      kept.push_back(lines[i]);
    }
    if (indent_of_keys == 0) indent_of_keys = 2;
    const std::string line = std::string(indent_of_keys, ' ') + key + ": " + value;
    if (insert_at == 0) insert_at = 1;  // first in the section
    kept.insert(kept.begin() + static_cast<std::ptrdiff_t>(insert_at - 1), line);
    std::vector<std::string> out(lines.begin(),
                                 lines.begin() + static_cast<std::ptrdiff_t>(section + 1));
    out.insert(out.end(), kept.begin(), kept.end());
    out.insert(out.end(), lines.begin() + static_cast<std::ptrdiff_t>(end), lines.end());
    lines = std::move(out);
  }
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  return text;
}

}  // namespace tandem::agent
