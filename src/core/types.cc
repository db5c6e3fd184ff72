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
  }
  return "unknown";
}

}  // namespace tandem::core
