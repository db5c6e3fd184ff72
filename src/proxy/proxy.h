// The client endpoint: a TCP proxy with a read-write and a read-only port.
//
// A few threads (one per core, at most 4) each run an epoll loop over
// non-blocking sockets: no thread per connection. The listeners are shared;
// the kernel hands each new connection to one loop (EPOLLEXCLUSIVE), which
// owns it to the end. Each connection has a 64 KiB buffer per direction; bytes pass
// untouched (TCP level only, so TLS from the client passes through). Where a
// connection goes is not decided here: the agent computes a core::Route every
// HA cycle (core/route.h, safety rule 5) and hands it over with SetRoute().
//
//   read-write port  -> route.read_write; with none, a connection is accepted
//                       and closed at once (fail closed), with a log line.
//   read-only port   -> route.read_only, round robin; none = closed likewise.
//
// When the write target changes (to another node or to none), every
// read-write connection to the old target is closed at once, so no client
// keeps writing to a former primary; read-only connections to a node that
// left the set are closed too. A route past its valid_until counts as none
// (a stuck HA loop must not keep routing on an old view). Every refused or
// cut connection is logged with its reason (module=proxy).
//
// Time: every timer (route expiry, connect timeout, idle timeout) is judged
// on the injected Clock, read once per pass of a loop. A loop passes at least
// every 100 ms of real time (its epoll timeout: the loop waits for sockets,
// not on the clock), so on a ManualClock a timer fires at the first pass
// after the test advances the clock past it, and never because real time
// passed.
//
// Library placement: the proxy depends only on base and core (it needs the
// Route type, not the agent). The agent publishes routes through a callback
// (Agent::SetRouteSink) and `tandem agent` (src/cli) starts the proxy and
// connects the two, as it does for the API server; so the link graph keeps
// agent <- proxy <- cli and the agent never depends on the proxy.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "core/route.h"

namespace tandem::proxy {

struct Options {
  std::string listen_address = "127.0.0.1";  // an IPv4 address; 0.0.0.0 = every interface
  int read_write_port = 0;                   // 0 = no read-write listener
  int read_only_port = 0;                    // 0 = no read-only listener
  int max_connections = 1000;                // per port; over it, new ones are closed
  int64_t idle_timeout_ms = 0;               // no bytes either way this long: cut (0 = never)
  int64_t connect_timeout_ms = 3'000;        // to the backend PostgreSQL
  int threads = 0;                           // event loops; 0 = one per core, at most 4
};

// Counters for the status and the tests (a snapshot; thread-safe).
struct Stats {
  int read_write_open = 0;
  int read_only_open = 0;
  uint64_t accepted = 0;
  uint64_t refused = 0;  // closed at accept: no route, over the limit, backend unreachable
  uint64_t cut = 0;      // closed by the proxy after being set up: route change, idle
};

class Proxy {
 public:
  // clock: for every timer (it must outlive the proxy). Route::valid_until
  // is a time on this clock's Now().
  Proxy(Options opts, const Clock& clock);
  ~Proxy();  // Stop()
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Binds the listeners (ports > 0) and starts the loop thread. Fails when a
  // port cannot be bound (in use, no permission); nothing is left running.
  Status Start();
  // Closes every connection and the listeners; joins the thread. Idempotent.
  void Stop();

  // Call between Start() and Stop() (earlier or later calls are dropped).
  // Thread-safe; takes effect in the loop thread at once (it is woken up).
  // Until the first call, and after Stop, there is no route.
  void SetRoute(const core::Route& route);

  Stats GetStats() const;
  // The route in force (as last set; expiry is checked by the loop).
  core::Route CurrentRoute() const;

 private:
  class Loop;
  struct Shared;
  static int LoopCount(const Options& opts);
  Options opts_;
  const Clock& clock_;
  std::unique_ptr<Shared> shared_;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::vector<std::thread> threads_;
};

}  // namespace tandem::proxy
