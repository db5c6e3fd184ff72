// Fetching a peer's server certificate without trusting it (a TLS handshake
// to its API port, or PostgreSQL's SSLRequest on its PostgreSQL port) and
// judging it as enforce mode would (pki::Inspect with this node's CA, the
// address connected to, and the caller's `now`). Runs on the caller's thread
// (the agent's TLS thread, the CLI); sockets time out, no clock is read.
#include "net/peer_certs.h"

#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "base/strings.h"

namespace tandem::net {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Connects within timeout_ms and leaves the socket blocking with send and
// receive timeouts of timeout_ms, so the handshake cannot hang either.
Result<int> ConnectWithTimeout(const std::string& host, int port, int64_t timeout_ms) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    return Error(ErrorCode::kUnavailable, "cannot resolve " + host + ": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
  std::string last = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    Fd s;
    s.fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s.fd < 0) {
      last = std::strerror(errno);
      continue;
    }
    int rc = ::connect(s.fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{s.fd, POLLOUT, 0};
      rc = ::poll(&p, 1, static_cast<int>(timeout_ms));
      if (rc == 0) {
        last = "no answer within " + std::to_string(timeout_ms) + " ms";
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (rc < 0 || err != 0) {
        last = std::strerror(rc < 0 ? errno : err);
        continue;
      }
    } else if (rc != 0) {
      last = std::strerror(errno);
      continue;
    }
    ::fcntl(s.fd, F_SETFL, ::fcntl(s.fd, F_GETFL) & ~O_NONBLOCK);
    timeval tv{static_cast<time_t>(timeout_ms / 1000),
               static_cast<suseconds_t>((timeout_ms % 1000) * 1000)};
    ::setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const int fd = s.fd;
    s.fd = -1;
    return fd;
  }
  return Error(ErrorCode::kUnavailable,
               "cannot connect to " + host + ":" + std::to_string(port) + " (" + last + ")");
}

// PostgreSQL's SSLRequest: length 8, code 80877103; the server answers 'S'.
Status PostgresSslRequest(int fd, const std::string& where) {
  const unsigned char req[8] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
  if (::send(fd, req, sizeof req, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof req)) {
    return Error(ErrorCode::kUnavailable, "cannot send the SSLRequest to " + where);
  }
  char answer = 0;
  if (::recv(fd, &answer, 1, 0) != 1) {
    return Error(ErrorCode::kUnavailable, where + " did not answer the SSLRequest");
  }
  if (answer != 'S') {
    return Error(ErrorCode::kUnavailable, where + " does not offer TLS (PostgreSQL ssl is off)");
  }
  return Ok();
}

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

}  // namespace

std::pair<std::string, int> HostPortOfUrl(const std::string& url) {
  auto start = url.find("://");
  std::string rest = start == std::string::npos ? url : url.substr(start + 3);
  if (auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  std::string host;
  std::string port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) return {rest, 0};
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
  } else {
    auto colon = rest.rfind(':');
    host = colon == std::string::npos ? rest : rest.substr(0, colon);
    if (colon != std::string::npos) port = rest.substr(colon + 1);
  }
  int p = 0;
  for (char c : port) {
    if (c < '0' || c > '9' || p > 65535) return {host, 0};
    p = p * 10 + (c - '0');
  }
  return {host, p > 65535 ? 0 : p};
}

Result<std::string> FetchServerCertificate(const std::string& host, int port, TlsService service,
                                           const std::string& client_cert,
                                           const std::string& client_key, int64_t timeout_ms) {
  const std::string where = host + ":" + std::to_string(port);
  auto fd = ConnectWithTimeout(host, port, timeout_ms);
  if (!fd) return fd.error();
  Fd sock;
  sock.fd = *fd;
  if (service == TlsService::kPostgres) TANDEM_TRY(PostgresSslRequest(sock.fd, where));
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return Error(ErrorCode::kInternal, "cannot create a TLS context");
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);  // judged afterwards
  if (!client_cert.empty() && !client_key.empty()) {
    // Best effort: without it, a server that insists fails the handshake below.
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), client_cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx.get(), client_key.c_str(), SSL_FILETYPE_PEM) != 1) {
      ERR_clear_error();
    }
  }
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
  if (!ssl || SSL_set_fd(ssl.get(), sock.fd) != 1) {
    return Error(ErrorCode::kInternal, "cannot set up TLS");
  }
  if (!IsIpAddress(host)) SSL_set_tlsext_host_name(ssl.get(), host.c_str());
  if (SSL_connect(ssl.get()) != 1) {
    char buf[256] = "";
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    ERR_clear_error();
    return Error(ErrorCode::kUnavailable, "the TLS handshake with " + where + " failed" +
                                              (buf[0] ? std::string(": ") + buf : ""));
  }
  X509* peer = SSL_get0_peer_certificate(ssl.get());
  std::string pem;
  if (peer != nullptr) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (bio != nullptr && PEM_write_bio_X509(bio, peer) == 1) {
      char* data = nullptr;
      long n = BIO_get_mem_data(bio, &data);
      if (n > 0) pem.assign(data, static_cast<size_t>(n));
    }
    BIO_free(bio);
  }
  SSL_shutdown(ssl.get());
  ERR_clear_error();
  if (pem.empty()) return Error(ErrorCode::kUnavailable, where + " presented no certificate");
  return pem;
}

PeerCertificate JudgePeerCertificate(const std::string& label, const std::string& pem,
                                     const std::string& ca_file, const std::string& address,
                                     bool verify_hostname, int64_t now) {
  pki::InspectOptions o;
  o.ca_path = ca_file;
  o.role = pki::Role::kServer;
  if (verify_hostname) o.host = address;
  o.now = now;
  const pki::Inspection in = pki::InspectPem(label, pem, o);
  PeerCertificate out;
  out.summary = pki::Summarize(in);
  if (in.cert) out.serial = in.cert->serial;
  if (const pki::Finding* f = in.FirstFailure()) out.detail = f->detail;
  return out;
}

PeerCertificate CheckPeerCertificate(const std::string& label, const std::string& address, int port,
                                     TlsService service, const std::string& ca_file,
                                     const std::string& client_cert, const std::string& client_key,
                                     bool verify_hostname, int64_t now, int64_t timeout_ms) {
  auto pem = FetchServerCertificate(address, port, service, client_cert, client_key, timeout_ms);
  if (!pem) {
    PeerCertificate out;
    out.summary = {pki::CertState::kInvalid, "Unknown (cannot connect)"};
    out.reached = false;
    out.detail = label + ": " + pem.error().message();
    return out;
  }
  return JudgePeerCertificate(label, *pem, ca_file, address, verify_hostname, now);
}

}  // namespace tandem::net
