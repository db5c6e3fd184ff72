// AgentHarness: building, starting, settling and faulting the nodes (see agent_harness.h).
#include "unit/agent/agent_harness.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "agent/cluster_view.h"
#include "agent/local_state.h"
#include "base/file.h"
#include "base/log.h"

namespace tandem::agenttest {
namespace {

constexpr uint64_t kStartLsn = 0x3000000;
constexpr int kApiPortBase = 18000;  // never bound: HTTP goes through deps.http
constexpr int kPgPortBase = 15000;   // never bound: the fakes only compare ports

std::string NodeName(int i) {
  return "n" + std::to_string(i + 1);
}

}  // namespace

AgentHarness::AgentHarness(HarnessOptions opts) : opts_(std::move(opts)) {
  log::SetLevel(log::Level::kWarn);
  char tmpl[] = "/tmp/tandem-agenttest-XXXXXX";
  const char* dir = ::mkdtemp(tmpl);
  TANDEM_CHECK(dir != nullptr, "mkdtemp failed");
  root_ = dir;
  store_ = std::make_shared<dcs::MemoryDcs>(clock_);
  bus_ = std::make_shared<NodeStore::Bus>();
  baseline_threads_ = ThreadCount();
  for (int i = 0; i < opts_.nodes; ++i) BuildNode(i);
  SeedStore();
}

AgentHarness::~AgentHarness() {
  // Teardown only: time moves by itself, so no wait of an agent thread can
  // hold up its shutdown (every assertion is done by now).
  std::atomic<bool> done{false};
  std::thread ticker([&] {
    while (!done) {
      clock_.Advance(10);
      SystemClock::Get().SleepFor(1);  // real time: the test clock is the one moving
    }
  });
  for (auto& n : nodes_) {
    n->store->SetPartitioned(false);
    n->store->SetFrozen(false);
    n->pg->UnblockAll();
  }
  for (auto& n : nodes_) {
    if (n->started.exchange(false)) n->agent->Shutdown();
  }
  for (auto& n : nodes_) n->agent.reset();
  done = true;
  ticker.join();
  (void)RemoveAll(root_);
}

void AgentHarness::BuildNode(int i) {
  auto n = std::make_unique<Node>();
  n->name = NodeName(i);
  n->dir = root_ + "/" + n->name;
  TANDEM_CHECK(MakeDirs(n->dir, 0755).ok(), "cannot create " + n->dir);
  std::ostringstream y;
  y << "cluster: " << cluster_ << "\n"
    << "node:\n  name: " << n->name << "\n  address: 127.0.0.1\n  state_dir: " << n->dir << "\n"
    << "api:\n  port: " << kApiPortBase + i << "\n"
    << "postgresql:\n  port: " << kPgPortBase + i << "\n  bin_dir: /nonexistent\n"
    << "  sync_mode: " << opts_.sync_mode << "\n"
    << "dcs:\n  endpoints: [http://127.0.0.1:1]\n  ttl: " << opts_.ttl_ms << "ms\n"
    << "  loop_interval: " << opts_.loop_interval_ms << "ms\n"
    << "  safety_margin: " << opts_.safety_margin_ms << "ms\n"
    << opts_.extra_yaml;
  const std::string path = n->dir + "/tandem.yaml";
  TANDEM_CHECK(WriteFileAtomic(path, y.str()).ok(), "cannot write " + path);
  auto cfg = agent::LoadConfig(path);
  TANDEM_CHECK(cfg.ok(), cfg.ok() ? "" : cfg.error().message());
  n->cfg = *cfg;
  agent::LocalState st;
  st.member = true;
  st.cluster = cluster_;
  TANDEM_CHECK(agent::SaveLocalState(n->cfg.state_path(), st).ok(), "state.json");
  TANDEM_CHECK(agent::SaveSecrets(n->cfg.secrets_path(), {"su-secret", "repl-secret"}).ok(),
               "secrets.json");

  pg::Paths paths;
  paths.bin_dir = "/nonexistent";
  paths.data_dir = n->cfg.pg_data_dir;
  paths.socket_dir = n->cfg.socket_dir();
  paths.log_file = n->cfg.log_dir() + "/postgresql.log";
  pg::Settings settings;
  settings.listen_address = "127.0.0.1";
  settings.port = n->cfg.pg_port;
  settings.extra = n->cfg.pg_parameters;
  auto fake = std::make_unique<FakePostgres>(clock_, paths, settings);
  n->pg = fake.get();
  fake->SetCluster([this] {
    std::vector<FakePostgres*> all;
    for (auto& x : nodes_) all.push_back(x->pg);
    return all;
  });
  fake->SetSequence(&seq_);
  fake->InitDataDir(1, kStartLsn, /*standby=*/i != 0);
  n->store = std::make_shared<NodeStore>(clock_, store_, bus_, &seq_);

  agent::AgentDeps deps;
  deps.clock = &clock_;
  deps.pg = std::move(fake);
  deps.connect_store =
      [st = n->store](const std::vector<std::string>&) -> Result<std::shared_ptr<dcs::Dcs>> {
    return std::shared_ptr<dcs::Dcs>(st);
  };
  deps.http = [this](const std::string& method, const std::string& url, const std::string&,
                     int64_t) { return Http(method, url); };
  n->agent = std::make_unique<agent::Agent>(n->cfg, std::move(deps));
  Node* raw = n.get();
  n->agent->SetRouteSink([this, raw](const core::Route& r) {
    std::lock_guard<std::mutex> g(raw->routes_mu);
    raw->routes.push_back(RouteEvent{clock_.Now(), r});
  });
  nodes_.push_back(std::move(n));
}

void AgentHarness::SeedStore() {
  nlohmann::json init{{"system_identifier", "7000000000000000001"},
                      {"created_by", nodes_.front()->name},
                      {"created_at", clock_.WallNow()}};
  TANDEM_CHECK(store_->Put(keys_.initialize(), init.dump()).ok(), "seed initialize");
  for (auto& n : nodes_) {
    agent::NodeInfo info;
    info.name = n->name;
    info.host = n->cfg.node_address;
    info.pg_port = n->cfg.pg_port;
    info.api_url = n->cfg.api_url();
    TANDEM_CHECK(store_->Put(keys_.node(n->name), agent::EncodeNodeInfo(info)).ok(), "seed node");
  }
}

Result<net::HttpResponse> AgentHarness::Http(const std::string& method, const std::string& url) {
  for (auto& n : nodes_) {
    const std::string base = n->cfg.api_url() + "/";
    if (url.rfind(base, 0) != 0) continue;
    if (!n->started || n->store->BlockedCallers() > 0 || n->pg->BlockedCallers() > 0) break;
    if (method == "GET" && url == base + "v1/position") {
      return net::HttpResponse{200, n->agent->PositionJson().dump()};
    }
    return net::HttpResponse{404, "{}"};
  }
  return Error(ErrorCode::kUnavailable, "connection refused (test): " + url);
}

Status AgentHarness::StartAgent(int i) {
  Node& n = node(i);
  auto st = n.agent->Start();
  if (st.ok()) n.started = true;
  return st;
}

void AgentHarness::ShutdownAgent(int i) {
  Node& n = node(i);
  if (!n.started.exchange(false)) return;
  // Shutdown joins threads that may be waiting on the clock (the watch's
  // store wait ends at its timeout): it runs beside the test thread, which
  // keeps settling and moving time until it returns.
  std::atomic<bool> done{false};
  ++helper_threads_;
  std::thread t([&] {
    n.agent->Shutdown();
    --helper_threads_;  // before it ends: Settle then waits for it to be gone
    done = true;
  });
  const MonoMs until = clock_.Now() + 10'000;
  while (!done && clock_.Now() < until) {
    if (!Settle()) break;
    if (!done) clock_.Advance(10);
  }
  t.join();
  EXPECT_TRUE(done.load()) << n.name << ": Shutdown did not return within 10 s of clock";
}

bool AgentHarness::StartCluster(MonoMs max_ms) {
  pg::Source src;
  src.host = node(0).cfg.node_address;
  src.port = node(0).cfg.pg_port;
  src.user = "replicator";
  for (int i = 0; i < size(); ++i) {
    if (i > 0) {
      src.application_name = node(i).name;
      src.slot_name = pg::SlotNameFor(node(i).name);
      (void)pg(i).WriteConfig(src);
    }
    // n1's server is left stopped: its agent starts it as the primary (as
    // after `initialize`); agent_start_test.cc covers starting on a running one.
    if (i > 0) (void)pg(i).Start(0);
    pg(i).ClearCalls();
  }
  // n1 first (as after `initialize`): with no leader key every standby
  // would compete for it.
  for (int i = 0; i < size(); ++i) {
    auto st = StartAgent(i);
    if (!st.ok()) {
      ADD_FAILURE() << node(i).name << ": Start: " << st.error().message();
      return false;
    }
    if (i == 0 && !AdvanceUntil([&] { return LeaderHolder() == node(0).name; }, max_ms)) {
      ADD_FAILURE() << "n1 did not take the leader key\n" << Describe();
      return false;
    }
  }
  return AdvanceUntil(
      [&] {
        if (LeaderHolder() != node(0).name || pg(0).state() != FakePostgres::State::kPrimary) {
          return false;
        }
        for (int i = 1; i < size(); ++i) {
          auto kv = Key("members/" + node(i).name);
          if (!kv) return false;
          auto m = agent::DecodeMemberState(kv->value);
          if (!m.ok() || !m->streaming || m->following != node(0).name) return false;
        }
        // Every node's client endpoint routes writes to n1: a scenario may
        // start at once and expect it (the start can converge before the
        // clock moves, and the route follows one cycle after the promotion).
        for (int i = 0; i < size(); ++i) {
          bool valid = false;
          if (RouteWriteTarget(i, &valid) != node(0).name || !valid) return false;
        }
        return true;
      },
      max_ms);
}

int AgentHarness::ThreadCount() const {
  int n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/task", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

int AgentHarness::BlockedThreads() const {
  int n = 0;
  for (const auto& x : nodes_) n += x->pg->BlockedCallers() + x->store->BlockedCallers();
  return n + helper_threads_.load();
}

bool AgentHarness::Settle() {
  // The only real time the harness reads: a bound so that a bug fails the
  // test instead of hanging it (never part of what a test asserts).
  const Clock& real_clock = SystemClock::Get();
  const MonoMs began = real_clock.Now();
  int stable = 0;
  for (int spin = 0;; ++spin) {
    const int threads = ThreadCount();
    const int blocked = BlockedThreads();
    const int idle = clock_.IdleWaiters();
    const bool same = threads == ThreadCount() && blocked == BlockedThreads();
    if (same && idle == threads - baseline_threads_ - blocked) {
      if (++stable >= 3) return true;
      continue;
    }
    stable = 0;
    if (real_clock.Now() - began > opts_.settle_limit_real_ms) {
      ADD_FAILURE() << "the agents' threads did not park within " << opts_.settle_limit_real_ms
                    << " ms of real time: threads " << threads - baseline_threads_ << ", idle "
                    << idle << ", blocked in fakes " << blocked << ", waiting " << clock_.Waiters()
                    << "\n"
                    << Describe();
      return false;
    }
    if (spin < 200) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));  // a spin limit, not a timer
    }
  }
}

bool AgentHarness::Step(MonoMs ms, MonoMs step_ms) {
  if (!Settle()) return false;
  for (MonoMs left = ms; left > 0;) {
    const MonoMs d = std::min(left, step_ms);
    clock_.Advance(d);
    left -= d;
    if (!Settle()) return false;
  }
  return true;
}

bool AgentHarness::AdvanceUntil(const std::function<bool()>& pred, MonoMs max_ms, MonoMs step_ms) {
  const MonoMs until = clock_.Now() + max_ms;
  for (;;) {
    if (!Settle()) return false;
    if (pred()) return true;
    if (clock_.Now() >= until) return false;
    clock_.Advance(std::min(step_ms, until - clock_.Now()));
  }
}

void AgentHarness::Pause(int i, bool pg_too) {
  node(i).store->SetFrozen(true);
  if (pg_too) pg(i).Block("*");
}

void AgentHarness::Resume(int i) {
  node(i).store->SetFrozen(false);
  pg(i).Unblock("*");
}

std::optional<dcs::KeyValue> AgentHarness::Key(const std::string& suffix) {
  auto r = store_->Get(keys_.prefix + suffix);
  if (!r.ok() || !r->has_value()) return std::nullopt;
  return **r;
}

std::string AgentHarness::LeaderHolder() {
  auto kv = Key("leader");
  return kv ? kv->value : "";
}

std::vector<AgentHarness::RouteEvent> AgentHarness::Routes(int i) const {
  const Node& n = *nodes_.at(i);
  std::lock_guard<std::mutex> g(n.routes_mu);
  return n.routes;
}

std::optional<NodeStore::Request> AgentHarness::FirstRequest(int i, const std::string& op,
                                                             const std::string& key_suffix,
                                                             bool only_ok,
                                                             uint64_t after_seq) const {
  for (const auto& r : nodes_.at(i)->store->Requests()) {
    if (r.seq <= after_seq || r.op != op || (only_ok && !r.ok)) continue;
    if (r.key.size() >= key_suffix.size() &&
        r.key.compare(r.key.size() - key_suffix.size(), key_suffix.size(), key_suffix) == 0) {
      return r;
    }
  }
  return std::nullopt;
}

std::string AgentHarness::RouteWriteTarget(int i, bool* valid) const {
  const Node& n = *nodes_.at(i);
  std::lock_guard<std::mutex> g(n.routes_mu);
  if (valid) *valid = false;
  if (n.routes.empty() || !n.routes.back().route.read_write) return "";
  if (valid) *valid = clock_.Now() < n.routes.back().route.valid_until;
  return n.routes.back().route.read_write->member;
}

std::string AgentHarness::Describe() {
  std::ostringstream os;
  os << "clock " << clock_.Now() << ", leader key '" << LeaderHolder() << "'\n";
  for (int i = 0; i < size(); ++i) {
    Node& n = node(i);
    os << "  " << n.name << ": pg " << StateName(n.pg->state()) << " tl " << n.pg->timeline()
       << " lsn " << n.pg->lsn() << (n.store->partitioned() ? ", partitioned" : "")
       << (n.store->BlockedCallers() > 0 ? ", store frozen" : "") << ", route rw '"
       << RouteWriteTarget(i) << "'; last calls:";
    auto calls = n.pg->Calls();
    for (size_t k = calls.size() > 8 ? calls.size() - 8 : 0; k < calls.size(); ++k) {
      os << " " << calls[k].ToString() << "@" << calls[k].at;
    }
    os << "\n";
  }
  return os.str();
}

}  // namespace tandem::agenttest
