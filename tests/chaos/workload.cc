// The chaos workload: its threads insert unique ids through the client
// endpoint (libpq), logging each attempt before it is sent and its outcome
// after; Snapshot hands the test the history so far under the workload's
// mutex.
#include "chaos/workload.h"

#include <libpq-fe.h>
#include <poll.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "base/clock.h"

namespace tandem::chaos {
namespace {

// The simple query protocol: an autocommit statement commits before its
// CommandComplete is sent (the extended protocol commits later, at Sync).
std::string Insert(int64_t id) {
  return "INSERT INTO chaos(id) VALUES (" + std::to_string(id) +
         ") RETURNING substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8), "
         "host(inet_server_addr())";
}

}  // namespace

Workload::Workload(std::string conninfo, int clients, int64_t op_timeout_ms)
    : conninfo_(std::move(conninfo)), clients_(clients), op_timeout_ms_(op_timeout_ms) {}

Workload::~Workload() {
  Stop();
}

int64_t Workload::NowMs() {
  return SystemClock::Get().Now();
}

void Workload::Start() {
  stop_ = false;
  for (int c = 0; c < clients_; ++c) threads_.emplace_back([this, c] { Run(c); });
}

void Workload::Stop() {
  stop_ = true;
  for (auto& t : threads_) t.join();
  threads_.clear();
}

std::vector<Op> Workload::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ops_;
}

int64_t Workload::AckAfter(int64_t after_ms, const std::string& not_node) const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t latest = 0;
  for (auto it = ops_.rbegin(); it != ops_.rend(); ++it) {
    if (it->invoke_ms < after_ms - 60'000) break;  // far enough back
    if (it->outcome == Op::Outcome::kOk && it->complete_ms > after_ms &&
        (not_node.empty() || it->node != not_node)) {
      latest = std::max(latest, it->complete_ms);
    }
  }
  return latest;
}

size_t Workload::Begin(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  Op op;
  op.id = id;
  op.invoke_ms = NowMs();
  ops_.push_back(op);
  return ops_.size() - 1;
}

void Workload::Finish(size_t index, Op::Outcome outcome, uint32_t epoch, const std::string& node) {
  std::lock_guard<std::mutex> lock(mu_);
  Op& op = ops_[index];
  op.complete_ms = NowMs();
  op.outcome = outcome;
  op.epoch = epoch;
  op.node = node;
}

void Workload::Run(int client) {
  PGconn* conn = nullptr;
  int64_t seq = 0;
  auto drop = [&] {
    if (conn != nullptr) PQfinish(conn);
    conn = nullptr;
  };
  while (!stop_) {
    if (conn == nullptr) {
      conn = PQconnectdb(conninfo_.c_str());
      if (PQstatus(conn) != CONNECTION_OK) {
        drop();  // nothing was sent: not an attempt
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      PQsetnonblocking(conn, 1);
    }
    const int64_t id = static_cast<int64_t>(client + 1) * 1'000'000'000 + ++seq;
    const std::string sql = Insert(id);
    const size_t index = Begin(id);
    if (PQsendQuery(conn, sql.c_str()) != 1) {
      Finish(index, Op::Outcome::kUnknown, 0, "");
      drop();
      continue;
    }
    const int64_t deadline = NowMs() + op_timeout_ms_;
    bool flushed = false;
    Op::Outcome outcome = Op::Outcome::kUnknown;
    uint32_t epoch = 0;
    std::string node;
    bool done = false;
    while (!done) {
      const int64_t left = deadline - NowMs();
      if (left <= 0) break;  // unknown: it may still commit
      if (!flushed) {
        int f = PQflush(conn);
        if (f < 0) break;
        flushed = f == 0;
      }
      pollfd p{PQsocket(conn), static_cast<short>(POLLIN | (flushed ? 0 : POLLOUT)), 0};
      if (::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 100))) < 0) break;
      if (PQconsumeInput(conn) != 1) break;  // connection lost around the commit
      while (!PQisBusy(conn)) {
        PGresult* r = PQgetResult(conn);
        if (r == nullptr) {
          done = true;
          break;
        }
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
          outcome = Op::Outcome::kOk;
          epoch = static_cast<uint32_t>(std::strtoul(PQgetvalue(r, 0, 0), nullptr, 16));
          node = PQgetvalue(r, 0, 1);
        } else if (PQstatus(conn) == CONNECTION_OK && outcome != Op::Outcome::kOk) {
          // The server refused the statement and the session lives on: an
          // autocommit INSERT that raised an error did not commit.
          outcome = Op::Outcome::kFailed;
        }
        PQclear(r);
      }
      if (PQstatus(conn) != CONNECTION_OK) {
        if (outcome != Op::Outcome::kOk) outcome = Op::Outcome::kUnknown;
        break;
      }
    }
    // Acknowledged means the whole answer arrived (ReadyForQuery).
    if (!done) outcome = Op::Outcome::kUnknown;
    Finish(index, outcome, epoch, node);
    if (outcome != Op::Outcome::kOk) {
      drop();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  drop();
}

}  // namespace tandem::chaos
