// Config texts shared by the config tests: the smallest node section that
// loads, and the error a text gets (as a node file at the usual path).
#pragma once

#include <string>

#include "agent/config.h"

namespace tandem::agent::config_testing {

inline constexpr const char* kMinimalNode =
    "node:\n  name: node1\n  address: 10.0.0.1\n  state_dir: /var/lib/tandem\n";

// The refusal of `yaml` as /etc/tandem/tandem.yaml ("" when it loads).
inline std::string ErrorOf(const std::string& yaml) {
  auto r = ParseConfig(yaml, "/etc/tandem/tandem.yaml");
  return r.ok() ? "" : r.error().message();
}

}  // namespace tandem::agent::config_testing
