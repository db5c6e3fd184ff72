// The API's HTTP exchange as its handlers see it, free of any transport: a
// parsed request (with what TLS established about the client) in, an answer
// out; and the table of routes that maps a method and path to a handler
// (routes.cc fills it, the server looks requests up in it). Nothing here
// reads a socket.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace tandem::api {

// What the server saw of a request's client certificate.
struct ClientCertificate {
  bool presented = false;
  bool verified = false;  // chains to the cluster CA and is within its validity
  std::string subject;    // "CN=postgres"
  std::string problem;    // OpenSSL's reason when not verified
};

struct HttpRequest {
  std::string method;                          // "GET", as sent (upper case)
  std::string path;                            // "/v1/status", without the query
  std::map<std::string, std::string> query;    // decoded; the last of repeated names
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string remote_addr;        // "127.0.0.1"
  ClientCertificate client_cert;  // presented = false over plain HTTP

  bool HasParam(const std::string& name) const { return query.count(name) != 0; }
  std::string Param(const std::string& name) const {
    auto it = query.find(name);
    return it == query.end() ? std::string() : it->second;
  }
};

struct HttpAnswer {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra ones ("Allow")
};

using Handler = std::function<HttpAnswer(const HttpRequest&)>;

// Method + exact path -> handler. HEAD is answered by a GET route (the
// transport drops the body).
class Routes {
 public:
  void Add(const std::string& method, const std::string& path, Handler handler);
  struct Match {
    const Handler* handler = nullptr;  // null: no route for this method
    bool path_known = false;           // another method has this path (405, not 404)
    std::string allow;                 // "GET, HEAD, OPTIONS": the methods the path has
  };
  Match Find(const std::string& method, const std::string& path) const;

 private:
  std::map<std::string, std::map<std::string, Handler>> by_path_;  // path -> method -> handler
};

// A JSON error answer: {"error": what, "fix": fix, "code": code}.
HttpAnswer JsonError(int status, const std::string& what, const std::string& fix,
                     const std::string& code);

}  // namespace tandem::api
