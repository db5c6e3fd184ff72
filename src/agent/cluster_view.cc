// The etcd key layout's names and the typed view of one snapshot: the JSON
// encoding and decoding of every record under /tandem/<cluster>/ (node info,
// member state, timeline, history, sync record, intent) and ParseClusterView,
// which turns one prefix read into a ClusterView. Pure: no store calls, no
// clock; a malformed record is an Error naming the key, never an exception.
#include "agent/cluster_view.h"

#include <nlohmann/json.hpp>

#include "base/log.h"
#include "base/strings.h"

namespace tandem::agent {
using nlohmann::json;

std::string Keys::history(int64_t seq) const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%012lld", static_cast<long long>(seq));
  return history_prefix() + buf;
}

namespace {
core::Role RoleFromName(const std::string& s) {
  if (s == "primary") return core::Role::kPrimary;
  if (s == "replica") return core::Role::kReplica;
  if (s == "stopped") return core::Role::kStopped;
  if (s == "witness") return core::Role::kWitness;
  return core::Role::kUnknown;
}

template <typename F>
auto Guard(const std::string& what, F&& f) -> Result<decltype(f())> {
  try {
    return f();
  } catch (const std::exception& e) {
    return Error(ErrorCode::kInvalidArgument, "malformed " + what + ": " + e.what());
  }
}
}  // namespace

std::string EncodeNodeInfo(const NodeInfo& n) {
  json j{{"name", n.name},
         {"host", n.host},
         {"pg_port", n.pg_port},
         {"api_url", n.api_url},
         {"etcd_peer_url", n.etcd_peer_url},
         {"etcd_client_url", n.etcd_client_url},
         {"etcd_member_id", std::to_string(n.etcd_member_id)},
         {"proxy_read_write_port", n.proxy_rw_port},
         {"proxy_read_only_port", n.proxy_ro_port}};
  // Only a witness says so: a data node's registration reads as before.
  if (n.witness) j["witness"] = true;
  return j.dump();
}

Result<NodeInfo> DecodeNodeInfo(const std::string& text) {
  return Guard("node registration", [&] {
    auto j = json::parse(text);
    NodeInfo n;
    n.name = j.at("name").get<std::string>();
    n.host = j.at("host").get<std::string>();
    n.pg_port = j.at("pg_port").get<int>();
    n.api_url = j.value("api_url", "");
    n.etcd_peer_url = j.value("etcd_peer_url", "");
    n.etcd_client_url = j.value("etcd_client_url", "");
    n.etcd_member_id = std::stoull(j.value("etcd_member_id", "0"));
    n.proxy_rw_port = j.value("proxy_read_write_port", 0);
    n.proxy_ro_port = j.value("proxy_read_only_port", 0);
    n.witness = j.value("witness", false);
    return n;
  });
}

std::string EncodeMemberState(const core::MemberState& m) {
  json j{{"name", m.name},
         {"role", core::RoleName(m.role)},
         {"timeline", m.timeline},
         {"lsn", FormatLsn(m.lsn)},
         {"replay_lsn", FormatLsn(m.replay_lsn)},
         {"following", m.following},
         {"streaming", m.streaming},
         {"nofailover", m.nofailover}};
  if (!m.certificate.empty()) j["certificate"] = m.certificate;
  return j.dump();
}

Result<core::MemberState> DecodeMemberState(const std::string& text) {
  return Guard("member state", [&] {
    auto j = json::parse(text);
    core::MemberState m;
    m.name = j.at("name").get<std::string>();
    m.role = RoleFromName(j.value("role", "unknown"));
    m.timeline = j.value("timeline", 0u);
    m.lsn = ParseLsn(j.value("lsn", "0/0")).value_or(0);
    m.replay_lsn = ParseLsn(j.value("replay_lsn", "0/0")).value_or(0);
    m.following = j.value("following", "");
    m.streaming = j.value("streaming", false);
    m.nofailover = j.value("nofailover", false);
    m.certificate = j.value("certificate", "");
    return m;
  });
}

std::string EncodeTimeline(uint32_t timeline, const std::string& member) {
  return std::to_string(timeline) + " " + member;
}

std::string EncodeHistory(const HistoryEntry& h) {
  return json{{"seq", h.seq},
              {"at_ms", h.at_ms},
              {"leader", h.leader},
              {"timeline", h.timeline},
              {"reason", h.reason}}
      .dump();
}

Result<HistoryEntry> DecodeHistory(const std::string& text) {
  return Guard("history entry", [&] {
    auto j = json::parse(text);
    HistoryEntry h;
    h.seq = j.value("seq", int64_t{0});
    h.at_ms = j.value("at_ms", int64_t{0});
    h.leader = j.value("leader", "");
    h.timeline = j.value("timeline", 0u);
    h.reason = j.value("reason", "");
    return h;
  });
}

std::string EncodeSyncRecord(const core::SyncRecord& r) {
  return json{{"leader", r.leader},
              {"mode", core::SyncModeName(r.mode)},
              {"members", r.members},
              {"quorum", r.quorum}}
      .dump();
}

Result<core::SyncRecord> DecodeSyncRecord(const std::string& text) {
  return Guard("sync record", [&] {
    auto j = json::parse(text);
    core::SyncRecord r;
    r.leader = j.at("leader").get<std::string>();
    if (!core::ParseSyncMode(j.at("mode").get<std::string>(), &r.mode)) {
      throw std::runtime_error("unknown mode");
    }
    r.members = j.at("members").get<std::vector<std::string>>();
    r.quorum = j.at("quorum").get<int>();
    if (r.quorum < 0) throw std::runtime_error("negative quorum");
    return r;
  });
}

std::string EncodeIntent(const IntentRecord& r) {
  const core::Intent& i = r.intent;
  return json{{"kind", i.kind == core::Intent::Kind::kSwitchover ? "switchover" : "failover"},
              {"from", i.from},
              {"to", i.to},
              {"accept_data_loss", i.accept_data_loss},
              {"at_ms", r.at_ms},
              {"expires_ms", r.expires_ms},
              {"final_lsn", FormatLsn(i.final_lsn)},
              {"final_timeline", i.final_timeline},
              {"requested_on", r.requested_on}}
      .dump();
}

Result<IntentRecord> DecodeIntent(const std::string& text) {
  return Guard("intent", [&] {
    auto j = json::parse(text);
    IntentRecord r;
    const std::string kind = j.at("kind").get<std::string>();
    if (kind == "switchover") {
      r.intent.kind = core::Intent::Kind::kSwitchover;
    } else if (kind == "failover") {
      r.intent.kind = core::Intent::Kind::kFailover;
    } else {
      throw std::runtime_error("unknown kind");
    }
    r.intent.from = j.value("from", "");
    r.intent.to = j.value("to", "");
    r.intent.accept_data_loss = j.value("accept_data_loss", false);
    r.at_ms = j.value("at_ms", int64_t{0});
    r.expires_ms = j.at("expires_ms").get<int64_t>();
    r.intent.final_lsn = ParseLsn(j.value("final_lsn", "0/0")).value_or(0);
    r.intent.final_timeline = j.value("final_timeline", 0u);
    r.requested_on = j.value("requested_on", "");
    return r;
  });
}

std::optional<core::Intent> ToCoreIntent(const std::optional<IntentRecord>& r, int64_t now_ms) {
  if (!r || now_ms >= r->expires_ms) return std::nullopt;
  core::Intent i = r->intent;
  i.due = now_ms >= r->at_ms;
  return i;
}

namespace {

// One reader per kind of key: each puts what the key says into the view, and
// logs and sets a safe value for what it cannot read.

void ReadInitialize(const dcs::KeyValue& kv, ClusterView& v) {
  v.initialized = true;
  try {
    v.system_identifier = json::parse(kv.value).value("system_identifier", "");
  } catch (...) {
    TLOG(Warn, "dcs") << "ignoring malformed " << kv.key;
  }
}

void ReadTimeline(const dcs::KeyValue& kv, ClusterView& v) {
  auto parts = Split(kv.value, ' ');
  auto tl = parts.size() == 2 ? ParseInt(parts[0]) : std::nullopt;
  if (tl && *tl > 0 && *tl < (int64_t{1} << 32)) {
    v.timeline = TimelineRecord{static_cast<uint32_t>(*tl), parts[1], kv.mod_revision};
  } else {
    // Keep the revision so the record can be repaired by a compare-and-swap.
    TLOG(Warn, "dcs") << "ignoring malformed " << kv.key;
    v.timeline.mod_revision = kv.mod_revision;
  }
}

void ReadLeader(const dcs::KeyValue& kv, ClusterView& v) {
  if (IsValidName(kv.value)) {
    v.leader = core::LeaderKey{kv.value, kv.mod_revision, kv.lease};
  } else {
    // Garbage in the leader key: treat it as held (by nobody we know), so
    // nobody promotes over it until it expires or an operator clears it.
    TLOG(Warn, "dcs") << "leader key holds an invalid name; treating it as held";
    v.leader = core::LeaderKey{"<invalid>", kv.mod_revision, kv.lease};
  }
}

void ReadMember(const dcs::KeyValue& kv, const std::string& prefix, ClusterView& v) {
  auto m = DecodeMemberState(kv.value);
  if (m && m->name == kv.key.substr(prefix.size())) {
    v.members[m->name] = *m;
  } else {
    TLOG(Warn, "dcs") << "ignoring malformed " << kv.key;
  }
}

void ReadNode(const dcs::KeyValue& kv, const std::string& prefix, ClusterView& v) {
  auto n = DecodeNodeInfo(kv.value);
  if (n && n->name == kv.key.substr(prefix.size())) {
    n->mod_revision = kv.mod_revision;
    v.nodes[n->name] = *n;
  } else {
    TLOG(Warn, "dcs") << "ignoring malformed " << kv.key;
  }
}

void ReadSync(const dcs::KeyValue& kv, ClusterView& v) {
  auto r = DecodeSyncRecord(kv.value);
  if (r) {
    v.sync = *r;
  } else {
    // Unreadable: it can prove nothing, so nobody is promoted on its word.
    TLOG(Warn, "dcs") << r.error().message() << "; treating it as counting no standby";
    v.sync = core::SyncRecord{"<invalid>", core::SyncMode::kQuorum, {}, 0};
  }
  v.sync_mod_revision = kv.mod_revision;
}

void ReadIntent(const dcs::KeyValue& kv, ClusterView& v) {
  auto r = DecodeIntent(kv.value);
  if (r) {
    v.intent = *r;
  } else {
    TLOG(Warn, "dcs") << r.error().message() << "; ignoring it (it is deleted)";
    v.intent = IntentRecord{};  // expired at 0: deleted by the leader's housekeeping
  }
  v.intent->mod_revision = kv.mod_revision;
}

}  // namespace

ClusterView ParseClusterView(const Keys& keys, const dcs::RangeResult& range) {
  ClusterView v;
  v.revision = range.revision;
  const std::string members_prefix = keys.prefix + "members/";
  const std::string nodes_prefix = keys.prefix + "nodes/";
  for (const auto& kv : range.kvs) {
    if (kv.key == keys.initialize()) {
      ReadInitialize(kv, v);
    } else if (kv.key == keys.timeline()) {
      ReadTimeline(kv, v);
    } else if (kv.key == keys.leader()) {
      ReadLeader(kv, v);
    } else if (StartsWith(kv.key, members_prefix)) {
      ReadMember(kv, members_prefix, v);
    } else if (StartsWith(kv.key, nodes_prefix)) {
      ReadNode(kv, nodes_prefix, v);
    } else if (kv.key == keys.sync()) {
      ReadSync(kv, v);
    } else if (kv.key == keys.intent()) {
      ReadIntent(kv, v);
    } else if (kv.key == keys.pause()) {
      v.paused = true;
    } else if (StartsWith(kv.key, keys.history_prefix())) {
      auto h = DecodeHistory(kv.value);
      if (h) v.history.push_back(*h);
    }
  }
  return v;
}

}  // namespace tandem::agent
