// Schema upgrades, the agent's side (issue 15, docs/schema-upgrades.md): the
// request (checked against the files' rules and the local history, then
// recorded in the store as the one operation), the API's views of the
// operation and of the history, the loop's upkeep that starts the worker on
// the primary, and clear-error's part. The worker itself is schema_run.cc.
//
// Threads: StartSchemaUpgrade / SchemaOperationJson / SchemaJson /
// ClearFailedSchemaUpgrade on API workers; SchemaUpkeep on the HA loop (one
// store read when the view's revision changed, never a blocking call).
// Touches: the store (operations/schema), the local PostgreSQL (read-only
// session for the history), mu_ (state_), schema_.
#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/schema_op.h"
#include "agent/schema_worker.h"
#include "base/log.h"
#include "base/strings.h"
#include "core/schema_plan.h"

namespace tandem::agent {
using nlohmann::json;

namespace {

Error Refuse(const std::string& what) {
  return Error(ErrorCode::kFailedPrecondition, what);
}

json RowJson(const core::HistoryRow& r) {
  return {{"version", r.version},       {"description", r.description},
          {"sha256", r.sha256},         {"applied_at", r.applied_at},
          {"applied_by", r.applied_by}, {"duration_ms", r.duration_ms},
          {"success", r.success}};
}

json PlanJson(const std::string& database, const core::SchemaPlan& plan) {
  json pending = json::array();
  for (const auto& m : plan.pending) {
    pending.push_back({{"version", m.version},
                       {"file", m.file},
                       {"description", m.description},
                       {"transactional", m.transactional}});
  }
  return {{"database", database},
          {"applied", plan.applied},
          {"failed", plan.failed},
          {"pending", pending},
          {"beyond_target", plan.beyond_target}};
}

bool IsSchemaCommand(const std::string& command) {
  return StartsWith(command, "tandem cluster upgrade-schema");
}

// Why a new run may not be recorded now (nullopt: it may).
std::optional<Error> SchemaRunRefusal(const ClusterView& view,
                                      const std::optional<SchemaOperation>& existing,
                                      int64_t now_ms) {
  if (view.paused) return Refuse("the cluster is paused; run `tandem cluster resume` first");
  if (view.intent && now_ms < view.intent->expires_ms) {
    return Refuse("a switchover or failover is under way; wait for it to finish");
  }
  if (!view.leader) return Refuse("the cluster has no primary to run the upgrade on");
  if (existing && existing->state == "running") {
    return Error(ErrorCode::kConflict,
                 "another schema upgrade is running ('" + existing->command + "', requested on " +
                     existing->requested_on +
                     (existing->runner.empty() ? "" : ", run by " + existing->runner) +
                     "); nothing was changed: wait for it (`tandem cluster schema`)");
  }
  if (existing && existing->state == "failed") {
    return Refuse("the last schema upgrade failed (" + existing->error +
                  "); nothing was changed: run `tandem cluster clear-error` first, then run "
                  "the command again (it resumes at the failed migration)");
  }
  return std::nullopt;
}

}  // namespace

Result<std::optional<SchemaOperation>> Agent::ReadSchemaOperation() {
  auto store = Store();
  if (!store) return Error(ErrorCode::kUnavailable, "this node is not connected to the store");
  auto kv = store->Get(SchemaOperationKey(keys_));
  if (!kv) return kv.error().Wrap("reading the schema operation");
  if (!kv->has_value()) return std::optional<SchemaOperation>();
  auto op = DecodeSchemaOperation((*kv)->value);
  if (!op) return op.error();
  op->mod_revision = (*kv)->mod_revision;
  return std::optional<SchemaOperation>(std::move(*op));
}

Result<nlohmann::json> Agent::StartSchemaUpgrade(const nlohmann::json& body) {
  if (witness_) {
    return Refuse("this node is a witness (no PostgreSQL); run the command on a data node");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!state_.member) return Refuse("this node is not a cluster member");
  }
  auto files = DecodeSchemaFiles(body.at("files").get<std::string>());
  if (!files) return files.error();
  auto migrations = core::CheckMigrationSet(*files);
  if (!migrations) return migrations.error();
  uint64_t target = 0;
  if (const std::string t = body.value("target", ""); !t.empty()) {
    auto v = core::ParseTargetVersion(t);
    if (!v) return v.error();
    target = *v;
  }
  const std::string database = body.value("database", std::string("postgres"));
  // The local copy of the history (a replica's is at most a moment behind;
  // the primary's worker compares again before it runs anything).
  auto session = pg::SchemaSession::Open(pg_->paths(), pg_->settings(), database, clock_);
  if (!session) return session.error();
  auto history = (*session)->ReadHistory();
  if (!history) return history.error();
  auto plan = core::PlanSchemaUpgrade(*migrations, *history, target);
  if (!plan) return plan.error();
  json answer = PlanJson(database, *plan);
  if (body.value("dry_run", false) || plan->pending.empty()) return answer;
  auto view = ReadView();
  if (!view) return view.error().Wrap("reading the cluster state");
  auto existing = ReadSchemaOperation();
  if (!existing) return existing.error();
  if (auto refusal = SchemaRunRefusal(*view, *existing, clock_.WallNow())) return *refusal;
  SchemaOperation op;
  op.id = RandomToken(12);
  op.command = "tandem cluster upgrade-schema " + body.at("dir").get<std::string>();
  op.dir = body.at("dir").get<std::string>();
  op.database = database;
  op.target = target;
  op.timeout_ms = body.value("timeout_ms", int64_t{0});
  op.files = std::move(*files);
  op.state = "running";
  op.requested_on = cfg_.node_name;
  op.started_ms = clock_.WallNow();
  AddSchemaProgress(&op, "requested on " + cfg_.node_name + ": " +
                             std::to_string(plan->pending.size()) + " pending migration(s)");
  auto store = Store();
  const std::string key = SchemaOperationKey(keys_);
  auto r = store->Txn({*existing ? dcs::Compare::ModRevisionIs(key, (*existing)->mod_revision)
                                 : dcs::Compare::CreateRevisionIs(key, 0)},
                      {dcs::Op::Put(key, EncodeSchemaOperation(op))});
  if (!r) return r.error().Wrap("recording the schema upgrade");
  if (!r->succeeded) {
    return Error(ErrorCode::kConflict,
                 "another schema upgrade was recorded meanwhile; nothing was changed");
  }
  SetLastCommand(op.command, "Running", "");
  TLOG(Info, "schema") << "schema upgrade of database " << database << " recorded ("
                       << plan->pending.size() << " pending), for " << view->leader->holder;
  if (view->leader->holder == cfg_.node_name) WakeLoop();
  answer["operation"] = SchemaOperationView(op);
  return answer;
}

Result<nlohmann::json> Agent::SchemaOperationJson() {
  auto op = ReadSchemaOperation();
  if (!op) return op.error();
  if (!*op) return json{{"operation", nullptr}};
  // The node that asked records the outcome in its own last command too.
  const auto& o = **op;
  if (o.state != "running") {
    bool mine = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      mine = state_.last_command.command == o.command && state_.last_command.result == "Running";
    }
    if (mine) {
      SetLastCommand(o.command, o.state == "done" ? "Success" : "Failed",
                     o.state == "done" ? "" : "Couldn't upgrade the schema: " + o.error);
    }
  }
  return json{{"operation", SchemaOperationView(o)}};
}

Result<nlohmann::json> Agent::SchemaJson(const std::string& database) {
  if (witness_) {
    return Refuse("this node is a witness (no PostgreSQL); ask a data node");
  }
  auto session = pg::SchemaSession::Open(pg_->paths(), pg_->settings(), database, clock_);
  if (!session) return session.error();
  auto history = (*session)->ReadHistory();
  if (!history) return history.error();
  json applied = json::array(), failed = json::array();
  for (const auto& r : *history) (r.success ? applied : failed).push_back(RowJson(r));
  json out{{"database", database}, {"applied", applied}, {"failed", failed}};
  auto op = ReadSchemaOperation();
  out["operation"] = op && *op ? SchemaOperationView(**op) : json(nullptr);
  return out;
}

void Agent::ClearFailedSchemaUpgrade() {
  auto op = ReadSchemaOperation();
  if (!op || !*op || (*op)->state != "failed") return;
  auto store = Store();
  const std::string key = SchemaOperationKey(keys_);
  auto r =
      store->Txn({dcs::Compare::ModRevisionIs(key, (*op)->mod_revision)}, {dcs::Op::Delete(key)});
  if (r && r->succeeded) {
    TLOG(Info, "schema") << "the failed schema upgrade ('" << (*op)->command << "') was cleared";
  }
}

void Agent::SchemaUpkeep(const ClusterView& view, const core::LocalPostgres& local) {
  if (!schema_) schema_ = std::make_shared<SchemaWorker>();
  SchemaWorker& w = *schema_;
  if (w.active) return;
  const bool leading = view.leader && view.leader->holder == cfg_.node_name && local.running &&
                       !local.in_recovery && !witness_;
  // This node's own last command came from a run (it asked for it, or ran
  // it): its outcome or its clearing shows here too, even with no CLI following.
  bool failed_here = false, running_here = false;
  std::string command;
  {
    std::lock_guard<std::mutex> lock(mu_);
    command = state_.last_command.command;
    const bool schema = IsSchemaCommand(command);
    failed_here = schema && state_.error && state_.last_command.result == "Failed";
    running_here = schema && state_.last_command.result == "Running";
  }
  if (!leading && !failed_here && !running_here) return;
  const bool retry_due = w.retry_at != 0 && clock_.Now() >= w.retry_at;
  if (view.revision == w.checked_revision && !retry_due) return;
  auto op = ReadSchemaOperation();
  if (!op) return;
  w.checked_revision = view.revision;
  w.retry_at = 0;
  if (failed_here && (!*op || (*op)->state != "failed")) {
    // clear-error on another node cleared the failed run: so does this node.
    std::lock_guard<std::mutex> lock(mu_);
    state_.error = false;
    (void)SaveState();
  }
  if (running_here && *op && (*op)->command == command && (*op)->state != "running") {
    SetLastCommand(command, (*op)->state == "done" ? "Success" : "Failed",
                   (*op)->state == "done" ? "" : "Couldn't upgrade the schema: " + (*op)->error);
  }
  if (!leading || !*op || (*op)->state != "running") return;
  std::thread old;
  {
    std::lock_guard<std::mutex> lock(w.mu);
    old = std::move(w.thread);
  }
  if (old.joinable()) old.join();  // finished: active was false
  w.active = true;
  w.stop = false;
  std::lock_guard<std::mutex> lock(w.mu);
  SchemaWorker* worker = &w;  // outlives the thread: ~SchemaWorker joins it
  w.thread = std::thread([this, worker] { SchemaMain(*worker); });
}

}  // namespace tandem::agent
