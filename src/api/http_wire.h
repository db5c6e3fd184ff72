// The API server's contact with sockets and TLS, apart from its event loop
// (http_server.cc): the listening socket, non-blocking reads and writes over
// plain TCP or an SSL, what TLS established about the client, and a peer's
// address as text. No state; called on the event thread.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <string>

#include "api/http_types.h"
#include "base/result.h"

struct ssl_st;

namespace tandem::api {

// A non-blocking socket bound to host:port and listening, with SO_REUSEADDR
// only (never SO_REUSEPORT: a second agent on the port must fail to start).
// The error names the address and `config_key` ("api.port").
Result<int> ListenSocket(const std::string& host, int port, const std::string& config_key);
int BoundPort(int fd);  // 0 when unknown

// One non-blocking read / write on fd, through ssl when it is not null.
// Returns the bytes moved (> 0), 0 at the end of the stream (reads), -1 when
// it would block (*events is then what to poll for: POLLIN or POLLOUT; TLS
// may need either for both), -2 when the connection failed.
long IoRead(int fd, ssl_st* ssl, char* buf, size_t len, short* events);
long IoWrite(int fd, ssl_st* ssl, const char* buf, size_t len, short* events);
// What an SSL call that returned `ret` waits for: POLLIN, POLLOUT, or 0 when
// it failed (the error queue is cleared).
short SslWants(ssl_st* ssl, int ret);
// One non-blocking send, best effort (a refusal's or a timeout's answer).
void SendOnce(int fd, const std::string& bytes);

// The client certificate the handshake received and OpenSSL's verdict on it.
ClientCertificate ClientCertificateOf(ssl_st* ssl);
std::string AddressText(const sockaddr_storage& a);  // "127.0.0.1", "::1"
// "OK", "Not Found", ... for the status line.
const char* ReasonPhrase(int status);

}  // namespace tandem::api
