// WitnessGatedPostgres: on a witness, every call sees no PostgreSQL (queries
// kUnavailable, changes kFailedPrecondition, Stop and Reload nothing to do);
// otherwise the real controller. See witness_postgres.h.
#include "agent/witness_postgres.h"

namespace tandem::agent {
namespace {

Error NoPostgres() {
  return Error(ErrorCode::kFailedPrecondition,
               "this node is a witness: it runs no PostgreSQL (docs/design/witness.md)");
}

Error NotRunning() {
  return Error(ErrorCode::kUnavailable, "this node is a witness: no PostgreSQL runs here");
}

}  // namespace

pg::DataDirState WitnessGatedPostgres::InspectDataDir() const {
  return witness() ? pg::DataDirState::kMissing : real_->InspectDataDir();
}
Result<pg::ControlData> WitnessGatedPostgres::ReadControlData() const {
  if (witness()) return NotRunning();
  return real_->ReadControlData();
}
Status WitnessGatedPostgres::InitDb(const std::string& superuser_password) {
  return witness() ? Status(NoPostgres()) : real_->InitDb(superuser_password);
}
Status WitnessGatedPostgres::WriteConfig(const std::optional<pg::Source>& standby_of) {
  return witness() ? Status(NoPostgres()) : real_->WriteConfig(standby_of);
}
Status WitnessGatedPostgres::WriteStandbyConfigWithoutSource() {
  return witness() ? Status(NoPostgres()) : real_->WriteStandbyConfigWithoutSource();
}
Status WitnessGatedPostgres::WriteHba(const std::vector<pg::HbaPeer>& peers) {
  return witness() ? Status(NoPostgres()) : real_->WriteHba(peers);
}
Status WitnessGatedPostgres::Start(int64_t timeout_ms) {
  return witness() ? Status(NoPostgres()) : real_->Start(timeout_ms);
}
Status WitnessGatedPostgres::Stop(pg::StopMode mode, int64_t timeout_ms) {
  return witness() ? Ok() : real_->Stop(mode, timeout_ms);
}
Status WitnessGatedPostgres::Promote(int64_t timeout_ms) {
  return witness() ? Status(NoPostgres()) : real_->Promote(timeout_ms);
}
Status WitnessGatedPostgres::Reload() {
  return witness() ? Ok() : real_->Reload();
}
Result<std::vector<std::string>> WitnessGatedPostgres::PendingRestart() const {
  if (witness()) return std::vector<std::string>{};
  return real_->PendingRestart();
}
bool WitnessGatedPostgres::IsRunning() const {
  return !witness() && real_->IsRunning();
}
int WitnessGatedPostgres::Pid() const {
  return witness() ? 0 : real_->Pid();
}
Result<pg::LiveStatus> WitnessGatedPostgres::Query() const {
  if (witness()) return NotRunning();
  return real_->Query();
}
Result<std::vector<pg::ReplicaStat>> WitnessGatedPostgres::Replication() const {
  if (witness()) return NotRunning();
  return real_->Replication();
}
Result<pg::SyncSnapshot> WitnessGatedPostgres::ReadSyncSnapshot() const {
  if (witness()) return NotRunning();
  return real_->ReadSyncSnapshot();
}
Result<std::vector<std::string>> WitnessGatedPostgres::Sql(const std::string& sql) const {
  if (witness()) return NotRunning();
  return real_->Sql(sql);
}
Status WitnessGatedPostgres::EnsureReplicationUser(const std::string& name,
                                                   const std::string& password) const {
  return witness() ? Status(NoPostgres()) : real_->EnsureReplicationUser(name, password);
}
Status WitnessGatedPostgres::SyncSlots(const std::vector<std::string>& wanted) const {
  return witness() ? Status(NoPostgres()) : real_->SyncSlots(wanted);
}
Status WitnessGatedPostgres::BaseBackup(const pg::Source& source,
                                        const std::function<void(const std::string&)>& on_progress,
                                        const pg::BaseBackupOptions& options) {
  return witness() ? Status(NoPostgres()) : real_->BaseBackup(source, on_progress, options);
}
Status WitnessGatedPostgres::Rewind(const pg::Source& source, int64_t timeout_ms) {
  return witness() ? Status(NoPostgres()) : real_->Rewind(source, timeout_ms);
}

}  // namespace tandem::agent
