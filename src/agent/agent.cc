// The agent's construction and lifecycle (Start, StartMember, Shutdown; the
// stop for a restart and its adoption are in restart.cc), the
// store connection and the small shared helpers (local state, last command,
// registration info, health). The rest of Agent lives by responsibility in
// ha_loop.cc, executor.cc, lease_fence.cc, route_vip.cc, housekeeping.cc,
// etcd_upkeep.cc, tls_rotation.cc, sync_upkeep.cc, intents.cc,
// operations.cc, join.cc and status.cc (map: docs/design/agent.md).
//
// Threads: Start/Shutdown from `tandem agent`'s main thread; the helpers from
// any thread (each takes the lock it needs: mu_ for state_/store_).
#include "agent/agent.h"

#include <algorithm>
#include <thread>

#include "agent/agent_internal.h"
#include "agent/tls_files.h"
#include "agent/witness_postgres.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/thread_name.h"
#include "dcs/etcd_dcs.h"
#include "pg/postgres.h"

namespace tandem::agent {
using namespace internal;
namespace {

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
  s.max_connections = cfg.pg_max_connections;
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
      pg_(std::make_unique<WitnessGatedPostgres>(
          deps.pg ? std::move(deps.pg)
                  : std::make_unique<pg::Postgres>(MakePaths(cfg_), MakeSettings(cfg_), clock_),
          witness_)),
      etcd_(cfg_, clock_),
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

Result<net::HttpResponse> Agent::Http(const std::string& method, const std::string& url,
                                      const std::string& body, int64_t timeout_ms) {
  if (http_) return http_(method, url, body, timeout_ms);
  return net::HttpCall(method, url, body, timeout_ms);
}

Config Agent::TlsConfig() const {
  std::lock_guard<std::mutex> lock(tls_mu_);
  return tls_cfg_;
}

std::shared_ptr<dcs::Dcs> Agent::Store() {
  std::lock_guard<std::mutex> lock(mu_);
  return store_;
}

std::shared_ptr<dcs::Dcs> Agent::JoinStore() {
  std::lock_guard<std::mutex> lock(mu_);
  return join_store_ && store_ ? join_store_ : store_;
}

Status Agent::ConnectStore(const std::vector<std::string>& endpoints) {
  if (connect_store_) {
    auto connected = connect_store_(endpoints);
    if (!connected) return connected.error();
    std::lock_guard<std::mutex> lock(mu_);
    store_ = std::move(*connected);
    join_store_.reset();  // the test's connector: one store for everything
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
  auto store = std::make_shared<dcs::EtcdDcs>(opts, clock_);
  opts.request_timeout_ms = 5'000;
  auto join_store = std::make_shared<dcs::EtcdDcs>(opts, clock_);
  std::lock_guard<std::mutex> lock(mu_);
  store_ = std::move(store);
  join_store_ = std::move(join_store);
  store_endpoints_ = endpoints;
  return Ok();
}

Result<ClusterView> Agent::ReadView() {
  return ReadViewFrom(Store());
}

Result<ClusterView> Agent::ReadViewFrom(const std::shared_ptr<dcs::Dcs>& store) {
  if (!store) return Error(ErrorCode::kFailedPrecondition, "this node is not in a cluster");
  auto range = store->GetPrefix(keys_.prefix);
  if (!range) return range.error();
  return ParseClusterView(keys_, *range);
}

Result<ClusterView> Agent::ReadLoopView() {
  auto store = Store();
  if (!store) return Error(ErrorCode::kFailedPrecondition, "this node is not in a cluster");
  // Decisions on a consistent snapshot that is older than a read would be are
  // as safe as on a slow read (docs/design/watched-view.md); the bound only
  // limits how late a stalled watch can make the loop see a change.
  auto range = store->ReadPrefix(keys_.prefix, std::max<int64_t>(cfg_.ha.ttl_ms / 2, 1));
  if (!range) return range.error();
  // At idle the snapshot is the same one cycle after cycle: parse it once.
  // (A revision names one state of one store only.)
  if (range->revision != 0 && range->revision == parsed_revision_ && store == parsed_store_) {
    return parsed_view_;
  }
  parsed_view_ = ParseClusterView(keys_, *range);
  parsed_revision_ = range->revision;
  parsed_store_ = store;
  return parsed_view_;
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
  // First, before anything is written: one agent per node.
  if (!node_lock_.held()) {
    auto lock = NodeLock::Acquire(cfg_.state_dir);
    if (!lock) return lock.error();
    node_lock_ = std::move(*lock);
  }
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
  fence_thread_ = std::thread([this] {
    NameThisThread("fence");
    FenceMain();
  });
  if (cfg_.tls_enabled())
    peer_cert_thread_ = std::thread([this] {
      NameThisThread("peer-certs");
      PeerCertMain();
    });
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

// What a node's state directory says about how it ran before, against what
// the config and the state file say now: warned in the log and in status.
void Agent::CheckStartLeftovers(bool member) {
  std::vector<std::string> found;
  if (std::string w = MissingStateWarning(
          cfg_.state_path(),
          {cfg_.secrets_path(), cfg_.etcd_data_dir(), cfg_.pg_data_dir + "/PG_VERSION"},
          cfg_.node_name);
      !w.empty()) {
    found.push_back(w);
  }
  const std::string tls_dir = cfg_.state_dir + "/tls";
  if (member && !cfg_.tls_enabled() && PathExists(tls_dir)) {
    found.push_back("this node ran with TLS before (certificate copies in " + tls_dir + ") but " +
                    cfg_.path +
                    " has no tls section: without it the node cannot reach a TLS cluster's "
                    "etcd and PostgreSQL. Put the tls section back (all five files; `tandem pki "
                    "issue " +
                    cfg_.node_name + "` makes a node's set) and restart the agent");
  }
  for (const auto& w : found) TLOG(Warn, "agent") << w;
  std::lock_guard<std::mutex> lock(mu_);
  start_warnings_ = std::move(found);
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
  CheckStartLeftovers(st->member);
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = *st;
    witness_ = state_.witness;  // before anything below may look at PostgreSQL
    // A command cannot still be running after a restart.
    if (state_.last_command.result == "Running") {
      state_.last_command.result = "Failed";
      state_.last_command.error = "the agent stopped while the command ran; run it again";
      state_.error = true;
    }
  }
  // A lease and a fence guard the previous agent left (an agent restart):
  // adopted, so the primary keeps its key and takes no restart.
  AdoptPredecessor(*st);
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
  // Refused at Start (another agent holds the node): its PostgreSQL and etcd
  // are that agent's.
  if (!node_lock_.held()) return;
  ShutdownMember();
  node_lock_.Release();
}

void Agent::ShutdownMember() {
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
