// Routes (method + exact path lookup) and the JSON error answer.
#include "api/http_types.h"

#include <nlohmann/json.hpp>

namespace tandem::api {

void Routes::Add(const std::string& method, const std::string& path, Handler handler) {
  by_path_[path][method] = std::move(handler);
}

Routes::Match Routes::Find(const std::string& method, const std::string& path) const {
  Match m;
  auto p = by_path_.find(path);
  if (p == by_path_.end()) return m;
  m.path_known = true;
  const auto& methods = p->second;
  const bool has_get = methods.count("GET") != 0;
  for (const auto& [name, handler] : methods) {
    if (!m.allow.empty()) m.allow += ", ";
    m.allow += name;
    if (name == "GET" && methods.count("HEAD") == 0) m.allow += ", HEAD";
  }
  auto h = methods.find(method);
  if (h == methods.end() && method == "HEAD" && has_get) h = methods.find("GET");
  if (h != methods.end()) m.handler = &h->second;
  return m;
}

HttpAnswer JsonError(int status, const std::string& what, const std::string& fix,
                     const std::string& code) {
  nlohmann::json body = {{"error", what}, {"code", code}};
  if (!fix.empty()) body["fix"] = fix;
  HttpAnswer a;
  a.status = status;
  a.body = body.dump(2) + "\n";
  return a;
}

}  // namespace tandem::api
