// What a node remembers about itself across restarts (in node.state_dir).
//
//   state.json    membership, role history needed for safe rejoin, last command
//   secrets.json  generated database passwords, mode 0600, never logged
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace tandem::agent {

struct LastCommand {
  std::string command;   // "tandem cluster join 10.0.0.1:8008"
  std::string result;    // "Success", "Failed", "Running", "" (none yet)
  std::string error;     // the error message when Failed
  std::string progress;  // the latest progress line while Running
  int64_t at_ms = 0;     // wall clock of the last update
};

struct LocalState {
  bool member = false;  // this node belongs to a cluster
  std::string cluster;  // its name
  // The pre-existing local database moved aside by `join`; put back by `remove`.
  std::string kept_aside_dir;
  // Set when this node's PostgreSQL has run as a primary and has not since
  // been rewound or re-cloned onto another node's timeline.
  bool was_primary = false;
  bool needs_rewind = false;
  bool needs_reclone = false;
  // Joined as a witness (`join --witness`): no PostgreSQL, ever.
  bool witness = false;
  bool error = false;  // an operator command failed; cleared by `clear-error`
  LastCommand last_command;
  // The session lease this node's agent was granted last (0 = none): a
  // restarted agent renews it while the store still has it, so the leader key
  // and the member key on it stay (docs/design/agent-restart.md). Written at
  // every grant.
  int64_t lease_id = 0;
  // The fence guard of the agent that wrote this file (FenceGuard::Identity):
  // the next agent stands it down once its own guard holds a deadline. 0 =
  // none recorded.
  int64_t guard_pid = 0;
  uint64_t guard_start_time = 0;
};

struct Secrets {
  std::string superuser_password;
  std::string replication_password;
};

// A missing file is the default state (a node that never joined); an empty,
// half-written or corrupt one is kInvalidArgument naming the file and the fix.
Result<LocalState> LoadLocalState(const std::string& path);
// When the state file at `path` is missing but some of `leftovers` (what a
// member leaves in its state directory: the data directory, etcd's data,
// secrets.json) exist: the warning naming the cause and the fix (the node
// now waits as a new one). "" otherwise.
std::string MissingStateWarning(const std::string& path, const std::vector<std::string>& leftovers,
                                const std::string& node_name);
Status SaveLocalState(const std::string& path, const LocalState& s);
Result<Secrets> LoadSecrets(const std::string& path);
Status SaveSecrets(const std::string& path, const Secrets& s);  // 0600

}  // namespace tandem::agent
