// The one classifier of pg_basebackup's and pg_rewind's failures: from the
// tool's output, the error code the agent acts on and the fix an operator
// reads. Pure text, no I/O: unit-tested without a server.
#pragma once

#include <string>

#include "base/result.h"

namespace tandem::pg {

enum class CloneTool { kBaseBackup, kRewind };

struct CloneFailure {
  ErrorCode code = ErrorCode::kIo;
  std::string fix;  // what to do, one sentence, no trailing period
};

// kUnavailable: the source is down or unreachable (retrying later may work).
// kFailedPrecondition: TLS refused or failed, authentication or pg_hba
// refused, the slot is missing (pg_basebackup): a setting must change first.
// kIo otherwise, with the tool's default advice. `tls_enabled` is whether
// this node has a tls section (it changes the advice for a TLS refusal).
CloneFailure ClassifyCloneFailure(CloneTool tool, const std::string& output, bool tls_enabled);

}  // namespace tandem::pg
