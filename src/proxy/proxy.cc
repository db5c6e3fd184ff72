// Proxy's public side (proxy.h): Start binds the listeners and starts the
// event loops (loop.cc), one thread each; Stop joins them; SetRoute hands a
// route to every loop; GetStats and CurrentRoute read what the loops share.
// Called from the thread that owns the Proxy (`tandem agent`'s main thread),
// SetRoute from the agent's HA loop; the loops' state is in loop.h.
#include "proxy/proxy.h"

#include <algorithm>
#include <thread>

#include "base/log.h"
#include "proxy/loop.h"

namespace tandem::proxy {

Proxy::Proxy(Options opts, const Clock& clock) : opts_(std::move(opts)), clock_(clock) {}

Proxy::~Proxy() {
  Stop();
}

int Proxy::LoopCount(const Options& opts) {
  if (opts.threads > 0) return opts.threads;
  const unsigned cores = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp<unsigned>(cores, 1, 4));
}

Status Proxy::Start() {
  if (!threads_.empty()) return Ok();
  auto shared = std::make_unique<Shared>();
  if (opts_.read_write_port > 0) {
    TANDEM_TRY(internal::Listen(opts_.listen_address, opts_.read_write_port,
                                "proxy.read_write_port", &shared->rw_listener));
  }
  if (opts_.read_only_port > 0) {
    TANDEM_TRY(internal::Listen(opts_.listen_address, opts_.read_only_port, "proxy.read_only_port",
                                &shared->ro_listener));
  }
  std::vector<std::unique_ptr<Loop>> loops;
  const int n = LoopCount(opts_);
  for (int i = 0; i < n; ++i) {
    auto loop = std::make_unique<Loop>(opts_, clock_, shared.get(), i);
    TANDEM_TRY(loop->Open());
    loops.push_back(std::move(loop));
  }
  shared_ = std::move(shared);
  loops_ = std::move(loops);
  for (auto& loop : loops_) threads_.emplace_back([l = loop.get()] { l->Run(); });
  TLOG(Info, "proxy") << "listening on " << opts_.listen_address << ": read-write port "
                      << opts_.read_write_port << ", read-only port " << opts_.read_only_port
                      << " (max " << opts_.max_connections << " connections per port, " << n
                      << " event loop" << (n == 1 ? "" : "s") << ")";
  return Ok();
}

void Proxy::Stop() {
  if (threads_.empty()) return;
  for (auto& loop : loops_) loop->RequestStop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  loops_.clear();
  shared_.reset();
  TLOG(Info, "proxy") << "stopped";
}

void Proxy::SetRoute(const core::Route& route) {
  for (auto& loop : loops_) loop->SetRoute(route);
}

Stats Proxy::GetStats() const {
  Stats s;
  if (!shared_) return s;
  s.read_write_open = shared_->open[0].load();
  s.read_only_open = shared_->open[1].load();
  s.accepted = shared_->accepted.load();
  s.refused = shared_->refused.load();
  s.cut = shared_->cut.load();
  return s;
}

core::Route Proxy::CurrentRoute() const {
  return loops_.empty() ? core::Route{} : loops_.front()->LastSet();
}

}  // namespace tandem::proxy
