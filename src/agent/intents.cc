// The operator intents (switchover, failover, pause, history) and their
// execution on the loop: the request's clean-up (MaintainIntent), the
// switchover step-down, the positions asked before a promotion. The rules are
// in src/core (decide.cc); this file only reads and writes the store and
// PostgreSQL. Synchronous replication upkeep is in sync_upkeep.cc.
//
// Threads: Request*/SetPaused/HistoryJson/PositionJson on API workers;
// MaintainIntent, StepDown and RefreshPositions on the HA loop.
// Touches: the store, pg_ (StepDown stops it), mu_ (state_), fence_deadline_.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/tls_files.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/strings.h"
#include "core/switchover_time.h"
#include "core/sync.h"
#include "net/http_client.h"

namespace tandem::agent {
namespace {

// How long a request stays valid once due: enough for a target to catch up
// and for a slow cycle, short enough that a stuck one does not block failover.
constexpr int64_t kIntentLifetimeMs = 30'000;
// How long a switchover request waits for a replica that is reconnecting.
constexpr int64_t kSwitchoverWaitForReplicaMs = 10'000;
// Asking a member for its position before promoting.
constexpr int64_t kPositionTimeoutMs = 500;

// The event of a request's end: done (finished), moot (another node leads:
// finished, not as asked) or expired (failed).
void RecordIntentEnd(Agent& agent, const IntentRecord& rec, const std::string& why) {
  const bool switchover = rec.intent.kind == core::Intent::Kind::kSwitchover;
  const std::string what = switchover ? "switchover" : "failover";
  const bool expired = why == "expired";
  agent.RecordEvent(
      expired ? core::EventKind::kOperationFailed : core::EventKind::kOperationFinished,
      what + (expired ? " expired before it completed" : " " + why),
      {{"operation", what}, {"result", why}, {"to", rec.intent.to}});
}

}  // namespace

void Agent::MaintainIntent(const ClusterView& view, const core::LocalPostgres& local) {
  if (!view.intent) return;
  const bool leading =
      view.leader && view.leader->holder == cfg_.node_name && local.running && !local.in_recovery;
  const IntentRecord& rec = *view.intent;
  const int64_t now = clock_.WallNow();
  std::string why;
  if (now >= rec.expires_ms) {
    why = "expired";
  } else if (leading) {
    const core::Intent& i = rec.intent;
    if (i.kind == core::Intent::Kind::kFailover) {
      why = i.to == cfg_.node_name ? "done" : "moot: " + cfg_.node_name + " leads";
    } else if (i.final_lsn != 0) {
      why = "done";
    } else if (!i.from.empty() && i.from != cfg_.node_name) {
      why = "moot: " + cfg_.node_name + " leads";
    }
  }
  if (why.empty()) return;
  auto store = Store();
  if (!store) return;
  auto r = store->Txn({dcs::Compare::ModRevisionIs(keys_.intent(), rec.mod_revision)},
                      {dcs::Op::Delete(keys_.intent())});
  if (r && r->succeeded) TLOG(Info, "ha") << "operator request cleared (" << why << ")";
  if (r && r->succeeded) RecordIntentEnd(*this, rec, why);
}

Status Agent::StepDown(const core::Observation& obs, const ClusterView& view,
                       const std::string& target) {
  auto store = Store();
  if (!store || !obs.leader || !view.intent) {
    return Error(ErrorCode::kFailedPrecondition, "no leader key or request to step down for");
  }
  const MonoMs began = clock_.Now();
  // A checkpoint while still serving keeps the shutdown checkpoint short.
  auto ck = pg_->Sql("CHECKPOINT");
  if (!ck) TLOG(Warn, "pg") << "CHECKPOINT before switchover: " << ck.error().message();
  const MonoMs stop_began = clock_.Now();
  // Fast shutdown: client sessions are terminated, then the walsenders send
  // everything up to the shutdown checkpoint and wait for the standbys.
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_.needs_rewind = true;  // until the clean stop is confirmed below
    (void)SaveState();
  }
  TANDEM_TRY(pg_->Stop(pg::StopMode::kFast));
  fence_deadline_ = 0;
  fence_wake_.Notify();
  auto cd = pg_->ReadControlData();
  if (!cd || cd->cluster_state != "shut down") {
    // Not a clean stop: keep needs_rewind; the lease and the normal rules take over.
    return Error(ErrorCode::kIo,
                 "PostgreSQL did not shut down cleanly; releasing nothing, the "
                 "old primary will be rewound");
  }
  IntentRecord rec = *view.intent;
  rec.intent.final_lsn = cd->checkpoint_lsn;
  rec.intent.final_timeline = cd->timeline;
  if (rec.intent.to.empty()) rec.intent.to = target;
  rec.expires_ms = std::max(rec.expires_ms, clock_.WallNow() + kIntentLifetimeMs);
  auto r = store->Txn(
      {dcs::Compare::ModRevisionIs(keys_.leader(), obs.leader->mod_revision),
       dcs::Compare::ModRevisionIs(keys_.intent(), view.intent->mod_revision)},
      {dcs::Op::Put(keys_.intent(), EncodeIntent(rec)), dcs::Op::Delete(keys_.leader())});
  if (!r) return r.error().Wrap("handing over the leader key");
  if (!r->succeeded) return Error(ErrorCode::kConflict, "the leader key changed meanwhile");
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Our WAL ends at the shutdown checkpoint the target must hold: no rewind.
    state_.needs_rewind = false;
    state_.was_primary = false;
    (void)SaveState();
  }
  const MonoMs done = clock_.Now();
  TLOG(Info, "ha") << "stepped down for the switchover: final position timeline " << cd->timeline
                   << " " << FormatLsn(cd->checkpoint_lsn) << " (checkpoint "
                   << (stop_began - began) << " ms, stop and hand-over " << (done - stop_began)
                   << " ms)";
  return Ok();
}

void Agent::RefreshPositions(core::Observation* obs, const ClusterView& view) {
  const bool strict = obs->sync && obs->sync->mode != core::SyncMode::kOff;
  std::vector<core::MemberState> kept;
  for (core::MemberState m : obs->members) {
    if (m.name == cfg_.node_name || m.role != core::Role::kReplica) {
      kept.push_back(m);
      continue;
    }
    auto node = view.nodes.find(m.name);
    bool fresh = false;
    if (node != view.nodes.end() && !node->second.api_url.empty()) {
      auto r = Http("GET", node->second.api_url + "/v1/position", "", kPositionTimeoutMs);
      if (r && r->status == 200) {
        try {
          auto j = nlohmann::json::parse(r->body);
          if (j.value("in_recovery", false)) {
            m.timeline = j.at("timeline").get<uint32_t>();
            m.lsn = ParseLsn(j.at("lsn").get<std::string>()).value_or(m.lsn);
            fresh = true;
          }
        } catch (const std::exception&) {
        }
      }
    }
    if (!fresh && strict) {
      TLOG(Warn, "ha") << "cannot ask " << m.name
                       << " for its position: not counting it for this failover";
      continue;
    }
    kept.push_back(m);
  }
  obs->members = std::move(kept);
}

nlohmann::json Agent::PositionJson() {
  nlohmann::json j;
  auto q = pg_->Query();
  if (!q) {
    j["running"] = false;
    j["error"] = q.error().message();
    return j;
  }
  j["running"] = true;
  j["in_recovery"] = q->in_recovery;
  j["timeline"] = q->timeline;
  j["lsn"] = FormatLsn(q->lsn);
  return j;
}

// ------------------------------------------------------------ operator intents

namespace {

// A switchover or failover naming the witness.
std::string WitnessTarget(const std::string& to) {
  return to +
         " is a witness: it runs no PostgreSQL and can never be the primary; name a data "
         "node (see `tandem cluster status`)";
}

Error Refuse(const std::string& what) {
  return Error(ErrorCode::kFailedPrecondition, what);
}

std::string DescribeIntent(const IntentRecord& r) {
  const core::Intent& i = r.intent;
  std::string s = i.kind == core::Intent::Kind::kSwitchover ? "a switchover" : "a failover";
  if (!i.from.empty()) s += " from " + i.from;
  s += " to " + (i.to.empty() ? std::string("the best replica") : i.to);
  return s;
}

bool Scheduled(const IntentRecord& r, int64_t now) {
  return r.intent.kind == core::Intent::Kind::kSwitchover && r.intent.final_lsn == 0 &&
         now < r.at_ms;
}

// The refusal of a new request while `r` (live at `now`) is recorded: what it
// is, when it runs or ends, and what to do.
Error BlockedBy(const IntentRecord& r, int64_t now) {
  if (Scheduled(r, now)) {
    return Refuse(DescribeIntent(r) + " is scheduled for " + core::FormatUtc(r.at_ms) +
                  (r.requested_on.empty() ? "" : " (requested on " + r.requested_on + ")") +
                  "; nothing was changed: cancel it first with `tandem cluster switchover "
                  "--cancel` (see `tandem cluster status`)");
  }
  const int64_t left_s = std::max<int64_t>(1, (r.expires_ms - now + 999) / 1000);
  return Refuse(DescribeIntent(r) + " is already under way; nothing was changed: wait for it to " +
                "finish (or to expire within " + std::to_string(left_s) +
                " s; `tandem cluster status` shows it)");
}

}  // namespace

Result<std::string> Agent::RequestSwitchover(const std::string& to, int64_t at_ms) {
  // The time first (the API may be called without the CLI's check): one
  // horizon for every form, core/switchover_time.h.
  if (auto st = core::CheckSwitchoverTime(at_ms, clock_.WallNow()); !st.ok()) {
    return st.error().Wrap("\"at_ms\" " + std::to_string(at_ms));
  }
  // A replica that is reconnecting (the primary just restarted, or the
  // replica did) streams again within a second or two: wait for it that long
  // rather than refuse an operator who asked a moment too early.
  const MonoMs wait_until = clock_.Now() + kSwitchoverWaitForReplicaMs;
  for (;;) {
    auto view = ReadView();
    if (!view) return view.error().Wrap("reading the cluster state");
    const int64_t now = clock_.WallNow();
    if (view->paused) {
      return Refuse("the cluster is paused; run `tandem cluster resume` first");
    }
    if (!view->leader) {
      return Refuse(
          "there is no primary to switch over from; use `tandem cluster failover --to "
          "NODE` to promote a replica");
    }
    const std::string from = view->leader->holder;
    if (view->intent && now < view->intent->expires_ms) return BlockedBy(*view->intent, now);
    std::string not_streaming;  // why no replica qualifies yet ("" = one does)
    if (!to.empty()) {
      if (view->nodes.count(to) == 0) {
        return Error(ErrorCode::kNotFound, "'" + to +
                                               "' is not a node of this cluster; see "
                                               "`tandem cluster status`");
      }
      if (to == from) return Refuse(to + " is already the primary");
      if (view->nodes.at(to).witness) return Refuse(WitnessTarget(to));
      auto m = view->members.find(to);
      if (m == view->members.end()) return Refuse(to + " is not running (its agent is down)");
      if (m->second.nofailover) return Refuse(to + " may not be promoted (nofailover)");
      if (m->second.role != core::Role::kReplica || !m->second.streaming ||
          m->second.following != from) {
        not_streaming = to + " is not streaming from " + from + " (it is " +
                        core::RoleName(m->second.role) +
                        (m->second.streaming ? "" : ", not streaming") + "); wait until it is";
      }
    } else {
      bool any = false;
      for (const auto& [name, m] : view->members) {
        any = any || (name != from && m.role == core::Role::kReplica && m.streaming &&
                      m.following == from && !m.nofailover);
      }
      if (!any) not_streaming = "no replica streams from " + from + "; nothing to switch over to";
    }
    if (!not_streaming.empty()) {
      if (clock_.Now() < wait_until) {
        clock_.SleepFor(100);
        continue;
      }
      return Refuse(not_streaming + " (waited " +
                    std::to_string(kSwitchoverWaitForReplicaMs / 1000) + " s)");
    }
    return RecordSwitchover(*view, from, to, at_ms, now);
  }
}

Result<std::string> Agent::RecordSwitchover(const ClusterView& view, const std::string& from,
                                            const std::string& to, int64_t at_ms, int64_t now) {
  IntentRecord rec;
  rec.intent.kind = core::Intent::Kind::kSwitchover;
  rec.intent.from = from;
  rec.intent.to = to;
  rec.at_ms = at_ms;
  rec.expires_ms = std::max(at_ms, now) + kIntentLifetimeMs;
  rec.requested_on = cfg_.node_name;
  auto store = Store();
  auto r = store->Txn(
      {dcs::Compare::ModRevisionIs(keys_.leader(), view.leader->mod_revision),
       view.intent ? dcs::Compare::ModRevisionIs(keys_.intent(), view.intent->mod_revision)
                   : dcs::Compare::CreateRevisionIs(keys_.intent(), 0)},
      {dcs::Op::Put(keys_.intent(), EncodeIntent(rec))});
  if (!r) return r.error().Wrap("recording the switchover");
  if (!r->succeeded) return Refuse("the primary or a request changed meanwhile; try again");
  TLOG_EVENT(Info, "agent", "switchover-requested")
      << "switchover requested from " << from << " to " << (to.empty() ? "the best replica" : to);
  // On the primary (where `cluster switchover` usually runs) the step-down
  // starts now, not at the loop's next tick. Elsewhere the primary acts at
  // its next tick: a watch on the request would also wake every replica's
  // loop, and the extra cycles delayed the hand-over's take-over.
  if (view.leader->holder == cfg_.node_name) WakeLoop();
  RecordEvent(core::EventKind::kOperationStarted,
              "switchover requested from " + from + " to " + (to.empty() ? "the best replica" : to),
              {{"operation", "switchover"}, {"from", from}, {"to", to}});
  return "switchover from " + from + " to " + (to.empty() ? "the best replica" : to) +
         (at_ms > now ? " scheduled for " + core::FormatUtc(at_ms) +
                            " (cancel it with `tandem cluster switchover --cancel`)"
                      : " requested");
}

Result<std::string> Agent::CancelSwitchover() {
  auto view = ReadView();
  if (!view) return view.error().Wrap("reading the cluster state");
  const int64_t now = clock_.WallNow();
  if (!view->intent || now >= view->intent->expires_ms) {
    return Error(ErrorCode::kNotFound, "no switchover is scheduled; nothing was changed");
  }
  const IntentRecord& rec = *view->intent;
  if (!Scheduled(rec, now)) {
    // Once due the primary may be stopping for it: the hand-over completes
    // or the request expires, never half of it.
    const int64_t left_s = std::max<int64_t>(1, (rec.expires_ms - now + 999) / 1000);
    return Refuse(DescribeIntent(rec) +
                  " is under way and can no longer be cancelled; nothing was changed: it "
                  "completes or expires within " +
                  std::to_string(left_s) + " s");
  }
  auto store = Store();
  auto r = store->Txn({dcs::Compare::ModRevisionIs(keys_.intent(), rec.mod_revision)},
                      {dcs::Op::Delete(keys_.intent())});
  if (!r) return r.error().Wrap("cancelling the switchover");
  if (!r->succeeded) {
    return Refuse(
        "the request changed meanwhile (it may have started); nothing was changed: "
        "see `tandem cluster status`");
  }
  TLOG(Info, "agent") << DescribeIntent(rec) << " scheduled for " << core::FormatUtc(rec.at_ms)
                      << " cancelled";
  RecordEvent(core::EventKind::kOperationFinished, DescribeIntent(rec) + " cancelled",
              {{"operation", "switchover"}, {"result", "cancelled"}});
  return DescribeIntent(rec) + " scheduled for " + core::FormatUtc(rec.at_ms) + " was cancelled";
}

Result<std::string> Agent::RequestFailover(const std::string& to, bool accept_data_loss) {
  auto view = ReadView();
  if (!view) return view.error().Wrap("reading the cluster state");
  const int64_t now = clock_.WallNow();
  if (view->nodes.count(to) == 0) {
    return Error(ErrorCode::kNotFound,
                 "'" + to + "' is not a node of this cluster; see `tandem cluster status`");
  }
  if (view->nodes.at(to).witness) return Refuse(WitnessTarget(to));
  if (view->leader) {
    if (view->leader->holder == to) return Refuse(to + " is already the primary");
    if (accept_data_loss) {
      return Refuse(view->leader->holder +
                    " is the primary; --accept-data-loss is only for a cluster with no primary. "
                    "Use `tandem cluster switchover --to " +
                    to + "` (no data loss)");
    }
    // With a live primary, a failover is a switchover (clean, nothing lost).
    return RequestSwitchover(to, 0);
  }
  if (view->intent && now < view->intent->expires_ms) return BlockedBy(*view->intent, now);
  auto m = view->members.find(to);
  if (m == view->members.end() || m->second.role != core::Role::kReplica) {
    return Refuse(to + " is not a running replica; start its agent (and PostgreSQL) first");
  }
  IntentRecord rec;
  rec.intent.kind = core::Intent::Kind::kFailover;
  rec.intent.to = to;
  rec.intent.accept_data_loss = accept_data_loss;
  rec.expires_ms = now + kIntentLifetimeMs;
  rec.requested_on = cfg_.node_name;
  auto store = Store();
  auto r = store->Txn(
      {dcs::Compare::CreateRevisionIs(keys_.leader(), 0),
       view->intent ? dcs::Compare::ModRevisionIs(keys_.intent(), view->intent->mod_revision)
                    : dcs::Compare::CreateRevisionIs(keys_.intent(), 0)},
      {dcs::Op::Put(keys_.intent(), EncodeIntent(rec))});
  if (!r) return r.error().Wrap("recording the failover");
  if (!r->succeeded) return Refuse("a primary appeared meanwhile; see `tandem cluster status`");
  TLOG_EVENT(Warn, "agent", "failover-requested")
      << "failover to " << to << " requested" << (accept_data_loss ? " ACCEPTING DATA LOSS" : "");
  RecordEvent(core::EventKind::kOperationStarted, "failover to " + to + " requested",
              {{"operation", "failover"}, {"to", to}});
  return "failover to " + to + " requested" +
         (accept_data_loss ? " (accepting the loss of writes it does not have)" : "");
}

Result<std::string> Agent::SetPaused(bool paused) {
  auto store = Store();
  if (!store) return Refuse("this node is not in a cluster");
  if (paused) {
    nlohmann::json j{{"by", cfg_.node_name}, {"at_ms", clock_.WallNow()}};
    auto r = store->Put(keys_.pause(), j.dump());
    if (!r.ok()) return r.error().Wrap("pausing");
    TLOG_EVENT(Warn, "agent", "paused") << "cluster paused: no automatic failover until resumed";
    RecordEvent(core::EventKind::kOperationFinished, "cluster paused", {{"operation", "pause"}});
    return std::string("paused: the agents take no automatic action until `tandem cluster resume`");
  }
  auto r = store->Delete(keys_.pause());
  if (!r.ok()) return r.error().Wrap("resuming");
  TLOG_EVENT(Info, "agent", "resumed") << "cluster resumed";
  RecordEvent(core::EventKind::kOperationFinished, "cluster resumed", {{"operation", "resume"}});
  return std::string("resumed: automatic failover is on again");
}

Result<nlohmann::json> Agent::HistoryJson() {
  auto view = ReadView();
  if (!view) return view.error().Wrap("reading the cluster state");
  nlohmann::json out = nlohmann::json::array();
  for (const HistoryEntry& h : view->history) {
    out.push_back(
        {{"at_ms", h.at_ms}, {"leader", h.leader}, {"timeline", h.timeline}, {"reason", h.reason}});
  }
  return out;
}

}  // namespace tandem::agent
