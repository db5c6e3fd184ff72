// RawExchange and HttpRequest (raw_http.h): plain sockets and OpenSSL.
#include "integration/harness/raw_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "base/strings.h"

namespace tandem::testing {
namespace {

bool WriteAll(int fd, SSL* ssl, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const size_t n = std::min<size_t>(data.size() - done, 16384);
    const int w = ssl != nullptr ? SSL_write(ssl, data.data() + done, static_cast<int>(n))
                                 : static_cast<int>(::send(fd, data.data() + done, n, 0));
    if (w <= 0) return false;  // the server may answer (413) and close early
    done += static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

std::string RawAnswer::Header(const std::string& name) const {
  for (const auto& line : Split(head, '\n')) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string n = line.substr(0, colon);
    for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (n != name) continue;
    std::string v = line.substr(colon + 1);
    while (!v.empty() && v.front() == ' ') v.erase(v.begin());
    while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) v.pop_back();
    return v;
  }
  return "";
}

RawAnswer RawExchange(int port, const std::string& request, const std::string& cert_dir,
                      bool with_cert) {
  RawAnswer out;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{15, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    out.error = "cannot connect to port " + std::to_string(port);
    return out;
  }
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  if (!cert_dir.empty()) {
    ctx = SSL_CTX_new(TLS_client_method());
    if (with_cert) {
      SSL_CTX_use_certificate_chain_file(ctx, (cert_dir + "/client.crt").c_str());
      SSL_CTX_use_PrivateKey_file(ctx, (cert_dir + "/client.key").c_str(), SSL_FILETYPE_PEM);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) out.error = "TLS handshake failed";
  }
  std::string got;
  if (out.error.empty()) {
    (void)WriteAll(fd, ssl, request);
    char buf[16384];
    for (;;) {
      const int n = ssl != nullptr ? SSL_read(ssl, buf, sizeof buf)
                                   : static_cast<int>(::recv(fd, buf, sizeof buf, 0));
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
  }
  if (ssl != nullptr) SSL_free(ssl);
  if (ctx != nullptr) SSL_CTX_free(ctx);
  ::close(fd);
  const auto end = got.find("\r\n\r\n");
  if (StartsWith(got, "HTTP/1.") && got.size() > 12) {
    out.ok = true;
    out.status = std::atoi(got.substr(9, 3).c_str());
    out.head = got.substr(0, end);
    out.body = end == std::string::npos ? "" : got.substr(end + 4);
  } else if (out.error.empty()) {
    out.error = "no HTTP answer (" + std::to_string(got.size()) + " bytes)";
  }
  return out;
}

std::string HttpRequest(const std::string& method, const std::string& target,
                        const std::string& body, const std::string& content_type) {
  std::string r = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!body.empty()) r += "Content-Type: " + content_type + "\r\n";
  return r + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace tandem::testing
