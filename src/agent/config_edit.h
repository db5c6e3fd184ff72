// Edits of a node's config file that a command makes for the operator
// (`tandem cluster localnode`): one key of the `node:` section set, the rest
// of the file (comments, order, other sections) kept byte for byte. Pure
// text in, text out; the caller validates the result by loading it.
#pragma once

#include <string>

#include "base/result.h"

namespace tandem::agent {

// The file's text with node.interface set to `interface` and node.address
// removed (the address then comes from the interface), or, with `interface`
// empty, node.address set to `address` and node.interface removed. A missing
// `node:` section is appended. kInvalidArgument when the section is not a
// block mapping this edit can keep intact (`node: {...}` on one line): the
// message says to edit the file by hand.
Result<std::string> SetClusteringEndpoint(const std::string& yaml, const std::string& interface,
                                          const std::string& address);

}  // namespace tandem::agent
