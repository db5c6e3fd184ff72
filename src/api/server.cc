#include "api/server.h"

#include <httplib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <mutex>
#include <nlohmann/json.hpp>

#include "agent/tls_files.h"
#include "base/log.h"
#include "base/strings.h"

namespace tandem::api {
using nlohmann::json;

int HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kConflict:
    case ErrorCode::kFailedPrecondition:
      return 409;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kTimeout:
      return 504;
    default:
      return 500;
  }
}

namespace {

void SendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(2) + "\n", "application/json");
}

void SendStatus(httplib::Response& res, const Status& st) {
  if (st.ok()) {
    SendJson(res, 200, {{"result", "ok"}});
  } else {
    SendJson(res, HttpStatusFor(st.error().code()),
             {{"error", st.error().message()}, {"code", ErrorCodeName(st.error().code())}});
  }
}

// Parses a JSON object body; empty body = {}.
bool ParseBody(const httplib::Request& req, httplib::Response& res, json* out) {
  if (req.body.empty()) {
    *out = json::object();
    return true;
  }
  try {
    *out = json::parse(req.body);
    if (!out->is_object()) throw std::runtime_error("not a JSON object");
    return true;
  } catch (const std::exception& e) {
    SendJson(res, 400,
             {{"error", std::string("the request body is not a JSON object: ") + e.what()},
              {"code", "invalid argument"}});
    return false;
  }
}

// Patroni-compatible health checks: 200 when true, 503 otherwise; GET,
// HEAD and OPTIONS (HAProxy's `option httpchk OPTIONS /primary`).
void AddHealthEndpoints(httplib::Server& s, agent::Agent& agent) {
  auto health = [&agent](const std::string& path, const httplib::Request& req) -> bool {
    auto h = agent.GetHealth();
    if (path == "/health" || path == "/readiness") return h.running;
    if (path == "/liveness") return true;
    if (path == "/" || path == "/primary" || path == "/read-write" || path == "/leader" ||
        path == "/master") {
      return h.primary;
    }
    bool ok = false;
    if (path == "/replica") {
      ok = h.replica;
    } else if (path == "/read-only") {
      ok = h.replica || h.primary;
    } else if (path == "/sync" || path == "/synchronous") {
      ok = h.replica && h.sync_standby;
    } else if (path == "/async" || path == "/asynchronous") {
      ok = h.replica && !h.sync_standby;
    }
    if (ok && req.has_param("lag")) {
      // Bytes or PostgreSQL units ("16MB"), as Patroni takes them; junk is false.
      auto max = ParseBytes(req.get_param_value("lag"));
      ok = max.has_value() && h.lag_bytes <= *max;
    }
    return ok;
  };
  for (const char* path :
       {"/", "/health", "/liveness", "/readiness", "/primary", "/read-write", "/leader", "/master",
        "/replica", "/read-only", "/sync", "/synchronous", "/async", "/asynchronous"}) {
    std::string p = path;
    auto handler = [health, p](const httplib::Request& req, httplib::Response& res) {
      bool ok = health(p, req);
      res.status = ok ? 200 : 503;
      if (req.method != "HEAD") res.set_content(ok ? "ok\n" : "no\n", "text/plain");
    };
    s.Get(path, handler);
    s.Options(path, handler);
  }
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
    server_->set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
      auto refusal = CheckClientCertificate(req.method, req.path, ClientCertificateOf(req));
      if (!refusal) return httplib::Server::HandlerResponse::Unhandled;
      TLOG(Warn, "api") << "refused " << req.method << " " << req.path << " from "
                        << req.remote_addr << ": HTTP " << refusal->http_status;
      SendJson(res, refusal->http_status,
               {{"error", refusal->error}, {"code", "client certificate required"}});
      return httplib::Server::HandlerResponse::Handled;
    });
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  auto& s = *server_;
  Limit(s, 4);

  s.Get("/v1/status", [this](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, agent_.StatusJson());
  });
  s.Post("/v1/cluster/initialize", [this](const httplib::Request&, httplib::Response& res) {
    SendStatus(res, agent_.Initialize());
  });
  s.Post("/v1/cluster/join", [this](const httplib::Request& req, httplib::Response& res) {
    json body;
    if (!ParseBody(req, res, &body)) return;
    if (!body.contains("address") || !body["address"].is_string()) {
      SendJson(res, 400, {{"error", "\"address\" (HOST:PORT of a member's API) is required"}});
      return;
    }
    SendStatus(res, agent_.StartJoin(body["address"].get<std::string>()));
  });
  s.Post("/v1/cluster/remove", [this](const httplib::Request& req, httplib::Response& res) {
    json body;
    if (!ParseBody(req, res, &body)) return;
    std::string node =
        body.contains("node") && body["node"].is_string() ? body["node"].get<std::string>() : "";
    bool force = body.contains("force") && body["force"].is_boolean() && body["force"].get<bool>();
    SendStatus(res, agent_.Remove(node, force));
  });
  s.Post("/v1/cluster/clear-error", [this](const httplib::Request&, httplib::Response& res) {
    SendStatus(res, agent_.ClearError());
  });
  // Operator control. Each answers {"result": "ok", "message": ...} or an error.
  auto send_message = [](httplib::Response& res, const Result<std::string>& r) {
    if (r) {
      SendJson(res, 200, {{"result", "ok"}, {"message", *r}});
    } else {
      SendStatus(res, r.error());
    }
  };
  auto string_field = [](const json& body, const char* key, std::string* out) {
    if (!body.contains(key)) return true;
    if (!body[key].is_string()) return false;
    *out = body[key].get<std::string>();
    return true;
  };
  s.Post("/v1/cluster/switchover",
         [this, send_message, string_field](const httplib::Request& req, httplib::Response& res) {
           json body;
           if (!ParseBody(req, res, &body)) return;
           std::string to;
           if (!string_field(body, "to", &to) ||
               (body.contains("at_ms") && !body["at_ms"].is_number_integer())) {
             SendJson(res, 400, {{"error", "\"to\" must be a node name and \"at_ms\" an integer"}});
             return;
           }
           send_message(res, agent_.RequestSwitchover(to, body.value("at_ms", int64_t{0})));
         });
  s.Post("/v1/cluster/failover",
         [this, send_message, string_field](const httplib::Request& req, httplib::Response& res) {
           json body;
           if (!ParseBody(req, res, &body)) return;
           std::string to;
           if (!string_field(body, "to", &to) || to.empty() ||
               (body.contains("accept_data_loss") && !body["accept_data_loss"].is_boolean())) {
             SendJson(res, 400,
                      {{"error",
                        "\"to\" (a node name) is required; \"accept_data_loss\" "
                        "must be true or false"}});
             return;
           }
           send_message(res, agent_.RequestFailover(to, body.value("accept_data_loss", false)));
         });
  s.Post("/v1/cluster/pause",
         [this, send_message](const httplib::Request&, httplib::Response& res) {
           send_message(res, agent_.SetPaused(true));
         });
  s.Post("/v1/cluster/resume",
         [this, send_message](const httplib::Request&, httplib::Response& res) {
           send_message(res, agent_.SetPaused(false));
         });
  s.Get("/v1/cluster/history", [this](const httplib::Request&, httplib::Response& res) {
    auto h = agent_.HistoryJson();
    if (h) {
      SendJson(res, 200, *h);
    } else {
      SendStatus(res, h.error());
    }
  });
  s.Get("/v1/position", [this](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, agent_.PositionJson());
  });
  s.Post("/v1/internal/join", [this](const httplib::Request& req, httplib::Response& res) {
    auto info = agent::DecodeNodeInfo(req.body);
    if (!info) {
      SendJson(res, 400, {{"error", info.error().message()}});
      return;
    }
    auto grant = agent_.GrantJoin(*info);
    if (!grant) {
      SendJson(res, HttpStatusFor(grant.error().code()), {{"error", grant.error().message()}});
      return;
    }
    // Secrets travel only in this answer (HTTPS with a client certificate when tls is set;
    // plain HTTP without).
    SendJson(res, 200,
             {{"cluster", grant->cluster},
              {"initial_cluster", grant->initial_cluster},
              {"etcd_endpoints", grant->etcd_endpoints},
              {"etcd_member_id", std::to_string(grant->etcd_member_id)},
              {"superuser_password", grant->secrets.superuser_password},
              {"replication_password", grant->secrets.replication_password}});
  });

  AddHealthEndpoints(s, agent_);

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
    AddHealthEndpoints(*health_server_, agent_);
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
