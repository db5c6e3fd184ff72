// Small string utilities.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tandem {

std::vector<std::string> Split(std::string_view s, char sep);
std::string Join(const std::vector<std::string>& parts, std::string_view sep);
std::string Trim(std::string_view s);
// ASCII lower case (HTTP header names, enum words).
std::string ToLower(std::string_view s);
// Levenshtein distance between two words, ignoring ASCII case, for "did you
// mean" hints. Words over 64 characters are never near anything (99).
size_t EditDistance(std::string_view a, std::string_view b);
bool StartsWith(std::string_view s, std::string_view prefix);
bool EndsWith(std::string_view s, std::string_view suffix);
// Parses a whole decimal integer; nullopt on junk, empty or overflow.
std::optional<int64_t> ParseInt(std::string_view s);
// "1.5s", "200ms", "2m", "3" (seconds) -> milliseconds; nullopt when malformed or negative.
std::optional<int64_t> ParseDurationMs(std::string_view s);
// "16777216", "16MB", "512kB", "1 GB" (PostgreSQL's units, 1024-based: B kB MB GB TB)
// -> bytes; nullopt when malformed, negative or beyond 2^62.
std::optional<uint64_t> ParseBytes(std::string_view s);
// PostgreSQL LSN text "16/B374D848" <-> 64-bit position.
std::optional<uint64_t> ParseLsn(std::string_view s);
std::string FormatLsn(uint64_t lsn);
// Base64 (standard alphabet, padded), as etcd's JSON gateway uses for keys and values.
std::string Base64Encode(std::string_view in);
std::optional<std::string> Base64Decode(std::string_view in);
// A random string of [a-zA-Z0-9] from the OS's CSPRNG (for passwords).
std::string RandomToken(size_t length);
// Node and cluster names: 1-63 chars of [a-z0-9-_.], starting with a letter or digit.
bool IsValidName(std::string_view name);
// An IPv4 or IPv6 address literal ("10.0.0.1", "::1"), not a name.
bool IsIpAddress(const std::string& s);

}  // namespace tandem
