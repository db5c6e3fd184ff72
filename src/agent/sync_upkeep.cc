// Synchronous replication upkeep (docs/design/sync-replication.md): the
// primary's one PlanSync step series per cycle, the sync record's writes and
// synchronous_standby_names in PostgreSQL. The rules are in src/core/sync.h;
// this file only reads and writes the store and PostgreSQL.
//
// Thread: the HA loop (housekeeping on the primary; the promote handler).
// Touches: the store (the sync record), pg_ (settings, config, reload), the
// loop-only fields sync_reason_, sync_missing_since_, configured_upstream_.
#include <algorithm>
#include <map>

#include "agent/agent.h"
#include "base/clock.h"
#include "base/log.h"
#include "core/sync.h"

namespace tandem::agent {

Result<dcs::Revision> Agent::WriteSyncRecord(const ClusterView& view, const core::SyncRecord& rec,
                                             bool need_leader) {
  auto store = Store();
  if (!store) return Error(ErrorCode::kFailedPrecondition, "no store");
  std::vector<dcs::Compare> cmps;
  cmps.push_back(view.sync_mod_revision == 0
                     ? dcs::Compare::CreateRevisionIs(keys_.sync(), 0)
                     : dcs::Compare::ModRevisionIs(keys_.sync(), view.sync_mod_revision));
  // Only the leader writes the record (a promoting standby writes it in the
  // same cycle it took the key; need_leader checks it still holds it).
  if (need_leader) cmps.push_back(dcs::Compare::ValueIs(keys_.leader(), cfg_.node_name));
  auto r = store->Txn(cmps, {dcs::Op::Put(keys_.sync(), EncodeSyncRecord(rec))});
  if (!r) return r.error().Wrap("writing the sync record");
  if (!r->succeeded) {
    return Error(ErrorCode::kConflict, "the sync record or the leader key changed meanwhile");
  }
  TLOG(Info, "ha") << "sync record: " << core::DescribeSync(rec.members, rec.quorum) << " ("
                   << core::SyncModeName(rec.mode) << ")";
  return r->revision;
}

Status Agent::RewriteConfigKeepingRole(const ClusterView& view, bool in_recovery) {
  if (!in_recovery) {
    TANDEM_TRY(pg_->WriteConfig(std::nullopt));
  } else if (!configured_upstream_.empty()) {
    // A standby keeps its upstream and standby.signal (PostgreSQL removes the
    // signal file itself at promotion and fails if it is already gone).
    auto src = SourceFor(view, configured_upstream_, false);
    if (!src) return src.error();
    TANDEM_TRY(pg_->WriteConfig(*src));
  } else {
    TANDEM_TRY(pg_->WriteStandbyConfigWithoutSource());
  }
  return pg_->Reload();
}

Status Agent::ApplySyncStandbyNames(const ClusterView& view, const core::PgSyncSet& set,
                                    bool in_recovery) {
  const std::string want = core::RenderSyncStandbyNames(set);
  pg::Settings s = pg_->settings();
  auto shown = pg_->Sql("SHOW synchronous_standby_names");
  if (s.synchronous_standby_names == want && shown && !shown->empty() && (*shown)[0] == want) {
    return Ok();
  }
  s.synchronous_standby_names = want;
  pg_->set_settings(s);
  TANDEM_TRY(RewriteConfigKeepingRole(view, in_recovery));
  // The reload is a signal: wait (briefly) until new sessions see the value.
  for (int i = 0; i < 20; ++i) {
    auto now = pg_->Sql("SHOW synchronous_standby_names");
    if (now && !now->empty() && (*now)[0] == want) break;
    clock_.SleepFor(10);
  }
  TLOG(Info, "pg") << "synchronous_standby_names = '" << want << "'";
  return Ok();
}

namespace {
// A member the sync record may count: still registered, not nofailover.
bool SyncEligible(const ClusterView& view, const std::string& name) {
  auto m = view.members.find(name);
  return view.nodes.count(name) != 0 && (m == view.members.end() || !m->second.nofailover);
}
// Registered as a witness: PlanSync never counts it (docs/design/witness.md).
bool SyncWitness(const ClusterView& view, const std::string& name) {
  auto n = view.nodes.find(name);
  return n != view.nodes.end() && n->second.witness;
}
}  // namespace

// A standby PostgreSQL waits for that does not stream now (gone from
// pg_stat_replication, or not yet streaming) is kept as reconnecting for the
// grace after it was first seen missing: a restart of either side must not
// leave the writes on the primary alone (quorum mode) and no failover possible.
void Agent::MarkReconnecting(const ClusterView& view, core::SyncInput* in) {
  const MonoMs now = clock_.Now();
  std::map<std::string, MonoMs> missing;
  for (const std::string& name : in->pg.names) {
    if (name == core::kAnyStandby) continue;
    auto it = std::find_if(in->standbys.begin(), in->standbys.end(),
                           [&](const core::SyncStandby& s) { return s.name == name; });
    if (it != in->standbys.end() && it->streaming) continue;
    auto seen = sync_missing_since_.find(name);
    const MonoMs since = seen != sync_missing_since_.end() ? seen->second : now;
    missing[name] = since;
    if (now - since >= cfg_.ha.sync_reconnect_grace_ms) continue;
    if (it == in->standbys.end()) {
      core::SyncStandby sb;
      sb.name = name;
      sb.eligible = SyncEligible(view, name);
      sb.witness = SyncWitness(view, name);
      it = in->standbys.insert(in->standbys.end(), sb);
    }
    it->reconnecting = true;
  }
  sync_missing_since_ = std::move(missing);
}

void Agent::MaintainSync(const ClusterView& view) {
  // The primary's flush position before the standbys' (see PlanSync), in one
  // round trip (pg::Controller::ReadSyncSnapshot).
  auto snap = pg_->ReadSyncSnapshot();
  if (!snap) {
    // A server that is down is observed (and acted on) by the cycle itself.
    if (snap.error().code() != ErrorCode::kUnavailable) {
      TLOG(Warn, "pg") << "reading the synchronous replication state: " << snap.error().message();
    }
    return;
  }
  if (snap->in_recovery) return;
  core::SyncInput in;
  in.self = cfg_.node_name;
  in.mode = cfg_.ha.sync_mode;
  in.count = cfg_.ha.sync_count;
  in.record = view.sync;
  in.primary_flush_lsn = snap->flush_lsn;
  auto parsed = core::ParseSyncStandbyNames(snap->synchronous_standby_names);
  // Something we did not write: count it as "any standby" (claims nothing).
  in.pg = parsed ? *parsed : core::PgSyncSet{{core::kAnyStandby}, 1};
  for (const auto& r : snap->standbys) {
    core::SyncStandby sb;
    sb.name = r.application_name;
    sb.streaming = r.state == "streaming";
    sb.flush_lsn = r.flush_lsn;
    sb.eligible = SyncEligible(view, r.application_name);
    sb.witness = SyncWitness(view, r.application_name);
    in.standbys.push_back(sb);
  }
  MarkReconnecting(view, &in);
  // Several steps per cycle (each is safe on its own), so a change settles
  // within a cycle or two; the standbys' positions are those read above.
  ClusterView current = view;
  for (int i = 0; i < 6; ++i) {
    const core::SyncStep step = core::PlanSync(in);
    if (step.reason != sync_reason_) {
      TLOG(Info, "ha") << "sync: " << step.reason;
      sync_reason_ = step.reason;
    }
    if (step.kind == core::SyncStep::Kind::kNone) return;
    Status st = Ok();
    if (step.kind == core::SyncStep::Kind::kWriteRecord) {
      auto rev = WriteSyncRecord(current, step.record, /*need_leader=*/true);
      if (rev) {
        current.sync = step.record;
        current.sync_mod_revision = *rev;
        in.record = step.record;
      } else {
        st = rev.error();
      }
    } else {
      st = ApplySyncStandbyNames(current, step.pg, /*in_recovery=*/false);
      if (st.ok()) in.pg = step.pg;
    }
    if (!st.ok()) {
      TLOG(Warn, "ha") << "sync: " << st.error().message();
      return;
    }
  }
}

}  // namespace tandem::agent
