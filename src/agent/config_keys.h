// The table of the node config file's keys (internal to config.cc and
// config_keys.cc): for each key its path, its type, its default as the
// README's configuration reference writes it, how a value present in the file
// is read and checked (the validator's message names the key and the fix),
// and how a loaded value is written back (for the reference test).
//
// Checks that span several keys (required keys, node.address from
// node.interface, all five TLS files or none, the timing rules, the vip, port
// collisions) are config.cc's, after the table has been walked.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <string>
#include <vector>

#include "agent/config.h"
#include "base/result.h"

namespace tandem::agent::config_internal {

struct Key {
  std::string path;           // "proxy.idle_timeout"; "cluster" for a top-level scalar
  std::string type;           // "string", "port", "port or 0", "duration", "integer", ...
  std::string default_value;  // the README's text ("2s", "\"\""); "" = none (it shows an example)
  // Reads the value present in the file into the config. `file` names the
  // file in messages.
  std::function<Status(const YAML::Node& value, Config& c, const std::string& file)> read;
  // The loaded value, written as the reference writes it.
  std::function<std::string(const Config& c)> show;
};

// Every key, grouped by section in the file's order (cluster, node, api, ui,
// postgresql, dcs, proxy, vip, tls, log).
const std::vector<Key>& Keys();

// kInvalidArgument "<file>: <msg>".
Error Bad(const std::string& file, const std::string& msg);

}  // namespace tandem::agent::config_internal
