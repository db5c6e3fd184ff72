// The chaos client: threads that append unique ids through the cluster's
// client endpoint and log every attempt before it is sent, then its outcome:
// ok (with the server's epoch and address), failed (the server refused it and
// the session is still there, so nothing was committed) or unknown (a timeout
// or a lost connection around the commit). It never sends a cancel request:
// a cancelled wait for a synchronous standby would commit locally.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "chaos/history.h"

namespace tandem::chaos {

class Workload {
 public:
  // conninfo: a libpq connection string (multi-host, target_session_attrs).
  // The table `chaos(id bigint primary key)` must exist.
  Workload(std::string conninfo, int clients, int64_t op_timeout_ms);
  ~Workload();
  void Start();
  void Stop();

  std::vector<Op> Snapshot() const;
  // The latest acknowledgement completed after `after_ms` by a node other
  // than `not_node` ("" = any node); 0 when none yet.
  int64_t AckAfter(int64_t after_ms, const std::string& not_node) const;
  static int64_t NowMs();

 private:
  void Run(int client);
  size_t Begin(int64_t id);
  void Finish(size_t index, Op::Outcome outcome, uint32_t epoch, const std::string& node);

  std::string conninfo_;
  int clients_;
  int64_t op_timeout_ms_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  std::vector<Op> ops_;
};

}  // namespace tandem::chaos
