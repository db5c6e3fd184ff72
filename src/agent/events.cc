// The cluster event log in the store (agent/events.h) and the Agent's two
// entry points: RecordEvent (one call at each place an event happens) and
// EventsJson (GET /v1/events).
//
// Thread: any; RecordEvent runs on the thread that did the thing it records.
#include "agent/events.h"

#include <atomic>
#include <cstdio>

#include "agent/agent.h"
#include "base/log.h"

namespace tandem::agent {
using nlohmann::json;

namespace {
std::atomic<uint64_t> g_event_counter{0};
}  // namespace

std::string EncodeEvent(const core::Event& e) {
  json j{{"time_ms", e.time_ms}, {"node", e.node}, {"kind", e.kind}, {"message", e.message}};
  j["fields"] = json::object();
  for (const auto& [k, v] : e.fields) j["fields"][k] = v;
  return j.dump();
}

Result<core::Event> DecodeEvent(std::string_view text) {
  try {
    auto j = json::parse(text);
    core::Event e;
    e.time_ms = j.at("time_ms").get<int64_t>();
    e.node = j.value("node", "");
    e.kind = j.at("kind").get<std::string>();
    e.message = j.value("message", "");
    if (j.contains("fields") && j["fields"].is_object()) {
      for (const auto& [k, v] : j["fields"].items()) {
        e.fields[k] = v.is_string() ? v.get<std::string>() : v.dump();
      }
    }
    return e;
  } catch (const std::exception& ex) {
    return Error(ErrorCode::kInvalidArgument, std::string("malformed event record: ") + ex.what());
  }
}

json EventJson(const core::Event& e) {
  json fields = json::object();
  for (const auto& [k, v] : e.fields) fields[k] = v;
  return {{"seq", e.seq},         {"time", core::FormatEventTime(e.time_ms)},
          {"node", e.node},       {"kind", e.kind},
          {"message", e.message}, {"fields", fields}};
}

Result<std::vector<core::Event>> ReadEvents(dcs::Dcs& store, const std::string& cluster_prefix) {
  auto range = store.GetPrefix(EventsPrefix(cluster_prefix));
  if (!range) return range.error().Wrap("reading the event log");
  std::vector<core::Event> out;
  out.reserve(range->kvs.size());
  for (const auto& kv : range->kvs) {
    auto e = DecodeEvent(kv.value);
    if (!e) {
      TLOG(Debug, "events") << "ignoring " << kv.key << ": " << e.error().message();
      continue;
    }
    e->seq = kv.create_revision;
    out.push_back(std::move(*e));
  }
  core::SortEvents(&out);
  return out;
}

namespace {

void Prune(dcs::Dcs& store, const std::string& prefix, size_t cap) {
  auto range = store.GetPrefix(prefix);
  if (!range || range->kvs.size() <= cap) return;
  std::vector<core::Event> order;
  std::map<int64_t, std::string> key_of;
  for (const auto& kv : range->kvs) {
    core::Event e;
    e.seq = kv.create_revision;
    key_of[e.seq] = kv.key;
    order.push_back(e);
  }
  core::SortEvents(&order);
  // etcd takes at most 128 operations in one transaction (--max-txn-ops).
  std::vector<dcs::Op> ops;
  const std::vector<int64_t> old = core::EventsBeyondCap(order, cap);
  for (size_t i = 0; i < old.size(); ++i) {
    ops.push_back(dcs::Op::Delete(key_of[old[i]]));
    if (ops.size() < 100 && i + 1 < old.size()) continue;
    auto t = store.Txn({}, ops);
    if (!t) {
      TLOG(Debug, "events") << "pruning the event log: " << t.error().message();
      return;
    }
    ops.clear();
  }
}

}  // namespace

bool AppendEvent(dcs::Dcs& store, const std::string& cluster_prefix, const core::Event& e,
                 size_t cap) {
  const std::string prefix = EventsPrefix(cluster_prefix);
  char stamp[24];
  std::snprintf(stamp, sizeof stamp, "%015lld", static_cast<long long>(e.time_ms));
  for (int attempt = 0; attempt < 3; ++attempt) {
    const std::string key =
        prefix + stamp + "-" + e.node + "-" + std::to_string(g_event_counter.fetch_add(1) + 1);
    auto t =
        store.Txn({dcs::Compare::CreateRevisionIs(key, 0)}, {dcs::Op::Put(key, EncodeEvent(e))});
    if (!t) {
      TLOG(Debug, "events") << "recording event " << e.kind << ": " << t.error().message();
      return false;
    }
    if (t->succeeded) {
      Prune(store, prefix, cap);
      return true;
    }
  }
  TLOG(Debug, "events") << "recording event " << e.kind << ": its key exists (three tries)";
  return false;
}

void Agent::RecordEvent(core::EventKind kind, const std::string& message,
                        std::map<std::string, std::string> fields) {
  auto store = Store();
  if (!store) return;
  core::Event e;
  e.time_ms = clock_.WallNow();
  e.node = cfg_.node_name;
  e.kind = core::EventKindName(kind);
  e.message = message;
  e.fields = std::move(fields);
  (void)AppendEvent(*store, keys_.prefix, e);
}

Result<json> Agent::EventsJson(const core::EventFilter& filter) {
  auto store = Store();
  if (!store) {
    return Error(ErrorCode::kFailedPrecondition,
                 "this node is not in a cluster: it has no event log; run `tandem cluster "
                 "initialize` or `join` first");
  }
  auto events = ReadEvents(*store, keys_.prefix);
  if (!events) return events.error();
  const core::EventPage page = core::SelectEvents(*events, filter);
  json list = json::array();
  for (const auto& e : page.events) list.push_back(EventJson(e));
  return json{{"events", list}, {"next", page.next}};
}

}  // namespace tandem::agent
