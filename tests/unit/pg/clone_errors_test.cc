// The one classifier of pg_basebackup's and pg_rewind's failures.
#include "pg/clone_errors.h"

#include <gtest/gtest.h>

namespace tandem::pg {
namespace {

bool Has(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

TEST(CloneErrorsTest, AnUnreachableSourceIsUnavailableForBothTools) {
  const std::string out =
      "pg_basebackup: error: connection to server at \"10.0.0.1\", port 5432 failed: "
      "Connection refused";
  auto b = ClassifyCloneFailure(CloneTool::kBaseBackup, out, false);
  EXPECT_EQ(b.code, ErrorCode::kUnavailable);
  EXPECT_TRUE(Has(b.fix, "primary is up")) << b.fix;
  auto r = ClassifyCloneFailure(CloneTool::kRewind, "could not connect to server", false);
  EXPECT_EQ(r.code, ErrorCode::kUnavailable);
  EXPECT_TRUE(Has(r.fix, "source is up")) << r.fix;
  EXPECT_EQ(ClassifyCloneFailure(CloneTool::kBaseBackup, "timeout expired", false).code,
            ErrorCode::kUnavailable);
}

TEST(CloneErrorsTest, AuthenticationRefusalsNameTheRightPassword) {
  const std::string out = "FATAL:  password authentication failed for user \"replicator\"";
  auto b = ClassifyCloneFailure(CloneTool::kBaseBackup, out, false);
  EXPECT_EQ(b.code, ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(Has(b.fix, "replication user's password")) << b.fix;
  auto r = ClassifyCloneFailure(CloneTool::kRewind, "no pg_hba.conf entry for host", false);
  EXPECT_EQ(r.code, ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(Has(r.fix, "superuser password")) << r.fix;
}

TEST(CloneErrorsTest, TlsRefusalAdviceDependsOnWhetherThisNodeHasTls) {
  const std::string out = "FATAL:  no pg_hba.conf entry for replication connection, no encryption";
  auto without = ClassifyCloneFailure(CloneTool::kBaseBackup, out, false);
  EXPECT_EQ(without.code, ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(Has(without.fix, "requires TLS")) << without.fix;
  auto with = ClassifyCloneFailure(CloneTool::kBaseBackup, out, true);
  EXPECT_TRUE(Has(with.fix, "tls.client_cert")) << with.fix;
  auto handshake =
      ClassifyCloneFailure(CloneTool::kRewind, "SSL error: certificate verify failed", true);
  EXPECT_EQ(handshake.code, ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(Has(handshake.fix, "source's address")) << handshake.fix;
}

TEST(CloneErrorsTest, AMissingSlotMattersOnlyToABaseBackup) {
  const std::string out = "replication slot \"tandem_b\" does not exist";
  auto b = ClassifyCloneFailure(CloneTool::kBaseBackup, out, false);
  EXPECT_EQ(b.code, ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(Has(b.fix, "SyncSlots")) << b.fix;
  EXPECT_EQ(ClassifyCloneFailure(CloneTool::kRewind, out, false).code, ErrorCode::kIo);
}

TEST(CloneErrorsTest, AnythingElseIsAnIoErrorWithTheToolsOwnAdvice) {
  auto b = ClassifyCloneFailure(CloneTool::kBaseBackup, "No space left on device", false);
  EXPECT_EQ(b.code, ErrorCode::kIo);
  EXPECT_EQ(b.fix, "fix the cause above and retry");
  auto r = ClassifyCloneFailure(CloneTool::kRewind, "could not find common ancestor", false);
  EXPECT_EQ(r.code, ErrorCode::kIo);
  EXPECT_TRUE(Has(r.fix, "re-clone")) << r.fix;
}

}  // namespace
}  // namespace tandem::pg
