// The API server's sockets, TLS calls and wire format (http_wire.h), and
// HttpServer's static helpers (the answer's bytes, routing an answer).
#include "api/http_wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <exception>
#include <utility>

#include "api/http_server.h"

namespace tandem::api {

const char* ReasonPhrase(int status) {
  static const std::pair<int, const char*> kPhrases[] = {
      {200, "OK"},
      {201, "Created"},
      {202, "Accepted"},
      {204, "No Content"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {408, "Request Timeout"},
      {409, "Conflict"},
      {411, "Length Required"},
      {413, "Payload Too Large"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
  };
  for (const auto& [s, phrase] : kPhrases) {
    if (s == status) return phrase;
  }
  return status < 400 ? "OK" : "Error";
}

ClientCertificate ClientCertificateOf(SSL* ssl) {
  ClientCertificate c;
  X509* x = SSL_get0_peer_certificate(ssl);
  if (x == nullptr) return c;
  c.presented = true;
  char buf[256];
  if (X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof buf) != nullptr) c.subject = buf;
  if (!c.subject.empty() && c.subject.front() == '/') c.subject.erase(0, 1);
  const long v = SSL_get_verify_result(ssl);
  c.verified = v == X509_V_OK;
  if (!c.verified) c.problem = X509_verify_cert_error_string(v);
  return c;
}

std::string AddressText(const sockaddr_storage& a) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (a.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(a).sin_addr, buf, sizeof buf);
  } else if (a.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(a).sin6_addr, buf, sizeof buf);
  }
  return buf;
}

void SendOnce(int fd, const std::string& bytes) {
  (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

Result<int> ListenSocket(const std::string& host, int port, const std::string& config_key) {
  const std::string where = host + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), std::to_string(port).c_str(), &hints,
                  &res) != 0) {
    return Error(ErrorCode::kInvalidArgument, "cannot listen on " + where +
                                                  ": not an address of this host; change " +
                                                  config_key + " in the config");
  }
  int err = 0;
  int listen_fd = -1;
  for (addrinfo* ai = res; ai != nullptr && listen_fd < 0; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = errno;
      continue;
    }
    // SO_REUSEADDR only (a restart binds past TIME_WAIT); never SO_REUSEPORT,
    // which would let a second agent share the port and take half the calls.
    const int one = 1;
    (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, SOMAXCONN) != 0) {
      err = errno;
      ::close(fd);
      continue;
    }
    listen_fd = fd;
  }
  freeaddrinfo(res);
  if (listen_fd < 0) {
    const std::string why =
        err == EADDRINUSE ? "in use by another process?" : std::string(strerror(err));
    return Error(ErrorCode::kUnavailable, "cannot listen on " + where + " (" + why + "); change " +
                                              config_key + " in the config");
  }
  return listen_fd;
}

int BoundPort(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
  return ntohs(a.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(a).sin6_port
                                       : reinterpret_cast<sockaddr_in&>(a).sin_port);
}

short SslWants(SSL* ssl, int ret) {
  switch (SSL_get_error(ssl, ret)) {
    case SSL_ERROR_WANT_READ:
      return POLLIN;
    case SSL_ERROR_WANT_WRITE:
      return POLLOUT;
    default:
      ERR_clear_error();
      return 0;
  }
}

long IoRead(int fd, SSL* ssl, char* buf, size_t len, short* events) {
  if (ssl == nullptr) {
    const long n = ::recv(fd, buf, len, 0);
    if (n >= 0) return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      *events = POLLIN;
      return -1;
    }
    return -2;
  }
  ERR_clear_error();
  const int n = SSL_read(ssl, buf, static_cast<int>(len));
  if (n > 0) return n;
  if (SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN) return 0;
  *events = SslWants(ssl, n);
  return *events == 0 ? -2 : -1;
}

long IoWrite(int fd, SSL* ssl, const char* p, size_t len, short* events) {
  if (ssl == nullptr) {
    const long n = ::send(fd, p, len, MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      *events = POLLOUT;
      return -1;
    }
    return -2;
  }
  ERR_clear_error();
  const int n = SSL_write(ssl, p, static_cast<int>(len));
  if (n > 0) return n;
  *events = SslWants(ssl, n);
  return *events == 0 ? -2 : -1;
}

std::string HttpServer::Serialize(const HttpAnswer& a, bool head_only) {
  std::string out = "HTTP/1.1 " + std::to_string(a.status) + " " + ReasonPhrase(a.status) + "\r\n";
  out += "Content-Type: " + a.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(a.body.size()) + "\r\n";
  out += "Connection: close\r\n";
  for (const auto& [k, v] : a.headers) out += k + ": " + v + "\r\n";
  out += "\r\n";
  if (!head_only) out += a.body;
  return out;
}

HttpAnswer HttpServer::Answer(const Routes& routes, const HttpRequest& req) {
  auto m = routes.Find(req.method, req.path);
  if (m.handler != nullptr) {
    // A handler's library may throw (a JSON value of the wrong type): the
    // client gets a 500 that says so and the server stays up.
    try {
      return (*m.handler)(req);
    } catch (const std::exception& e) {
      return JsonError(500, std::string("internal error: ") + e.what(),
                       "report this as a bug, with the request that caused it", "internal error");
    }
  }
  if (m.path_known) {
    HttpAnswer a = JsonError(405, req.method + " is not allowed on " + req.path,
                             "use one of: " + m.allow, "method not allowed");
    a.headers.emplace_back("Allow", m.allow);
    return a;
  }
  return JsonError(404, "no such endpoint: " + req.path,
                   "see the REST API section of the README for the endpoints", "not found");
}

}  // namespace tandem::api
