// Joining a cluster: `tandem cluster join` on the new node (StartJoin, then
// the join worker: DoJoin, JoinWithGrant) and the member's side of it
// (GrantJoin, asked over the API).
//
// Threads: StartJoin and GrantJoin on an API worker (under op_mu_); the join
// itself on op_thread_ (holding op_mu_). Touches: etcd_, the store, pg_
// (base backup, before the loop runs), mu_ (state_), secrets_.
#include <arpa/inet.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "agent/agent.h"
#include "agent/agent_internal.h"
#include "agent/tls_files.h"
#include "agent/witness.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/strings.h"
#include "net/http_client.h"

namespace tandem::agent {
using namespace internal;

// The node is a member now (as a replica or a witness): its state file says
// so, so a restarted agent starts its loop. The join goes on if the file
// cannot be written (the node is in the store already), but loudly: the next
// start would not know it joined.
void Agent::RecordJoined(bool witness) {
  std::lock_guard<std::mutex> lock(mu_);
  state_.member = true;
  state_.witness = witness;
  state_.cluster = cfg_.cluster;
  state_.was_primary = false;
  state_.needs_rewind = false;
  state_.needs_reclone = false;
  if (auto st = SaveState(); !st.ok()) {
    TLOG(Error, "agent") << "joined, but the node's state file " << cfg_.state_path()
                         << " could not be written (" << st.error().message()
                         << "): fix the file system, then restart the agent; until then a "
                            "restarted agent would not know this node is a member";
  }
}
using nlohmann::json;

namespace {

// "10.0.0.1:8008" / "http://10.0.0.1:8008" / "10.0.0.1" -> "http://10.0.0.1:8008"
// scheme: "https://" when this node has TLS (a cluster is all TLS or none),
// unless the address names one.
Result<std::string> AgentUrl(const std::string& address, std::string scheme) {
  std::string a = Trim(address);
  if (a.empty()) return Fail(ErrorCode::kInvalidArgument, "no address given");
  for (const char* s : {"http://", "https://"}) {
    if (StartsWith(a, s)) {
      scheme = s;
      a = a.substr(scheme.size());
    }
  }
  while (!a.empty() && a.back() == '/') a.pop_back();
  if (a.find('/') != std::string::npos || a.find(' ') != std::string::npos) {
    return Fail(ErrorCode::kInvalidArgument,
                "'" + address + "' is not an agent address (expected HOST:PORT of its API)");
  }
  if (a.find(':') == std::string::npos) a += ":8008";
  return scheme + a;
}

}  // namespace

namespace {

// What the probe of the member's status says against a witness joining: the
// voting members it lists (and which are witnesses) after WitnessJoinRefusal.
std::string WitnessProbeRefusal(const json& status, bool external_etcd) {
  int voters = 0;
  std::vector<std::string> witnesses;
  for (const auto& m : status.value("members", json::array())) {
    if (m.value("voter", false)) ++voters;
    if (m.value("witness", false)) witnesses.push_back(m.value("name", ""));
  }
  return WitnessJoinRefusal(voters, witnesses, external_etcd);
}

// Whether the member's /v1/status (j) lets this node join through it: a
// Tandem agent, a member, and (a data node) a primary to copy from or (a
// witness) a voter count the witness makes odd.
Status JudgeProbe(const std::string& url, const json& j, bool witness, bool external_etcd) {
  if (!j.is_object() || !j.contains("member") || !j.contains("node")) {
    return Fail(ErrorCode::kUnavailable,
                url +
                    " answered, but not like a Tandem agent (no node or membership in its "
                    "/v1/status); check the address (HOST:API-PORT of a member)");
  }
  if (!j.value("member", false)) {
    return Fail(ErrorCode::kFailedPrecondition,
                "the agent at " + url +
                    " is not a cluster member; initialize it first or join another member");
  }
  if (witness) {
    if (auto refusal = WitnessProbeRefusal(j, external_etcd); !refusal.empty()) {
      return Fail(ErrorCode::kFailedPrecondition, refusal);
    }
  } else if (!j.contains("primary") || j["primary"].is_null()) {
    return Fail(ErrorCode::kFailedPrecondition,
                "the cluster has no primary right now, so there is nothing to copy; join again "
                "when `tandem cluster status` on a member shows one");
  }
  return Ok();
}

// The member's answer to /v1/internal/join: the grant, or why not.
Result<JoinGrant> ParseGrant(const net::HttpResponse& resp) {
  JoinGrant grant;
  try {
    auto j = json::parse(resp.body);
    if (resp.status != 200) {
      return Fail(ErrorCode::kFailedPrecondition,
                  "the member refused: " + j.value("error", resp.body));
    }
    grant.cluster = j.at("cluster").get<std::string>();
    grant.initial_cluster = j.value("initial_cluster", "");
    grant.etcd_endpoints = j.value("etcd_endpoints", std::vector<std::string>{});
    grant.etcd_member_id = std::stoull(j.value("etcd_member_id", "0"));
    grant.secrets.superuser_password = j.at("superuser_password").get<std::string>();
    grant.secrets.replication_password = j.at("replication_password").get<std::string>();
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kInternal,
                std::string("unexpected answer from the member: ") + e.what());
  }
  return grant;
}

}  // namespace

Status Agent::StartJoin(const std::string& address, bool witness) {
  std::unique_lock<std::mutex> op(op_mu_, std::try_to_lock);
  const std::string command = "tandem cluster join " + address + (witness ? " --witness" : "");
  if (!op.owns_lock()) return Busy();
  auto fail = [&](Error e) -> Status { return CommandFailed(command, std::move(e)); };
  if (state_.member) {
    return fail(Fail(
        ErrorCode::kFailedPrecondition,
        "this node is already a member of cluster '" + state_.cluster + "'; nothing was changed"));
  }
  auto url = AgentUrl(address, cfg_.url_scheme());
  if (!url) return fail(url.error());
  // A witness never looks at the data directory: nothing there is touched.
  if (!witness && pg_->InspectDataDir() == pg::DataDirState::kNotPostgres) {
    return fail(ForeignDataDir());
  }
  if (!witness && pg_->InspectDataDir() == pg::DataDirState::kValid &&
      PathExists(cfg_.pg_data_dir + ".pre-join")) {
    return fail(Fail(ErrorCode::kFailedPrecondition,
                     cfg_.pg_data_dir + ".pre-join already exists; move it away so the local "
                                        "database can be kept there; nothing was changed"));
  }
  auto probe = Http("GET", *url + "/v1/status", "", 5000);
  if (!probe) {
    return fail(
        Fail(probe.error().code(),
             "cannot reach a Tandem agent at " + *url + ": " + probe.error().message() +
                 "; check the address (HOST:API-PORT of a member) and that its agent runs"));
  }
  if (probe->status != 200) {
    return fail(
        Fail(ErrorCode::kUnavailable,
             *url + " answered HTTP " + std::to_string(probe->status) + "; is it a Tandem agent?"));
  }
  try {
    if (auto st = JudgeProbe(*url, json::parse(probe->body), witness, !cfg_.embedded_etcd());
        !st.ok()) {
      return fail(st.error());
    }
  } catch (...) {
    return fail(Fail(ErrorCode::kUnavailable, *url + " did not answer like a Tandem agent"));
  }
  SetLastCommand(command, "Running", "");
  if (op_thread_.joinable()) op_thread_.join();
  op_thread_ = std::thread([this, u = *url, command, witness] { JoinWorker(u, command, witness); });
  return Ok();
}

void Agent::JoinWorker(std::string url, std::string command, bool witness) {
  std::lock_guard<std::mutex> op(op_mu_);
  if (state_.member) {  // another command got in between StartJoin and us
    SetLastCommand(command, "Failed", "this node became a member meanwhile; nothing was changed");
    return;
  }
  auto st = DoJoin(url, witness);
  if (st.ok()) {
    SetLastCommand(command, "Success", "");
  } else {
    SetLastCommand(command, "Failed", st.error().message());
  }
}

Status Agent::DoJoin(const std::string& url, bool witness) {
  SetProgress("asking " + url + " to add this node" + (witness ? " as a witness" : ""));
  NodeInfo self = SelfInfo();
  if (witness) {
    self.witness = true;
    self.pg_port = 0;  // no PostgreSQL
    witness_ = true;   // from here on, nothing may touch a database on this machine
  }
  auto resp = Http("POST", url + "/v1/internal/join", EncodeNodeInfo(self), 120'000);
  auto granted = resp ? ParseGrant(*resp) : Result<JoinGrant>(resp.error());
  if (!granted) {
    witness_ = false;  // nothing was granted: the node is what it was
    return granted.error();
  }
  const JoinGrant& grant = *granted;
  auto st =
      grant.cluster == cfg_.cluster
          ? (witness ? JoinWitnessWithGrant(grant) : JoinWithGrant(grant))
          : Status(Fail(ErrorCode::kInvalidArgument,
                        "the member belongs to cluster '" + grant.cluster + "' but " + cfg_.path +
                            " says '" + cfg_.cluster + "'; fix `cluster:` in the config"));
  if (st.ok()) return st;
  // Undo what the grant did, so a failed join leaves no etcd voter behind
  // (it would cost the cluster its quorum) and can simply be retried.
  TLOG(Warn, "agent") << "join failed; undoing the registration and the etcd member";
  StopLoop();
  if (pg_->IsRunning()) (void)pg_->Stop(pg::StopMode::kFast);
  if (auto store = Store()) {
    (void)store->Delete(keys_.node(cfg_.node_name));
    if (grant.etcd_member_id != 0) {
      std::vector<std::string> others = grant.etcd_endpoints;
      if (!others.empty()) (void)ConnectStore(others);
      (void)RemoveEtcdMember(grant.etcd_member_id);
    }
  }
  etcd_.Stop();
  (void)RemoveAll(cfg_.etcd_data_dir());
  (void)RemoveAll(cfg_.secrets_path());
  secrets_.reset();
  std::lock_guard<std::mutex> lock(mu_);
  if (!state_.kept_aside_dir.empty() && PathExists(state_.kept_aside_dir)) {
    (void)RemoveAll(cfg_.pg_data_dir);
    if (RenamePath(state_.kept_aside_dir, cfg_.pg_data_dir).ok()) state_.kept_aside_dir.clear();
  }
  state_.member = false;
  state_.witness = false;
  witness_ = false;
  store_.reset();
  join_store_.reset();
  (void)SaveState();
  return st;
}

Status Agent::JoinWitnessWithGrant(const JoinGrant& grant) {
  // The agent's own files need the secrets (StartMember refuses without);
  // no database is created, copied or moved.
  TANDEM_TRY(SaveSecrets(cfg_.secrets_path(), grant.secrets));
  secrets_ = grant.secrets;
  if (!cfg_.embedded_etcd()) {
    return Fail(ErrorCode::kFailedPrecondition,
                "a witness is an embedded etcd voter, but " + cfg_.path +
                    " names an external etcd (dcs.endpoints); remove that to join as a witness");
  }
  TANDEM_TRY(JoinEtcd(grant));
  RecordJoined(/*witness=*/true);
  RecordEvent(core::EventKind::kNodeJoined, cfg_.node_name + " joined the cluster as a witness");
  StartLoop();
  SetProgress("waiting for the witness to publish itself");
  const bool published = WaitFor(
      clock_,
      [&] {
        std::lock_guard<std::mutex> lock(mu_);
        return store_ok_ && last_view_ && last_view_->members.count(cfg_.node_name) != 0;
      },
      60'000, stopping_);
  if (!published) {
    return Fail(ErrorCode::kTimeout, "the witness could not read the cluster within 60 s; see " +
                                         cfg_.log_dir() + " and `tandem cluster status`");
  }
  return Ok();
}

namespace {

// Keeps the node's own database aside, unused, until it leaves the cluster
// (stopping it first); an empty directory is removed. Sets *aside to where it
// went ("" when there was none).
Status MoveLocalDatabaseAside(pg::Controller& pg, const Config& cfg, std::string* aside) {
  aside->clear();
  if (pg.InspectDataDir() == pg::DataDirState::kValid) {
    if (pg.IsRunning()) TANDEM_TRY(pg.Stop(pg::StopMode::kFast));
    const std::string to = cfg.pg_data_dir + ".pre-join";
    if (PathExists(to)) {
      return Fail(ErrorCode::kFailedPrecondition,
                  to + " already exists; move it away so the local database can be kept there");
    }
    TANDEM_TRY(RenamePath(cfg.pg_data_dir, to));
    *aside = to;
  } else if (PathExists(cfg.pg_data_dir)) {
    TANDEM_TRY(RemoveAll(cfg.pg_data_dir));  // empty
  }
  return Ok();
}

// pg_basebackup from `src`, up to 5 attempts 2 s apart, each failed one's
// directory removed; `progress` sees every line of the tool's output.
Status CopyDatabase(pg::Controller& pg, const Config& cfg, const Clock& clock,
                    const pg::Source& src, const std::atomic<bool>& stopping,
                    const std::function<void(const std::string&)>& progress) {
  Status copied = Error(ErrorCode::kTimeout, "not tried");
  for (int attempt = 1; attempt <= 5 && !stopping; ++attempt) {
    copied = pg.BaseBackup(src, [&](const std::string& line) {
      TLOG(Info, "pg") << line;
      progress(line);
    });
    if (copied.ok()) break;
    TLOG(Warn, "agent") << "pg_basebackup attempt " << attempt
                        << " failed: " << copied.error().message();
    (void)RemoveAll(cfg.pg_data_dir);
    clock.SleepFor(2'000);
  }
  if (!copied.ok()) return copied.error().Wrap("copying the database");
  return Ok();
}

}  // namespace

Status Agent::JoinWithGrant(const JoinGrant& grant) {
  TANDEM_TRY(SaveSecrets(cfg_.secrets_path(), grant.secrets));
  secrets_ = grant.secrets;

  if (cfg_.embedded_etcd()) {
    TANDEM_TRY(JoinEtcd(grant));
  } else {
    TANDEM_TRY(ConnectStore(cfg_.dcs_endpoints));
  }

  auto view = ReadView();
  if (!view) return view.error();
  if (!view->leader) {
    return Fail(ErrorCode::kFailedPrecondition,
                "the cluster has no primary right now; join again when `tandem cluster status` "
                "shows one");
  }
  const std::string leader = view->leader->holder;

  std::string aside;
  TANDEM_TRY(MoveLocalDatabaseAside(*pg_, cfg_, &aside));
  if (!aside.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    state_.kept_aside_dir = aside;
    (void)SaveState();
    TLOG(Info, "agent") << "kept the local database aside in " << aside;
  }

  auto src = SourceFor(*view, leader, false);
  if (!src) return src.error();
  SetProgress("copying the database from " + leader + " (pg_basebackup)");
  TANDEM_TRY(CopyDatabase(*pg_, cfg_, clock_, *src, stopping_,
                          [this](const std::string& line) { SetProgress(line); }));
  hba_signature_.clear();  // pg_basebackup copied the source's pg_hba.conf
  RecordJoined(/*witness=*/false);
  RecordEvent(core::EventKind::kNodeJoined, cfg_.node_name + " joined the cluster as a replica");
  StartLoop();
  SetProgress("waiting for the replica to stream from " + leader);
  bool streaming = WaitFor(
      clock_,
      [&] {
        std::lock_guard<std::mutex> lock(mu_);
        return last_local_.running && last_local_.in_recovery && !last_local_.following.empty();
      },
      120'000, stopping_);
  if (!streaming) {
    return Fail(ErrorCode::kTimeout, "the replica did not start streaming within 120 s; see " +
                                         cfg_.log_dir() + "/postgresql.log");
  }
  return Ok();
}

Result<JoinGrant> Agent::GrantJoin(const NodeInfo& joiner) {
  std::lock_guard<std::mutex> op(op_mu_);
  if (!state_.member || !secrets_) {
    return Fail(ErrorCode::kFailedPrecondition, "this node is not a cluster member");
  }
  if (!IsValidName(joiner.name)) {
    return Fail(ErrorCode::kInvalidArgument, "invalid node name '" + joiner.name + "'");
  }
  {
    unsigned char buf[16];
    if (inet_pton(AF_INET, joiner.host.c_str(), buf) != 1 &&
        inet_pton(AF_INET6, joiner.host.c_str(), buf) != 1) {
      return Fail(ErrorCode::kInvalidArgument,
                  "the joining node's address '" + joiner.host + "' is not an IP address");
    }
  }
  auto store = JoinStore();
  auto view = ReadViewFrom(store);
  if (!view) return view.error().Wrap("reading the cluster");
  if (view->nodes.count(joiner.name) != 0) {
    return Fail(ErrorCode::kConflict, "a node named '" + joiner.name +
                                          "' is already a member; remove it first or give the "
                                          "new node another node.name");
  }
  if (joiner.witness) {
    if (auto refusal =
            WitnessJoinRefusal(VotingMembers(*view), Witnesses(*view), !cfg_.embedded_etcd());
        !refusal.empty()) {
      return Fail(ErrorCode::kFailedPrecondition, refusal);
    }
  }
  JoinGrant g;
  g.cluster = cfg_.cluster;
  g.secrets = *secrets_;
  NodeInfo reg = joiner;
  if (cfg_.embedded_etcd()) TANDEM_TRY(AddEtcdLearner(joiner, *view, store, &g, &reg));
  auto put = store->Txn({dcs::Compare::CreateRevisionIs(keys_.node(joiner.name), 0)},
                        {dcs::Op::Put(keys_.node(joiner.name), EncodeNodeInfo(reg))});
  if (!put.ok() || !put->succeeded) {
    if (g.etcd_member_id != 0) (void)store->MemberRemove(g.etcd_member_id);
    return put.ok() ? Fail(ErrorCode::kConflict, "node '" + joiner.name + "' registered meanwhile")
                    : put.error();
  }
  TLOG(Info, "agent") << "granted join to " << joiner.name << " at " << joiner.host;
  return g;
}

Status Agent::JoinEtcd(const JoinGrant& grant) {
  SetProgress("starting the local etcd member (learner)");
  etcd_.Stop();
  TANDEM_TRY(RemoveAll(cfg_.etcd_data_dir()));
  TANDEM_TRY(etcd_.Start(grant.initial_cluster, false));
  TANDEM_TRY(etcd_.WaitReachable(60'000));
  std::vector<std::string> eps = grant.etcd_endpoints;
  eps.push_back(cfg_.etcd_client_url());
  TANDEM_TRY(ConnectStore(eps));
  SetProgress("waiting for the local etcd member to catch up");
  Status promoted = Error(ErrorCode::kTimeout, "not tried");
  WaitFor(
      clock_,
      [&] {
        promoted = Store()->MemberPromote(grant.etcd_member_id);
        return promoted.ok();
      },
      60'000, stopping_);
  if (!promoted.ok()) return promoted.error().Wrap("promoting the etcd learner");
  eps.pop_back();
  eps.insert(eps.begin(), cfg_.etcd_client_url());
  TANDEM_TRY(ConnectStore(eps));
  return Ok();
}

namespace {

// The etcd member whose peer URLs include `peer_url`, if the list says so.
std::optional<dcs::Member> MemberAt(dcs::Dcs& store, const std::string& peer_url) {
  auto members = store.MemberList();
  if (!members) return std::nullopt;
  for (const auto& m : *members) {
    for (const auto& u : m.peer_urls) {
      if (u == peer_url) return m;
    }
  }
  return std::nullopt;
}

}  // namespace

namespace {

// Refuses a peer URL that a registered member uses; removes a member at that
// URL that no node registered (a leftover of a join that did not finish).
Status ClearStalePeer(const NodeInfo& joiner, const ClusterView& view, dcs::Dcs& store,
                      const std::function<Status(uint64_t)>& remove_member) {
  auto members = store.MemberList();
  if (!members) return members.error().Wrap("listing etcd members");
  for (const auto& m : *members) {
    for (const auto& u : m.peer_urls) {
      if (u != joiner.etcd_peer_url) continue;
      bool registered = false;
      for (const auto& [name, n] : view.nodes) registered = registered || n.etcd_member_id == m.id;
      if (registered) {
        return Fail(ErrorCode::kConflict, "etcd peer address " + u +
                                              " belongs to a registered member; give the new "
                                              "node its own address or dcs.etcd_peer_port");
      }
      // A leftover of an earlier join that did not finish: remove it.
      TLOG(Warn, "agent") << "removing stale etcd member " << m.id << " at " << u;
      TANDEM_TRY(remove_member(m.id));
    }
  }
  return Ok();
}

// etcd refuses membership changes for a few seconds after the previous one
// ("unhealthy cluster") until every member has been seen active, and a
// proposal can time out while the members settle after the last learner's
// promotion: retry both. A timed-out add may still be applied later; a
// retry is then refused ("Peer URLs already exists") and the member list
// holds the learner that attempt added, which is the one we wanted.
Result<dcs::Member> AddLearnerWithRetry(dcs::Dcs& store, const std::string& peer_url,
                                        const Clock& clock, const std::atomic<bool>& stopping) {
  Result<dcs::Member> added = Error(ErrorCode::kUnavailable, "not tried");
  bool timed_out = false;
  WaitFor(
      clock,
      [&] {
        added = store.MemberAdd({peer_url}, true);
        if (added.ok()) return true;
        if (added.error().code() == ErrorCode::kTimeout) {
          TLOG(Warn, "agent") << "adding the etcd learner: " << added.error().message()
                              << "; trying again";
          timed_out = true;
          return false;
        }
        if (timed_out) {
          if (auto m = MemberAt(store, peer_url)) {
            added = *m;
            return true;
          }
        }
        return added.error().code() != ErrorCode::kUnavailable;
      },
      60'000, stopping);
  return added;
}

// The learner's --initial-cluster and the other members' client URLs.
Status FillEtcdGrant(dcs::Dcs& store, const std::string& joiner_name, uint64_t added_id,
                     JoinGrant* g) {
  auto members = store.MemberList();
  if (!members) return members.error();
  std::vector<std::string> parts;
  for (const auto& m : *members) {
    std::string name = m.id == added_id ? joiner_name : m.name;
    if (name.empty() || m.peer_urls.empty()) continue;
    parts.push_back(name + "=" + m.peer_urls[0]);
    if (m.id != added_id && !m.client_urls.empty()) g->etcd_endpoints.push_back(m.client_urls[0]);
  }
  g->initial_cluster = Join(parts, ",");
  return Ok();
}

}  // namespace

Status Agent::AddEtcdLearner(const NodeInfo& joiner, const ClusterView& view,
                             const std::shared_ptr<dcs::Dcs>& store, JoinGrant* g, NodeInfo* reg) {
  if (joiner.etcd_peer_url.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                "the joining node runs no etcd member but this "
                "cluster uses embedded etcd");
  }
  TANDEM_TRY(
      ClearStalePeer(joiner, view, *store, [this](uint64_t id) { return RemoveEtcdMember(id); }));
  auto added = AddLearnerWithRetry(*store, joiner.etcd_peer_url, clock_, stopping_);
  if (!added) return added.error().Wrap("adding the etcd learner");
  g->etcd_member_id = added->id;
  reg->etcd_member_id = added->id;
  return FillEtcdGrant(*store, joiner.name, added->id, g);
}

}  // namespace tandem::agent
