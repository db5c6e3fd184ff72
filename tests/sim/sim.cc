// The simulation: SimStore (leases and transactions with etcd's semantics),
// the nodes' fake PostgreSQL and fake agents around the real core::Decide,
// the faults (crash, pause, partition, flaky store, failed starts), the
// safety checks after every step, and RunRandomSchedule. One thread; time is
// a counter, randomness a seeded PRNG.
#include "sim/sim.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "base/strings.h"
#include "core/sync.h"

namespace tandem::sim {

using core::ActionType;

namespace {

constexpr size_t kTranscriptLines = 30;

std::string Pos(const FakePg& pg) {
  return "tl" + std::to_string(pg.timeline()) + "@" + FormatLsn(pg.lsn);
}

std::string Secs(MonoMs ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  return buf;
}

std::string ActionsText(const std::vector<core::Action>& actions) {
  std::string out;
  for (const core::Action& a : actions) {
    if (!out.empty()) out += ", ";
    out += core::ActionName(a.type);
    if (!a.target.empty() || a.type == ActionType::kStartReplica) out += " " + a.target;
  }
  return "[" + out + "]";
}

// The "timeline" key: "<timeline> <member that recorded it>".
std::pair<uint32_t, std::string> ParseTimelineRecord(const std::string& value) {
  const size_t space = value.find(' ');
  return {static_cast<uint32_t>(std::stoul(value.substr(0, space))),
          space == std::string::npos ? "" : value.substr(space + 1)};
}

}  // namespace

// ---------------------------------------------------------------------------
// SimStore

int64_t SimStore::Grant(MonoMs now, int64_t ttl_ms) {
  int64_t id = next_lease_++;
  leases_[id] = Lease{now + ttl_ms, ttl_ms};
  return id;
}

bool SimStore::KeepAlive(int64_t lease, MonoMs now) {
  auto it = leases_.find(lease);
  if (it == leases_.end()) return false;
  it->second.expiry = now + it->second.ttl_ms;
  return true;
}

std::vector<std::string> SimStore::ExpireLeases(MonoMs now) {
  std::vector<std::string> expired;
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.expiry > now) {
      ++it;
      continue;
    }
    const int64_t id = it->first;
    for (auto kv = kvs_.begin(); kv != kvs_.end();) {
      if (kv->second.lease == id) {
        if (kv->first == "leader") {
          expired.push_back("lease " + std::to_string(id) + " expired: leader key of " +
                            kv->second.value + " deleted");
        }
        Touch(kv->first);
        kv = kvs_.erase(kv);
      } else {
        ++kv;
      }
    }
    it = leases_.erase(it);
  }
  return expired;
}

const StoreKv* SimStore::Get(const std::string& key) const {
  auto it = kvs_.find(key);
  return it == kvs_.end() ? nullptr : &it->second;
}

std::vector<const StoreKv*> SimStore::Prefix(const std::string& prefix) const {
  std::vector<const StoreKv*> out;
  for (auto it = kvs_.lower_bound(prefix); it != kvs_.end() && StartsWith(it->first, prefix);
       ++it) {
    out.push_back(&it->second);
  }
  return out;
}

void SimStore::Touch(const std::string& key) {
  ++revision_;
  if (key == "leader") {
    ++leader_changes_;
    leader_change_revision_ = revision_;
  }
  if (!writer_.empty()) last_written_[writer_] = revision_;
}

bool SimStore::Put(const std::string& key, StoreKv kv) {
  if (kv.lease != 0 && !LeaseAlive(kv.lease)) return false;  // etcd: requested lease not found
  Touch(key);
  auto it = kvs_.find(key);
  kv.create_revision = it == kvs_.end() ? revision_ : it->second.create_revision;
  kv.mod_revision = revision_;
  kvs_[key] = std::move(kv);
  return true;
}

bool SimStore::PutIfCreateRevision(const std::string& key, int64_t expected, StoreKv kv) {
  const StoreKv* cur = Get(key);
  if ((cur ? cur->create_revision : 0) != expected) return false;
  return Put(key, std::move(kv));
}

bool SimStore::PutIfModRevision(const std::string& key, int64_t expected, StoreKv kv) {
  const StoreKv* cur = Get(key);
  if (!cur || cur->mod_revision != expected) return false;
  return Put(key, std::move(kv));
}

bool SimStore::DeleteIfModRevision(const std::string& key, int64_t expected) {
  auto it = kvs_.find(key);
  if (it == kvs_.end() || it->second.mod_revision != expected) return false;
  kvs_.erase(it);
  Touch(key);
  return true;
}

// ---------------------------------------------------------------------------
// Timeline histories

bool OnHistory(const History& h, uint32_t timeline, uint64_t lsn) {
  for (const TimelineSpan& s : h) {
    if (s.timeline == timeline) return lsn <= s.end;
  }
  return false;
}

uint64_t CommonPoint(const History& a, const History& b) {
  uint64_t common = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (a[i].timeline != b[i].timeline) return common;
    if (a[i].end != b[i].end) return std::min(a[i].end, b[i].end);
    common = a[i].end;
  }
  return common;
}

History HistoryAt(const History& h, uint64_t lsn) {
  History out;
  for (const TimelineSpan& s : h) {
    out.push_back(s);
    if (lsn < s.end) break;
  }
  out.back().end = kOpen;
  return out;
}

// ---------------------------------------------------------------------------
// Cluster

Cluster::Cluster(SimOptions options)
    : opt_(std::move(options)), rng_(opt_.seed * 0x9E3779B97F4A7C15ull + 1) {
  for (int i = 1; i <= opt_.nodes; ++i) {
    Node n;
    n.name = "n" + std::to_string(i);
    n.nofailover =
        std::find(opt_.nofailover.begin(), opt_.nofailover.end(), n.name) != opt_.nofailover.end();
    n.witness =
        std::find(opt_.witnesses.begin(), opt_.witnesses.end(), n.name) != opt_.witnesses.end();
    n.next_run = static_cast<MonoMs>(rng_() % static_cast<uint64_t>(opt_.cfg.loop_interval_ms));
    nodes_.push_back(std::move(n));
  }
  Log("cluster of " + std::to_string(opt_.nodes) + " nodes" +
      (opt_.witnesses.empty() ? "" : " (witness " + Join(opt_.witnesses, ", ") + ")") +
      (opt_.store_needs_majority ? ", the store needs a majority" : "") + ", ttl " +
      Secs(opt_.cfg.ttl_ms) + ", loop " + Secs(opt_.cfg.loop_interval_ms) + ", margin " +
      Secs(opt_.cfg.safety_margin_ms) + ", sync " + core::SyncModeName(opt_.cfg.sync_mode) + " x" +
      std::to_string(opt_.cfg.sync_count));
}

Node& Cluster::node(const std::string& name) {
  for (Node& n : nodes_) {
    if (n.name == name) return n;
  }
  std::fprintf(stderr, "sim: no node named %s\n", name.c_str());
  std::abort();
}

const Node* Cluster::Find(const std::string& name) const {
  for (const Node& n : nodes_) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

std::string Cluster::LeaderHolder() const {
  const StoreKv* kv = store_.Get("leader");
  return kv ? kv->value : "";
}

bool Cluster::Writable(const Node& n) const {
  return !n.crashed && !n.paused && n.pg.running && !n.pg.in_recovery;
}

bool Cluster::Converged() const {
  const std::string holder = LeaderHolder();
  const Node* leader = Find(holder);
  if (!leader || !Writable(*leader)) return false;
  for (const Node& n : nodes_) {
    if (&n == leader || n.witness) continue;  // a witness has no PostgreSQL to stream
    if (n.crashed || n.paused || !n.pg.running || !n.pg.in_recovery) return false;
    if (n.pg.following != holder || !n.pg.streaming) return false;
  }
  return true;
}

void Cluster::Log(const std::string& line) {
  transcript_.push_back(Secs(now_) + "  " + line);
  if (transcript_.size() > kTranscriptLines) transcript_.pop_front();
}

std::string Cluster::Transcript() const {
  std::string out;
  for (const std::string& line : transcript_) out += "  " + line + "\n";
  return out;
}

std::string Cluster::Summary() const {
  std::string out;
  const StoreKv* leader = store_.Get("leader");
  out += "  store: leader=" +
         (leader ? leader->value + " (lease " + std::to_string(leader->lease) + ")" : "none") +
         "\n";
  for (const Node& n : nodes_) {
    out += "  " + n.name + ":";
    if (n.witness) out += " WITNESS";
    if (n.crashed) out += " CRASHED";
    if (n.paused) out += " PAUSED";
    if (n.partitioned) out += " PARTITIONED";
    if (n.flaky) out += " FLAKY";
    out += n.pg.running ? (n.pg.in_recovery ? " standby" : " primary") : " stopped";
    out += " " + Pos(n.pg);
    if (!n.pg.following.empty()) {
      out += " following=" + n.pg.following + (n.pg.streaming ? "(streaming)" : "(not streaming)");
    }
    if (n.needs_rewind) out += " needs_rewind";
    if (n.needs_reclone) out += " needs_reclone";
    out += " lease=" + std::to_string(n.lease) + (store_.LeaseAlive(n.lease) ? "(alive)" : "");
    out += " deadline=" + Secs(n.lease_deadline) + "\n";
  }
  return out;
}

void Cluster::Fail(const std::string& what) {
  if (!violation_.empty()) return;
  violation_ = "seed " + std::to_string(opt_.seed) + ", step " + std::to_string(steps_) +
               " (t=" + Secs(now_) + "): " + what + "\nstate:\n" + Summary() + "last events:\n" +
               Transcript();
}

bool Cluster::StoreQuorate() const {
  if (!opt_.store_needs_majority) return true;
  size_t up = 0;
  for (const Node& o : nodes_) {
    if (!o.crashed && !o.paused && !o.partitioned) ++up;
  }
  return up >= nodes_.size() / 2 + 1;
}

bool Cluster::Reach(const Node& n, bool* answered) {
  if (n.partitioned || !StoreQuorate()) {
    *answered = false;
    return false;
  }
  if (n.flaky) {
    switch (rng_() % 3) {
      case 0:
        *answered = true;
        return true;
      case 1:
        *answered = false;
        return false;
      default:
        *answered = false;
        return true;  // applied, but the answer is lost
    }
  }
  *answered = true;
  return true;
}

void Cluster::StopPg(Node& n, bool crash) {
  n.pg.running = false;
  n.pg.streaming = false;
}

std::optional<core::SyncRecord> Cluster::ReadSyncFrom(const SimStore& store) {
  const StoreKv* kv = store.Get("sync");
  if (!kv) return std::nullopt;
  return kv->sync;
}

bool Cluster::WriteSync(Node& n, const core::SyncRecord& rec) {
  bool answered = false;
  if (!Reach(n, &answered)) return false;
  // The agent's txn: compare the sync key's revision and that we still lead.
  const StoreKv* leader = store_.Get("leader");
  if (!leader || leader->value != n.name) return false;
  const StoreKv* cur = store_.Get("sync");
  StoreKv kv;
  kv.sync = rec;
  bool ok = cur ? store_.PutIfModRevision("sync", cur->mod_revision, kv)
                : store_.PutIfCreateRevision("sync", 0, kv);
  if (ok) {
    Log(n.name + ": sync record " + core::DescribeSync(rec.members, rec.quorum) + " (" +
        core::SyncModeName(rec.mode) + ")");
  }
  return ok && answered;
}

void Cluster::MaintainSync(Node& n) {
  core::SyncInput in;
  in.self = n.name;
  in.mode = opt_.cfg.sync_mode;
  in.count = opt_.cfg.sync_count;
  in.record = ReadSync();
  in.pg = n.pg.sync;
  in.primary_flush_lsn = n.pg.lsn;
  for (const Node& o : nodes_) {
    if (&o == &n || o.crashed || !o.pg.running || !o.pg.in_recovery) continue;
    if (o.pg.following != n.name) continue;
    core::SyncStandby sb;
    sb.name = o.name;
    sb.streaming = o.pg.streaming && !o.paused;
    sb.flush_lsn = o.pg.lsn;
    sb.eligible = !o.nofailover && !o.needs_reclone;
    in.standbys.push_back(sb);
  }
  // A witness never streams; here it shows in pg_stat_replication at random
  // anyway (a forged application_name), caught up: PlanSync must not count it.
  for (const Node& o : nodes_) {
    if (!o.witness || o.crashed || rng_() % 2 == 0) continue;
    core::SyncStandby sb;
    sb.name = o.name;
    sb.streaming = true;
    sb.flush_lsn = n.pg.lsn;
    sb.witness = true;
    in.standbys.push_back(sb);
  }
  // The agent keeps a standby PostgreSQL waits for as reconnecting for a
  // grace after it stopped streaming; here any such standby may be, at random
  // (the grace's length is the agent's business; the rules must hold either way).
  for (const std::string& name : in.pg.names) {
    auto it = std::find_if(in.standbys.begin(), in.standbys.end(),
                           [&](const core::SyncStandby& s) { return s.name == name; });
    if ((it != in.standbys.end() && it->streaming) || rng_() % 2 == 0) continue;
    if (it == in.standbys.end()) {
      core::SyncStandby sb;
      sb.name = name;
      it = in.standbys.insert(in.standbys.end(), sb);
    }
    it->reconnecting = true;
  }
  for (int i = 0; i < 6; ++i) {
    const core::SyncStep step = core::PlanSync(in);
    if (step.kind == core::SyncStep::Kind::kNone) return;
    if (step.kind == core::SyncStep::Kind::kWriteRecord) {
      if (!WriteSync(n, step.record)) return;
      in.record = step.record;
    } else {
      n.pg.sync = step.pg;
      in.pg = step.pg;
      Log(n.name +
          ": synchronous_standby_names = " + core::DescribeSync(step.pg.names, step.pg.quorum));
    }
  }
}

void Cluster::Acknowledge(const Node& n) {
  // A commit at position x is acknowledged once `quorum` of the standbys
  // PostgreSQL waits for have flushed x (streaming from n, on its history).
  uint64_t acked = n.pg.lsn;
  if (n.pg.sync.quorum > 0) {
    std::vector<uint64_t> flushed;
    const bool any = n.pg.sync.names.size() == 1 && n.pg.sync.names[0] == core::kAnyStandby;
    for (const Node& o : nodes_) {
      if (&o == &n || o.crashed || !o.pg.running || !o.pg.in_recovery || !o.pg.streaming) continue;
      if (o.pg.following != n.name || !OnHistory(n.pg.history, o.pg.timeline(), o.pg.lsn)) continue;
      if (!any && std::find(n.pg.sync.names.begin(), n.pg.sync.names.end(), o.name) ==
                      n.pg.sync.names.end()) {
        continue;
      }
      flushed.push_back(o.pg.lsn);
    }
    if (flushed.size() < static_cast<size_t>(n.pg.sync.quorum)) return;  // writes wait
    std::sort(flushed.rbegin(), flushed.rend());
    acked = std::min(acked, flushed[static_cast<size_t>(n.pg.sync.quorum) - 1]);
  }
  // Only forward along the acknowledged history.
  if (OnHistory(n.pg.history, acked_history_.back().timeline, acked_lsn_) && acked > acked_lsn_) {
    acked_history_ = HistoryAt(n.pg.history, acked);
    acked_lsn_ = acked;
  }
}

void Cluster::BecameWritable(Node& n, const char* how) {
  // Rule 3: under synchronous replication, a new primary holds every
  // acknowledged write.
  if ((opt_.cfg.sync_mode != core::SyncMode::kOff || opt_.check_acknowledged_in_async) &&
      !OnHistory(n.pg.history, acked_history_.back().timeline, acked_lsn_)) {
    Fail("Rule 3: " + n.name + " became writable (" + how + ") at " + Pos(n.pg) +
         " without the acknowledged write at timeline " +
         std::to_string(acked_history_.back().timeline) + " " + FormatLsn(acked_lsn_));
    return;
  }
  // Rule 4: a node whose WAL diverged from the newest timeline (it has records
  // that timeline does not) must be rewound or re-cloned before it serves writes.
  if (!OnHistory(newest_history_, n.pg.timeline(), n.pg.lsn)) {
    Fail("Rule 4: " + n.name + " became writable (" + how + ") at " + Pos(n.pg) +
         ", which diverged from the newest timeline " +
         std::to_string(newest_history_.back().timeline) + " without a rewind");
  }
  n.needs_rewind = false;  // its history is now the one others must follow
}

// ---------------------------------------------------------------------------
// The agent: what src/agent does each cycle, in the same order.

void Cluster::RunAgent(Node& n) {
  const HaConfig& cfg = opt_.cfg;
  bool answered = false;
  // Every store write from here on is n's (read-your-writes, ViewFor).
  struct Writer {
    SimStore& s;
    ~Writer() { s.set_writer(""); }
  } writer{store_};
  store_.set_writer(n.name);

  // 1. Keep the session lease alive. The deadline counts from the moment the
  //    renewal was sent. A lease the store no longer knows is dropped for this
  //    cycle (Decide fences on it); a new one is granted on the next cycle.
  if (n.lease != 0) {
    bool applied = Reach(n, &answered);
    bool alive = applied && store_.KeepAlive(n.lease, now_);
    if (answered && alive) {
      n.lease_deadline = now_ + cfg.ttl_ms - cfg.safety_margin_ms;
    } else if (answered) {
      Log(n.name + ": lease " + std::to_string(n.lease) + " is gone from the store");
      n.lease = 0;
      n.lease_deadline = 0;
    }
  } else {
    bool applied = Reach(n, &answered);
    int64_t id = applied ? store_.Grant(now_, cfg.ttl_ms) : 0;
    if (answered) {
      n.lease = id;
      n.lease_deadline = now_ + cfg.ttl_ms - cfg.safety_margin_ms;
    }
  }

  // 2. Publish our member state on the lease.
  if (n.lease != 0 && Reach(n, &answered)) {
    StoreKv kv;
    kv.lease = n.lease;
    core::MemberState& m = kv.member;
    m.name = n.name;
    m.role = n.witness       ? core::Role::kWitness
             : !n.pg.running ? core::Role::kStopped
                             : (n.pg.in_recovery ? core::Role::kReplica : core::Role::kPrimary);
    m.timeline = n.pg.timeline();
    m.lsn = n.pg.lsn;
    m.replay_lsn = n.pg.lsn;
    m.following = n.pg.following;
    m.streaming = n.pg.streaming;
    // Data that needs a re-clone cannot be promoted; if we advertised it, the
    // others would wait for us forever when there is no leader to clone from.
    m.nofailover = n.nofailover || n.needs_reclone || n.witness;
    if (n.witness) m.timeline = 0, m.lsn = 0, m.replay_lsn = 0;
    // Written only when it changed, as the agent does (PublishMember).
    const StoreKv* old = store_.Get("members/" + n.name);
    const bool same = old && old->lease == kv.lease && old->member.role == m.role &&
                      old->member.timeline == m.timeline && old->member.lsn == m.lsn &&
                      old->member.following == m.following &&
                      old->member.streaming == m.streaming &&
                      old->member.nofailover == m.nofailover;
    if (!same) (void)store_.Put("members/" + n.name, std::move(kv));
  }

  // 3. Observe.
  Observation obs;
  obs.now = now_;
  obs.self = n.name;
  obs.witness = n.witness;
  Reach(n, &answered);
  obs.store_ok = answered;
  if (obs.store_ok) {
    const SimStore& view = ViewFor(n);
    if (const StoreKv* kv = view.Get("leader")) {
      obs.leader = core::LeaderKey{kv->value, kv->mod_revision, kv->lease};
    }
    for (const StoreKv* kv : view.Prefix("members/")) obs.members.push_back(kv->member);
    if (const StoreKv* kv = view.Get("timeline")) {
      const auto [timeline, writer] = ParseTimelineRecord(kv->value);
      obs.cluster_timeline = timeline;
      // We announced a promotion that our PostgreSQL never carried out (the
      // write's answer was lost, or PostgreSQL died first): take it back, or
      // nobody could ever be promoted again.
      if (writer == n.name && n.pg.timeline() + 1 == timeline) {
        StoreKv back;
        back.value = std::to_string(n.pg.timeline()) + " " + n.name;
        bool answered_back = false;
        if (Reach(n, &answered_back) &&
            store_.PutIfModRevision("timeline", kv->mod_revision, back)) {
          Log(n.name + ": retracted cluster timeline " + std::to_string(timeline) +
              ", its promotion never happened");
          if (answered_back) obs.cluster_timeline = n.pg.timeline();
        }
      }
    }
    obs.sync = ReadSyncFrom(view);
    n.seen_leader_changes = store_.leader_changes();
  }
  if (n.witness) {
    RunWitness(n, obs);
    return;
  }
  // Like Patroni's timeline check before following: ask the leader for its
  // timeline history; if our position is not on it we must rewind.
  if (obs.leader && obs.leader->holder != n.name && !n.needs_rewind) {
    const Node* leader = Find(obs.leader->holder);
    if (leader && PgReachable(*leader) &&
        !OnHistory(leader->pg.history, n.pg.timeline(), n.pg.lsn)) {
      n.needs_rewind = true;
      Log(n.name + ": position " + Pos(n.pg) + " is not on " + leader->name +
          "'s timeline history: needs a rewind");
    }
  }
  obs.pg.running = n.pg.running;
  obs.pg.in_recovery = n.pg.running && n.pg.in_recovery;
  obs.pg.timeline = n.pg.timeline();
  obs.pg.lsn = n.pg.lsn;
  obs.pg.following = n.pg.following;
  obs.pg.needs_rewind = n.needs_rewind;
  obs.pg.needs_reclone = n.needs_reclone;
  obs.pg.start_failures = n.start_failures;
  obs.lease = n.lease;
  obs.lease_deadline = n.lease_deadline;

  // 4. Decide.
  Decision d = opt_.decide(obs, cfg);
  bool promotes = false;
  for (const core::Action& a : d.actions) promotes = promotes || a.type == ActionType::kPromote;
  if (promotes && !obs.leader) {
    // The agent asks every member for its position before promoting; one
    // that does not answer is dropped under a sync record.
    const bool sync_rules = obs.sync && obs.sync->mode != core::SyncMode::kOff;
    std::vector<core::MemberState> fresh;
    for (core::MemberState m : obs.members) {
      const Node* o = Find(m.name);
      if (m.name != n.name && m.role == core::Role::kReplica) {
        if (o && !o->crashed && !o->paused && o->pg.running && o->pg.in_recovery) {
          m.timeline = o->pg.timeline();
          m.lsn = o->pg.lsn;
        } else if (sync_rules) {
          continue;
        }
      }
      fresh.push_back(m);
    }
    obs.members = std::move(fresh);
    d = opt_.decide(obs, cfg);
  }
  if (n.check_wake) {
    n.check_wake = false;
    if (n.wake_must_demote &&
        (d.actions.empty() || d.actions.front().type != ActionType::kDemote)) {
      Fail("Rule 2: " + n.name +
           " woke from a pause as a writable primary whose lease expired in the store, but its "
           "first decision was " +
           ActionsText(d.actions) + " (" + d.reason + ")");
    }
  }
  {
    std::map<std::string, core::Endpoint> addresses;
    for (const Node& o : nodes_) addresses[o.name] = core::Endpoint{o.name, 5432};
    core::RouteConfig rc;
    rc.validity_ms = cfg.ttl_ms;
    n.route = opt_.route(n.route, obs, d, addresses, rc);
  }
  if (!d.actions.empty() || d.reason != n.last_reason) {
    Log(n.name + ": " + d.reason + (d.actions.empty() ? "" : " -> " + ActionsText(d.actions)));
    n.last_reason = d.reason;
  }

  // 5. Act, in order, stopping at the first failure.
  for (const core::Action& a : d.actions) {
    if (!Execute(n, a, obs)) {
      Log(n.name + ": " + core::ActionName(a.type) + " failed; skipping the rest");
      n.last_reason.clear();
      break;
    }
  }
  // 6. As leader, make sure the store knows our timeline (PostgreSQL may
  //    have picked a higher one than the agent recorded before promoting).
  if (obs.store_ok && Writable(n) && n.pg.timeline() > obs.cluster_timeline) {
    (void)RecordClusterTimeline(n, n.pg.timeline());
  }
  if (obs.store_ok && Writable(n) && LeaderHolder() == n.name) MaintainSync(n);
  n.next_run = now_ + cfg.loop_interval_ms;
}

void Cluster::RunWitness(Node& n, const Observation& obs_in) {
  // The agent's witness cycle: no PostgreSQL observed or touched.
  Observation obs = obs_in;
  obs.lease = n.lease;
  obs.lease_deadline = n.lease_deadline;
  const Decision d = opt_.decide(obs, opt_.cfg);
  if (!d.actions.empty()) {
    Fail("Witness: " + n.name + " (no PostgreSQL) decided " + ActionsText(d.actions) + " (" +
         d.reason + ")");
    return;
  }
  std::map<std::string, core::Endpoint> addresses;
  for (const Node& o : nodes_) addresses[o.name] = core::Endpoint{o.name, 5432};
  core::RouteConfig rc;
  rc.validity_ms = opt_.cfg.ttl_ms;
  n.route = opt_.route(n.route, obs, d, addresses, rc);
  if (d.reason != n.last_reason) {
    Log(n.name + ": " + d.reason);
    n.last_reason = d.reason;
  }
  n.next_run = now_ + opt_.cfg.loop_interval_ms;
}

void Cluster::CheckWitnesses() {
  const std::string holder = LeaderHolder();
  const auto sync = ReadSync();
  for (const Node& w : nodes_) {
    if (!w.witness) continue;
    if (w.pg.running) {
      Fail("Witness: " + w.name + " runs PostgreSQL");
      return;
    }
    if (holder == w.name) {
      Fail("Witness: the leader key is held by the witness " + w.name);
      return;
    }
    if (sync &&
        std::find(sync->members.begin(), sync->members.end(), w.name) != sync->members.end()) {
      Fail("Witness: the sync record " + core::DescribeSync(sync->members, sync->quorum) +
           " counts the witness " + w.name);
      return;
    }
    for (const Node& n : nodes_) {
      const auto& names = n.pg.sync.names;
      if (std::find(names.begin(), names.end(), w.name) != names.end()) {
        Fail("Witness: " + n.name + "'s synchronous_standby_names waits for the witness " + w.name);
        return;
      }
      const auto& r = n.route;
      bool routed = r.read_write && r.read_write->member == w.name;
      for (const auto& t : r.read_only) routed = routed || t.member == w.name;
      if (routed) {
        Fail("Witness: " + n.name + "'s proxy routes to the witness " + w.name + " (" + r.reason +
             ")");
        return;
      }
    }
  }
}

bool Cluster::RecordClusterTimeline(Node& n, uint32_t timeline) {
  bool answered = false;
  if (!Reach(n, &answered)) return false;
  // One txn: compare the mod_revision just read, put the larger timeline.
  const StoreKv* cur = store_.Get("timeline");
  const uint32_t stored = cur ? ParseTimelineRecord(cur->value).first : 0;
  if (stored < timeline) {
    StoreKv kv;
    kv.value = std::to_string(timeline) + " " + n.name;
    bool ok = cur ? store_.PutIfModRevision("timeline", cur->mod_revision, kv)
                  : store_.PutIfCreateRevision("timeline", 0, kv);
    if (!ok) return false;
    Log(n.name + ": recorded cluster timeline " + kv.value);
  }
  return answered;
}

bool Cluster::Execute(Node& n, const core::Action& a, const Observation& obs) {
  bool answered = false;
  auto leader_kv = [&] {
    StoreKv kv;
    kv.value = n.name;
    kv.lease = n.lease;
    return kv;
  };
  auto start = [&](bool as_standby, const std::string& upstream) {
    if (now_ < n.start_fails_until) {
      ++n.start_failures;
      return false;
    }
    if (as_standby) n.pg.standby_signal = true;
    n.pg.running = true;
    n.pg.in_recovery = n.pg.standby_signal;
    n.pg.following = n.pg.in_recovery ? upstream : "";
    n.pg.streaming = false;
    n.start_failures = 0;
    return true;
  };

  switch (a.type) {
    case ActionType::kAcquireLeader: {
      if (n.lease == 0) return false;
      bool applied = Reach(n, &answered);
      bool ok = applied && store_.PutIfCreateRevision("leader", 0, leader_kv());
      if (ok) Log(n.name + ": created the leader key on lease " + std::to_string(n.lease));
      return ok && answered;
    }
    case ActionType::kTakeOverLeader: {
      if (n.lease == 0 || !obs.leader) return false;
      bool applied = Reach(n, &answered);
      bool ok = applied && store_.PutIfModRevision("leader", obs.leader->mod_revision, leader_kv());
      if (ok) Log(n.name + ": moved the leader key onto lease " + std::to_string(n.lease));
      return ok && answered;
    }
    case ActionType::kReleaseLeader: {
      if (!obs.leader) return false;
      bool applied = Reach(n, &answered);
      bool ok = applied && store_.DeleteIfModRevision("leader", obs.leader->mod_revision);
      if (ok) Log(n.name + ": deleted the leader key");
      return ok && answered;
    }
    case ActionType::kPromote: {
      if (!n.pg.running || !n.pg.in_recovery) return false;
      const core::PromotionSync ps =
          core::SyncForPromotion(obs.sync, n.name, opt_.cfg.sync_mode, opt_.cfg.sync_count);
      if (ps.record && !WriteSync(n, *ps.record)) return false;
      n.pg.sync = ps.pg;
      // Record the timeline this promotion creates BEFORE creating it, so no
      // crash or lost answer can leave a newer timeline the store does not know.
      if (!RecordClusterTimeline(n, n.pg.timeline() + 1)) return false;
      BecameWritable(n, "promote");
      n.pg.history.back().end = n.pg.lsn;
      n.pg.history.push_back(TimelineSpan{++max_timeline_, kOpen});
      newest_history_ = n.pg.history;
      n.pg.standby_signal = false;
      n.pg.in_recovery = false;
      n.pg.following.clear();
      n.pg.streaming = false;
      Log(n.name + ": promoted to timeline " + std::to_string(max_timeline_) + " at " +
          FormatLsn(n.pg.lsn));
      return true;
    }
    case ActionType::kDemote: {
      if (n.pg.running) {
        bool was_primary = !n.pg.in_recovery;
        StopPg(n, false);
        if (was_primary) n.needs_rewind = true;
      }
      return true;
    }
    case ActionType::kStartPrimary: {
      if (n.pg.running) return true;
      if (!start(false, "")) return false;
      if (!n.pg.in_recovery) BecameWritable(n, "start-primary");
      return true;
    }
    case ActionType::kStartReplica: {
      if (n.pg.running) return false;
      return start(true, a.target);
    }
    case ActionType::kFollow: {
      if (!n.pg.running || !n.pg.in_recovery) return false;
      n.pg.following = a.target;
      n.pg.streaming = false;
      return true;
    }
    case ActionType::kRewind:
    case ActionType::kReclone: {
      const Node* src = Find(a.target);
      if (!src || !PgReachable(*src)) return false;  // needs the source running
      StopPg(n, false);
      if (a.type == ActionType::kRewind) {
        if (opt_.random_rewind_failures && rng_() % 16 == 0) {
          n.needs_reclone = true;
          Log(n.name + ": pg_rewind from " + src->name + " failed: needs a re-clone");
          return false;
        }
        const uint64_t common = CommonPoint(n.pg.history, src->pg.history);
        n.pg.lsn = std::min(n.pg.lsn, common);
        n.pg.history = HistoryAt(src->pg.history, n.pg.lsn);
        Log(n.name + ": rewound onto " + src->name + " at " + Pos(n.pg));
      } else {
        n.pg.lsn = src->pg.lsn;
        n.pg.history = HistoryAt(src->pg.history, n.pg.lsn);
        n.needs_reclone = false;
        Log(n.name + ": re-cloned from " + src->name + " at " + Pos(n.pg));
      }
      n.needs_rewind = false;
      return start(true, a.target);
    }
    case ActionType::kStepDown:
      return false;  // no operator intents in the simulation
  }
  return false;
}

// ---------------------------------------------------------------------------
// PostgreSQL: the primary takes writes; standbys stream from their upstream.

void Cluster::StepPostgres(Node& n) {
  if (n.crashed || n.paused || !n.pg.running || !n.pg.in_recovery) return;
  n.pg.streaming = false;
  const Node* src = Find(n.pg.following);
  if (!src || !PgReachable(*src)) return;
  // Real PostgreSQL refuses: "requested starting point is not in this server's history".
  if (!OnHistory(src->pg.history, n.pg.timeline(), n.pg.lsn)) return;
  // ...or "requested starting point is ahead of the WAL flush position".
  if (n.pg.lsn > src->pg.lsn) return;
  n.pg.streaming = true;
  if (src->pg.lsn > n.pg.lsn) {
    uint64_t rate = (64u << 10) + rng_() % (1u << 20);
    n.pg.lsn = std::min(src->pg.lsn, n.pg.lsn + rate);
  }
  n.pg.history = HistoryAt(src->pg.history, n.pg.lsn);
}

// ---------------------------------------------------------------------------
// Faults

void Cluster::Crash(const std::string& name, MonoMs down_for) {
  Node& n = node(name);
  if (n.crashed) return;
  Log("FAULT crash " + name + (down_for ? " for " + Secs(down_for) : ""));
  StopPg(n, true);
  n.crashed = true;
  n.paused = false;
  n.crashed_until = down_for ? now_ + down_for : 0;
  n.lease = 0;  // agent memory is gone; the old lease lives on in the store until it expires
  n.lease_deadline = 0;
  n.start_failures = 0;
  n.last_reason.clear();
  n.check_wake = false;
  n.route = core::Route{};
}

void Cluster::Restart(const std::string& name) {
  Node& n = node(name);
  if (!n.crashed) return;
  Log("HEAL restart " + name);
  n.crashed = false;
  n.next_run = now_;
  n.seen_leader_changes = -1;
}

void Cluster::Pause(const std::string& name, MonoMs for_ms) {
  Node& n = node(name);
  if (n.crashed || n.paused) return;
  Log("FAULT pause " + name + (for_ms ? " for " + Secs(for_ms) : ""));
  n.paused = true;
  n.paused_until = for_ms ? now_ + for_ms : 0;
}

void Cluster::Unpause(const std::string& name) {
  Node& n = node(name);
  if (!n.paused) return;
  n.paused = false;
  n.check_wake = true;
  n.wake_must_demote = Writable(n) && (n.lease == 0 || !store_.LeaseAlive(n.lease));
  n.next_run = now_;  // the agent's timer is long overdue: it runs first
  Log("HEAL unpause " + name + (n.wake_must_demote ? " (writable primary, lease expired)" : ""));
}

void Cluster::Partition(const std::string& name, MonoMs for_ms) {
  Node& n = node(name);
  if (n.partitioned) return;
  Log("FAULT partition " + name + " from the store" + (for_ms ? " for " + Secs(for_ms) : ""));
  n.partitioned = true;
  n.partitioned_until = for_ms ? now_ + for_ms : 0;
}

void Cluster::MakeFlaky(const std::string& name, MonoMs for_ms) {
  Node& n = node(name);
  if (n.flaky) return;
  Log("FAULT flaky link " + name + "<->store" + (for_ms ? " for " + Secs(for_ms) : ""));
  n.flaky = true;
  n.flaky_until = for_ms ? now_ + for_ms : 0;
}

void Cluster::Heal(const std::string& name) {
  Node& n = node(name);
  if (n.partitioned) Log("HEAL partition of " + name);
  if (n.flaky) Log("HEAL flaky link of " + name);
  n.partitioned = false;
  n.flaky = false;
}

void Cluster::KillPostgres(const std::string& name) {
  Node& n = node(name);
  if (n.crashed || !n.pg.running) return;
  Log("FAULT kill postgres of " + name);
  StopPg(n, true);
}

void Cluster::FailStarts(const std::string& name, MonoMs for_ms) {
  Log("FAULT postgres of " + name + " fails to start for " + Secs(for_ms));
  node(name).start_fails_until = now_ + for_ms;
}

void Cluster::HealAll() {
  for (Node& n : nodes_) {
    Restart(n.name);
    Unpause(n.name);
    Heal(n.name);
    n.start_fails_until = 0;
  }
}

void Cluster::RandomFault(std::mt19937_64& rng) {
  const std::string& name = nodes_[rng() % nodes_.size()].name;
  const int64_t ttl = opt_.cfg.ttl_ms;
  auto span = [&](double lo, double hi) {
    double f = lo + (hi - lo) * static_cast<double>(rng() % 1000) / 1000.0;
    return std::max<MonoMs>(opt_.step_ms, static_cast<MonoMs>(f * static_cast<double>(ttl)));
  };
  switch (rng() % 12) {
    case 0:
    case 1:
    case 2:
      Crash(name, span(0.2, 4));
      break;
    case 3:
    case 4:
      Pause(name, span(0.1, 3));
      break;
    case 5:
    case 6:
    case 7:
      Partition(name, span(0.2, 4));
      break;
    case 8:
      MakeFlaky(name, span(0.5, 4));
      break;
    case 9:
    case 10:
      KillPostgres(name);
      break;
    default:
      FailStarts(name, span(0.5, 3));
      break;
  }
}

// ---------------------------------------------------------------------------
// Time and checks

const SimStore& Cluster::ViewFor(Node& n) {
  if (opt_.stale_view_ms <= 0) return store_;
  // Any snapshot the watched copy could serve: not older than what this node
  // wrote or saw last, nor than the leader-key change its watch delivered.
  int64_t need = std::max(store_.LastWrittenBy(n.name), n.last_view_revision);
  if (!n.partitioned) need = std::max(need, store_.leader_change_revision());
  std::vector<const SimStore*> fit{&store_};
  for (const auto& [at, snap] : past_) {
    if (snap.revision() >= need) fit.push_back(&snap);
  }
  const SimStore* view = fit[rng_() % fit.size()];
  n.last_view_revision = view->revision();
  if (view->revision() < store_.revision()) ++stale_views_;
  return *view;
}

void Cluster::Step() {
  if (!violation_.empty()) return;
  now_ += opt_.step_ms;
  ++steps_;
  for (const std::string& line : store_.ExpireLeases(now_)) Log("store: " + line);
  if (opt_.stale_view_ms > 0) {
    past_.emplace_back(now_, store_);
    while (!past_.empty() && past_.front().first < now_ - opt_.stale_view_ms) past_.pop_front();
  }
  for (Node& n : nodes_) {
    if (n.crashed && n.crashed_until && now_ >= n.crashed_until) Restart(n.name);
    if (n.paused && n.paused_until && now_ >= n.paused_until) Unpause(n.name);
    if (n.partitioned && n.partitioned_until && now_ >= n.partitioned_until) {
      Log("HEAL partition of " + n.name);
      n.partitioned = false;
    }
    if (n.flaky && n.flaky_until && now_ >= n.flaky_until) {
      Log("HEAL flaky link of " + n.name);
      n.flaky = false;
    }
  }

  // Agents run in a random order each step: races between them are the point.
  std::vector<size_t> order(nodes_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng_);
  for (size_t i : order) {
    Node& n = nodes_[i];
    if (n.crashed || n.paused) continue;
    bool watch_event = !n.partitioned && n.seen_leader_changes != store_.leader_changes();
    if (now_ >= n.next_run || watch_event) RunAgent(n);
    if (!violation_.empty()) return;
  }

  for (Node& n : nodes_) {
    if (Writable(n) && rng_() % 4 != 0) n.pg.lsn += rng_() % (256u << 10);
  }
  for (size_t i : order) StepPostgres(nodes_[i]);
  for (const Node& n : nodes_) {
    if (Writable(n)) Acknowledge(n);
  }
  CheckInvariants();
}

void Cluster::CheckInvariants() {
  const std::string holder = LeaderHolder();
  std::vector<std::string> writable;
  for (const Node& n : nodes_) {
    if (!Writable(n)) continue;
    writable.push_back(n.name);
    if (n.lease == 0 || !store_.LeaseAlive(n.lease)) {
      Fail("Rule 2: " + n.name + " is a writable primary but its lease " + std::to_string(n.lease) +
           " has expired in the store");
      return;
    }
    if (holder != n.name) {
      Fail("Rule 1/5: " + n.name + " is a writable primary but the leader key is held by " +
           (holder.empty() ? std::string("nobody") : holder));
      return;
    }
  }
  if (writable.size() > 1) {
    Fail("Rule 1: more than one writable primary: " + Join(writable, ", "));
    return;
  }
  CheckWitnesses();
  if (!violation_.empty()) return;
  // Rule 5: a proxy's write route to its own node, while in force, names the
  // key holder on a lease still alive in the store. (A route to another node
  // can outlive that node's key by up to a cycle; Rule 1 and 2 keep that
  // node from writing meanwhile.)
  for (const Node& n : nodes_) {
    const auto& rw = n.route.read_write;
    if (n.crashed || !rw || now_ >= n.route.valid_until || rw->member != n.name) continue;
    if (holder != n.name || n.lease == 0 || !store_.LeaseAlive(n.lease)) {
      Fail("Rule 5: " + n.name + "'s proxy routes writes to itself (" + n.route.reason +
           ") but the leader key is held by " + (holder.empty() ? std::string("nobody") : holder) +
           " and its lease " + std::to_string(n.lease) +
           (n.lease != 0 && store_.LeaseAlive(n.lease) ? " is alive" : " is gone"));
      return;
    }
  }
  for (const Node& n : nodes_) {
    if (!n.pg.streaming || n.paused || n.crashed) continue;  // frozen: receives nothing
    const Node* src = Find(n.pg.following);
    if (!src || !OnHistory(src->pg.history, n.pg.timeline(), n.pg.lsn)) {
      Fail("Rule 4: " + n.name + " streams from " + n.pg.following + " at " + Pos(n.pg) +
           ", which is not on that server's timeline history");
      return;
    }
  }
}

void Cluster::RunFor(MonoMs ms) {
  const MonoMs end = now_ + ms;
  while (now_ < end && violation_.empty()) Step();
}

bool Cluster::RunUntil(const std::function<bool()>& pred, MonoMs limit) {
  const MonoMs end = now_ + limit;
  while (violation_.empty()) {
    if (pred()) return true;
    if (now_ >= end) return false;
    Step();
  }
  return false;
}

// ---------------------------------------------------------------------------
// Random schedules

ScheduleResult RunRandomSchedule(uint64_t seed, const DecideFn& decide,
                                 const std::function<void(SimOptions&)>& tweak) {
  std::mt19937_64 rng(seed);
  SimOptions opt;
  opt.seed = seed;
  opt.decide = decide;
  opt.nodes = 3 + static_cast<int>(rng() % 3);
  static const int64_t kTtls[] = {3000, 4000, 5000, 10000};
  static const int64_t kLoops[] = {500, 1000};
  do {
    opt.cfg.ttl_ms = kTtls[rng() % 4];
    opt.cfg.loop_interval_ms = kLoops[rng() % 2];
    opt.cfg.safety_margin_ms =
        opt.cfg.loop_interval_ms + 100 * static_cast<int64_t>(1 + rng() % 20);
  } while (!core::CheckTiming(opt.cfg).empty());
  opt.cfg.max_start_failures = 1 + static_cast<int>(rng() % 3);
  static const core::SyncMode kModes[] = {core::SyncMode::kOff, core::SyncMode::kQuorum,
                                          core::SyncMode::kQuorum, core::SyncMode::kStrict};
  opt.cfg.sync_mode = kModes[rng() % 4];
  opt.cfg.sync_count = 1 + static_cast<int>(rng() % 2);
  if (rng() % 4 == 0) opt.nofailover.push_back("n" + std::to_string(1 + rng() % opt.nodes));
  if (tweak) tweak(opt);

  Cluster c(opt);
  ScheduleResult result;
  const int64_t ttl = opt.cfg.ttl_ms;
  if (!c.RunUntil([&] { return c.Converged(); }, 6 * ttl)) {
    c.Fail("liveness: the cluster did not elect a primary within 6 x ttl of booting");
  }
  const MonoMs fault_end = c.now() + ttl * static_cast<int64_t>(6 + rng() % 10);
  // On average one fault per ttl; they overlap freely.
  while (c.now() < fault_end && c.violation().empty()) {
    if (rng() % static_cast<uint64_t>(ttl / opt.step_ms) == 0) {
      c.RandomFault(rng);
      ++result.faults;
    }
    c.Step();
  }
  if (c.violation().empty()) {
    c.Log("HEAL everything");
    c.HealAll();
    if (!c.RunUntil([&] { return c.Converged(); }, 6 * ttl)) {
      c.Fail("liveness: no primary with every node following it within 6 x ttl after healing");
    }
    c.RunFor(2 * ttl);
    if (c.violation().empty() && !c.Converged()) {
      c.Fail("liveness: the cluster lost its primary or a follower with no fault active");
    }
  }
  result.violation = c.violation();
  result.simulated_ms = c.now();
  result.stale_views = c.stale_views();
  return result;
}

}  // namespace tandem::sim
