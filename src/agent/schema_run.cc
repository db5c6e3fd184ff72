// The schema worker (issue 15, docs/schema-upgrades.md): carries out the
// operation record on the primary. It claims the record (runner = this node),
// waits for the cluster to settle, takes the advisory lock, compares the files
// with tandem.schema_history, applies each pending migration with its row in
// one transaction, waits for the replicas to replay the last commit, and
// records the outcome. A run interrupted (this node stops being the primary,
// the agent stops, the connection is lost) leaves the record "running" for
// the next primary's worker, which resumes from the history table.
//
// Threads: its own (SchemaUpkeep starts it on the HA loop); never the loop.
// Touches: the store (operations/schema, a view read while settling), the
// local PostgreSQL (one SchemaSession), mu_ through SetLastCommand.
#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/schema_op.h"
#include "agent/schema_worker.h"
#include "base/log.h"
#include "base/strings.h"
#include "base/thread_name.h"
#include "core/events.h"
#include "core/schema_plan.h"

namespace tandem::agent {
namespace {

constexpr int64_t kSettleTimeoutMs = 30'000;
constexpr int64_t kReplayTimeoutMs = 30'000;
constexpr int64_t kPollMs = 200;

enum class Outcome { kDone, kFailed, kInterrupted };

std::string Versions(const std::vector<uint64_t>& v) {
  std::vector<std::string> names;
  for (uint64_t x : v) names.push_back(core::VersionName(x));
  return names.empty() ? "none" : Join(names, ", ");
}

}  // namespace

// One run of the worker; a friend of Agent (agent.h).
class SchemaRun {
 public:
  SchemaRun(Agent& a, SchemaWorker& w, SchemaOperation op) : a_(a), w_(w), op_(std::move(op)) {}

  void Run() {
    const bool resumed = !op_.runner.empty();
    const std::string from = op_.runner;
    op_.runner = a_.cfg_.node_name;
    Progress(resumed ? "resumed on " + a_.cfg_.node_name + " (was run by " + from + ")"
                     : "started on " + a_.cfg_.node_name);
    if (!Write()) return;
    a_.SetLastCommand(op_.command, "Running", "");
    a_.RecordEvent(core::EventKind::kOperationStarted,
                   "schema upgrade " + std::string(resumed ? "resumed" : "started") + " on " +
                       a_.cfg_.node_name + " ('" + op_.command + "')",
                   {{"operation", "upgrade-schema"}, {"database", op_.database}});
    std::string error;
    const Outcome o = Execute(resumed, &error);
    if (o == Outcome::kInterrupted) {
      TLOG(Warn, "schema") << "schema upgrade interrupted on " << a_.cfg_.node_name << ": " << error
                           << " (the next primary resumes it)";
      a_.SetProgress("interrupted: " + error);
      return;
    }
    op_.state = o == Outcome::kDone ? "done" : "failed";
    op_.error = error;
    op_.finished_ms = a_.clock_.WallNow();
    DropSchemaSql(&op_);
    if (o == Outcome::kFailed) {
      Progress("failed: " + error);
      TLOG(Error, "schema") << "Couldn't upgrade the schema: " << error;
    }
    (void)Write();
    if (o == Outcome::kDone) {
      a_.RecordEvent(
          core::EventKind::kOperationFinished,
          "schema upgrade complete on " + a_.cfg_.node_name + ": applied " + Versions(op_.applied),
          {{"operation", "upgrade-schema"}, {"database", op_.database}});
    } else {
      a_.RecordEvent(core::EventKind::kOperationFailed,
                     "schema upgrade failed on " + a_.cfg_.node_name + ": " + error,
                     {{"operation", "upgrade-schema"}, {"database", op_.database}});
    }
    a_.SetLastCommand(op_.command, o == Outcome::kDone ? "Success" : "Failed",
                      o == Outcome::kDone ? "" : "Couldn't upgrade the schema: " + error);
  }

 private:
  bool Stopping() const { return a_.stopping_ || w_.stop; }

  void Progress(const std::string& line) {
    AddSchemaProgress(&op_, line);
    a_.SetProgress(line);
  }

  // Compare-and-put of the record: false when it changed under us (another
  // runner took it, or it was cleared): this run stops.
  bool Write() {
    auto store = a_.Store();
    if (!store) return false;
    const std::string key = SchemaOperationKey(a_.keys_);
    auto r = store->Txn({dcs::Compare::ModRevisionIs(key, op_.mod_revision)},
                        {dcs::Op::Put(key, EncodeSchemaOperation(op_))});
    if (!r || !r->succeeded) {
      TLOG(Warn, "schema") << "the schema operation record changed meanwhile; this run stops";
      return false;
    }
    op_.mod_revision = r->revision;
    return true;
  }

  bool Leading() {
    auto store = a_.Store();
    auto kv =
        store ? store->Get(a_.keys_.leader())
              : Result<std::optional<dcs::KeyValue>>(Error(ErrorCode::kUnavailable, "no store"));
    return kv && kv->has_value() && (*kv)->value == a_.cfg_.node_name;
  }

  Outcome Execute(bool resumed, std::string* error) {
    if (auto o = Settle(resumed, error)) return *o;
    auto session =
        pg::SchemaSession::Open(a_.pg_->paths(), a_.pg_->settings(), op_.database, a_.clock_);
    if (!session) {
      *error = session.error().message();
      return session.error().code() == ErrorCode::kNotFound ? Outcome::kFailed
                                                            : Outcome::kInterrupted;
    }
    {
      std::lock_guard<std::mutex> lock(w_.mu);
      w_.session = session->get();
    }
    const Outcome o = ApplyAll(**session, error);
    {
      std::lock_guard<std::mutex> lock(w_.mu);
      w_.session = nullptr;
    }
    return o;
  }

  // nullopt once settled; otherwise the outcome (failed after the bound).
  std::optional<Outcome> Settle(bool resumed, std::string* error) {
    TLOG(Info, "schema") << "Waiting for database cluster to settle...";
    Progress("Waiting for database cluster to settle...");
    (void)Write();
    const MonoMs until = a_.clock_.Now() + kSettleTimeoutMs;
    std::string why;
    while (!Stopping()) {
      auto view = a_.ReadView();
      if (!view) {
        why = view.error().message();
      } else {
        if (!view->leader || view->leader->holder != a_.cfg_.node_name) {
          *error = "this node is no longer the primary";
          return Outcome::kInterrupted;
        }
        why = core::SettleProblem(SettleInputFor(*view, resumed));
        if (why.empty()) break;
      }
      if (a_.clock_.Now() >= until) {
        *error = "the database cluster did not settle within " +
                 std::to_string(kSettleTimeoutMs / 1000) + " s: " + why + "; nothing was applied";
        return Outcome::kFailed;
      }
      a_.clock_.SleepFor(kPollMs);
    }
    if (Stopping()) {
      *error = "the agent is stopping";
      return Outcome::kInterrupted;
    }
    TLOG(Info, "schema") << "Database cluster settled";
    Progress("Database cluster settled");
    (void)Write();
    return std::nullopt;
  }

  core::SettleInput SettleInputFor(const ClusterView& v, bool resumed) const {
    core::SettleInput in;
    in.primary = a_.cfg_.node_name;
    if (auto self = v.members.find(in.primary); self != v.members.end()) {
      in.primary_timeline = self->second.timeline;
      in.primary_lsn = self->second.lsn;
    }
    in.max_lag_bytes = a_.cfg_.ha.max_lag_bytes;
    for (const auto& [name, n] : v.nodes) {
      if (name != in.primary && !n.witness) in.replicas.push_back(name);
    }
    in.members = v.members;
    in.only_live = resumed;
    in.paused = v.paused;
    in.other_operation = v.intent && a_.clock_.WallNow() < v.intent->expires_ms;
    return in;
  }

  Outcome ApplyAll(pg::SchemaSession& s, std::string* error) {
    auto migrations = core::CheckMigrationSet(op_.files);
    if (!migrations) {
      *error = migrations.error().message();
      return Outcome::kFailed;
    }
    Status st = s.EnsureHistoryTable();
    if (st.ok()) st = s.TryLock();
    auto history = st.ok() ? s.ReadHistory() : Result<std::vector<core::HistoryRow>>(st.error());
    if (!history) {
      *error = history.error().message();
      return history.error().code() == ErrorCode::kConflict ? Outcome::kFailed
                                                            : Outcome::kInterrupted;
    }
    auto plan = core::PlanSchemaUpgrade(*migrations, *history, op_.target);
    if (!plan) {
      *error = plan.error().message();
      return Outcome::kFailed;
    }
    uint64_t last_lsn = 0;
    for (const auto& m : plan->pending) {
      if (Stopping() || !Leading()) {
        *error = Stopping() ? "the agent is stopping" : "this node is no longer the primary";
        return Outcome::kInterrupted;
      }
      Progress("applying " + core::VersionName(m.version) + " (" + m.file + ")" +
               (m.transactional ? "" : ", non-transactional"));
      (void)Write();
      pg::MigrationFailure why;
      auto done = s.Apply(m, a_.cfg_.node_name, op_.timeout_ms, &why);
      if (!done) {
        *error = done.error().message();
        if (why.interrupted || Stopping()) return Outcome::kInterrupted;
        *error += "; nothing of " + core::VersionName(m.version) + " was applied" +
                  (op_.applied.empty() ? "" : " (this run applied " + Versions(op_.applied) + ")");
        return Outcome::kFailed;
      }
      if (done->already_applied) {
        Progress(core::VersionName(m.version) + " was already applied (found in the history)");
      } else {
        op_.applied.push_back(m.version);
        last_lsn = done->commit_lsn;
        Progress("applied " + core::VersionName(m.version) + " in " +
                 std::to_string(done->duration_ms) + " ms");
      }
      if (!Write()) return Outcome::kInterrupted;
    }
    if (last_lsn != 0) {
      if (auto o = WaitForReplay(s, last_lsn, error)) return *o;
    }
    const uint64_t at = plan->pending.empty() ? (plan->applied.empty() ? 0 : plan->applied.back())
                                              : plan->pending.back().version;
    const std::string line = "Schema upgrade complete: applied " + Versions(op_.applied) +
                             " (database " + op_.database + " at " + core::VersionName(at) + ")";
    TLOG(Info, "schema") << line;
    Progress(line);
    return Outcome::kDone;
  }

  // nullopt once every synchronous replica (and, within the bound, every
  // streaming one) replayed `lsn`.
  std::optional<Outcome> WaitForReplay(pg::SchemaSession& s, uint64_t lsn, std::string* error) {
    Progress("waiting for the replicas to replay " + FormatLsn(lsn));
    const MonoMs until = a_.clock_.Now() + kReplayTimeoutMs;
    for (;;) {
      auto reps = s.Replicas();
      if (!reps) {
        *error = reps.error().message();
        return Outcome::kInterrupted;
      }
      std::string behind_sync, behind;
      for (const auto& r : *reps) {
        if (r.replay_lsn >= lsn) continue;
        const bool sync = r.sync_state == "sync" || r.sync_state == "quorum";
        (sync ? behind_sync : behind) = r.application_name;
      }
      if (behind_sync.empty() && behind.empty()) return std::nullopt;
      if (a_.clock_.Now() >= until || Stopping()) {
        if (!behind_sync.empty()) {
          *error = "the migrations were applied but the synchronous replica " + behind_sync +
                   " did not replay them within " + std::to_string(kReplayTimeoutMs / 1000) + " s";
          return Outcome::kFailed;
        }
        Progress("warning: the asynchronous replica " + behind + " has not replayed " +
                 FormatLsn(lsn) + " yet");
        return std::nullopt;
      }
      a_.clock_.SleepFor(50);
    }
  }

  Agent& a_;
  SchemaWorker& w_;
  SchemaOperation op_;
};

void Agent::SchemaMain(SchemaWorker& w) {
  NameThisThread("schema");
  auto op = ReadSchemaOperation();
  if (op && *op && (*op)->state == "running") {
    SchemaRun run(*this, w, std::move(**op));
    run.Run();
  }
  // An interrupted run is looked at again within a few seconds (the loop).
  w.retry_at = clock_.Now() + 2'000;
  w.active = false;
}

}  // namespace tandem::agent
