// `tandem cluster log [--node N] [--since T] [--follow] [--json]`: the
// cluster's events from the store, oldest first, through the local agent's
// GET /v1/events (docs/logging.md, "The cluster event log").
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "base/clock.h"

namespace tandem::cli {

struct LogOptions {
  std::string node;   // only this node's events ("" = all)
  std::string since;  // a duration before now (10m) or an RFC 3339 time ("" = all)
  bool follow = false;
  bool json = false;       // one JSON object per line, as the API gives them
  int64_t poll_ms = 1000;  // --follow: how often it asks
};

// Exit codes: 0 shown (--follow: runs until interrupted), 1 the agent could
// not be asked, 2 a bad --since or --node (nothing asked).
int ClusterLog(const Clock& clock, const std::string& config_path, const LogOptions& opts);

// One event of the API's document as `cluster log` prints it (pure).
std::string RenderEventLine(const nlohmann::json& event);

}  // namespace tandem::cli
