// FakePostgres: the state machine behind the fake controller (see the header).
#include "unit/agent/fake_postgres.h"

#include <algorithm>

namespace tandem::agenttest {
namespace {

const char* ModeName(pg::StopMode m) {
  return m == pg::StopMode::kImmediate ? "immediate" : "fast";
}

// The size of a shutdown checkpoint record (what a clean stop adds to the WAL).
constexpr uint64_t kCheckpointRecordBytes = 0x78;

Error NotRunning() {
  return Error(ErrorCode::kUnavailable, "fake PostgreSQL is not running");
}

}  // namespace

const char* StateName(FakePostgres::State s) {
  switch (s) {
    case FakePostgres::State::kStopped:
      return "stopped";
    case FakePostgres::State::kPrimary:
      return "primary";
    case FakePostgres::State::kStandby:
      return "standby";
  }
  return "?";
}

FakePostgres::FakePostgres(const Clock& clock, pg::Paths paths, pg::Settings settings)
    : clock_(clock), paths_(std::move(paths)), settings_(std::move(settings)) {}

// ---------------------------------------------------------------- controls

void FakePostgres::SetCluster(Cluster cluster) {
  std::lock_guard<std::mutex> g(mu_);
  cluster_ = std::move(cluster);
}

void FakePostgres::SetSequence(std::atomic<uint64_t>* seq) {
  std::lock_guard<std::mutex> g(mu_);
  seq_ = seq;
}

void FakePostgres::InitDataDir(uint32_t timeline, uint64_t lsn, bool standby) {
  std::lock_guard<std::mutex> g(mu_);
  data_ = pg::DataDirState::kValid;
  state_ = State::kStopped;
  timeline_ = timeline;
  lsn_ = lsn;
  checkpoint_lsn_ = lsn;
  standby_signal_ = standby;
  cluster_state_ = standby ? "shut down in recovery" : "shut down";
}

void FakePostgres::Crash() {
  std::lock_guard<std::mutex> g(mu_);
  state_ = State::kStopped;
  streaming_ = false;
}

void FakePostgres::AdvanceLsn(uint64_t bytes) {
  std::lock_guard<std::mutex> g(mu_);
  if (state_ == State::kPrimary) lsn_ += bytes;
}

void FakePostgres::SetStreamAllowed(bool allowed) {
  std::lock_guard<std::mutex> g(mu_);
  stream_allowed_ = allowed;
}

void FakePostgres::FailNext(const std::string& method, Error error) {
  std::lock_guard<std::mutex> g(mu_);
  fail_next_.insert_or_assign(method, std::move(error));
}

void FakePostgres::Block(const std::string& method) {
  std::lock_guard<std::mutex> g(mu_);
  blocked_.insert(method);
}

void FakePostgres::Unblock(const std::string& method) {
  {
    std::lock_guard<std::mutex> g(mu_);
    blocked_.erase(method);
  }
  cv_.notify_all();
}

void FakePostgres::UnblockAll() {
  {
    std::lock_guard<std::mutex> g(mu_);
    blocked_.clear();
  }
  cv_.notify_all();
}

int FakePostgres::BlockedCallers() const {
  std::lock_guard<std::mutex> g(mu_);
  if (blocked_.count("*") != 0) return static_cast<int>(waiting_.size());
  int n = 0;
  for (const auto& m : waiting_) n += blocked_.count(m) != 0 ? 1 : 0;
  return n;
}

void FakePostgres::SetStartFails(bool fails) {
  std::lock_guard<std::mutex> g(mu_);
  start_fails_ = fails;
}

FakePostgres::State FakePostgres::state() const {
  std::lock_guard<std::mutex> g(mu_);
  return state_;
}

uint32_t FakePostgres::timeline() const {
  std::lock_guard<std::mutex> g(mu_);
  return timeline_;
}

uint64_t FakePostgres::lsn() const {
  std::lock_guard<std::mutex> g(mu_);
  return lsn_;
}

std::optional<pg::Source> FakePostgres::upstream() const {
  std::lock_guard<std::mutex> g(mu_);
  return upstream_;
}

std::vector<FakePostgres::Call> FakePostgres::Calls() const {
  std::lock_guard<std::mutex> g(mu_);
  return calls_;
}

void FakePostgres::ClearCalls() {
  std::lock_guard<std::mutex> g(mu_);
  calls_.clear();
}

size_t FakePostgres::CallCount() const {
  std::lock_guard<std::mutex> g(mu_);
  return calls_.size();
}

int FakePostgres::IndexOf(const std::string& call, size_t from) const {
  std::lock_guard<std::mutex> g(mu_);
  for (size_t i = from; i < calls_.size(); ++i) {
    if (calls_[i].ToString() == call) return static_cast<int>(i);
  }
  return -1;
}

MonoMs FakePostgres::TimeOf(const std::string& call, size_t from) const {
  const int i = IndexOf(call, from);
  if (i < 0) return -1;
  std::lock_guard<std::mutex> g(mu_);
  return calls_[i].at;
}

uint64_t FakePostgres::SeqOf(const std::string& call, size_t from) const {
  const int i = IndexOf(call, from);
  if (i < 0) return 0;
  std::lock_guard<std::mutex> g(mu_);
  return calls_[i].seq;
}

// ---------------------------------------------------------------- helpers

Status FakePostgres::Enter(const std::string& method, const std::string& detail) const {
  std::unique_lock<std::mutex> lk(mu_);
  auto is_blocked = [&] { return blocked_.count(method) != 0 || blocked_.count("*") != 0; };
  if (is_blocked()) {
    auto me = waiting_.insert(method);
    cv_.wait(lk, [&] { return !is_blocked(); });
    waiting_.erase(me);
  }
  calls_.push_back(Call{clock_.Now(), seq_ ? ++*seq_ : 0, method, detail});
  auto it = fail_next_.find(method);
  if (it == fail_next_.end()) return Ok();
  Error e = it->second;
  fail_next_.erase(it);
  return e;
}

FakePostgres* FakePostgres::Find(const std::string& host, int port) const {
  Cluster cluster;
  {
    std::lock_guard<std::mutex> g(mu_);
    cluster = cluster_;
  }
  if (!cluster) return nullptr;
  for (FakePostgres* p : cluster()) {
    if (p != this && p->paths_.data_dir != paths_.data_dir && p->settings().port == port) {
      (void)host;  // the harness gives every node its own port
      return p;
    }
  }
  return nullptr;
}

FakePostgres::Upstream FakePostgres::Snapshot() const {
  std::lock_guard<std::mutex> g(mu_);
  return Upstream{state_ != State::kStopped, timeline_, lsn_, history_};
}

std::optional<FakePostgres::Upstream> FakePostgres::PeekUpstream() const {
  std::optional<pg::Source> src;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (state_ != State::kStandby || !upstream_) return std::nullopt;
    src = upstream_;
  }
  FakePostgres* peer = Find(src->host, src->port);
  if (!peer) return std::nullopt;
  return peer->Snapshot();
}

bool FakePostgres::Compatible(uint32_t timeline, uint64_t lsn, const Upstream& up) {
  if (!up.running || up.timeline < timeline) return false;
  if (up.timeline == timeline) return true;
  // A newer timeline: ours must end at or before where the upstream left it.
  auto it = up.history.find(timeline);
  return it != up.history.end() && lsn <= it->second;
}

void FakePostgres::FollowLocked(const std::optional<Upstream>& up) const {
  streaming_ =
      state_ == State::kStandby && stream_allowed_ && up && Compatible(timeline_, lsn_, *up);
  if (!streaming_) return;
  timeline_ = up->timeline;
  lsn_ = std::max(lsn_, up->lsn);
}

bool FakePostgres::StreamsFrom(const pg::Settings& up_settings, const Upstream& up,
                               pg::ReplicaStat* row) const {
  std::lock_guard<std::mutex> g(mu_);
  if (state_ != State::kStandby || !stream_allowed_ || !upstream_ ||
      upstream_->port != up_settings.port || !Compatible(timeline_, lsn_, up)) {
    return false;
  }
  row->application_name = upstream_->application_name;
  row->state = "streaming";
  row->flush_lsn = std::max(lsn_, up.lsn);
  row->replay_lsn = row->flush_lsn;
  return true;
}

// ---------------------------------------------------------------- Controller

const pg::Settings& FakePostgres::settings() const {
  std::lock_guard<std::mutex> g(mu_);
  return settings_;  // the agent changes it from one thread only (set_settings)
}

void FakePostgres::set_settings(pg::Settings s) {
  std::lock_guard<std::mutex> g(mu_);
  settings_ = std::move(s);
}

pg::DataDirState FakePostgres::InspectDataDir() const {
  std::lock_guard<std::mutex> g(mu_);
  return data_;
}

Result<pg::ControlData> FakePostgres::ReadControlData() const {
  TANDEM_TRY(Enter("ReadControlData"));
  std::lock_guard<std::mutex> g(mu_);
  if (data_ != pg::DataDirState::kValid) {
    return Error(ErrorCode::kNotFound, "no pg_control in the fake data directory");
  }
  pg::ControlData cd;
  cd.system_identifier = system_identifier_;
  cd.timeline = timeline_;
  cd.cluster_state = cluster_state_;
  cd.checkpoint_lsn = checkpoint_lsn_;
  return cd;
}

Status FakePostgres::InitDb(const std::string&) {
  TANDEM_TRY(Enter("InitDb"));
  std::lock_guard<std::mutex> g(mu_);
  if (data_ == pg::DataDirState::kValid || data_ == pg::DataDirState::kNotPostgres) {
    return Error(ErrorCode::kFailedPrecondition, "data directory not empty");
  }
  data_ = pg::DataDirState::kValid;
  timeline_ = 1;
  lsn_ = checkpoint_lsn_ = 0x1000000;
  cluster_state_ = "shut down";
  return Ok();
}

Status FakePostgres::WriteConfig(const std::optional<pg::Source>& standby_of) {
  TANDEM_TRY(Enter("WriteConfig",
                   standby_of ? "standby_of=" + std::to_string(standby_of->port) : "primary"));
  std::lock_guard<std::mutex> g(mu_);
  upstream_ = standby_of;
  standby_signal_ = standby_of.has_value();
  return Ok();
}

Status FakePostgres::WriteStandbyConfigWithoutSource() {
  TANDEM_TRY(Enter("WriteStandbyConfigWithoutSource"));
  std::lock_guard<std::mutex> g(mu_);
  upstream_.reset();
  standby_signal_ = true;
  return Ok();
}

Status FakePostgres::WriteHba(const std::vector<pg::HbaPeer>&) {
  return Enter("WriteHba");
}

Status FakePostgres::Start(int64_t) {
  TANDEM_TRY(Enter("Start"));
  std::lock_guard<std::mutex> g(mu_);
  if (state_ != State::kStopped) return Ok();
  if (data_ != pg::DataDirState::kValid) return Error(ErrorCode::kIo, "no data directory");
  if (start_fails_) return Error(ErrorCode::kIo, "fake PostgreSQL failed to start");
  state_ = standby_signal_ ? State::kStandby : State::kPrimary;
  cluster_state_ = standby_signal_ ? "in archive recovery" : "in production";
  applied_sync_names_ = settings_.synchronous_standby_names;
  return Ok();
}

Status FakePostgres::Stop(pg::StopMode mode, int64_t) {
  TANDEM_TRY(Enter("Stop", ModeName(mode)));
  Upstream after;
  bool sent_checkpoint = false;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (state_ == State::kStopped) return Ok();
    if (mode == pg::StopMode::kFast) {
      // The shutdown checkpoint: a record of its own; the walsenders send
      // everything up to its end before they exit.
      checkpoint_lsn_ = lsn_;
      if (state_ == State::kPrimary) {
        lsn_ += kCheckpointRecordBytes;
        sent_checkpoint = true;
      }
      cluster_state_ = state_ == State::kPrimary ? "shut down" : "shut down in recovery";
    }
    state_ = State::kStopped;
    streaming_ = false;
    after = Upstream{true, timeline_, lsn_, history_};
  }
  if (sent_checkpoint) {
    Cluster cluster;
    int port = 0;
    {
      std::lock_guard<std::mutex> g(mu_);
      cluster = cluster_;
      port = settings_.port;
    }
    if (cluster) {
      for (FakePostgres* p : cluster()) {
        if (p != this) p->Receive(port, after);
      }
    }
  }
  return Ok();
}

void FakePostgres::Receive(int from_port, const Upstream& up) {
  std::lock_guard<std::mutex> g(mu_);
  if (state_ != State::kStandby || !stream_allowed_ || !upstream_ || upstream_->port != from_port ||
      !Compatible(timeline_, lsn_, up)) {
    return;
  }
  timeline_ = up.timeline;
  lsn_ = std::max(lsn_, up.lsn);
}

Status FakePostgres::Promote(int64_t) {
  TANDEM_TRY(Enter("Promote"));
  std::lock_guard<std::mutex> g(mu_);
  if (state_ != State::kStandby) {
    return Error(ErrorCode::kFailedPrecondition, "fake PostgreSQL is not a running standby");
  }
  history_[timeline_] = lsn_;
  ++timeline_;
  state_ = State::kPrimary;
  standby_signal_ = false;
  streaming_ = false;
  cluster_state_ = "in production";
  checkpoint_lsn_ = lsn_;
  return Ok();
}

Status FakePostgres::Reload() {
  TANDEM_TRY(Enter("Reload"));
  std::lock_guard<std::mutex> g(mu_);
  if (state_ == State::kStopped) return NotRunning();
  applied_sync_names_ = settings_.synchronous_standby_names;
  return Ok();
}

Result<std::vector<std::string>> FakePostgres::PendingRestart() const {
  TANDEM_TRY(Enter("PendingRestart"));
  return std::vector<std::string>{};
}

bool FakePostgres::IsRunning() const {
  std::lock_guard<std::mutex> g(mu_);
  return state_ != State::kStopped;
}

int FakePostgres::Pid() const {
  // No process to watch: the agent's fence thread then never signals or
  // polls one (agent_deps.h); a crash is seen by the loop's next look.
  return 0;
}

Result<pg::LiveStatus> FakePostgres::Query() const {
  TANDEM_TRY(Enter("Query"));
  const auto up = PeekUpstream();
  std::lock_guard<std::mutex> g(mu_);
  if (state_ == State::kStopped) return NotRunning();
  FollowLocked(up);
  pg::LiveStatus s;
  s.in_recovery = state_ == State::kStandby;
  s.timeline = timeline_;
  s.lsn = lsn_;
  s.replay_lsn = lsn_;
  s.streaming = streaming_;
  if (streaming_ && upstream_) {
    s.sender_host = upstream_->host;
    s.sender_port = upstream_->port;
  }
  return s;
}

Result<std::vector<pg::ReplicaStat>> FakePostgres::Replication() const {
  TANDEM_TRY(Enter("Replication"));
  const Upstream me = Snapshot();
  if (!me.running) return NotRunning();
  Cluster cluster;
  pg::Settings mine;
  std::string sync_names;
  {
    std::lock_guard<std::mutex> g(mu_);
    cluster = cluster_;
    mine = settings_;
    sync_names = applied_sync_names_;
  }
  std::vector<pg::ReplicaStat> rows;
  if (!cluster) return rows;
  for (FakePostgres* p : cluster()) {
    if (p == this) continue;
    pg::ReplicaStat row;
    if (!p->StreamsFrom(mine, me, &row)) continue;
    const bool named = sync_names.find(row.application_name) != std::string::npos ||
                       sync_names.find('*') != std::string::npos;
    row.sync_state = named ? "quorum" : "async";
    rows.push_back(row);
  }
  return rows;
}

Result<std::vector<std::string>> FakePostgres::Sql(const std::string& sql) const {
  TANDEM_TRY(Enter("Sql", sql.rfind("ALTER ROLE", 0) == 0 ? "ALTER ROLE" : sql));
  std::lock_guard<std::mutex> g(mu_);
  if (state_ == State::kStopped) return NotRunning();
  if (sql == "SHOW synchronous_standby_names") return std::vector<std::string>{applied_sync_names_};
  return std::vector<std::string>{};
}

Status FakePostgres::EnsureReplicationUser(const std::string&, const std::string&) const {
  TANDEM_TRY(Enter("EnsureReplicationUser"));
  return IsRunning() ? Ok() : Status(NotRunning());
}

Status FakePostgres::SyncSlots(const std::vector<std::string>&) const {
  TANDEM_TRY(Enter("SyncSlots"));
  return IsRunning() ? Ok() : Status(NotRunning());
}

Status FakePostgres::BaseBackup(const pg::Source& source,
                                const std::function<void(const std::string&)>& on_progress,
                                const pg::BaseBackupOptions&) {
  TANDEM_TRY(Enter("BaseBackup", std::to_string(source.port)));
  FakePostgres* peer = Find(source.host, source.port);
  if (!peer) return Error(ErrorCode::kUnavailable, "no fake PostgreSQL at the source");
  const Upstream up = peer->Snapshot();
  if (!up.running) return Error(ErrorCode::kUnavailable, "the source is not running");
  if (on_progress) on_progress("fake base backup done");
  std::lock_guard<std::mutex> g(mu_);
  data_ = pg::DataDirState::kValid;
  timeline_ = up.timeline;
  lsn_ = checkpoint_lsn_ = up.lsn;
  history_ = up.history;
  standby_signal_ = true;
  cluster_state_ = "in archive recovery";
  return Ok();
}

Status FakePostgres::Rewind(const pg::Source& source, int64_t) {
  TANDEM_TRY(Enter("Rewind", std::to_string(source.port)));
  if (IsRunning()) return Error(ErrorCode::kFailedPrecondition, "pg_rewind needs a stopped server");
  FakePostgres* peer = Find(source.host, source.port);
  if (!peer) return Error(ErrorCode::kUnavailable, "no fake PostgreSQL at the source");
  const Upstream up = peer->Snapshot();
  if (!up.running) return Error(ErrorCode::kUnavailable, "the source is not running");
  std::lock_guard<std::mutex> g(mu_);
  // Our WAL is cut back to the fork point and replaced by the source's history.
  timeline_ = up.timeline;
  lsn_ = checkpoint_lsn_ = up.lsn;
  history_ = up.history;
  cluster_state_ = "in archive recovery";
  return Ok();
}

}  // namespace tandem::agenttest
