// A private key and a certificate signing request, as an appliance's `pki csr` makes:
// the key stays on the node, the request goes to whoever runs the CA (`tandem pki sign`,
// or a company CA).
#pragma once

#include <string>
#include <vector>

#include "base/result.h"

namespace tandem::pki {

struct RequestFiles {
  std::string key;  // <dir>/<name>.key, mode 0600
  std::string csr;  // <dir>/<name>.csr
};

// Generates an EC P-256 key and a request for CN=common_name with the given SANs
// ("DNS:x", "IP:y", see ParseSans). Creates dir (0700) if needed. Refuses to replace an
// existing <name>.key (kFailedPrecondition, with the fix).
Result<RequestFiles> MakeKeyAndRequest(const std::string& dir, const std::string& name,
                                       const std::string& common_name,
                                       const std::vector<std::string>& sans);

}  // namespace tandem::pki
