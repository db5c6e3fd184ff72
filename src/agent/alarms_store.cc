// The alarm records in the store (agent/alarms.h): their JSON and keys,
// reading them, the pure write plan, and AlarmKeeper's compare-guarded writes
// (a raise only over no key, a clear only over the revision read, with its
// history entry in the same transaction).
//
// Thread: AlarmKeeper::Update on the HA loop; ReadAlarms on any thread.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "agent/alarms.h"
#include "agent/events.h"
#include "base/log.h"

namespace tandem::agent {
using nlohmann::json;

std::string EncodeAlarm(const AlarmRecord& r) {
  json j{
      {"id", r.id},         {"name", r.name},           {"severity", r.severity},  {"node", r.node},
      {"detail", r.detail}, {"raised_ms", r.raised_ms}, {"raised_by", r.raised_by}};
  if (r.cleared_ms != 0) j["cleared_ms"] = r.cleared_ms;
  return j.dump();
}

Result<AlarmRecord> DecodeAlarm(const std::string& text) {
  try {
    auto j = json::parse(text);
    AlarmRecord r;
    r.id = j.at("id").get<int>();
    r.name = j.value("name", "");
    r.severity = j.value("severity", "");
    r.node = j.value("node", "");
    r.detail = j.value("detail", "");
    r.raised_ms = j.value("raised_ms", int64_t{0});
    r.cleared_ms = j.value("cleared_ms", int64_t{0});
    r.raised_by = j.value("raised_by", "");
    return r;
  } catch (const std::exception& e) {
    return Error(ErrorCode::kInvalidArgument, std::string("malformed alarm record: ") + e.what());
  }
}

std::string AlarmKeys::active(int id, const std::string& node) const {
  return active_prefix + core::AlarmKey(static_cast<core::AlarmId>(id), node);
}

std::string AlarmKeys::history(const AlarmRecord& r) const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%015lld", static_cast<long long>(r.raised_ms));
  return history_prefix + buf + "-" + std::to_string(r.id) + "-" +
         (r.node.empty() ? "cluster" : r.node);
}

Result<StoredAlarms> ReadAlarms(dcs::Dcs& store, const AlarmKeys& keys, bool with_history) {
  StoredAlarms out;
  auto decode = [](const dcs::RangeResult& range, std::vector<AlarmRecord>* to) {
    for (const auto& kv : range.kvs) {
      auto r = DecodeAlarm(kv.value);
      if (!r) {
        TLOG(Debug, "alarms") << "ignoring " << kv.key << ": " << r.error().message();
        continue;
      }
      r->mod_revision = kv.mod_revision;
      to->push_back(std::move(*r));
    }
  };
  auto active = store.GetPrefix(keys.active_prefix);
  if (!active) return active.error().Wrap("reading the active alarms");
  decode(*active, &out.active);
  if (with_history) {
    auto history = store.GetPrefix(keys.history_prefix);
    if (!history) return history.error().Wrap("reading the alarm history");
    decode(*history, &out.history);
  }
  return out;
}

bool AlarmOwnership::Owns(const AlarmRecord& r) const {
  const core::AlarmDef* def = core::FindAlarm(r.id);
  if (def == nullptr) return steward;  // an id this version does not know: the steward's
  if (def->scope == core::AlarmScope::kCluster) return steward;
  return r.node == self || (steward && registered.count(r.node) == 0);
}

AlarmWrites PlanAlarmWrites(const std::vector<core::AlarmCondition>& wanted,
                            const std::vector<AlarmRecord>& stored, const AlarmOwnership& own) {
  AlarmWrites w;
  std::set<std::string> stored_keys, wanted_keys;
  for (const auto& r : stored) {
    stored_keys.insert(core::AlarmKey(static_cast<core::AlarmId>(r.id), r.node));
  }
  for (const auto& c : wanted) {
    const std::string key = core::AlarmKey(c.id, c.node);
    wanted_keys.insert(key);
    if (stored_keys.count(key) == 0) w.raise.push_back(c);
  }
  for (const auto& r : stored) {
    if (own.Owns(r) &&
        wanted_keys.count(core::AlarmKey(static_cast<core::AlarmId>(r.id), r.node)) == 0) {
      w.clear.push_back(r);
    }
  }
  return w;
}

void AlarmKeeper::Update(dcs::Dcs& store, const std::vector<core::AlarmCondition>& wanted,
                         const AlarmOwnership& own, int64_t wall_now_ms, MonoMs now) {
  self_ = own.self;
  std::vector<AlarmRecord> known;
  for (const auto& [key, r] : known_) known.push_back(r);
  const bool unchanged = synced_ && own.steward == was_steward_ && now < next_resync_ &&
                         PlanAlarmWrites(wanted, known, own).empty();
  if (unchanged) return;
  auto read = ReadAlarms(store, keys_, false);
  if (!read) {
    synced_ = false;
    TLOG(Debug, "alarms") << read.error().message();
    return;
  }
  known_.clear();
  for (auto& r : read->active) known_[keys_.active(r.id, r.node)] = r;
  synced_ = true;
  was_steward_ = own.steward;
  next_resync_ = now + kResyncMs;
  const AlarmWrites w = PlanAlarmWrites(wanted, read->active, own);
  bool cleared = false;
  for (const auto& c : w.raise) synced_ = Raise(store, c, own.self, wall_now_ms) && synced_;
  for (const auto& r : w.clear) {
    const bool ok = Clear(store, r, wall_now_ms);
    cleared = cleared || ok;
    synced_ = ok && synced_;
  }
  if (cleared) TrimHistory(store);
  std::vector<AlarmRecord> mine;
  for (const auto& [key, r] : known_) {
    if (own.Owns(r)) mine.push_back(r);
  }
  std::lock_guard<std::mutex> lock(mu_);
  raised_here_ = std::move(mine);
}

void AlarmKeeper::RecordAlarmEvent(dcs::Dcs& store, bool raised, const AlarmRecord& r,
                                   const std::string& self, int64_t wall_now_ms) const {
  core::Event e;
  e.time_ms = wall_now_ms;
  e.node = self;
  e.kind =
      core::EventKindName(raised ? core::EventKind::kAlarmRaised : core::EventKind::kAlarmCleared);
  e.message = std::string(raised ? "alarm raised: " : "alarm cleared: ") + std::to_string(r.id) +
              " " + r.name + (r.node.empty() ? "" : " on " + r.node) +
              (raised && !r.detail.empty() ? " (" + r.detail + ")" : "");
  e.fields = {{"alarm", std::to_string(r.id)}, {"name", r.name}, {"about", r.node}};
  (void)AppendEvent(store, cluster_prefix_, e);
}

bool AlarmKeeper::Raise(dcs::Dcs& store, const core::AlarmCondition& c, const std::string& self,
                        int64_t wall_now_ms) {
  const core::AlarmDef* def = core::FindAlarm(static_cast<int>(c.id));
  AlarmRecord r;
  r.id = static_cast<int>(c.id);
  r.name = def != nullptr ? def->name : "";
  r.severity = def != nullptr ? core::AlarmSeverityName(def->severity) : "";
  r.node = c.node;
  r.detail = c.detail.substr(0, 2000);
  r.raised_ms = wall_now_ms;
  r.raised_by = self;
  const std::string key = keys_.active(r.id, r.node);
  auto t = store.Txn({dcs::Compare::CreateRevisionIs(key, 0)}, {dcs::Op::Put(key, EncodeAlarm(r))});
  if (!t.ok() || !t->succeeded) {
    TLOG(Debug, "alarms") << "raising " << key << ": "
                          << (t.ok() ? "already raised" : t.error().message());
    return false;
  }
  r.mod_revision = t->revision;
  known_[key] = r;
  TLOG(Warn, "alarms") << "raised alarm " << r.id << " " << r.name
                       << (r.node.empty() ? "" : " on " + r.node) << ": " << r.detail;
  RecordAlarmEvent(store, true, r, self, wall_now_ms);
  return true;
}

bool AlarmKeeper::Clear(dcs::Dcs& store, const AlarmRecord& r, int64_t wall_now_ms) {
  const std::string key = keys_.active(r.id, r.node);
  AlarmRecord done = r;
  done.cleared_ms = wall_now_ms;
  auto t = store.Txn({dcs::Compare::ModRevisionIs(key, r.mod_revision)},
                     {dcs::Op::Delete(key), dcs::Op::Put(keys_.history(done), EncodeAlarm(done))});
  if (!t.ok() || !t->succeeded) {
    TLOG(Debug, "alarms") << "clearing " << key << ": "
                          << (t.ok() ? "changed meanwhile" : t.error().message());
    return false;
  }
  known_.erase(key);
  TLOG(Info, "alarms") << "cleared alarm " << r.id << " " << r.name
                       << (r.node.empty() ? "" : " on " + r.node);
  RecordAlarmEvent(store, false, r, self_, wall_now_ms);
  return true;
}

void AlarmKeeper::TrimHistory(dcs::Dcs& store) {
  auto h = store.GetPrefix(keys_.history_prefix);
  if (!h || h->kvs.size() <= kAlarmHistoryLimit) return;
  // Keys sort by the time raised: the first ones are the oldest.
  const size_t extra = h->kvs.size() - kAlarmHistoryLimit;
  for (size_t i = 0; i < extra; ++i) (void)store.Delete(h->kvs[i].key);
}

std::vector<AlarmRecord> AlarmKeeper::RaisedHere() const {
  std::lock_guard<std::mutex> lock(mu_);
  return raised_here_;
}

}  // namespace tandem::agent
