// What goes into a certificate's names: file-safe names, Common Names, and
// subjectAltName entries ("DNS:x" / "IP:y"), checked before OpenSSL sees them.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "base/strings.h"

namespace tandem::pki {

// An IPv4 or IPv6 address in text form (base/strings.h).
using ::tandem::IsIpAddress;
// A DNS name (labels of a-z 0-9 -, dots between; a leading "*." wildcard allowed).
bool IsDnsName(const std::string& s);

// A NAME used for files (NAME.key, NAME.csr): a-z A-Z 0-9 . _ -, not starting with a dot.
Status CheckFileName(const std::string& what, const std::string& name);
// A Common Name: 1-64 printable characters.
Status CheckCommonName(const std::string& cn);

// Normalises SAN specs for a certificate: "DNS:x" and "IP:y" (prefixes case-insensitive);
// anything else is refused with the form to use. Duplicates are dropped, order kept.
Result<std::vector<std::string>> ParseSans(const std::vector<std::string>& specs);

}  // namespace tandem::pki
