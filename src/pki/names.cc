// The checks of what goes into a certificate's names (file-safe names, Common
// Names, DNS and IP subjectAltNames), before OpenSSL sees them. Pure.
#include "pki/names.h"

#include <netinet/in.h>

#include <algorithm>
#include <cctype>

namespace tandem::pki {

bool IsDnsName(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  std::string rest = s.rfind("*.", 0) == 0 ? s.substr(2) : s;
  if (rest.empty()) return false;
  size_t start = 0;
  while (start <= rest.size()) {
    size_t dot = rest.find('.', start);
    std::string label =
        rest.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return true;
}

Status CheckFileName(const std::string& what, const std::string& name) {
  bool ok = !name.empty() && name.size() <= 128 && name[0] != '.';
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      ok = false;
  }
  if (ok) return Ok();
  return Error(ErrorCode::kInvalidArgument,
               what + " '" + name +
                   "' cannot be used as a file name: use letters, digits, '.', '_' and '-' "
                   "(e.g. node1)");
}

Status CheckCommonName(const std::string& cn) {
  bool ok = !cn.empty() && cn.size() <= 64;
  for (char c : cn) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ok = false;
  }
  if (ok) return Ok();
  return Error(ErrorCode::kInvalidArgument,
               "Common Name '" + cn + "' is not usable: give 1 to 64 printable characters");
}

Result<std::vector<std::string>> ParseSans(const std::vector<std::string>& specs) {
  std::vector<std::string> out;
  for (const std::string& spec : specs) {
    size_t colon = spec.find(':');
    std::string type = colon == std::string::npos ? "" : spec.substr(0, colon);
    std::string value = colon == std::string::npos ? spec : spec.substr(colon + 1);
    std::transform(type.begin(), type.end(), type.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    std::string san;
    if (type == "DNS" && IsDnsName(value)) {
      san = "DNS:" + value;
    } else if (type == "IP" && IsIpAddress(value)) {
      san = "IP:" + value;
    } else if (type == "DNS") {
      return Error(
          ErrorCode::kInvalidArgument,
          "--san '" + spec + "': '" + value + "' is not a DNS name (e.g. DNS:db1.example.com)");
    } else if (type == "IP") {
      return Error(ErrorCode::kInvalidArgument,
                   "--san '" + spec + "': '" + value + "' is not an IP address (e.g. IP:10.0.0.1)");
    } else {
      std::string hint = IsIpAddress(spec) ? "IP:" + spec : "DNS:" + spec;
      return Error(ErrorCode::kInvalidArgument,
                   "--san '" + spec + "': write DNS:NAME or IP:ADDRESS (e.g. --san " + hint + ")");
    }
    if (std::find(out.begin(), out.end(), san) == out.end()) out.push_back(san);
  }
  return out;
}

}  // namespace tandem::pki
