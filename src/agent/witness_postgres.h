// The local PostgreSQL behind a witness gate: while this node is a witness
// (`tandem cluster join --witness`, docs/design/witness.md) every call sees no
// PostgreSQL at all, so no code path of the agent can start, stop, reload,
// query or move a database on a witness's machine (a pre-existing one is left
// untouched, whatever postgresql.data_dir says). Otherwise every call goes to
// the real controller unchanged.
//
// Threads: as pg::Controller; the flag is an atomic the agent sets before its
// loop starts (Start, a witness join) and clears when the node leaves.
#pragma once

#include <atomic>
#include <memory>

#include "pg/controller.h"

namespace tandem::agent {

class WitnessGatedPostgres final : public pg::Controller {
 public:
  // `witness` is read on every call; it must outlive this object.
  WitnessGatedPostgres(std::unique_ptr<pg::Controller> real, const std::atomic<bool>& witness)
      : real_(std::move(real)), witness_(witness) {}

  const pg::Paths& paths() const override { return real_->paths(); }
  const pg::Settings& settings() const override { return real_->settings(); }
  void set_settings(pg::Settings s) override { real_->set_settings(std::move(s)); }
  // A witness has no data directory: missing (nothing to keep aside or move).
  pg::DataDirState InspectDataDir() const override;
  Result<pg::ControlData> ReadControlData() const override;
  Status InitDb(const std::string& superuser_password) override;
  Status WriteConfig(const std::optional<pg::Source>& standby_of) override;
  Status WriteStandbyConfigWithoutSource() override;
  Status WriteHba(const std::vector<pg::HbaPeer>& peers) override;
  Status Start(int64_t timeout_ms) override;
  // A witness runs nothing to stop: Ok, and nothing is signalled.
  Status Stop(pg::StopMode mode, int64_t timeout_ms) override;
  Status Promote(int64_t timeout_ms) override;
  // Nothing to reload: Ok.
  Status Reload() override;
  Result<std::vector<std::string>> PendingRestart() const override;
  // Never running, pid 0, on a witness.
  bool IsRunning() const override;
  int Pid() const override;
  Result<pg::LiveStatus> Query() const override;
  Result<std::vector<pg::ReplicaStat>> Replication() const override;
  Result<pg::SyncSnapshot> ReadSyncSnapshot() const override;
  Result<std::vector<std::string>> Sql(const std::string& sql) const override;
  Status EnsureReplicationUser(const std::string& name, const std::string& password) const override;
  Status SyncSlots(const std::vector<std::string>& wanted) const override;
  Status BaseBackup(const pg::Source& source,
                    const std::function<void(const std::string&)>& on_progress,
                    const pg::BaseBackupOptions& options) override;
  Status Rewind(const pg::Source& source, int64_t timeout_ms) override;

 private:
  bool witness() const { return witness_.load(); }
  std::unique_ptr<pg::Controller> real_;
  const std::atomic<bool>& witness_;
};

}  // namespace tandem::agent
