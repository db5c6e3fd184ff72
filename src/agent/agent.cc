#include "agent/agent.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "agent/http_client.h"
#include "agent/tls_files.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/process.h"
#include "base/strings.h"
#include "core/decide.h"
#include "core/route.h"
#include "core/sync.h"
#include "core/vip.h"
#include "dcs/etcd_dcs.h"
#include "pg/postgres.h"

namespace tandem::agent {
namespace {

constexpr const char* kReplicationUser = "replicator";
// Cycles a replica may fail to stream from a leader on a newer timeline before
// it is rewound (pg_rewind is a no-op when nothing diverged).
constexpr int kStalledCyclesBeforeRewind = 10;
// A fencing deadline that has always passed.
constexpr MonoMs kFenceNow = 1;

bool HasAction(const core::Decision& d, core::ActionType type) {
  for (const auto& a : d.actions) {
    if (a.type == type) return true;
  }
  return false;
}

std::string ServiceUser(const Config& cfg) {
  return ::geteuid() == 0 ? cfg.run_as_user : "";
}

pg::Paths MakePaths(const Config& cfg) {
  pg::Paths p;
  p.bin_dir = cfg.pg_bin_dir;
  if (p.bin_dir.empty()) {
    auto found = pg::FindBinDir();
    if (found) p.bin_dir = *found;
  }
  p.data_dir = cfg.pg_data_dir;
  p.socket_dir = cfg.socket_dir();
  p.log_file = cfg.log_dir() + "/postgresql.log";
  p.run_as_user = ServiceUser(cfg);
  return p;
}

pg::Settings MakeSettings(const Config& cfg) {
  pg::Settings s;
  s.listen_address = cfg.node_address;
  s.port = cfg.pg_port;
  s.extra = cfg.pg_parameters;
  s.replication_user = kReplicationUser;
  if (cfg.tls_enabled()) {
    const auto copies = TlsCopies(cfg);
    s.tls.mode =
        cfg.tls_mode == TlsMode::kEnforce ? pg::TlsMode::kEnforce : pg::TlsMode::kPermissive;
    s.tls.verify_hostname = cfg.tls_verify_hostname;
    s.tls.server_cert = copies.server_cert;
    s.tls.server_key = copies.server_key;
    s.tls.ca_cert = copies.ca_cert;
    s.tls.client_cert = copies.client_cert;
    s.tls.client_key = copies.client_key;
  }
  return s;
}

}  // namespace

Agent::Agent(Config cfg, AgentDeps deps)
    : cfg_(std::move(cfg)),
      clock_(*deps.clock),
      keys_(cfg_.cluster),
      pg_(deps.pg ? std::move(deps.pg)
                  : std::make_unique<pg::Postgres>(MakePaths(cfg_), MakeSettings(cfg_))),
      etcd_(cfg_),
      connect_store_(std::move(deps.connect_store)),
      http_(std::move(deps.http)) {
  if (cfg_.vip.enabled()) vip_ = std::make_unique<FloatingIp>(cfg_.vip, clock_);
  tls_cfg_ = cfg_;
}

Agent::~Agent() {
  stopping_ = true;
  if (op_thread_.joinable()) op_thread_.join();
  StopLoop();
  StopFence();
  StopPeerCerts();
}

void Agent::StopFence() {
  fence_wake_.Notify();
  if (fence_thread_.joinable()) fence_thread_.join();
}

Result<HttpResponse> Agent::Http(const std::string& method, const std::string& url,
                                 const std::string& body, int64_t timeout_ms) {
  if (http_) return http_(method, url, body, timeout_ms);
  return HttpCall(method, url, body, timeout_ms);
}

Config Agent::TlsConfig() const {
  std::lock_guard<std::mutex> lock(tls_mu_);
  return tls_cfg_;
}

void Agent::StopPeerCerts() {
  {
    std::lock_guard<std::mutex> lock(tls_mu_);
    peer_wake_ = true;
  }
  peer_cv_.notify_all();
  if (peer_cert_thread_.joinable()) peer_cert_thread_.join();
}

std::shared_ptr<dcs::Dcs> Agent::Store() {
  std::lock_guard<std::mutex> lock(mu_);
  return store_;
}

Status Agent::ConnectStore(const std::vector<std::string>& endpoints) {
  if (connect_store_) {
    auto connected = connect_store_(endpoints);
    if (!connected) return connected.error();
    std::lock_guard<std::mutex> lock(mu_);
    store_ = std::move(*connected);
    store_endpoints_ = endpoints;
    return Ok();
  }
  dcs::EtcdOptions opts;
  opts.endpoints = endpoints;
  // Short enough that a cycle against an unreachable store still decides well
  // before the lease deadline; the watchdog covers the rest.
  opts.request_timeout_ms = std::clamp<int64_t>(cfg_.ha.safety_margin_ms / 4, 250, 1000);
  opts.connect_timeout_ms = 500;
  // The node's client pair (etcd takes any the CA signed), from the private
  // copies, so connections opened after a rotation present the new one.
  opts.tls = AgentClientTls(cfg_);
  auto store = std::make_shared<dcs::EtcdDcs>(opts);
  std::lock_guard<std::mutex> lock(mu_);
  store_ = std::move(store);
  store_endpoints_ = endpoints;
  return Ok();
}

Result<ClusterView> Agent::ReadView() {
  auto store = Store();
  if (!store) return Error(ErrorCode::kFailedPrecondition, "this node is not in a cluster");
  auto range = store->GetPrefix(keys_.prefix);
  if (!range) return range.error();
  return ParseClusterView(keys_, *range);
}

NodeInfo Agent::SelfInfo() const {
  NodeInfo n;
  n.name = cfg_.node_name;
  n.host = cfg_.node_address;
  n.pg_port = cfg_.pg_port;
  n.api_url = cfg_.api_url();
  n.proxy_rw_port = cfg_.proxy_rw_port;
  n.proxy_ro_port = cfg_.proxy_ro_port;
  if (cfg_.embedded_etcd()) {
    n.etcd_peer_url = cfg_.etcd_peer_url();
    n.etcd_client_url = cfg_.etcd_client_url();
  }
  return n;
}

std::vector<std::string> Agent::EtcdEndpointsFor(const ClusterView& view) const {
  if (!cfg_.embedded_etcd()) return cfg_.dcs_endpoints;
  std::vector<std::string> eps = {cfg_.etcd_client_url()};
  for (const auto& [name, n] : view.nodes) {
    if (name != cfg_.node_name && !n.etcd_client_url.empty()) eps.push_back(n.etcd_client_url);
  }
  return eps;
}

Status Agent::SaveState() {
  return SaveLocalState(cfg_.state_path(), state_);
}

void Agent::SetLastCommand(const std::string& command, const std::string& result,
                           const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  state_.last_command.command = command;
  state_.last_command.result = result;
  state_.last_command.error = error;
  state_.last_command.progress.clear();
  state_.last_command.at_ms = clock_.WallNow();
  if (result == "Failed") state_.error = true;
  auto st = SaveState();
  if (!st.ok()) TLOG(Warn, "agent") << "cannot save local state: " << st.error().message();
  if (result == "Failed") {
    TLOG(Error, "agent") << "command '" << command << "' failed: " << error;
  } else {
    TLOG(Info, "agent") << "command '" << command << "': " << result;
  }
}

void Agent::SetProgress(const std::string& line) {
  std::lock_guard<std::mutex> lock(mu_);
  state_.last_command.progress = line;
}

Status Agent::Start() {
  if (vip_) {
    // No node is the primary before its loop says so: an address left behind
    // by a crash goes now (the loop adds it back within a cycle if this node
    // still leads).
    auto present = HasVip(cfg_.vip);
    if (present.ok() && *present) {
      TLOG(Warn, "vip") << "the floating IP " << cfg_.vip.cidr() << " is on " << cfg_.vip.interface
                        << " at start-up (left by a crash?): removing it until this node is "
                           "the primary";
    }
    (void)vip_->Release("start-up", /*force=*/true);
  }
  fence_thread_ = std::thread([this] { FenceMain(); });
  if (cfg_.tls_enabled()) peer_cert_thread_ = std::thread([this] { PeerCertMain(); });
  auto st = StartMember();
  if (!st.ok() && state_.member && pg_->IsRunning()) {
    // Without a working agent nothing enforces the lease: PostgreSQL must not
    // run on (possibly as a primary) behind our back.
    TLOG(Error, "agent") << "cannot start as a member; stopping PostgreSQL so it cannot serve "
                            "writes without a lease";
    (void)pg_->Stop(pg::StopMode::kImmediate);
  }
  return st;
}

void Agent::FenceMain() {
  while (!stopping_) {
    const MonoMs deadline = fence_deadline_.load();
    guard_.Update(deadline);
    if (deadline != 0 && clock_.Now() >= deadline) {
      fence_deadline_ = 0;
      TLOG(Error, "ha") << "lease deadline passed while primary and the HA loop did not demote "
                           "in time: stopping PostgreSQL immediately (fencing)";
      {
        std::lock_guard<std::mutex> lock(mu_);
        state_.needs_rewind = true;
        (void)SaveState();
      }
      auto st = pg_->Stop(pg::StopMode::kImmediate);
      if (!st.ok()) TLOG(Error, "ha") << "fencing stop failed: " << st.error().message();
      // After PostgreSQL, never before: removing the address may wait for
      // the loop's netlink call, and nothing may delay the fence.
      if (vip_) (void)vip_->Release("fencing", /*force=*/true);
    }
    // The floating IP never outlives the lease, whatever the loop is doing.
    if (vip_ && vip_->held() && !VipAllowed()) {
      (void)vip_->Release("the lease deadline passed (fencing)");
    }
    // A primary's postmaster died: the loop restarts it (or hands over) now,
    // not at its next tick.
    if (const int pid = pg_pid_to_watch_.load(); pid != 0 && !IsAlive(pid)) {
      pg_pid_to_watch_ = 0;
      TLOG(Warn, "ha") << "PostgreSQL (pid " << pid << ") died";
      WakeLoop();
    }
    fence_wake_.WaitFor(20);
  }
}

Status Agent::StartMember() {
  TANDEM_TRY(MakeDirs(cfg_.state_dir, 0755));
  if (cfg_.tls_enabled()) {
    // The caller checked the files (ValidateTlsFiles); PostgreSQL and libpq
    // read these copies, whose owner and mode they accept.
    auto copied = InstallTlsCopies(cfg_, ServiceUser(cfg_));
    if (!copied) return copied.error();
    TLOG(Info, "agent") << "TLS (" << TlsModeName(cfg_.tls_mode) << "): certificates copied to "
                        << TlsCopies(cfg_).dir;
  }
  TANDEM_TRY(MakeDirs(cfg_.log_dir(), 0755));
  TANDEM_TRY(ChownRecursive(cfg_.log_dir(), ServiceUser(cfg_)));
  TANDEM_TRY(MakeDirs(cfg_.socket_dir(), 0700));
  TANDEM_TRY(Chown(cfg_.socket_dir(), ServiceUser(cfg_)));
  auto st = LoadLocalState(cfg_.state_path());
  if (!st) return st.error();
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = *st;
    // A command cannot still be running after a restart.
    if (state_.last_command.result == "Running") {
      state_.last_command.result = "Failed";
      state_.last_command.error = "the agent stopped while the command ran; run it again";
      state_.error = true;
    }
  }
  if (PathExists(cfg_.secrets_path())) {
    auto s = LoadSecrets(cfg_.secrets_path());
    if (!s) return s.error();
    secrets_ = *s;
  }
  if (!state_.member) {
    TLOG(Info, "agent") << "not a cluster member yet; waiting for `tandem cluster initialize` or "
                           "`tandem cluster join`";
    return Ok();
  }
  if (state_.cluster != cfg_.cluster) {
    return Error(ErrorCode::kInvalidArgument, "this node belongs to cluster '" + state_.cluster +
                                                  "' but " + cfg_.path + " says cluster '" +
                                                  cfg_.cluster + "'; fix the config file");
  }
  if (!secrets_) {
    return Error(ErrorCode::kFailedPrecondition,
                 cfg_.secrets_path() + " is missing; remove the node and join it again");
  }
  if (cfg_.embedded_etcd()) {
    auto r = etcd_.Resume();
    if (!r.ok()) return r.error();
    auto reach = etcd_.WaitReachable(30'000);
    if (!reach.ok()) TLOG(Warn, "agent") << reach.error().message();
  }
  TANDEM_TRY(ConnectStore(cfg_.embedded_etcd() ? std::vector<std::string>{cfg_.etcd_client_url()}
                                               : cfg_.dcs_endpoints));
  StartLoop();
  return Ok();
}

void Agent::Shutdown() {
  stopping_ = true;
  if (op_thread_.joinable()) op_thread_.join();
  StopLoop();
  StopFence();
  // The peer-certificate thread is joined by the destructor: a check of an
  // unreachable peer must not delay the hand-over below.
  std::unique_lock<std::mutex> op_lock(op_mu_);
  if (!state_.member) return;
  auto store = Store();
  bool held = false;
  if (store) {
    auto leader = store->Get(keys_.leader());
    held = leader.ok() && leader->has_value() && (*leader)->value == cfg_.node_name;
  }
  // The floating IP goes before PostgreSQL (the loop's end released it too).
  if (vip_) (void)vip_->Release("shutting down");
  if (pg_->IsRunning()) {
    auto s = pg_->Stop(pg::StopMode::kFast);
    if (!s.ok()) TLOG(Warn, "agent") << "stopping PostgreSQL: " << s.error().message();
  }
  if (store && held) {
    // PostgreSQL is down: no write can happen any more, let a replica take over now.
    auto leader = store->Get(keys_.leader());
    if (leader.ok() && leader->has_value() && (*leader)->value == cfg_.node_name) {
      (void)store->Txn({dcs::Compare::ModRevisionIs(keys_.leader(), (*leader)->mod_revision)},
                       {dcs::Op::Delete(keys_.leader())});
      TLOG(Info, "agent") << "released the leader key on shutdown";
    }
  }
  if (store && lease_ != 0) (void)store->Revoke(lease_);
  etcd_.Stop();
  guard_.Disarm();  // PostgreSQL was stopped above: nothing left to fence
}

// ---------------------------------------------------------------- HA loop

void Agent::StartLoop() {
  if (loop_running_.exchange(true)) return;
  // The loop may have ended by itself (this node was removed): reap its threads.
  for (std::thread* t : {&loop_thread_, &lease_thread_, &watch_thread_}) {
    if (t->joinable()) t->join();
  }
  lease_thread_ = std::thread([this] { LeaseMain(); });
  watch_thread_ = std::thread([this] { WatchMain(keys_.leader()); });
  loop_thread_ = std::thread([this] { LoopMain(); });
}

void Agent::StopLoop() {
  loop_running_ = false;
  WakeLoop();
  lease_wake_.Notify();
  { std::lock_guard<std::mutex> lock(watch_mu_); }
  watch_cv_.notify_all();
  watch_retry_.Notify();
  for (std::thread* t : {&loop_thread_, &lease_thread_, &watch_thread_}) {
    if (t->joinable() && t->get_id() != std::this_thread::get_id()) t->join();
  }
}

void Agent::WakeLoop() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    wake_ = true;
  }
  wake_cv_.notify_all();
}

void Agent::LeaseMain() {
  // Renew every loop interval: ttl - margin >= 2 x loop (CheckTiming), so a
  // renewal can fail once and still the next one lands before the deadline.
  while (loop_running_ && !stopping_) {
    const MonoMs start = clock_.Now();
    const bool had = lease_.load() != 0;
    auto st = RenewLease();
    if (!st.ok()) TLOG(Debug, "ha") << "lease renewal: " << st.error().message();
    // A lease lost or granted changes what the loop decides: run it now.
    if (had != (lease_.load() != 0)) WakeLoop();
    // Until the next renewal is due; StopLoop ends the wait early.
    const MonoMs due = start + cfg_.ha.loop_interval_ms;
    while (loop_running_ && !stopping_ && clock_.Now() < due) lease_wake_.WaitUntil(due);
  }
}

void Agent::WatchMain(const std::string& key) {
  while (loop_running_ && !stopping_) {
    const dcs::Revision rev = watch_revision_.load();
    auto store = Store();
    if (!store || rev == 0) {
      watch_retry_.WaitFor(50);
      continue;
    }
    auto changed = store->WaitForChange(key, rev, 1'000);
    if (!changed.ok()) {
      watch_retry_.WaitFor(100);
      continue;
    }
    if (!*changed) continue;
    WakeLoop();
    // Until the loop has read a newer view, the same change would fire again
    // (at most 500 ms: then the watch looks again).
    std::unique_lock<std::mutex> lock(watch_mu_);
    clock_.WaitUntil(lock, watch_cv_, clock_.Now() + 500,
                     [&] { return watch_revision_.load() != rev || !loop_running_ || stopping_; });
  }
}

void Agent::LoopMain() {
  TLOG(Info, "ha") << "HA loop started (ttl=" << cfg_.ha.ttl_ms
                   << "ms loop=" << cfg_.ha.loop_interval_ms
                   << "ms margin=" << cfg_.ha.safety_margin_ms << "ms)";
  MonoMs due = 0;  // when the previous pass meant to run this one
  while (loop_running_ && !stopping_) {
    const MonoMs start = clock_.Now();
    // Late passes explain a lost lease or an expired route better than
    // anything else: a machine that was paused, or too loaded to run us.
    if (due != 0 && start - due > cfg_.ha.ttl_ms / 2) {
      TLOG(Warn, "ha") << "the HA loop ran " << (start - due)
                       << " ms late (the machine was paused or overloaded): the lease and the "
                          "proxy routes may have expired meanwhile";
    }
    RunCycle();
    ReapChildren();
    if (const MonoMs took = clock_.Now() - start; took > cfg_.ha.ttl_ms / 2) {
      TLOG(Warn, "ha") << "an HA cycle took " << took
                       << " ms, over half the lease TTL: the store or PostgreSQL answers slowly, "
                          "or the machine is overloaded";
    }
    bool removed = false;
    dcs::Revision rev = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (last_view_ && store_ok_) {
        rev = last_view_->revision;
        removed = last_view_->initialized && last_view_->nodes.count(cfg_.node_name) == 0 &&
                  state_.member;
      }
    }
    if (removed) {
      TLOG(Warn, "ha") << "this node's registration is gone: it was removed from the cluster; "
                          "leaving";
      // An operator command may hold op_mu_ and be waiting for this loop to
      // stop (remove): never block on it here; try again next cycle.
      std::unique_lock<std::mutex> op_lock(op_mu_, std::try_to_lock);
      if (!op_lock.owns_lock()) {
        std::unique_lock<std::mutex> lock(wake_mu_);
        clock_.WaitUntil(lock, wake_cv_, clock_.Now() + cfg_.ha.loop_interval_ms,
                         [this] { return !loop_running_ || stopping_; });
        continue;
      }
      fence_deadline_ = 0;
      loop_running_ = false;
      auto s = LeaveLocally();
      if (!s.ok()) TLOG(Error, "ha") << "leaving the cluster: " << s.error().message();
      break;
    }
    if (rev > 0 && watch_revision_.exchange(rev) != rev) {
      { std::lock_guard<std::mutex> lock(watch_mu_); }
      watch_cv_.notify_all();
    }
    // Acted this cycle (started, stopped, promoted...): look again soon
    // rather than a whole interval later.
    const MonoMs interval =
        acted_ ? std::min<MonoMs>(cfg_.ha.loop_interval_ms, 50) : cfg_.ha.loop_interval_ms;
    const MonoMs left = interval - (clock_.Now() - start);
    due = clock_.Now() + std::max<MonoMs>(left, 0);
    std::unique_lock<std::mutex> lock(wake_mu_);
    if (left > 0) {
      clock_.WaitUntil(lock, wake_cv_, due,
                       [this] { return wake_ || !loop_running_ || stopping_; });
    }
    wake_ = false;
  }
  PublishNoRoute("the HA loop stopped");
  if (vip_) (void)vip_->Release("the HA loop stopped");
  TLOG(Info, "ha") << "HA loop stopped";
}

void Agent::PublishRoute(const core::Observation& obs, const core::Decision& d,
                         const ClusterView& view) {
  std::map<std::string, core::Endpoint> addresses;
  for (const auto& [name, n] : view.nodes) addresses[name] = core::Endpoint{n.host, n.pg_port};
  core::RouteConfig rc;
  rc.read_only_max_lag_bytes = cfg_.proxy_read_only_max_lag_bytes;
  rc.read_only_fallback_to_primary = cfg_.proxy_read_only_fallback_to_primary;
  // A route lives one lease TTL without renewal: past it, a new primary may
  // have been elected without this node having seen it.
  rc.validity_ms = cfg_.ha.ttl_ms;
  std::lock_guard<std::mutex> lock(route_mu_);
  last_route_ = core::RouteForCycle(last_route_, obs, d, addresses, rc);
  last_route_at_ = obs.now;
  if (route_sink_) route_sink_(last_route_);
}

void Agent::ExtendSelfRoute(MonoMs lease_deadline) {
  std::lock_guard<std::mutex> lock(route_mu_);
  const auto& rw = last_route_.read_write;
  if (!rw || rw->member != cfg_.node_name) return;
  const MonoMs now = clock_.Now();
  if (now >= last_route_.valid_until) return;  // expired: only the loop may route again
  const MonoMs until = std::min<MonoMs>(lease_deadline, last_route_at_ + cfg_.ha.ttl_ms);
  if (until <= last_route_.valid_until) return;
  last_route_.valid_until = until;
  if (route_sink_) route_sink_(last_route_);
}

void Agent::PublishNoRoute(const std::string& reason) {
  core::Route none;
  none.reason = reason;
  std::lock_guard<std::mutex> lock(route_mu_);
  last_route_ = none;
  if (route_sink_) route_sink_(none);
}

Status Agent::RenewLease() {
  auto store = Store();
  if (!store) return Error(ErrorCode::kFailedPrecondition, "no store");
  const MonoMs sent = clock_.Now();
  if (lease_ != 0) {
    auto r = store->KeepAlive(lease_);
    if (r.ok()) {
      const int64_t ttl_ms = std::min<int64_t>(cfg_.ha.ttl_ms, *r * 1000);
      const MonoMs deadline = sent + ttl_ms - cfg_.ha.safety_margin_ms;
      lease_deadline_ = deadline;
      // Extend an armed watchdog; never re-arm one the loop disarmed.
      MonoMs armed = fence_deadline_.load();
      while (armed > kFenceNow && armed < deadline &&
             !fence_deadline_.compare_exchange_weak(armed, deadline)) {
      }
      ExtendSelfRoute(deadline);
      return Ok();
    }
    if (r.error().code() != ErrorCode::kNotFound) return r.error();
    // Decide this cycle with no lease (a primary is fenced first); a new lease
    // is granted at the start of the next cycle.
    TLOG(Warn, "ha") << "our lease expired in the store; taking a new one";
    lease_ = 0;
    lease_deadline_ = kFenceNow;
    // A primary is fenced now: any deadline in the past makes the watchdog act.
    if (fence_deadline_.load() != 0) fence_deadline_ = kFenceNow;
    return Ok();
  }
  const MonoMs grant_sent = clock_.Now();
  auto g = store->GrantLease((cfg_.ha.ttl_ms + 999) / 1000);
  if (!g) return g.error();
  const int64_t ttl_ms = std::min<int64_t>(cfg_.ha.ttl_ms, g->ttl_seconds * 1000);
  lease_deadline_ = grant_sent + ttl_ms - cfg_.ha.safety_margin_ms;
  lease_ = g->id;
  return Ok();
}

core::LocalPostgres Agent::ObserveLocal(const ClusterView& view) {
  core::LocalPostgres lp;
  lp.running = pg_->IsRunning();
  if (lp.running) {
    auto q = pg_->Query();
    if (q.ok()) {
      lp.in_recovery = q->in_recovery;
      lp.timeline = q->timeline;
      lp.lsn = q->lsn;
      if (q->in_recovery) lp.following = configured_upstream_;
      streaming_ = q->in_recovery && q->streaming;
    } else if (!PathExists(cfg_.pg_data_dir + "/standby.signal")) {
      // Alive, not answering, and not configured as a standby: it may be a
      // primary serving open sessions. Fail safe: report it as a primary, so
      // Decide fences it unless we hold a valid lease on the leader key.
      TLOG(Warn, "ha") << "PostgreSQL does not answer and is not a standby: "
                       << q.error().message();
      lp.in_recovery = false;
    } else {
      // A standby that does not answer (starting, recovering): report it as not
      // running; start actions check IsRunning() again.
      TLOG(Debug, "ha") << "PostgreSQL does not answer: " << q.error().message();
      lp.running = false;
    }
  }
  if (!lp.running) {
    streaming_ = false;
    auto cd = pg_->ReadControlData();
    if (cd.ok()) {
      lp.timeline = cd->timeline;
      lp.lsn = cd->checkpoint_lsn;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (lp.running && !lp.in_recovery &&
      (!state_.was_primary ||
       (state_.needs_rewind && view.leader && view.leader->holder == cfg_.node_name))) {
    // A writable primary holding the key: its history is the reference now.
    state_.was_primary = true;
    if (view.leader && view.leader->holder == cfg_.node_name) state_.needs_rewind = false;
    (void)SaveState();
  }
  // A former primary that is down while someone else leads may have written
  // WAL the new leader never saw: it must be rewound before following.
  if (!lp.running && state_.was_primary && view.leader && view.leader->holder != cfg_.node_name &&
      !state_.needs_rewind) {
    state_.needs_rewind = true;
    (void)SaveState();
  }
  lp.needs_rewind = state_.needs_rewind;
  lp.needs_reclone = state_.needs_reclone;
  lp.start_failures = start_failures_;
  return lp;
}

core::MemberState Agent::SelfState(const core::LocalPostgres& local) const {
  core::MemberState m;
  m.name = cfg_.node_name;
  m.role = !local.running ? core::Role::kStopped
                          : (local.in_recovery ? core::Role::kReplica : core::Role::kPrimary);
  m.timeline = local.timeline;
  m.lsn = local.lsn;
  m.replay_lsn = local.lsn;
  m.following = local.following;
  m.streaming = streaming_;
  // Data that needs a re-clone must not be waited for as a failover candidate.
  m.nofailover = local.needs_reclone;
  m.certificate = cert_summary_;
  return m;
}

void Agent::PublishMember(const core::LocalPostgres& local) {
  auto store = Store();
  if (!store || lease_ == 0) return;
  auto r = store->Put(keys_.member(cfg_.node_name), EncodeMemberState(SelfState(local)), lease_);
  if (!r.ok()) TLOG(Debug, "ha") << "publishing member state: " << r.error().message();
}

void Agent::RunCycle() {
  // Keep the embedded etcd member alive, whether or not the store answers.
  if (cfg_.embedded_etcd() && state_.member && !etcd_.Running() && !stopping_) {
    // At once the first time; a member that keeps dying (a full disk, a bad
    // data directory) is restarted with a doubling pause of up to 8 s.
    const MonoMs now = clock_.Now();
    if (now >= etcd_restart_not_before_) {
      TLOG(Warn, "etcd") << "the etcd member is not running; restarting it"
                         << (etcd_restart_backoff_ms_ > 0
                                 ? " (it died again within 30 s of its last start)"
                                 : "");
      auto st = etcd_.Resume();
      if (!st.ok()) TLOG(Error, "etcd") << st.error().message();
      if (now - etcd_started_at_ < 30'000) {
        etcd_restart_backoff_ms_ =
            std::min<MonoMs>(8'000, std::max<MonoMs>(250, 2 * etcd_restart_backoff_ms_));
      } else {
        etcd_restart_backoff_ms_ = 0;
      }
      etcd_started_at_ = now;
      etcd_restart_not_before_ = now + etcd_restart_backoff_ms_;
    }
  } else if (cfg_.embedded_etcd() && state_.member) {
    etcd_.KeepPidFile();
  }
  auto view = ReadView();
  ClusterView v = view.ok() ? *view : ClusterView{};
  core::LocalPostgres local = ObserveLocal(v);
  // Our own state as of now, not as last read; published after acting (a
  // store write here would delay a failover decision).
  if (view.ok()) v.members[cfg_.node_name] = SelfState(local);
  core::Observation obs;
  obs.now = clock_.Now();
  obs.self = cfg_.node_name;
  obs.store_ok = view.ok();
  if (view.ok()) {
    obs.leader = v.leader;
    for (const auto& [name, m] : v.members) obs.members.push_back(m);
  }
  obs.pg = local;
  obs.lease = lease_;
  obs.lease_deadline = lease_deadline_;
  obs.cluster_timeline = v.timeline.timeline;
  if (view.ok()) {
    obs.sync = v.sync;
    obs.intent = ToCoreIntent(v.intent, clock_.WallNow());
    obs.paused = v.paused;
  }
  core::Decision d = core::Decide(obs, cfg_.ha);
  if (!obs.leader && HasAction(d, core::ActionType::kPromote)) {
    // About to promote on positions published up to a cycle ago: ask again.
    RefreshPositions(&obs, v);
    core::Decision again = core::Decide(obs, cfg_.ha);
    if (again.actions != d.actions) {
      TLOG(Info, "ha") << "after asking the members for their positions: " << again.reason;
    }
    d = std::move(again);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    store_ok_ = view.ok();
    if (view.ok()) last_view_ = v;
    last_local_ = local;
    if (d.reason != last_reason_) {
      TLOG(Info, "ha") << d.reason;
      last_reason_ = d.reason;
    }
  }
  // Before acting: a node about to give up the primary role takes the write
  // route away first (safety rule 5).
  PublishRoute(obs, d, v);
  // The floating IP likewise: gone before a demotion or step-down starts.
  ReleaseVipIfNeeded(obs, d);
  auto st = Execute(d, obs, v);
  if (!st.ok()) {
    // The same failure every cycle (a full disk, a peer down) is said once,
    // then again every 30 s with how often it recurred, not four times a second.
    const std::string msg = st.error().message();
    const MonoMs now = clock_.Now();
    if (msg != repeated_error_ || now - repeated_error_at_ >= 30'000) {
      if (msg == repeated_error_ && repeated_error_count_ > 0) {
        TLOG(Warn, "ha") << msg << " (again " << repeated_error_count_ << " times in "
                         << (now - repeated_error_at_) / 1000 << " s)";
      } else {
        TLOG(Warn, "ha") << msg;
      }
      repeated_error_ = msg;
      repeated_error_at_ = now;
      repeated_error_count_ = 0;
    } else {
      ++repeated_error_count_;
      TLOG(Debug, "ha") << msg;
    }
  } else if (!d.actions.empty()) {
    repeated_error_.clear();
  }
  if (view.ok()) PublishMember(local);
  // Arm the watchdog while we are the writable primary holding the key. When
  // the store cannot be read we cannot tell, and that is exactly when fencing
  // matters: keep it armed with the deadline of the last successful renewal.
  const bool promoted = HasAction(d, core::ActionType::kPromote);
  const bool writable =
      pg_->IsRunning() && ((st.ok() && promoted) || (local.running && !local.in_recovery));
  // Read the lease once: the lease thread may change it meanwhile.
  const MonoMs lease_deadline = lease_.load() != 0 ? lease_deadline_.load() : kFenceNow;
  if (!writable) {
    fence_deadline_ = 0;
    pg_pid_to_watch_ = 0;
  } else if (view.ok()) {
    const bool holding = v.leader && v.leader->holder == cfg_.node_name;
    // Not holding: Decide demoted it this cycle (or will next); holding with
    // no live lease: fence at once.
    fence_deadline_ = holding ? std::max<MonoMs>(lease_deadline, kFenceNow) : 0;
    pg_pid_to_watch_ = holding ? pg_->Pid() : 0;
  } else if (fence_deadline_.load() == 0) {
    // Writable, store unreadable: fence at our deadline.
    fence_deadline_ = std::max<MonoMs>(lease_deadline, kFenceNow);
  }
  AcquireVipIfNeeded(obs, d);
  // Only after actions that worked: a failing one must not spin the loop.
  acted_ = !d.actions.empty() && st.ok();
  if (view.ok()) Housekeeping(v, local);
}

bool Agent::VipAllowed() const {
  return lease_.load() != 0 && clock_.Now() < lease_deadline_.load() && loop_running_ && !stopping_;
}

void Agent::ReleaseVipIfNeeded(const core::Observation& obs, const core::Decision& d) {
  if (!vip_) return;
  const core::VipDecision vd = core::DecideVip(obs, d, vip_->held());
  {
    std::lock_guard<std::mutex> lock(mu_);
    vip_reason_ = vd.reason;
  }
  if (!vd.hold) (void)vip_->Release(vd.reason);  // errors are logged once and shown in status
}

void Agent::AcquireVipIfNeeded(const core::Observation& obs, const core::Decision& d) {
  if (!vip_) return;
  const core::VipDecision vd = core::DecideVip(obs, d, vip_->held());
  if (vd.hold) (void)vip_->Acquire([this] { return VipAllowed(); });
}

Status Agent::Execute(const core::Decision& d, const core::Observation& obs,
                      const ClusterView& view) {
  for (const auto& a : d.actions) {
    TLOG(Info, "ha") << "action " << core::ActionName(a.type)
                     << (a.target.empty() ? "" : " " + a.target);
    auto st = ExecuteOne(a, obs, view);
    if (!st.ok()) return st.error().Wrap(core::ActionName(a.type));
  }
  return Ok();
}

Result<pg::Source> Agent::SourceFor(const ClusterView& view, const std::string& member,
                                    bool superuser) {
  auto it = view.nodes.find(member);
  if (it == view.nodes.end()) {
    return Error(ErrorCode::kNotFound, "no registration for member " + member);
  }
  if (!secrets_) return Error(ErrorCode::kFailedPrecondition, "no secrets on this node");
  pg::Source s;
  s.host = it->second.host;
  s.port = it->second.pg_port;
  s.user = superuser ? "postgres" : kReplicationUser;
  s.password = superuser ? secrets_->superuser_password : secrets_->replication_password;
  s.application_name = cfg_.node_name;
  s.slot_name = pg::SlotNameFor(cfg_.node_name);
  return s;
}

Status Agent::StartReplicaOf(const ClusterView& view, const std::string& member) {
  if (pg_->IsRunning()) return Ok();
  if (member.empty()) {
    // Start as a standby with no source, so we can read our own position.
    TANDEM_TRY(pg_->WriteStandbyConfigWithoutSource());
  } else {
    auto src = SourceFor(view, member, false);
    if (!src) return src.error();
    TANDEM_TRY(pg_->WriteConfig(*src));
  }
  configured_upstream_ = member;
  TANDEM_TRY(WriteHbaFor(view));
  auto st = pg_->Start();
  start_failures_ = st.ok() ? 0 : start_failures_ + 1;
  return st;
}

Status Agent::ExecuteOne(const core::Action& a, const core::Observation& obs,
                         const ClusterView& view) {
  using core::ActionType;
  auto store = Store();
  switch (a.type) {
    case ActionType::kAcquireLeader: {
      if (!store || lease_ == 0) return Error(ErrorCode::kFailedPrecondition, "no lease");
      auto r = store->Txn({dcs::Compare::CreateRevisionIs(keys_.leader(), 0)},
                          {dcs::Op::Put(keys_.leader(), cfg_.node_name, lease_)});
      if (!r) return r.error();
      if (!r->succeeded) return Error(ErrorCode::kConflict, "another member took the leader key");
      TLOG(Info, "ha") << "acquired the leader key (revision " << r->revision << ")";
      return Ok();
    }
    case ActionType::kTakeOverLeader: {
      if (!store || !obs.leader || lease_ == 0) {
        return Error(ErrorCode::kFailedPrecondition, "no leader key or lease");
      }
      auto r = store->Txn({dcs::Compare::ModRevisionIs(keys_.leader(), obs.leader->mod_revision),
                           dcs::Compare::ValueIs(keys_.leader(), cfg_.node_name)},
                          {dcs::Op::Put(keys_.leader(), cfg_.node_name, lease_)});
      if (!r) return r.error();
      if (!r->succeeded) return Error(ErrorCode::kConflict, "the leader key changed meanwhile");
      return Ok();
    }
    case ActionType::kReleaseLeader: {
      if (!store || !obs.leader) return Ok();
      auto r = store->Txn({dcs::Compare::ModRevisionIs(keys_.leader(), obs.leader->mod_revision)},
                          {dcs::Op::Delete(keys_.leader())});
      if (!r) return r.error();
      return Ok();
    }
    case ActionType::kPromote: {
      // The sync record must stay true for every write we acknowledge as
      // primary: record first (if needed), then PostgreSQL's standby set.
      const core::PromotionSync ps =
          core::SyncForPromotion(view.sync, cfg_.node_name, cfg_.ha.sync_mode, cfg_.ha.sync_count);
      if (ps.record) {
        auto w = WriteSyncRecord(view, *ps.record, /*need_leader=*/true);
        if (!w) return w.error();
      }
      TANDEM_TRY(ApplySyncStandbyNames(view, ps.pg, /*in_recovery=*/true));
      // Announce the new timeline first: if that fails, no promotion.
      TANDEM_TRY(AnnounceTimeline(view, obs.pg.timeline + 1));
      TANDEM_TRY(pg_->Promote());
      {
        std::lock_guard<std::mutex> lock(mu_);
        state_.was_primary = true;
        state_.needs_rewind = false;
        (void)SaveState();
      }
      auto q = pg_->Query();
      RecordHistory(last_reason_, q.ok() ? q->timeline : 0);
      return Ok();
    }
    case ActionType::kStepDown:
      return StepDown(obs, view, a.target);
    case ActionType::kDemote: {
      const bool no_time = clock_.Now() >= lease_deadline_;
      TLOG(Warn, "ha") << "demoting: stopping PostgreSQL " << (no_time ? "immediately" : "fast");
      auto st = pg_->Stop(no_time ? pg::StopMode::kImmediate : pg::StopMode::kFast);
      {
        std::lock_guard<std::mutex> lock(mu_);
        state_.needs_rewind = true;
        (void)SaveState();
      }
      return st;
    }
    case ActionType::kStartPrimary: {
      if (pg_->IsRunning()) return Ok();
      TANDEM_TRY(pg_->WriteConfig(std::nullopt));
      configured_upstream_.clear();
      TANDEM_TRY(WriteHbaFor(view));
      auto st = pg_->Start();
      start_failures_ = st.ok() ? 0 : start_failures_ + 1;
      return st;
    }
    case ActionType::kStartReplica:
      return StartReplicaOf(view, a.target);
    case ActionType::kFollow: {
      auto src = SourceFor(view, a.target, false);
      if (!src) return src.error();
      TANDEM_TRY(pg_->WriteConfig(*src));
      configured_upstream_ = a.target;
      return pg_->Reload();
    }
    case ActionType::kRewind: {
      if (pg_->IsRunning()) TANDEM_TRY(pg_->Stop(pg::StopMode::kFast));
      auto src = SourceFor(view, a.target, true);
      if (!src) return src.error();
      auto st = pg_->Rewind(*src);
      std::lock_guard<std::mutex> lock(mu_);
      if (!st.ok()) {
        if (st.error().code() == ErrorCode::kUnavailable ||
            st.error().code() == ErrorCode::kTimeout) {
          // The source could not be reached: nothing is wrong with our data.
          return st.error().Wrap("pg_rewind could not reach " + a.target + "; retrying later");
        }
        TLOG(Error, "ha") << "pg_rewind failed; the node will be re-cloned: "
                          << st.error().message();
        state_.needs_reclone = true;
        (void)SaveState();
        return st;
      }
      state_.needs_rewind = false;
      state_.was_primary = false;
      (void)SaveState();
      hba_signature_.clear();  // pg_rewind copied the source's pg_hba.conf
      TLOG(Info, "ha") << "rewound onto " << a.target << "'s timeline";
      return Ok();  // the next cycle starts it as a standby
    }
    case ActionType::kReclone: {
      if (pg_->IsRunning()) TANDEM_TRY(pg_->Stop(pg::StopMode::kFast));
      if (pg_->InspectDataDir() == pg::DataDirState::kValid) {
        // Never overwrite an earlier copy: it may hold the only commits of a former primary.
        const std::string aside =
            cfg_.pg_data_dir + ".before-reclone-" + std::to_string(clock_.WallNow() / 1000);
        TANDEM_TRY(RenamePath(cfg_.pg_data_dir, aside));
        TLOG(Warn, "ha") << "kept the old data directory aside as " << aside;
      }
      auto src = SourceFor(view, a.target, false);
      if (!src) return src.error();
      TANDEM_TRY(pg_->BaseBackup(*src, [](const std::string& line) { TLOG(Info, "pg") << line; }));
      hba_signature_.clear();  // pg_basebackup copied the source's pg_hba.conf
      std::lock_guard<std::mutex> lock(mu_);
      state_.needs_rewind = false;
      state_.needs_reclone = false;
      state_.was_primary = false;
      (void)SaveState();
      return Ok();
    }
  }
  return Ok();
}

Status Agent::WriteHbaFor(const ClusterView& view) {
  std::vector<pg::HbaPeer> peers;
  std::set<std::string> seen;
  for (const auto& [name, n] : view.nodes) {
    if (seen.insert(n.host).second) peers.push_back({name, n.host});
  }
  if (seen.insert(cfg_.node_address).second) peers.push_back({cfg_.node_name, cfg_.node_address});
  std::string sig;
  for (const auto& p : peers) sig += p.address + ",";
  // Only on change; code that replaces the data directory's files
  // (pg_basebackup, pg_rewind) clears hba_signature_ so ours is written again.
  if (sig == hba_signature_) return Ok();
  TANDEM_TRY(pg_->WriteHba(peers));
  hba_signature_ = sig;
  if (pg_->IsRunning()) TANDEM_TRY(pg_->Reload());
  return Ok();
}

namespace {
// Logs "what: message" unless message is the one last logged through *last
// (a problem that persists is logged once, not every cycle).
void WarnOnChange(std::string* last, const std::string& what, const std::string& message) {
  if (message == *last) return;
  *last = message;
  TLOG(Warn, "agent") << what << ": " << message;
}
}  // namespace

void Agent::ReadTlsSection() {
  struct stat st {};
  if (cfg_.path.empty() || ::stat(cfg_.path.c_str(), &st) != 0) return;
  const int64_t mtime = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  if (mtime == config_mtime_ns_) return;
  config_mtime_ns_ = mtime;
  auto now = LoadConfig(cfg_.path);
  if (!now) {
    WarnOnChange(&config_warned_,
                 "the config file changed but does not load; the agent keeps what it read before",
                 now.error().message());
    return;
  }
  config_warned_.clear();
  std::lock_guard<std::mutex> lock(tls_mu_);
  if (now->tls_enabled() != cfg_.tls_enabled() || now->tls_mode != cfg_.tls_mode ||
      now->tls_verify_hostname != cfg_.tls_verify_hostname) {
    const std::string why = "the tls section of " + cfg_.path +
                            " changed (mode, verify_hostname or TLS on/off): restart this node's "
                            "agent to apply it (on the primary, run `tandem cluster switchover` "
                            "first)";
    if (restart_required_ != why) TLOG(Warn, "agent") << why;
    restart_required_ = why;
    return;
  }
  // Put back as the agent runs it: nothing to restart for (a CA change stays).
  if (restart_required_.rfind("the tls section of ", 0) == 0) restart_required_.clear();
  if (now->tls_server_key == tls_cfg_.tls_server_key &&
      now->tls_server_cert == tls_cfg_.tls_server_cert &&
      now->tls_client_key == tls_cfg_.tls_client_key &&
      now->tls_client_cert == tls_cfg_.tls_client_cert &&
      now->tls_ca_cert == tls_cfg_.tls_ca_cert) {
    return;
  }
  TLOG(Info, "agent") << "the config file names other TLS files; checking them";
  tls_cfg_.tls_server_key = now->tls_server_key;
  tls_cfg_.tls_server_cert = now->tls_server_cert;
  tls_cfg_.tls_client_key = now->tls_client_key;
  tls_cfg_.tls_client_cert = now->tls_client_cert;
  tls_cfg_.tls_ca_cert = now->tls_ca_cert;
}

void Agent::RefreshTlsCopies() {
  if (!cfg_.tls_enabled()) return;
  ReadTlsSection();
  const Config tc = TlsConfig();
  const MonoMs now = clock_.Now();
  const bool current = TlsCopiesCurrent(tc);
  if (!current || cert_summary_at_ == 0 || now - cert_summary_at_ >= 60'000) {
    cert_summary_at_ = now;
    cert_summary_ = NodeCertificateSummary(CertificateStates(tc, clock_.WallNow() / 1000));
  }
  if (current) return;
  auto valid = ValidateTlsFiles(tc, clock_.WallNow() / 1000);
  if (!valid.ok()) {
    WarnOnChange(&tls_refresh_warned_,
                 "the TLS files changed but are not usable; the node keeps the certificates it "
                 "uses now",
                 valid.error().message());
    return;
  }
  tls_refresh_warned_.clear();
  auto old_ca = ReadFile(TlsCopies(tc).ca_cert);
  auto copied = InstallTlsCopies(tc, ServiceUser(tc));
  if (!copied) {
    TLOG(Warn, "agent") << "cannot refresh the TLS copies: " << copied.error().message();
    return;
  }
  // Rotation, in the order that keeps every connection working: PostgreSQL
  // (reload: new handshakes use the new pair), etcd's copies (etcd loads its
  // pair at every handshake), the API (its next handshakes), the agent's own
  // clients (new connections read the copies).
  std::string applied = "PostgreSQL";
  if (pg_->IsRunning()) {
    if (auto st = pg_->Reload(); !st.ok()) TLOG(Warn, "agent") << st.error().message();
  }
  if (cfg_.embedded_etcd()) {
    if (auto st = etcd_.RefreshTlsFiles(); !st.ok()) {
      TLOG(Warn, "agent") << "etcd's certificate copies: " << st.error().message();
    } else {
      applied += ", etcd";
    }
  }
  if (tls_reload_hook_) {
    tls_reload_hook_();
    applied += ", the API";
  }
  if (auto store = Store()) store->ResetConnections();
  TLOG(Info, "agent") << "the TLS files changed: checked, copied to " << TlsCopies(tc).dir
                      << " and in use by " << applied << " and this agent's connections";
  auto new_ca = ReadFile(TlsCopies(tc).ca_cert);
  if (cfg_.embedded_etcd() && old_ca.ok() && new_ca.ok() && *old_ca != *new_ca) {
    // etcd reads its trusted CA only when it starts.
    std::lock_guard<std::mutex> lock(tls_mu_);
    restart_required_ =
        "the CA certificate changed: etcd trusts the new one after this node's agent restarts "
        "(PostgreSQL, the API and the agent's connections already do)";
    TLOG(Warn, "agent") << restart_required_;
  }
  WakePeerCerts();
}

void Agent::WakePeerCerts() {
  {
    std::lock_guard<std::mutex> lock(tls_mu_);
    peer_wake_ = true;
  }
  peer_cv_.notify_all();
}

void Agent::PeerCertMain() {
  while (!stopping_) {
    std::vector<NodeInfo> targets;
    Config tc;
    {
      std::unique_lock<std::mutex> lock(tls_mu_);
      clock_.WaitUntil(lock, peer_cv_, clock_.Now() + 60'000,
                       [&] { return peer_wake_ || stopping_; });
      peer_wake_ = false;
      if (stopping_) return;
      targets = peer_targets_;
      tc = tls_cfg_;
    }
    const auto copies = TlsCopies(tc);
    std::map<std::string, PeerCertificate> seen;
    for (const auto& n : targets) {
      const auto [host, port] = HostPortOfUrl(n.api_url);
      if (port <= 0) continue;
      // Judged as enforce would, whatever this node's mode: that is what
      // switching to enforce would meet.
      seen[n.name] = CheckPeerCertificate(n.name + "'s API certificate",
                                          host.empty() ? n.host : host, port, TlsService::kHttps,
                                          copies.ca_cert, copies.client_cert, copies.client_key,
                                          tc.tls_verify_hostname, clock_.WallNow() / 1000, 2000);
      if (stopping_) return;
    }
    std::lock_guard<std::mutex> lock(tls_mu_);
    for (auto& [name, pc] : seen) {
      auto old = peer_certs_.find(name);
      if (old == peer_certs_.end() || old->second.summary.text != pc.summary.text) {
        const std::string line = "peer " + name + ": Certificate: " + pc.summary.text +
                                 (pc.detail.empty() ? "" : " (" + pc.detail + ")");
        if (pc.summary.state == pki::CertState::kInvalid) {
          TLOG(Warn, "tls") << line;
        } else {
          TLOG(Info, "tls") << line;
        }
      }
    }
    peer_certs_ = std::move(seen);
  }
}

void Agent::Housekeeping(const ClusterView& view, const core::LocalPostgres& local) {
  RefreshTlsCopies();
  if (cfg_.tls_enabled()) {
    // The peers whose certificates PeerCertMain checks; checked again at once
    // when one joins, leaves or moves.
    std::vector<NodeInfo> targets;
    for (const auto& [name, n] : view.nodes) {
      if (name != cfg_.node_name) targets.push_back(n);
    }
    bool changed = false;
    {
      std::lock_guard<std::mutex> lock(tls_mu_);
      changed = targets.size() != peer_targets_.size() ||
                !std::equal(targets.begin(), targets.end(), peer_targets_.begin(),
                            [](const NodeInfo& a, const NodeInfo& b) {
                              return a.name == b.name && a.api_url == b.api_url;
                            });
      if (changed) peer_targets_ = std::move(targets);
    }
    if (changed) WakePeerCerts();
  }
  // pg_hba.conf follows the membership on every node.
  if (auto st = WriteHbaFor(view); !st.ok()) {
    TLOG(Warn, "pg") << "writing pg_hba.conf: " << st.error().message();
  }
  MaintainTimeline(view, local);
  MaintainIntent(view, local);
  // A replica that received WAL past the point where the leader's timeline
  // forked cannot stream from it (PostgreSQL refuses): after a while of not
  // streaming from a leader on a newer timeline, rewind it.
  if (view.leader && local.running && local.in_recovery && !streaming_ &&
      local.following == view.leader->holder) {
    auto lm = view.members.find(view.leader->holder);
    const bool newer = lm != view.members.end() && lm->second.timeline > local.timeline;
    stalled_cycles_ = newer ? stalled_cycles_ + 1 : 0;
    // Two TTLs: a dead leader's key has expired by then, so only a live leader
    // that refuses our WAL counts.
    const int64_t threshold = std::max<int64_t>(kStalledCyclesBeforeRewind,
                                                2 * cfg_.ha.ttl_ms / cfg_.ha.loop_interval_ms);
    if (stalled_cycles_ >= threshold) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!state_.needs_rewind) {
        TLOG(Warn, "ha") << "cannot stream from " << view.leader->holder << " (timeline "
                         << lm->second.timeline << ", mine " << local.timeline
                         << "): my WAL may have diverged; rewinding";
        state_.needs_rewind = true;
        (void)SaveState();
      }
      stalled_cycles_ = 0;
    }
  } else {
    stalled_cycles_ = 0;
  }
  const bool leading = view.leader && view.leader->holder == cfg_.node_name;
  if (leading && local.running && !local.in_recovery) {
    if (!repl_user_ok_ && secrets_) {
      auto st = pg_->EnsureReplicationUser(kReplicationUser, secrets_->replication_password);
      repl_user_ok_ = st.ok();
    }
    std::vector<std::string> slots;
    for (const auto& [name, n] : view.nodes) {
      if (name != cfg_.node_name) slots.push_back(pg::SlotNameFor(name));
    }
    auto st = pg_->SyncSlots(slots);
    if (!st.ok()) TLOG(Warn, "pg") << "replication slots: " << st.error().message();
    MaintainSync(view);
    MaybeMoveEtcdLeader(view);
  }
  RefreshRegistration(view);
  // Reach every member's etcd, not only ours (ours may be down or cut off).
  auto endpoints = EtcdEndpointsFor(view);
  if (endpoints != store_endpoints_) {
    if (ConnectStore(endpoints).ok()) store_endpoints_ = endpoints;
  }
}

void Agent::RefreshRegistration(const ClusterView& view) {
  auto it = view.nodes.find(cfg_.node_name);
  if (it == view.nodes.end() || it->second.mod_revision == 0) return;
  NodeInfo reg = it->second;
  if (reg.proxy_rw_port == cfg_.proxy_rw_port && reg.proxy_ro_port == cfg_.proxy_ro_port) return;
  reg.proxy_rw_port = cfg_.proxy_rw_port;
  reg.proxy_ro_port = cfg_.proxy_ro_port;
  auto store = Store();
  if (!store) return;
  // Only over the registration we read: a node removed meanwhile stays removed.
  auto r = store->Txn({dcs::Compare::ModRevisionIs(keys_.node(cfg_.node_name), reg.mod_revision)},
                      {dcs::Op::Put(keys_.node(cfg_.node_name), EncodeNodeInfo(reg))});
  if (r.ok() && r->succeeded) {
    TLOG(Info, "agent") << "registration updated: proxy ports " << reg.proxy_rw_port << "/"
                        << reg.proxy_ro_port;
  } else if (!r.ok()) {
    TLOG(Debug, "agent") << "updating the registration: " << r.error().message();
  }
}

void Agent::MaybeMoveEtcdLeader(const ClusterView& view) {
  // A crash of the primary's node should cost one lease TTL. If that node
  // also led etcd, it would cost an etcd election plus the lease extension a
  // new etcd leader grants on top: so the primary hands etcd leadership to
  // another live voting member.
  if (!cfg_.embedded_etcd()) return;
  const MonoMs now = SystemClock::Get().Now();
  if (now < next_etcd_leader_check_) return;
  next_etcd_leader_check_ = now + 5'000;
  const std::string url = cfg_.etcd_client_url();
  auto st = HttpCall("POST", url + "/v3/maintenance/status", "{}", 1'000);
  if (!st || st->status != 200) return;
  std::string self_id, leader_id;
  try {
    auto j = nlohmann::json::parse(st->body);
    self_id = j.at("header").at("member_id").get<std::string>();
    leader_id = j.at("leader").get<std::string>();
  } catch (const std::exception&) {
    return;
  }
  if (self_id != leader_id) return;
  for (const auto& [name, n] : view.nodes) {
    if (name == cfg_.node_name || n.etcd_member_id == 0) continue;
    auto m = view.members.find(name);
    if (m == view.members.end() || m->second.role != core::Role::kReplica) continue;
    nlohmann::json req{{"targetID", std::to_string(n.etcd_member_id)}};
    auto r = HttpCall("POST", url + "/v3/maintenance/transfer-leadership", req.dump(), 3'000);
    if (r && r->status == 200) {
      TLOG(Info, "etcd") << "moved etcd leadership to " << name
                         << " (a crash of the primary's node then needs no etcd election)";
      return;
    }
  }
}

Status Agent::AnnounceTimeline(const ClusterView& view, uint32_t timeline) {
  auto store = Store();
  if (!store) return Error(ErrorCode::kFailedPrecondition, "no store");
  const auto cmp = view.timeline.mod_revision == 0
                       ? dcs::Compare::CreateRevisionIs(keys_.timeline(), 0)
                       : dcs::Compare::ModRevisionIs(keys_.timeline(), view.timeline.mod_revision);
  auto r =
      store->Txn({cmp}, {dcs::Op::Put(keys_.timeline(), EncodeTimeline(timeline, cfg_.node_name))});
  if (!r) return r.error().Wrap("recording timeline " + std::to_string(timeline));
  if (!r->succeeded) {
    return Error(ErrorCode::kConflict, "the timeline record changed meanwhile; not promoting");
  }
  return Ok();
}

void Agent::MaintainTimeline(const ClusterView& view, const core::LocalPostgres& local) {
  const auto& rec = view.timeline;
  const bool leading = view.leader && view.leader->holder == cfg_.node_name;
  uint32_t want = 0;
  if (leading && local.running && !local.in_recovery && local.timeline > rec.timeline) {
    want = local.timeline;  // the timeline PostgreSQL actually chose
  } else if (rec.member == cfg_.node_name && local.running && local.in_recovery &&
             local.timeline != 0 && local.timeline + 1 == rec.timeline) {
    // Only a running standby's timeline is trusted here: a stopped server's
    // pg_control may still name the old timeline after a real promotion.
    // We announced a promotion that never happened: take it back, or nobody
    // could ever be promoted again.
    want = local.timeline;
    TLOG(Warn, "ha") << "retracting timeline " << rec.timeline << " that was never reached";
  }
  if (want == 0) return;
  auto st = AnnounceTimeline(view, want);
  if (!st.ok()) TLOG(Warn, "ha") << st.error().message();
}

void Agent::RecordHistory(const std::string& reason, uint32_t timeline) {
  auto store = Store();
  if (!store) return;
  HistoryEntry h;
  h.at_ms = clock_.WallNow();
  h.leader = cfg_.node_name;
  h.timeline = timeline;
  h.reason = reason;
  h.seq = h.at_ms;
  auto r = store->Put(keys_.history(h.seq), EncodeHistory(h));
  if (!r.ok()) TLOG(Warn, "ha") << "recording history: " << r.error().message();
}

Agent::Health Agent::GetHealth() {
  std::lock_guard<std::mutex> lock(mu_);
  Health h;
  h.running = last_local_.running;
  const bool leading =
      store_ok_ && last_view_ && last_view_->leader && last_view_->leader->holder == cfg_.node_name;
  h.primary = leading && last_local_.running && !last_local_.in_recovery &&
              clock_.Now() < fence_deadline_.load();
  h.replica = last_local_.running && last_local_.in_recovery && !last_local_.following.empty();
  if (h.replica && last_view_ && last_view_->sync) {
    const auto& rec = *last_view_->sync;
    h.sync_standby =
        rec.mode != core::SyncMode::kOff && rec.quorum > 0 && rec.leader != cfg_.node_name &&
        std::find(rec.members.begin(), rec.members.end(), cfg_.node_name) != rec.members.end();
  }
  if (h.replica && last_view_ && last_view_->leader) {
    auto it = last_view_->members.find(last_view_->leader->holder);
    if (it != last_view_->members.end() && it->second.lsn > last_local_.lsn) {
      h.lag_bytes = it->second.lsn - last_local_.lsn;
    }
  }
  return h;
}

}  // namespace tandem::agent
