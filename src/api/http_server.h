// A small event-driven HTTP/1.1 server for the agent's API: one listener,
// one event thread that owns every connection (non-blocking sockets, poll,
// an eventfd that wakes it), and optionally a bounded pool of worker threads
// for handlers that may block. It exists so that a hostile or broken client
// cannot hold the API: every connection lives under a deadline and a cap.
//
// A connection's life, each step bounded (the limits below):
//   accept     over kMaxConnections in total or kMaxConnectionsPerAddress
//              from one address: closed at once (a 503 JSON first on plain
//              HTTP); refusals are logged at most once per 10 s
//   handshake  TLS (non-blocking SSL_accept) when new_ssl is set
//   head       request line + headers (http_parse.h) complete within
//              kHeadDeadlineMs of the accept, handshake included; else closed
//              (408 JSON first on plain HTTP)
//   check      before_body (the client certificate rule) may answer instead
//   body       Content-Length bytes within kBodyDeadlineMs of the head (all
//              connections' bodies together within a 16 MiB budget, else 503)
//   handle     inline_routes on the event thread (they must never block), the
//              rest on the workers; a full queue is a 503 JSON
//   answer     written within kWriteDeadlineMs, always "Connection: close",
//              then the connection drains what the client still sends for
//              kLingerMs so the answer is not lost to a reset, and closes.
// One request per connection: keep-alive would let an idle client hold a
// connection (and a slot of its address's cap) between requests, and the
// API's clients (the CLI, peer agents, load-balancer checks) make one call
// per connection anyway.
//
// Time: every deadline comes from the injected Clock and poll's timeout is
// computed from the nearest one, so an idle server (no connection open)
// sleeps in poll with no timeout at all, and a ManualClock in a test decides
// when a deadline has passed.
//
// Thread safety: Listen, Start and Stop from one thread (the owner); the
// callbacks in the options run on the event thread (new_ssl, before_body,
// inline handlers) or on a worker (other handlers).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "api/http_types.h"
#include "base/clock.h"
#include "base/result.h"

struct ssl_st;

namespace tandem::api {

inline constexpr MonoMs kHeadDeadlineMs = 1000;   // accept -> TLS handshake and head read
inline constexpr MonoMs kBodyDeadlineMs = 5000;   // head -> body read
inline constexpr MonoMs kWriteDeadlineMs = 5000;  // answer ready -> written
inline constexpr MonoMs kLingerMs = 1000;         // answer written -> closed at the latest
inline constexpr int kMaxConnectionsPerAddress = 16;
inline constexpr int kMaxConnections = 512;
inline constexpr size_t kApiWorkers = 4;
inline constexpr size_t kApiQueue = 32;  // requests waiting for a worker; more are 503

struct HttpServerOptions {
  std::string name = "api";             // for log lines: "api", "health"
  std::string config_key = "api.port";  // named by a bind failure
  // Routes answered on the event thread: they never block (AddHealthRoutes).
  const Routes* inline_routes = nullptr;
  // Every other request, on `workers` threads. Null: inline_routes answer
  // everything (an unknown path is their 404).
  const Routes* routes = nullptr;
  size_t workers = kApiWorkers;
  size_t queue = kApiQueue;
  // TLS: a new SSL (from the current context) for each accepted connection,
  // or nullptr to refuse it. Unset: plain HTTP.
  std::function<ssl_st*()> new_ssl;
  // Called once the head is read, before the body is: an answer to send
  // instead of reading on (the client certificate rule), or nullopt.
  std::function<std::optional<HttpAnswer>(const HttpRequest&)> before_body;
  int max_per_address = kMaxConnectionsPerAddress;
  int max_connections = kMaxConnections;
};

class HttpServer {
 public:
  HttpServer(const Clock& clock, HttpServerOptions options);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port (SO_REUSEADDR only: a second server on a port in use
  // fails) and listens. The error names the address and the config key.
  Status Listen(const std::string& host, int port);
  // Starts the event thread and the workers (after a successful Listen).
  void Start();
  // Closes the listener and every connection and joins the threads; a
  // handler that is running finishes first. Idempotent.
  void Stop();
  int port() const;  // the bound port (Listen with port 0 picks one)

  // The wire form of an answer: status line, Content-Type, Content-Length,
  // "Connection: close", the extra headers, and the body unless `head_only`.
  static std::string Serialize(const HttpAnswer& a, bool head_only);
  // The answer for a request from a routes table: its handler's, or a JSON
  // 405 with Allow / 404 when none matches.
  static HttpAnswer Answer(const Routes& routes, const HttpRequest& req);

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace tandem::api
