// YAML from files an operator writes (the node config), parsed with limits
// before yaml-cpp builds a tree, so that no document can hang or exhaust the
// loader: a size cap, a nesting-depth cap, and no anchors or aliases at all
// (a config never needs them, and an alias bomb of 1 KB expands to billions
// of nodes when a tree is built). The check walks yaml-cpp's event stream
// (YAML::Parser + EventHandler), which never expands an alias.
//
// Pure functions; any thread.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <string>

#include "base/result.h"

namespace tandem::agent {

struct YamlLimits {
  size_t max_bytes = size_t{1} << 20;  // 1 MiB: a node config is a few KB
  int max_depth = 16;                  // nested mappings/sequences (a config uses 3)
};

// Ok, or kInvalidArgument "<file>: ..." naming the limit, the line and the
// fix: the size (in bytes, against the cap), the depth, an anchor or alias
// ("write the value out"), or the YAML syntax error with its line.
Status CheckYamlLimits(const std::string& text, const std::string& file,
                       const YamlLimits& limits = {});

// Reads a YAML file an operator wrote: a regular file of at most
// limits.max_bytes (checked before reading, so /dev/zero or a huge file
// cannot stall the reader). kInvalidArgument naming the file and the size.
Result<std::string> ReadYamlFile(const std::string& path, const YamlLimits& limits = {});

// CheckYamlLimits, then the tree (YAML::Load). Every failure is a
// kInvalidArgument naming the file and, for syntax errors, the line.
Result<YAML::Node> LoadYamlWithLimits(const std::string& text, const std::string& file,
                                      const YamlLimits& limits = {});

}  // namespace tandem::agent
