// HttpCall: one blocking HTTP(S) request to another agent (or, from the CLI,
// to the local agent), with the process-wide client TLS set once by
// SetHttpClientTls. Waits are socket timeouts only; it reads no clock. Any
// thread.
#include "net/http_client.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <mutex>

namespace tandem::net {
namespace {
std::mutex tls_mu;
dcs::TlsClientOptions& DefaultTls() {
  static dcs::TlsClientOptions tls;
  return tls;
}
}  // namespace

void SetHttpClientTls(const dcs::TlsClientOptions& tls) {
  std::lock_guard<std::mutex> lock(tls_mu);
  DefaultTls() = tls;
}

Result<HttpResponse> HttpCall(const std::string& method, const std::string& url,
                              const std::string& body, int64_t timeout_ms) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) {
    return Error(ErrorCode::kInvalidArgument, "not a URL: '" + url + "'");
  }
  auto path_start = url.find('/', scheme_end + 3);
  std::string base = path_start == std::string::npos ? url : url.substr(0, path_start);
  std::string path = path_start == std::string::npos ? "/" : url.substr(path_start);
  dcs::TlsClientOptions tls;
  {
    std::lock_guard<std::mutex> lock(tls_mu);
    tls = DefaultTls();
  }
  auto client = dcs::MakeHttpClient(base, tls);
  httplib::Client& cli = *client;
  cli.set_connection_timeout(std::chrono::milliseconds(std::min<int64_t>(timeout_ms, 3000)));
  cli.set_read_timeout(std::chrono::milliseconds(timeout_ms));
  cli.set_write_timeout(std::chrono::milliseconds(timeout_ms));
  httplib::Result res{nullptr, httplib::Error::Unknown};
  if (method == "GET") {
    res = cli.Get(path);
  } else if (method == "POST") {
    res = cli.Post(path, body, "application/json");
  } else if (method == "DELETE") {
    res = cli.Delete(path, body, "application/json");
  } else if (method == "HEAD") {
    res = cli.Head(path);
  } else if (method == "OPTIONS") {
    res = cli.Options(path);
  } else {
    return Error(ErrorCode::kInvalidArgument, "unsupported HTTP method " + method);
  }
  if (!res) {
    auto err = res.error();
    std::string what = httplib::to_string(err);
    if (err == httplib::Error::Read || err == httplib::Error::ConnectionTimeout) {
      return Error(ErrorCode::kTimeout, base + " did not answer in time (" + what + ")");
    }
    if (err == httplib::Error::SSLConnection || err == httplib::Error::SSLLoadingCerts ||
        err == httplib::Error::SSLServerVerification) {
      return Error(ErrorCode::kUnavailable,
                   "TLS with " + base + " failed (" + what +
                       "): the server's certificate was not accepted, or it refused ours; "
                       "check the tls section (ca_cert, client_cert, mode) on both nodes");
    }
    return Error(ErrorCode::kUnavailable, "cannot reach " + base + " (" + what + ")");
  }
  return HttpResponse{res->status, res->body};
}

}  // namespace tandem::net
