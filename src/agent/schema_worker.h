// The agent's schema-upgrade state (issue 15, docs/schema-upgrades.md): the
// worker thread that carries out the operation record on the primary (never
// the HA loop: a migration may take hours), the session it may be asked to
// cancel, and what the loop's upkeep remembers between cycles.
//
// Threads: the HA loop (SchemaUpkeep: starts the worker), the worker, and the
// agent's destructor (stops and joins it). Everything under mu.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include "base/clock.h"
#include "dcs/dcs.h"
#include "pg/schema_session.h"

namespace tandem::agent {

class SchemaWorker {
 public:
  SchemaWorker() = default;
  SchemaWorker(const SchemaWorker&) = delete;
  SchemaWorker& operator=(const SchemaWorker&) = delete;
  // Stops the worker (its statement cancelled; the record stays "running"
  // for the next primary) and joins it.
  ~SchemaWorker() { Stop(); }

  void Stop() {
    stop = true;
    Cancel();
    std::thread t;
    {
      std::lock_guard<std::mutex> lock(mu);
      t = std::move(thread);
    }
    if (t.joinable()) t.join();
  }
  void Cancel() {
    std::lock_guard<std::mutex> lock(mu);
    if (session != nullptr) session->Cancel();
  }

  std::mutex mu;
  std::thread thread;                    // under mu
  pg::SchemaSession* session = nullptr;  // under mu: the session in use, for Cancel
  std::atomic<bool> active{false};       // the worker runs (set by the loop, cleared by it)
  std::atomic<bool> stop{false};
  // Loop thread only: the view revision last looked at, and when to look
  // again after an interrupted run.
  dcs::Revision checked_revision = -1;
  std::atomic<MonoMs> retry_at{0};
};

}  // namespace tandem::agent
