// What a failed pg_basebackup or pg_rewind means (see clone_errors.h).
#include "pg/clone_errors.h"

namespace tandem::pg {
namespace {

bool Has(const std::string& hay, const char* needle) {
  return hay.find(needle) != std::string::npos;
}

}  // namespace

CloneFailure ClassifyCloneFailure(CloneTool tool, const std::string& out, bool tls_enabled) {
  const bool rewind = tool == CloneTool::kRewind;
  const char* peer = rewind ? "source" : "primary";
  if (Has(out, "no encryption") || Has(out, "requires a valid client certificate")) {
    return {ErrorCode::kFailedPrecondition,
            tls_enabled ? std::string("the ") + peer +
                              " refused this node's TLS client certificate; check "
                              "tls.client_cert (CN postgres, signed by the cluster CA)"
                        : std::string("the ") + peer +
                              " requires TLS: set this node's tls section (all five files; "
                              "`tandem pki issue NODE` makes them)"};
  }
  if (Has(out, "certificate verify failed") || Has(out, "does not match host") ||
      Has(out, "unknown ca") || Has(out, "SSL error")) {
    return {ErrorCode::kFailedPrecondition,
            std::string("the TLS handshake with the ") + peer +
                " failed: both nodes' certificates must be signed by the same CA (tls.ca_cert), "
                "and with tls.verify_hostname the server certificate must name the " +
                peer + "'s address"};
  }
  if (Has(out, "could not connect") || Has(out, "Connection refused") ||
      Has(out, "timeout expired")) {
    return {ErrorCode::kUnavailable,
            rewind ? "check that the source is up and reachable"
                   : "check that the primary is up and reachable on that port (firewall?)"};
  }
  if (Has(out, "password authentication failed") || Has(out, "no pg_hba.conf entry")) {
    return {ErrorCode::kFailedPrecondition,
            rewind ? "check the superuser password and the source's pg_hba.conf (this node must "
                     "be a member)"
                   : "check the replication user's password and the primary's pg_hba.conf (this "
                     "node must be a member)"};
  }
  if (!rewind && Has(out, "replication slot") && Has(out, "does not exist")) {
    return {ErrorCode::kFailedPrecondition,
            "the slot must be created on the primary first (the primary's agent does it with "
            "SyncSlots)"};
  }
  return {ErrorCode::kIo, rewind ? "re-clone this node (pg_basebackup) if the cause cannot be fixed"
                                 : "fix the cause above and retry"};
}

}  // namespace tandem::pg
