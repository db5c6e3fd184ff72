// The chaos workload's history and the checker that judges it.
//
// Pure: the workload records one Op per attempted write (logged before it is
// sent), the test reads what each node holds once the cluster has settled,
// and Check() says what went wrong. Kept apart from the network and process
// code so that unit tests can prove, on made-up histories, that the checker
// catches a lost write, a phantom write and two primaries at once.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace tandem::chaos {

struct Op {
  enum class Outcome { kPending, kOk, kFailed, kUnknown };
  int64_t id = 0;           // unique over the whole run
  int64_t invoke_ms = 0;    // monotonic, taken before the request was sent
  int64_t complete_ms = 0;  // when the answer (or the give-up) came
  Outcome outcome = Outcome::kPending;
  uint32_t epoch = 0;  // kOk: the server's timeline when it wrote
  std::string node;    // kOk: the server's address
};

struct Verdict {
  std::vector<std::string> losses;      // acknowledged writes missing on a node
  std::vector<std::string> violations;  // everything else that went wrong
  bool ok() const { return losses.empty() && violations.empty(); }
  size_t acknowledged = 0;
  size_t lost = 0;  // acknowledged ids missing on some node
};

// Checks a history against what every node holds after the cluster settled
// (node name -> ids in its table). `ops` is taken after the rows were read
// and `rows_read_ms` is when their reading began, so the writes acknowledged
// before then must be there and every id found was attempted:
//  - every id acknowledged by rows_read_ms is on every node (nothing lost);
//  - every id on a node was attempted (nothing is invented);
//  - no write acknowledged in an older epoch was invoked after a write in a
//    newer epoch had been acknowledged (the old primary kept accepting writes
//    after the new one had: overlapping primaries);
//  - one epoch was written by one node only (two primaries on one timeline).
Verdict Check(const std::vector<Op>& ops, int64_t rows_read_ms,
              const std::map<std::string, std::set<int64_t>>& rows);

// The longest time without an acknowledged write between `from_ms` and
// `to_ms`: the client-visible unavailability around a fault. Counts from the
// last acknowledgement before `from_ms` (or from `from_ms` when none).
int64_t LongestGap(const std::vector<Op>& ops, int64_t from_ms, int64_t to_ms);

}  // namespace tandem::chaos
