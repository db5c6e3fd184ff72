// The etcd key layout and the typed view of one snapshot of it.
//
// All keys live under /tandem/<cluster>/ (see docs/design/etcd-keys.md):
//   initialize       {"system_identifier": "...", "created_by": node, "created_at": ms}
//   leader           node name, bound to the holder's session lease
//   members/<name>   the member's self-reported state (JSON), on its session lease
//   nodes/<name>     the member's registration (JSON), no lease: survives the node
//   timeline         "<timeline> <member>": the newest timeline a member announced
//   history/<seq>    one leader change (JSON)
//   sync             the sync record (JSON), written by the primary only
//   intent           an operator's switchover/failover request (JSON)
//   pause            present while the cluster is paused (maintenance mode)
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "core/types.h"
#include "dcs/dcs.h"

namespace tandem::agent {

struct Keys {
  std::string prefix;  // "/tandem/<cluster>/"
  explicit Keys(const std::string& cluster) : prefix("/tandem/" + cluster + "/") {}
  std::string initialize() const { return prefix + "initialize"; }
  std::string leader() const { return prefix + "leader"; }
  std::string member(const std::string& n) const { return prefix + "members/" + n; }
  std::string node(const std::string& n) const { return prefix + "nodes/" + n; }
  std::string timeline() const { return prefix + "timeline"; }
  std::string history(int64_t seq) const;
  std::string history_prefix() const { return prefix + "history/"; }
  std::string sync() const { return prefix + "sync"; }
  std::string intent() const { return prefix + "intent"; }
  std::string pause() const { return prefix + "pause"; }
};

// A node's registration: how to reach it. Written when it joins, removed when it leaves.
struct NodeInfo {
  std::string name;
  std::string host;  // the address it clusters on
  int pg_port = 0;
  std::string api_url;
  std::string etcd_peer_url;  // "" when the cluster uses an external etcd
  std::string etcd_client_url;
  uint64_t etcd_member_id = 0;  // 0 = not an etcd member
  // The client endpoint's ports on this node (0 = off, or registered before
  // the proxy existed).
  int proxy_rw_port = 0;
  int proxy_ro_port = 0;
  // A witness: an etcd voter and an agent with no PostgreSQL
  // (docs/design/witness.md); pg_port is then unused.
  bool witness = false;
  // The key's mod_revision when read from the store (not encoded; 0 = not read).
  dcs::Revision mod_revision = 0;
};

struct HistoryEntry {
  int64_t seq = 0;
  int64_t at_ms = 0;  // wall clock
  std::string leader;
  uint32_t timeline = 0;
  std::string reason;
};

// One consistent read of the whole prefix.
// The newest timeline announced in the store (see docs/design/state-machine.md).
struct TimelineRecord {
  uint32_t timeline = 0;
  std::string member;
  dcs::Revision mod_revision = 0;  // 0 = no record yet
};

// An operator request as stored (the core sees core::Intent, see ToCoreIntent).
struct IntentRecord {
  core::Intent intent;
  int64_t at_ms = 0;       // wall clock: not before (0 = at once)
  int64_t expires_ms = 0;  // wall clock: ignored and deleted after
  std::string requested_on;
  dcs::Revision mod_revision = 0;
};

struct ClusterView {
  dcs::Revision revision = 0;
  TimelineRecord timeline;
  bool initialized = false;
  std::string system_identifier;
  std::optional<core::LeaderKey> leader;
  std::map<std::string, core::MemberState> members;  // live (leased) state
  std::map<std::string, NodeInfo> nodes;             // registrations
  std::vector<HistoryEntry> history;
  // The sync record; a malformed one reads as claiming nothing (quorum 0).
  std::optional<core::SyncRecord> sync;
  dcs::Revision sync_mod_revision = 0;
  std::optional<IntentRecord> intent;  // also when malformed (kind failover to "", expired)
  bool paused = false;
};

std::string EncodeNodeInfo(const NodeInfo& n);
Result<NodeInfo> DecodeNodeInfo(const std::string& json);
std::string EncodeMemberState(const core::MemberState& m);
Result<core::MemberState> DecodeMemberState(const std::string& json);
std::string EncodeTimeline(uint32_t timeline, const std::string& member);
std::string EncodeHistory(const HistoryEntry& h);
Result<HistoryEntry> DecodeHistory(const std::string& json);

std::string EncodeSyncRecord(const core::SyncRecord& r);
Result<core::SyncRecord> DecodeSyncRecord(const std::string& json);
std::string EncodeIntent(const IntentRecord& r);
Result<IntentRecord> DecodeIntent(const std::string& json);
// The intent as the core sees it at wall time now_ms; nullopt once expired.
std::optional<core::Intent> ToCoreIntent(const std::optional<IntentRecord>& r, int64_t now_ms);

// Builds the view from a prefix read. Garbage under a key is skipped with a
// warning (a corrupt member entry must not stop the loop), never trusted.
ClusterView ParseClusterView(const Keys& keys, const dcs::RangeResult& range);

}  // namespace tandem::agent
