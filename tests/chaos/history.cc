// The chaos checker: Check() judges one history (every write the workload
// attempted, what each node holds afterwards) for lost and phantom writes and
// overlapping primaries; LongestGap measures the write outage. Pure.
#include "chaos/history.h"

#include <algorithm>

namespace tandem::chaos {

Verdict Check(const std::vector<Op>& ops, int64_t rows_read_ms,
              const std::map<std::string, std::set<int64_t>>& rows) {
  Verdict v;
  std::set<int64_t> attempted;
  std::vector<const Op*> acked;   // every acknowledgement (for the epoch rules)
  std::vector<const Op*> needed;  // those that must be in the rows
  for (const Op& op : ops) {
    attempted.insert(op.id);
    if (op.outcome != Op::Outcome::kOk) continue;
    acked.push_back(&op);
    if (op.complete_ms <= rows_read_ms) needed.push_back(&op);
  }
  v.acknowledged = needed.size();

  std::set<int64_t> lost_ids;
  for (const auto& [node, ids] : rows) {
    size_t missing = 0;
    int64_t example = 0;
    for (const Op* op : needed) {
      if (ids.count(op->id) == 0) {
        if (missing++ == 0) example = op->id;
        lost_ids.insert(op->id);
      }
    }
    if (missing > 0) {
      v.losses.push_back(node + " lacks " + std::to_string(missing) +
                         " acknowledged write(s), e.g. id " + std::to_string(example));
    }
    size_t invented = 0;
    for (int64_t id : ids) invented += attempted.count(id) == 0 ? 1 : 0;
    if (invented > 0) {
      v.violations.push_back(node + " holds " + std::to_string(invented) +
                             " id(s) that no client ever attempted");
    }
  }
  v.lost = lost_ids.size();

  // Per epoch: who wrote it, and the earliest acknowledgement in it.
  std::map<uint32_t, std::string> writer;
  std::map<uint32_t, int64_t> first_ack;
  for (const Op* op : acked) {
    auto [it, fresh] = writer.emplace(op->epoch, op->node);
    if (!fresh && it->second != op->node) {
      v.violations.push_back("epoch " + std::to_string(op->epoch) + " was written by both " +
                             it->second + " and " + op->node + " (two primaries on one timeline)");
      it->second = op->node;  // report each pair once per change
    }
    auto f = first_ack.find(op->epoch);
    if (f == first_ack.end() || op->complete_ms < f->second) first_ack[op->epoch] = op->complete_ms;
  }
  // An acknowledged write invoked after a newer epoch's first acknowledgement.
  size_t overlapping = 0;
  for (const Op* op : acked) {
    for (auto it = first_ack.upper_bound(op->epoch); it != first_ack.end(); ++it) {
      if (op->invoke_ms > it->second) {
        if (++overlapping > 5) break;  // the first few say enough
        v.violations.push_back("id " + std::to_string(op->id) + " was acknowledged by " + op->node +
                               " in epoch " + std::to_string(op->epoch) + " although it was sent " +
                               std::to_string(op->invoke_ms - it->second) + " ms after epoch " +
                               std::to_string(it->first) +
                               " had acknowledged a write (overlapping primaries)");
        break;
      }
    }
  }
  return v;
}

int64_t LongestGap(const std::vector<Op>& ops, int64_t from_ms, int64_t to_ms) {
  std::vector<int64_t> acks;
  for (const Op& op : ops) {
    if (op.outcome == Op::Outcome::kOk) acks.push_back(op.complete_ms);
  }
  std::sort(acks.begin(), acks.end());
  int64_t prev = from_ms;
  auto it = std::lower_bound(acks.begin(), acks.end(), from_ms);
  if (it != acks.begin()) prev = *(it - 1);
  int64_t longest = 0;
  for (; it != acks.end() && *it <= to_ms; ++it) {
    longest = std::max(longest, *it - prev);
    prev = *it;
  }
  return std::max(longest, to_ms - prev);
}

}  // namespace tandem::chaos
