// ApiServer (server.h): the two listeners (http_server.h), the TLS context
// new handshakes take and its reload, and the client certificate rule that
// runs between a request's head and its body. Runs on the owner's thread;
// the callbacks it installs run on the listeners' event threads.
#include "api/server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <mutex>
#include <nlohmann/json.hpp>

#include "agent/tls_files.h"
#include "api/metrics.h"
#include "api/routes.h"
#include "api/ui_routes.h"
#include "base/log.h"
#include "base/strings.h"

namespace tandem::api {
using nlohmann::json;

namespace {

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
  // No session resumption: every connection's client certificate is checked
  // against the CA loaded now (a resumed session would carry an old verdict),
  // and a browser's resumption attempt must not fail the handshake (OpenSSL
  // refuses to resume with SSL_VERIFY_PEER and no session id context: Chrome
  // saw ERR_SSL_PROTOCOL_ERROR on the dashboard's polls).
  static const unsigned char kSessionContext[] = "tandem-api";
  SSL_CTX_set_session_id_context(&ctx, kSessionContext, sizeof kSessionContext - 1);
  SSL_CTX_set_session_cache_mode(&ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(&ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(&ctx, 0);
  return true;
}

}  // namespace

// The context whose pair and CA new handshakes use: every accepted
// connection gets SSL_new(current) under the mutex, and ReloadTls replaces
// current. An SSL holds a reference on its context, so replacing it never
// frees one a connection still uses.
struct ApiServer::TlsContexts {
  std::mutex mu;
  SSL_CTX* current = nullptr;
  ~TlsContexts() { SSL_CTX_free(current); }
  void Replace(SSL_CTX* next) {
    std::lock_guard<std::mutex> lock(mu);
    SSL_CTX_free(current);
    current = next;
  }
  SSL* NewSsl() {
    std::lock_guard<std::mutex> lock(mu);
    return current == nullptr ? nullptr : SSL_new(current);
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
  // The dashboard's calls: a certificate or a login, checked by ui_routes.cc.
  if (path == "/ui" || StartsWith(path, "/ui/")) return std::nullopt;
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

ApiServer::ApiServer(agent::Agent& agent)
    : agent_(agent), clock_(agent.clock()), tls_(std::make_unique<TlsContexts>()) {}

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
  api_routes_ = std::make_unique<Routes>();
  AddApiRoutes(*api_routes_, agent_);
  AddHealthRoutes(*api_routes_, agent_);
  ui_auth_ = std::make_unique<UiAuth>(clock_, agent_.config().ui_users,
                                      agent_.config().ui_session_timeout_ms);
  AddUiRoutes(*api_routes_, agent_, *ui_auth_, tls.enabled);
  health_routes_ = std::make_unique<Routes>();
  AddHealthRoutes(*health_routes_, agent_);
  // GET /metrics on the health port when configured: one worker of its own
  // (the scrape queries PostgreSQL; the event thread never blocks).
  health_metrics_routes_ = std::make_unique<Routes>();
  const bool health_metrics = agent_.config().api_health_port_metrics;
  if (health_metrics) {
    AddHealthRoutes(*health_metrics_routes_, agent_);  // so a wrong method is still a 405
    AddMetricsRoute(*health_metrics_routes_, agent_);
  }

  HttpServerOptions o;
  o.name = "api";
  o.config_key = "api.port";
  o.inline_routes = health_routes_.get();  // never queued behind a busy worker
  o.routes = api_routes_.get();
  if (tls.enabled) {
    std::string error;
    SSL_CTX* ctx = NewServerContext(tls, &error);
    if (ctx == nullptr) {
      return Error(ErrorCode::kInvalidArgument, "cannot serve the API over HTTPS: " + error);
    }
    tls_->Replace(ctx);
    o.new_ssl = [t = tls_.get()] { return t->NewSsl(); };
    // Refused before the body is read: a write without a good certificate.
    o.before_body = [](const HttpRequest& req) -> std::optional<HttpAnswer> {
      auto refusal = CheckClientCertificate(req.method, req.path, req.client_cert);
      if (!refusal) return std::nullopt;
      TLOG(Warn, "api") << "refused " << req.method << " " << req.path << " from "
                        << req.remote_addr << ": HTTP " << refusal->http_status;
      HttpAnswer a;
      a.status = refusal->http_status;
      a.body = json({{"error", refusal->error},
                     {"fix",
                      "call it with a client certificate of the cluster CA: the node's "
                      "tls.client_cert and tls.client_key (the tandem CLI does)"},
                     {"code", "client certificate required"}})
                   .dump(2) +
               "\n";
      return a;
    };
  }
  server_ = std::make_unique<HttpServer>(clock_, std::move(o));
  if (auto st = server_->Listen(host, port); !st.ok()) return st;
  server_->Start();
  TLOG(Info, "api") << "REST API on " << (tls.enabled ? "https" : "http") << "://" << host << ":"
                    << port
                    << (tls.enabled ? " (changes need a client certificate of the cluster CA)"
                                    : "");
  if (health_port > 0) {
    HttpServerOptions h;
    h.name = "health";
    h.config_key = "api.health_port";
    h.inline_routes = health_routes_.get();
    h.routes = health_metrics ? health_metrics_routes_.get() : nullptr;
    h.workers = health_metrics ? 1 : 0;
    health_server_ = std::make_unique<HttpServer>(clock_, std::move(h));
    if (auto st = health_server_->Listen(host, health_port); !st.ok()) return st;
    health_server_->Start();
    TLOG(Info, "api") << "health endpoints on http://" << host << ":" << health_port
                      << (health_metrics ? " (and GET /metrics)" : "");
  }
  return Ok();
}

void ApiServer::Stop() {
  if (server_) server_->Stop();
  if (health_server_) health_server_->Stop();
}

}  // namespace tandem::api
