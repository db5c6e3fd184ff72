#include "api/server.h"

#include <httplib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <mutex>
#include <nlohmann/json.hpp>

#include "agent/tls_files.h"
#include "api/routes.h"
#include "base/log.h"
#include "base/strings.h"

namespace tandem::api {
using nlohmann::json;

namespace {

// Answers a request from the routes table through httplib (which parses
// and sends): 404 / 405 with Allow as JSON when no route matches.
void Serve(const Routes& routes, const httplib::Request& req, httplib::Response& res,
           const ClientCertificate& cert) {
  HttpRequest r;
  r.method = req.method;
  r.path = req.path;
  for (const auto& [k, v] : req.params) r.query[k] = v;
  for (const auto& [k, v] : req.headers) r.headers[ToLower(k)] = v;
  r.body = req.body;
  r.remote_addr = req.remote_addr;
  r.client_cert = cert;
  auto m = routes.Find(r.method, r.path);
  HttpAnswer a;
  if (m.handler != nullptr) {
    a = (*m.handler)(r);
  } else if (m.path_known) {
    a = JsonError(405, r.method + " is not allowed on " + r.path, "use one of: " + m.allow,
                  "method not allowed");
    a.headers.emplace_back("Allow", m.allow);
  } else {
    a = JsonError(404, "no such endpoint: " + r.path,
                  "see the REST API section of the README for the endpoints", "not found");
  }
  res.status = a.status;
  for (const auto& [k, v] : a.headers) res.set_header(k, v);
  if (req.method != "HEAD") res.set_content(a.body, a.content_type);
}

// Worker threads per server (cpp-httplib's default is max(8, cores - 1), all
// idle nearly always): a few operator commands, peer agents asking for
// positions or certificates, health checks. A request beyond them waits in
// the queue, it is not refused.
void Limit(httplib::Server& s, size_t workers) {
  s.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  s.set_payload_max_length(1 << 20);
  s.set_read_timeout(10, 0);
  s.set_write_timeout(10, 0);
}

ClientCertificate ClientCertificateOf(const httplib::Request& req) {
  ClientCertificate c;
  if (req.ssl == nullptr) return c;
  X509* x = SSL_get0_peer_certificate(req.ssl);
  if (x == nullptr) return c;
  c.presented = true;
  char buf[256];
  if (X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof buf) != nullptr) c.subject = buf;
  if (!c.subject.empty() && c.subject.front() == '/') c.subject.erase(0, 1);
  const long v = SSL_get_verify_result(req.ssl);
  c.verified = v == X509_V_OK;
  if (!c.verified) c.problem = X509_verify_cert_error_string(v);
  return c;
}

// Every request goes to the routes table (httplib reads the body first and
// answers 413 itself for one over the payload limit).
void RouteEverything(httplib::Server& s, const Routes* routes) {
  auto handler = [routes](const httplib::Request& req, httplib::Response& res) {
    Serve(*routes, req, res, ClientCertificateOf(req));
  };
  const char* all = R"(/.*)";
  s.Get(all, handler);
  s.Post(all, handler);
  s.Put(all, handler);
  s.Patch(all, handler);
  s.Delete(all, handler);
  s.Options(all, handler);
}

// Loads the server pair and the CA into ctx; *error names what failed.
bool SetUpServerTls(SSL_CTX& ctx, const ApiTls& tls, std::string* error) {
  auto fail = [&](const std::string& what) {
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    *error = what + (buf[0] ? std::string(" (") + buf + ")" : std::string());
    return false;
  };
  SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(&ctx, tls.cert_file.c_str()) != 1) {
    return fail("cannot load the server certificate " + tls.cert_file + " (tls.server_cert)");
  }
  if (SSL_CTX_use_PrivateKey_file(&ctx, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return fail("cannot load the server key " + tls.key_file + " (tls.server_key)");
  }
  if (SSL_CTX_check_private_key(&ctx) != 1) {
    return fail(tls.key_file + " does not match " + tls.cert_file);
  }
  if (SSL_CTX_load_verify_locations(&ctx, tls.ca_file.c_str(), nullptr) != 1) {
    return fail("cannot load the CA certificate " + tls.ca_file + " (tls.ca_cert)");
  }
  if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.ca_file.c_str())) {
    SSL_CTX_set_client_CA_list(&ctx, names);
  }
  // Ask for a client certificate, but let the handshake finish without one
  // or with one that does not verify: reads need none, and a refused write
  // gets a JSON answer that says why instead of a dropped connection.
  SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
  return true;
}

}  // namespace

// The context whose pair and CA new handshakes use. httplib creates every
// connection's SSL from its own context; the ClientHello callback (OpenSSL
// calls it for every ClientHello, with or without SNI) moves the connection
// to the current one, which ReloadTls replaces. SSL_set_SSL_CTX takes a
// reference, so replacing it never frees a context a handshake uses.
struct ApiServer::TlsContexts {
  std::mutex mu;
  SSL_CTX* current = nullptr;
  ~TlsContexts() { SSL_CTX_free(current); }
  void Replace(SSL_CTX* next) {
    std::lock_guard<std::mutex> lock(mu);
    SSL_CTX_free(current);
    current = next;
  }
  static int OnClientHello(SSL* ssl, int*, void* arg) {
    auto* self = static_cast<TlsContexts*>(arg);
    std::lock_guard<std::mutex> lock(self->mu);
    if (self->current != nullptr && SSL_get_SSL_CTX(ssl) != self->current) {
      SSL_set_SSL_CTX(ssl, self->current);
    }
    return SSL_TLSEXT_ERR_OK;
  }
};

namespace {

// A context with the pair and CA loaded, or nullptr with *error set.
SSL_CTX* NewServerContext(const ApiTls& tls, std::string* error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    *error = "cannot create a TLS context";
    return nullptr;
  }
  if (!SetUpServerTls(*ctx, tls, error)) {
    SSL_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

}  // namespace

ApiTls ApiTlsFor(const agent::Config& cfg) {
  ApiTls t;
  if (!cfg.tls_enabled()) return t;
  t.enabled = true;
  // The agent's private copies: checked before they were made, and replaced
  // by a rotation (ApiServer::ReloadTls loads them again).
  const auto copies = agent::TlsCopies(cfg);
  t.cert_file = copies.server_cert;
  t.key_file = copies.server_key;
  t.ca_file = copies.ca_cert;
  return t;
}

bool ChangesSomething(const std::string& method) {
  return method != "GET" && method != "HEAD" && method != "OPTIONS";
}

std::optional<Refusal> CheckClientCertificate(const std::string& method, const std::string& path,
                                              const ClientCertificate& cert) {
  if (!ChangesSomething(method)) return std::nullopt;
  if (!cert.presented) {
    return Refusal{401, method + " " + path +
                            " changes the cluster and needs a client certificate signed by the "
                            "cluster CA, but none was presented; call it with the node's "
                            "tls.client_cert and tls.client_key (the tandem CLI does)"};
  }
  if (!cert.verified) {
    return Refusal{403, method + " " + path + ": the client certificate '" + cert.subject +
                            "' was not accepted (" + cert.problem +
                            "); it must be signed by the cluster CA (tls.ca_cert) and valid now"};
  }
  return std::nullopt;
}

ApiServer::ApiServer(agent::Agent& agent) : agent_(agent), tls_(std::make_unique<TlsContexts>()) {}

Status ApiServer::ReloadTls(const ApiTls& tls) {
  if (!tls.enabled) return Ok();
  std::string error;
  SSL_CTX* next = NewServerContext(tls, &error);
  if (next == nullptr) {
    return Error(ErrorCode::kInvalidArgument, "the API keeps its current certificates: " + error);
  }
  tls_->Replace(next);
  return Ok();
}

ApiServer::~ApiServer() {
  Stop();
}

Status ApiServer::Start(const std::string& host, int port, const ApiTls& tls, int health_port) {
  if (tls.enabled) {
    std::string error;
    auto ssl = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
      if (!SetUpServerTls(ctx, tls, &error)) return false;
      SSL_CTX_set_tlsext_servername_callback(&ctx, &TlsContexts::OnClientHello);
      SSL_CTX_set_tlsext_servername_arg(&ctx, tls_.get());
      return true;
    });
    if (!ssl->is_valid()) {
      return Error(ErrorCode::kInvalidArgument,
                   "cannot serve the API over HTTPS: " +
                       (error.empty() ? std::string("TLS set-up failed") : error));
    }
    server_ = std::move(ssl);
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  auto& s = *server_;
  Limit(s, 4);
  api_routes_ = std::make_unique<Routes>();
  AddApiRoutes(*api_routes_, agent_);
  AddHealthRoutes(*api_routes_, agent_);
  if (tls.enabled) {
    // Refused before the body is read: a write without a good certificate.
    s.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
      auto refusal = CheckClientCertificate(req.method, req.path, ClientCertificateOf(req));
      if (!refusal) return httplib::Server::HandlerResponse::Unhandled;
      TLOG(Warn, "api") << "refused " << req.method << " " << req.path << " from "
                        << req.remote_addr << ": HTTP " << refusal->http_status;
      res.status = refusal->http_status;
      res.set_content(
          json({{"error", refusal->error}, {"code", "client certificate required"}}).dump(2) + "\n",
          "application/json");
      return httplib::Server::HandlerResponse::Handled;
    });
  }
  RouteEverything(s, api_routes_.get());

  if (!s.bind_to_port(host.c_str(), port)) {
    return Error(ErrorCode::kUnavailable,
                 "cannot listen on " + host + ":" + std::to_string(port) +
                     " (in use by another process?); change api.port in the config");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  TLOG(Info, "api") << "REST API on " << (tls.enabled ? "https" : "http") << "://" << host << ":"
                    << port
                    << (tls.enabled ? " (changes need a client certificate of the cluster CA)"
                                    : "");
  if (health_port > 0) {
    health_server_ = std::make_unique<httplib::Server>();
    Limit(*health_server_, 2);
    health_routes_ = std::make_unique<Routes>();
    AddHealthRoutes(*health_routes_, agent_);
    RouteEverything(*health_server_, health_routes_.get());
    if (!health_server_->bind_to_port(host.c_str(), health_port)) {
      return Error(ErrorCode::kUnavailable,
                   "cannot listen on " + host + ":" + std::to_string(health_port) +
                       " (in use by another process?); change api.health_port in the config");
    }
    health_thread_ = std::thread([this] { health_server_->listen_after_bind(); });
    TLOG(Info, "api") << "health endpoints on http://" << host << ":" << health_port;
  }
  return Ok();
}

void ApiServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  if (health_server_) health_server_->stop();
  if (health_thread_.joinable()) health_thread_.join();
}

}  // namespace tandem::api
