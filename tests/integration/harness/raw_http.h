// One raw HTTP/1.1 exchange with a server on 127.0.0.1, for the integration
// tests that must send exactly the bytes they mean (bad input, /metrics):
// TLS when a certificate directory is given (the server is not verified: the
// test is about the answer, not the handshake), the directory's client pair
// presented only when asked. Blocking; 15 s at most per read or write.
#pragma once

#include <string>

namespace tandem::testing {

struct RawAnswer {
  bool ok = false;  // a status line came back
  int status = 0;
  std::string head, body, error;
  // The value of header `name` (lower case), "" when absent.
  std::string Header(const std::string& name) const;
};

// Sends `request` as-is to 127.0.0.1:port and reads until the server closes.
// cert_dir: "" = plain HTTP; else TLS, presenting cert_dir/client.{crt,key}
// when with_cert.
RawAnswer RawExchange(int port, const std::string& request, const std::string& cert_dir,
                      bool with_cert = true);

// A well-formed request: Host, Connection: close, Content-Length (and the
// content type when there is a body).
std::string HttpRequest(const std::string& method, const std::string& target,
                        const std::string& body = "",
                        const std::string& content_type = "application/json");

}  // namespace tandem::testing
