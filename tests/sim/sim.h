// A deterministic simulation of a Tandem cluster: N nodes, each with a fake
// PostgreSQL and a fake agent that calls the real core::Decide(), all sharing
// one in-sim store with etcd's lease and transaction semantics. Time is a
// counter; faults come from a seeded PRNG; the safety rules of ARCHITECTURE.md
// are checked after every step.
//
// Nothing here depends on src/dcs or src/agent: the store and the agent are
// models written from the contracts (dcs.h, types.h), small enough to read.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/decide.h"
#include "core/route.h"
#include "core/types.h"

namespace tandem::sim {

using core::Decision;
using core::HaConfig;
using core::Observation;

// ---------------------------------------------------------------------------
// The store: keys with create/mod revisions, leases that expire on the
// simulated clock and delete their keys, and single-compare transactions.

struct StoreKv {
  std::string value;         // leader: the holder's name
  core::MemberState member;  // members/<name>: the published state
  core::SyncRecord sync;     // sync: the sync record
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

class SimStore {
 public:
  int64_t Grant(MonoMs now, int64_t ttl_ms);
  // Renews; false when the lease is gone (etcd: NotFound).
  bool KeepAlive(int64_t lease, MonoMs now);
  bool LeaseAlive(int64_t lease) const { return leases_.count(lease) != 0; }
  // Deletes every lease whose expiry is <= now, with its keys. Returns the
  // names of the expired leases' leader keys deleted (for the transcript).
  std::vector<std::string> ExpireLeases(MonoMs now);

  const StoreKv* Get(const std::string& key) const;
  std::vector<const StoreKv*> Prefix(const std::string& prefix) const;

  // Put on a lease (0 = none); false when the lease is not alive.
  bool Put(const std::string& key, StoreKv kv);
  // Txn: if key's create_revision (or mod_revision) == expected then put.
  bool PutIfCreateRevision(const std::string& key, int64_t expected, StoreKv kv);
  bool PutIfModRevision(const std::string& key, int64_t expected, StoreKv kv);
  bool DeleteIfModRevision(const std::string& key, int64_t expected);

  // Bumped on every change of the leader key (a watch event).
  int64_t leader_changes() const { return leader_changes_; }
  // The revision of the last change of the leader key.
  int64_t leader_change_revision() const { return leader_change_revision_; }
  int64_t revision() const { return revision_; }
  // Who the writes now come from ("" = the store itself: lease expiry), and
  // the revision of the last write each writer made (read-your-writes).
  void set_writer(std::string name) { writer_ = std::move(name); }
  int64_t LastWrittenBy(const std::string& name) const {
    auto it = last_written_.find(name);
    return it == last_written_.end() ? 0 : it->second;
  }

 private:
  void Touch(const std::string& key);
  std::map<std::string, StoreKv> kvs_;
  struct Lease {
    MonoMs expiry = 0;
    int64_t ttl_ms = 0;
  };
  std::map<int64_t, Lease> leases_;
  int64_t revision_ = 1;
  int64_t next_lease_ = 100;
  int64_t leader_changes_ = 0;
  int64_t leader_change_revision_ = 0;
  std::string writer_;
  std::map<std::string, int64_t> last_written_;
};

// ---------------------------------------------------------------------------
// Fake PostgreSQL data: a timeline history and a position on it.

// Timeline `timeline` holds WAL up to `end` (exclusive of later timelines);
// the current timeline's end is kOpen. Timeline numbers are unique in a run
// (a promotion takes max+1 of every timeline ever created), so a timeline
// number names one history.
struct TimelineSpan {
  uint32_t timeline = 1;
  uint64_t end = UINT64_MAX;
};
using History = std::vector<TimelineSpan>;
inline constexpr uint64_t kOpen = UINT64_MAX;

// Whether the position (timeline, lsn) lies on history h: h contains the
// timeline and the position is not past the point h switched away from it.
bool OnHistory(const History& h, uint32_t timeline, uint64_t lsn);
// The last position two histories share.
uint64_t CommonPoint(const History& a, const History& b);
// h cut at lsn: the spans a node replaying h up to lsn has seen.
History HistoryAt(const History& h, uint64_t lsn);

struct FakePg {
  bool running = false;
  bool standby_signal = true;  // starts in recovery (standby.signal present)
  bool in_recovery = true;     // valid while running
  History history{TimelineSpan{}};
  uint64_t lsn = 0x1000000;
  std::string following;   // the configured upstream (primary_conninfo)
  bool streaming = false;  // a WAL receiver is connected right now
  core::PgSyncSet sync;    // synchronous_standby_names (in the config file: survives crashes)
  uint32_t timeline() const { return history.back().timeline; }
};

// ---------------------------------------------------------------------------

using DecideFn = std::function<Decision(const Observation&, const HaConfig&)>;
using RouteFn = std::function<core::Route(
    const core::Route& previous, const Observation&, const Decision&,
    const std::map<std::string, core::Endpoint>&, const core::RouteConfig&)>;

struct SimOptions {
  int nodes = 3;
  uint64_t seed = 1;
  HaConfig cfg;
  MonoMs step_ms = 100;
  DecideFn decide = core::Decide;
  RouteFn route = core::RouteForCycle;  // the proxy's routing decision (Rule 5 is checked)
  std::vector<std::string> nofailover;  // names of members never promoted
  // Names of witnesses (docs/design/witness.md): nodes with no PostgreSQL
  // that vote in the store; checked never to act, hold the key, be routed to
  // or be counted as a synchronous standby.
  std::vector<std::string> witnesses;
  // The store answers only while a majority of its voters (every node,
  // witnesses included) is up: not crashed, paused or cut off from the others.
  bool store_needs_majority = false;
  bool random_rewind_failures = true;  // a rewind may fail and force a re-clone
  // Rule 3 (no acknowledged write lost) is checked when opt.cfg.sync_mode is
  // not off; set this to check it in asynchronous mode too, where it must
  // fail sometimes (proof that the check can see a loss).
  bool check_acknowledged_in_async = false;
  // > 0: each agent observes a consistent snapshot of the store taken up to
  // this long ago instead of the store as of now, as the agent's watched copy
  // may serve (docs/design/watched-view.md): never older than the node's own
  // last write, its previous view, or the last leader-key change (the watch
  // that wakes it).
  MonoMs stale_view_ms = 0;
};

struct Node {
  std::string name;
  bool nofailover = false;
  bool witness = false;  // no PostgreSQL: an agent and a store voter only
  // Faults.
  bool crashed = false;      // agent and PostgreSQL are down
  bool paused = false;       // the whole node is frozen (SIGSTOP)
  bool partitioned = false;  // its requests to the store fail
  bool flaky = false;        // its requests to the store are lost at random,
                             // before or after the store applied them
  MonoMs crashed_until = 0, paused_until = 0, partitioned_until = 0, flaky_until = 0;
  MonoMs start_fails_until = 0;  // PostgreSQL refuses to start before this
  // Disk: survives crashes.
  FakePg pg;
  bool needs_rewind = false;
  bool needs_reclone = false;
  // Agent memory: lost on a crash.
  int64_t lease = 0;
  MonoMs lease_deadline = 0;
  int start_failures = 0;
  MonoMs next_run = 0;
  int64_t seen_leader_changes = -1;
  int64_t last_view_revision = 0;  // the revision of the snapshot it last observed
  std::string last_reason;
  // The proxy's route (core::ComputeRoute), computed every cycle from the
  // view Decide saw, before acting.
  core::Route route;
  // Set at unpause: the first decision must fence a primary whose lease expired.
  bool check_wake = false;
  bool wake_must_demote = false;
};

class Cluster {
 public:
  explicit Cluster(SimOptions options);

  // One step of simulated time: leases expire, due faults heal, agents whose
  // timer fired (or that saw the leader key change) run, PostgreSQL writes and
  // streams, then every invariant is checked. No-op once a violation is found.
  void Step();
  void RunFor(MonoMs ms);
  // Steps until pred() holds (true) or `limit` ms pass (false).
  bool RunUntil(const std::function<bool()>& pred, MonoMs limit);

  // Faults. A duration of 0 means "until healed by hand".
  void Crash(const std::string& name, MonoMs down_for = 0);
  void Restart(const std::string& name);
  void Pause(const std::string& name, MonoMs for_ms = 0);
  void Unpause(const std::string& name);
  void Partition(const std::string& name, MonoMs for_ms = 0);
  void MakeFlaky(const std::string& name, MonoMs for_ms = 0);
  void Heal(const std::string& name);
  void KillPostgres(const std::string& name);
  void FailStarts(const std::string& name, MonoMs for_ms);
  void HealAll();
  // Applies one random fault to a random node.
  void RandomFault(std::mt19937_64& rng);

  // Queries.
  MonoMs now() const { return now_; }
  const HaConfig& cfg() const { return opt_.cfg; }
  Node& node(const std::string& name);
  const std::vector<Node>& nodes() const { return nodes_; }
  std::string LeaderHolder() const;  // "" when no leader key
  bool Writable(const Node& n) const;
  // A primary holds the key and every node runs PostgreSQL streaming from it.
  bool Converged() const;
  // The sync record in the store.
  std::optional<core::SyncRecord> ReadSync() const { return ReadSyncFrom(store_); }
  static std::optional<core::SyncRecord> ReadSyncFrom(const SimStore& store);
  // "" while every invariant held; else what broke, when, and the transcript.
  const std::string& violation() const { return violation_; }
  // Observations made on a snapshot older than the store (stale_view_ms).
  int64_t stale_views() const { return stale_views_; }
  std::string Transcript() const;
  std::string Summary() const;  // one line per node
  void Fail(const std::string& what);
  void Log(const std::string& line);

 private:
  void RunAgent(Node& n);
  bool Execute(Node& n, const core::Action& a, const Observation& obs);
  // One request from n to the store. Returns whether the store applies it;
  // *answered tells whether n learns the outcome (false = n sees a failure).
  bool Reach(const Node& n, bool* answered);
  // Raises the "timeline" key to at least `timeline`; true when n knows it did.
  bool RecordClusterTimeline(Node& n, uint32_t timeline);
  void StepPostgres(Node& n);
  void BecameWritable(Node& n, const char* how);
  // The primary's synchronous replication upkeep (the agent's MaintainSync).
  void MaintainSync(Node& n);
  bool WriteSync(Node& n, const core::SyncRecord& rec);
  // Advances the acknowledged position of the writable primary.
  void Acknowledge(const Node& n);
  void CheckInvariants();
  const Node* Find(const std::string& name) const;
  bool PgReachable(const Node& n) const { return !n.crashed && !n.paused && n.pg.running; }
  // With store_needs_majority: a majority of the voters is up.
  bool StoreQuorate() const;
  // The witness rules (docs/design/witness.md), checked after every step.
  void CheckWitnesses();
  // The agent's cycle on a witness: lease, member state, Decide (which must
  // return nothing), route.
  void RunWitness(Node& n, const Observation& obs);
  void StopPg(Node& n, bool crash);

  SimOptions opt_;
  std::mt19937_64 rng_;
  SimStore store_;
  // With stale_view_ms: the store as it was at the start of each recent step.
  std::deque<std::pair<MonoMs, SimStore>> past_;
  int64_t stale_views_ = 0;
  // The snapshot n observes this cycle (the store itself without stale_view_ms).
  const SimStore& ViewFor(Node& n);
  std::vector<Node> nodes_;
  MonoMs now_ = 0;
  int64_t steps_ = 0;
  uint32_t max_timeline_ = 1;
  History newest_history_{TimelineSpan{}};  // of the last timeline created
  // The newest write any client saw acknowledged: every later primary must
  // have it (Rule 3, under synchronous replication).
  History acked_history_{TimelineSpan{}};
  uint64_t acked_lsn_ = 0;
  std::deque<std::string> transcript_;
  std::string violation_;
};

// One random schedule: boot, inject faults for a while, heal everything and
// require convergence within 6 x ttl. Returns "" or the violation (with seed).
struct ScheduleResult {
  std::string violation;
  MonoMs simulated_ms = 0;
  int faults = 0;
  int64_t stale_views = 0;  // observations made on a snapshot older than the store
};
// `tweak` may change the drawn options (e.g. force a sync mode).
ScheduleResult RunRandomSchedule(uint64_t seed, const DecideFn& decide = core::Decide,
                                 const std::function<void(SimOptions&)>& tweak = {});

}  // namespace tandem::sim
