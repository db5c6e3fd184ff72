// FakePostgres: an in-memory pg::Controller for the whole-agent tests
// (agent_harness.h). It is a small state machine - stopped, running primary,
// running standby; timeline, WAL position, upstream, clean or crashed stop -
// that the agent drives through the Controller interface and the test drives
// and inspects through the methods below. Every Controller call is recorded
// with the (injected) clock's time, so a test can assert orderings such as
// "Stop(immediate) came before the lease deadline".
//
// Faults on command: a crash (the postmaster dies), a call that fails once, a
// call that blocks until released (a stuck checkpoint, a paused agent), a
// rewind that fails. A blocked call waits on a plain condition variable, not
// on the clock: the harness counts blocked callers (BlockedCallers) when it
// waits for the agents' threads to settle.
//
// Peers: standbys stream from the FakePostgres whose port their upstream
// names (the harness sets the lookup), taking its timeline and position;
// a primary lists its streaming standbys as replication rows.
//
// Thread safety: every method may be called from any thread. Calls into a
// peer are made without this instance's lock held.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "pg/controller.h"

namespace tandem::agenttest {

class FakePostgres final : public pg::Controller {
 public:
  enum class State { kStopped, kPrimary, kStandby };
  struct Call {
    MonoMs at = 0;
    uint64_t seq = 0;    // from the shared sequence (SetSequence): a global order
    std::string method;  // "Stop", "Promote", "Query", ...
    std::string detail;  // "immediate" / "fast", "standby_of=n2", "primary", ...
    std::string ToString() const { return method + (detail.empty() ? "" : "(" + detail + ")"); }
  };
  // Every fake of the cluster (the harness's), this one included: a standby
  // streams from the one whose port its upstream names.
  using Cluster = std::function<std::vector<FakePostgres*>()>;

  FakePostgres(const Clock& clock, pg::Paths paths, pg::Settings settings);

  // ---- the test's controls ----
  void SetCluster(Cluster cluster);
  // Numbers every recorded call from this counter (shared with the stores, so
  // calls and store requests of all nodes fall into one order).
  void SetSequence(std::atomic<uint64_t>* seq);
  // A valid, stopped data directory as a primary would leave it after a clean
  // stop (standby = false) or with standby.signal (standby = true).
  void InitDataDir(uint32_t timeline, uint64_t lsn, bool standby);
  // The postmaster dies: not running, pg_control still "in production".
  void Crash();
  // The primary's WAL position moves (writes happened).
  void AdvanceLsn(uint64_t bytes);
  // Standby: whether its WAL receiver may stream (default true).
  void SetStreamAllowed(bool allowed);
  // The next call of `method` fails with `error` (once).
  void FailNext(const std::string& method, Error error);
  // Calls of `method` ("*" = every method, the const queries too) block from
  // now on until Unblock(method); the call is recorded when it proceeds.
  void Block(const std::string& method);
  void Unblock(const std::string& method);
  void UnblockAll();
  // Threads waiting in a blocked call right now.
  int BlockedCallers() const;
  // Start() fails while set (a PostgreSQL that will not come up).
  void SetStartFails(bool fails);

  // ---- inspection ----
  State state() const;
  bool running() const { return state() != State::kStopped; }
  uint32_t timeline() const;
  uint64_t lsn() const;
  // The upstream as last written by WriteConfig; nullopt when none.
  std::optional<pg::Source> upstream() const;
  std::vector<Call> Calls() const;
  // Index in Calls() of the first call whose ToString() equals `call` at or
  // after `from`; -1 when none.
  int IndexOf(const std::string& call, size_t from = 0) const;
  // The clock time / sequence number of that call; -1 / 0 when none.
  MonoMs TimeOf(const std::string& call, size_t from = 0) const;
  uint64_t SeqOf(const std::string& call, size_t from = 0) const;
  size_t CallCount() const;
  void ClearCalls();

  // ---- pg::Controller ----
  const pg::Paths& paths() const override { return paths_; }
  const pg::Settings& settings() const override;
  void set_settings(pg::Settings s) override;
  pg::DataDirState InspectDataDir() const override;
  Result<pg::ControlData> ReadControlData() const override;
  Status InitDb(const std::string& superuser_password) override;
  Status WriteConfig(const std::optional<pg::Source>& standby_of) override;
  Status WriteStandbyConfigWithoutSource() override;
  Status WriteHba(const std::vector<pg::HbaPeer>& peers) override;
  Status Start(int64_t timeout_ms) override;
  Status Stop(pg::StopMode mode, int64_t timeout_ms) override;
  Status Promote(int64_t timeout_ms) override;
  Status Reload() override;
  Result<std::vector<std::string>> PendingRestart() const override;
  bool IsRunning() const override;
  int Pid() const override;
  Result<pg::LiveStatus> Query() const override;
  Result<std::vector<pg::ReplicaStat>> Replication() const override;
  // The three calls in order (pg::ReadSyncSnapshotByParts): each is recorded.
  Result<pg::SyncSnapshot> ReadSyncSnapshot() const override {
    return pg::ReadSyncSnapshotByParts(*this);
  }
  Result<std::vector<std::string>> Sql(const std::string& sql) const override;
  Status EnsureReplicationUser(const std::string& name, const std::string& password) const override;
  Status SyncSlots(const std::vector<std::string>& wanted) const override;
  Status BaseBackup(const pg::Source& source,
                    const std::function<void(const std::string&)>& on_progress,
                    const pg::BaseBackupOptions& options) override;
  Status Rewind(const pg::Source& source, int64_t timeout_ms) override;

 private:
  // What a peer exposes to a standby streaming from it.
  struct Upstream {
    bool running = false;
    uint32_t timeline = 0;
    uint64_t lsn = 0;
    // Where the server left each earlier timeline (its promotions).
    std::map<uint32_t, uint64_t> history;
  };
  // Waits while `method` is blocked, records the call, and returns the
  // injected failure for it, if any. Takes and releases mu_.
  Status Enter(const std::string& method, const std::string& detail = "") const;
  FakePostgres* Find(const std::string& host, int port) const;  // without mu_ held
  std::optional<Upstream> PeekUpstream() const;                 // without mu_ held
  Upstream Snapshot() const;
  // A standby configured to stream from `host:port` whose WAL fits `up`.
  bool StreamsFrom(const pg::Settings& up_settings, const Upstream& up, pg::ReplicaStat* row) const;
  // Whether a standby at (timeline, lsn) can stream from `up`.
  static bool Compatible(uint32_t timeline, uint64_t lsn, const Upstream& up);
  // A standby streaming from the server on from_port gets its WAL up to `up`
  // (a primary's last records as it shuts down cleanly).
  void Receive(int from_port, const Upstream& up);
  // Standby: catches up with the upstream when streaming. Requires mu_.
  void FollowLocked(const std::optional<Upstream>& up) const;

  const Clock& clock_;
  const pg::Paths paths_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  pg::Settings settings_;
  Cluster cluster_;
  std::atomic<uint64_t>* seq_ = nullptr;
  std::map<uint32_t, uint64_t> history_;  // guarded by mu_
  mutable std::vector<Call> calls_;
  mutable std::map<std::string, Error> fail_next_;
  std::set<std::string> blocked_;
  // The methods callers wait in (a caller counts as blocked while its
  // method is, even before it wakes: Settle must not mistake it for busy).
  mutable std::multiset<std::string> waiting_;
  bool start_fails_ = false;

  pg::DataDirState data_ = pg::DataDirState::kMissing;
  State state_ = State::kStopped;
  bool standby_signal_ = false;
  std::optional<pg::Source> upstream_;  // primary_conninfo as written
  std::string applied_sync_names_;      // what the running server uses (Start/Reload)
  mutable uint32_t timeline_ = 0;
  mutable uint64_t lsn_ = 0;
  mutable bool streaming_ = false;
  bool stream_allowed_ = true;
  std::string cluster_state_ = "shut down";
  uint64_t checkpoint_lsn_ = 0;
  uint64_t system_identifier_ = 7'000'000'000'000'000'001ull;
};

const char* StateName(FakePostgres::State s);

}  // namespace tandem::agenttest
