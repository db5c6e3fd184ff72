// The cluster event log in the store (docs/logging.md, "The cluster event
// log"): the record's JSON, its key, appending one event when it happens and
// pruning beyond core::kEventRetention, reading them in order.
//
//   events/<time_ms:15>-<node>-<n>   one event (JSON, no lease)
//
// The key only has to be unique (the node's name and a per-process counter
// keep two nodes and two calls apart; a create-if-missing compare catches
// the rest); the order is the key's create revision, which etcd gives out
// cluster-wide, so every node reads the same sequence.
//
// Cost: nothing at idle. An append is one compare-guarded put, a read of the
// prefix and, beyond the cap, one transaction deleting the oldest.
//
// Thread: any (the HA loop, API workers, the join worker); the store is
// thread-safe and nothing here keeps state but an atomic counter.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "core/events.h"
#include "dcs/dcs.h"

namespace tandem::agent {

// The stored form (no seq: that is the key's create revision).
std::string EncodeEvent(const core::Event& e);
// kInvalidArgument naming the problem for a record that is not an event.
Result<core::Event> DecodeEvent(std::string_view json);
// The API's form: {"seq", "time" (RFC 3339, ms, UTC), "node", "kind", "message", "fields"}.
nlohmann::json EventJson(const core::Event& e);

inline std::string EventsPrefix(const std::string& cluster_prefix) {
  return cluster_prefix + "events/";
}

// Appends one event (e.seq is ignored) and prunes the oldest beyond `cap`.
// Returns false, having logged why at debug level, when the store did not
// take it: an event log is a record for operators, never a reason to fail
// the action it describes.
bool AppendEvent(dcs::Dcs& store, const std::string& cluster_prefix, const core::Event& e,
                 size_t cap = core::kEventRetention);

// Every stored event, oldest first; malformed records are skipped.
Result<std::vector<core::Event>> ReadEvents(dcs::Dcs& store, const std::string& cluster_prefix);

}  // namespace tandem::agent
