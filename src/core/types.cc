// The names of the decision core's enums as they appear in logs, status and
// the config (roles, actions, sync modes), and the sync mode's parser. Pure.
#include "core/types.h"

namespace tandem::core {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kPrimary:
      return "primary";
    case Role::kReplica:
      return "replica";
    case Role::kStopped:
      return "stopped";
    case Role::kUnknown:
      return "unknown";
    case Role::kWitness:
      return "witness";
  }
  return "unknown";
}

const char* ActionName(ActionType type) {
  switch (type) {
    case ActionType::kAcquireLeader:
      return "acquire-leader";
    case ActionType::kTakeOverLeader:
      return "take-over-leader";
    case ActionType::kReleaseLeader:
      return "release-leader";
    case ActionType::kPromote:
      return "promote";
    case ActionType::kDemote:
      return "demote";
    case ActionType::kStartPrimary:
      return "start-primary";
    case ActionType::kStartReplica:
      return "start-replica";
    case ActionType::kFollow:
      return "follow";
    case ActionType::kRewind:
      return "rewind";
    case ActionType::kReclone:
      return "reclone";
    case ActionType::kStepDown:
      return "step-down";
  }
  return "unknown";
}

const char* SyncModeName(SyncMode mode) {
  switch (mode) {
    case SyncMode::kOff:
      return "off";
    case SyncMode::kQuorum:
      return "quorum";
    case SyncMode::kStrict:
      return "strict";
  }
  return "off";
}

bool ParseSyncMode(const std::string& text, SyncMode* mode) {
  if (text == "off") {
    *mode = SyncMode::kOff;
  } else if (text == "quorum") {
    *mode = SyncMode::kQuorum;
  } else if (text == "strict") {
    *mode = SyncMode::kStrict;
  } else {
    return false;
  }
  return true;
}

}  // namespace tandem::core
