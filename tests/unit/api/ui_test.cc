// The dashboard's routes (api/ui_routes.h) and login (api/ui_auth.h) on an
// idle agent with a ManualClock, called without a socket: the compiled-in
// files and their headers, paths outside the known assets, oversized and
// malformed requests, a wrong password (the fixed delay, the counter, the
// same answer for an unknown user), an expired session, a forged or missing
// CSRF token, and a caller with neither a certificate nor a login: each the
// right status and the agent's state unchanged.
#include <crypt.h>
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "api/http_parse.h"
#include "api/http_server.h"
#include "api/server.h"
#include "api/ui_assets.h"
#include "api/ui_auth.h"
#include "api/ui_routes.h"
#include "unit/api/idle_agent_routes.h"

namespace tandem::api {
namespace {
using nlohmann::json;
using routes_testing::RoutesTest;

std::string HeaderOf(const HttpAnswer& a, const std::string& name) {
  for (const auto& [k, v] : a.headers) {
    if (k == name) return v;
  }
  return "";
}

// A bcrypt hash of password (libcrypt), for the second accepted scheme.
std::string Bcrypt(const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  EXPECT_NE(crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof salt), nullptr);
  crypt_data data{};
  return crypt_r(password.c_str(), salt, &data);
}

class UiTest : public RoutesTest {
 protected:
  void SetUp() override {
    RoutesTest::SetUp();
    auto hash = UiHashPassword("s3cret pass");
    ASSERT_TRUE(hash.ok());
    auth_ = std::make_unique<UiAuth>(
        clock_, std::map<std::string, std::string>{{"admin", *hash}, {"bob", Bcrypt("bobpw")}},
        kSessionMs);
    AddUiRoutes(routes_, *agent_, *auth_, /*tls=*/true);
  }

  // A request as the server would hand it over: parsed from bytes, so the
  // path is percent-decoded as on the wire.
  HttpAnswer Send(const std::string& method, const std::string& target,
                  const std::string& body = "",
                  const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    std::string wire = method + " " + target + " HTTP/1.1\r\nHost: x\r\n";
    for (const auto& [k, v] : headers) wire += k + ": " + v + "\r\n";
    wire += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    auto p = ParseRequest(wire);
    if (!p.ok) return AnswerFor(p.error);
    p.request.remote_addr = "127.0.0.1";
    p.request.client_cert = cert_;
    return HttpServer::Answer(routes_, p.request);
  }
  HttpAnswer Post(const std::string& path, const json& body,
                  std::vector<std::pair<std::string, std::string>> headers = {}) {
    headers.emplace_back("Content-Type", "application/json");
    return Send("POST", path, body.dump(), headers);
  }
  // Logs in; the cookie header and the CSRF token.
  std::pair<std::string, std::string> LogIn() {
    auto a = Post("/ui/api/login", {{"user", "admin"}, {"password", "s3cret pass"}});
    EXPECT_EQ(a.status, 200) << a.body;
    const std::string cookie = HeaderOf(a, "Set-Cookie");
    EXPECT_NE(cookie.find("HttpOnly"), std::string::npos) << cookie;
    EXPECT_NE(cookie.find("Secure"), std::string::npos) << cookie;
    EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos) << cookie;
    return {cookie.substr(0, cookie.find(';')), json::parse(a.body).value("csrf", "")};
  }
  // A login that is refused: it waits kUiLoginFailureDelayMs on the clock.
  HttpAnswer RefusedLogin(const json& body) {
    auto f = std::async(std::launch::async, [&] { return Post("/ui/api/login", body); });
    while (clock_.Waiters() == 0) std::this_thread::yield();
    // Parked on the clock (no real time passes in this test): not answered yet.
    EXPECT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
        << "a refused login must wait for the clock";
    clock_.Advance(kUiLoginFailureDelayMs);
    return f.get();
  }

  static constexpr MonoMs kSessionMs = 60'000;
  std::unique_ptr<UiAuth> auth_;
  ClientCertificate cert_;
};

TEST_F(UiTest, ServesTheThreeFilesWithTypesCachingAndAStrictPolicy) {
  for (const auto& [path, type] : std::vector<std::pair<std::string, std::string>>{
           {"/ui/", "text/html"}, {"/ui/app.js", "text/javascript"}, {"/ui/app.css", "text/css"}}) {
    auto a = Send("GET", path);
    ASSERT_EQ(a.status, 200) << path;
    EXPECT_EQ(a.content_type, type + "; charset=utf-8") << path;
    EXPECT_FALSE(a.body.empty()) << path;
    EXPECT_EQ(HeaderOf(a, "Cache-Control"), "no-cache") << path;
    EXPECT_EQ(HeaderOf(a, "X-Content-Type-Options"), "nosniff") << path;
    const std::string csp = HeaderOf(a, "Content-Security-Policy");
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
  }
  // No inline script or style: every <script> has a src, no on*= handlers.
  const std::string html(FindUiAsset("index.html")->body);
  for (size_t at = html.find("<script"); at != std::string::npos;
       at = html.find("<script", at + 1)) {
    EXPECT_NE(html.substr(at, html.find('>', at) - at).find("src="), std::string::npos);
  }
  EXPECT_EQ(html.find(" onclick="), std::string::npos);
  EXPECT_EQ(html.find("<style"), std::string::npos);
  auto r = Send("GET", "/ui");
  EXPECT_EQ(r.status, 308);
  EXPECT_EQ(HeaderOf(r, "Location"), "/ui/");
}

TEST_F(UiTest, PathsOutsideTheKnownFilesAre404) {
  const std::string before = Snapshot();
  for (const char* target :
       {"/ui/../v1/status", "/ui/%2e%2e/v1/status", "/ui/..%2fv1%2fstatus", "/ui/%2E%2E%2F",
        "/ui/app.js/..", "/ui//app.js", "/ui/APP.JS", "/ui/index.html", "/ui/app.js.map",
        "/ui/./app.js", "/ui/ui_assets.h", "/ui/api/", "/ui/api/../login", "/uiapp.js"}) {
    auto a = Send("GET", target);
    EXPECT_EQ(a.status, 404) << target << ": " << a.body;
  }
  EXPECT_EQ(Send("GET", "/ui/%zz").status, 400);        // a broken escape
  EXPECT_EQ(Send("GET", "/ui/%00app.js").status, 400);  // a control character
  EXPECT_EQ(Send("POST", "/ui/app.js").status, 405);
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(UiTest, OversizedAndMalformedRequestsAreRefused) {
  const std::string before = Snapshot();
  // The parser's limits: a head over 16 KiB, a body over 1 MiB, junk.
  auto p =
      ParseRequest("GET /ui/ HTTP/1.1\r\nX: " + std::string(kMaxRequestHead, 'a') + "\r\n\r\n");
  EXPECT_EQ(p.error.status, 431);
  p = ParseRequest("POST /ui/api/login HTTP/1.1\r\nContent-Length: " +
                   std::to_string(kMaxRequestBody + 1) + "\r\n\r\n");
  EXPECT_EQ(p.error.status, 413);
  p = ParseRequest("GET /ui/ HTTP/9\r\n\r\n");
  EXPECT_EQ(p.error.status, 400);
  // The dashboard's own: a body over 4 KiB, no JSON Content-Type, not JSON,
  // an unknown field, a field of the wrong type.
  EXPECT_EQ(Post("/ui/api/login", {{"user", std::string(5000, 'a')}, {"password", "x"}}).status,
            413);
  EXPECT_EQ(Send("POST", "/ui/api/login", R"({"user":"admin","password":"s3cret pass"})").status,
            415);
  EXPECT_EQ(Send("POST", "/ui/api/login", "{", {{"Content-Type", "application/json"}}).status, 400);
  EXPECT_EQ(Post("/ui/api/login", {{"user", "admin"}, {"password", "x"}, {"admin", true}}).status,
            400);
  EXPECT_EQ(Post("/ui/api/login", {{"user", 1}, {"password", "x"}}).status, 400);
  EXPECT_EQ(auth_->session_count(), 0u);
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(UiTest, AWrongPasswordWaitsCountsAndSaysTheSameAsAnUnknownUser) {
  auto wrong = RefusedLogin({{"user", "admin"}, {"password", "guess"}});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(auth_->failed_logins(), 1u);
  auto unknown = RefusedLogin({{"user", "nobody"}, {"password", "guess"}});
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(unknown.body, wrong.body);  // no user enumeration
  EXPECT_EQ(auth_->failed_logins(), 2u);
  EXPECT_TRUE(HeaderOf(wrong, "Set-Cookie").empty());
  EXPECT_EQ(auth_->session_count(), 0u);
  // The second scheme, bcrypt, logs in.
  auto bob = Post("/ui/api/login", {{"user", "bob"}, {"password", "bobpw"}});
  EXPECT_EQ(bob.status, 200) << bob.body;
}

TEST_F(UiTest, ALoginDuringAnotherLoginsDelayIsBusyNotQueued) {
  auto first = std::async(std::launch::async, [&] {
    return Post("/ui/api/login", {{"user", "admin"}, {"password", "guess"}});
  });
  while (clock_.Waiters() == 0) std::this_thread::yield();
  auto second = Post("/ui/api/login", {{"user", "admin"}, {"password", "s3cret pass"}});
  EXPECT_EQ(second.status, 429);
  EXPECT_EQ(HeaderOf(second, "Retry-After"), "1");
  clock_.Advance(kUiLoginFailureDelayMs);
  EXPECT_EQ(first.get().status, 401);
  EXPECT_EQ(auth_->session_count(), 0u);
}

TEST_F(UiTest, AnActionWithoutACertificateOrALoginIs401AndChangesNothing) {
  const std::string before = Snapshot();
  for (const char* action : {"switchover", "pause", "resume", "clear-error"}) {
    auto a = Post(std::string("/ui/api/") + action, json::object(), {{"X-CSRF-Token", "x"}});
    EXPECT_EQ(a.status, 401) << action << ": " << a.body;
  }
  // A certificate the CA did not sign: 403.
  cert_.presented = true;
  cert_.subject = "CN=mallory";
  cert_.problem = "unable to get local issuer certificate";
  EXPECT_EQ(Post("/ui/api/pause", json::object(), {{"X-CSRF-Token", "x"}}).status, 403);
  EXPECT_EQ(Snapshot(), before);
  // The session document says read-only.
  auto s = json::parse(Send("GET", "/ui/api/session").body);
  EXPECT_FALSE(s["authenticated"].get<bool>());
  EXPECT_TRUE(s["csrf"].get<std::string>().empty());
}

TEST_F(UiTest, AForgedOrMissingCsrfTokenIs403AndChangesNothing) {
  auto [cookie, csrf] = LogIn();
  ASSERT_FALSE(csrf.empty());
  const std::string before = Snapshot();
  std::string forged = csrf;
  forged[0] = forged[0] == 'a' ? 'b' : 'a';
  for (const auto& headers : std::vector<std::vector<std::pair<std::string, std::string>>>{
           {{"Cookie", cookie}},
           {{"Cookie", cookie}, {"X-CSRF-Token", forged}},
           {{"Cookie", cookie}, {"X-CSRF-Token", ""}},
           {{"Cookie", cookie}, {"X-CSRF-Token", csrf + "0"}}}) {
    auto a = Post("/ui/api/pause", json::object(), headers);
    EXPECT_EQ(a.status, 403) << a.body;
  }
  // Another session's token does not fit this one.
  auto other = LogIn();
  EXPECT_EQ(
      Post("/ui/api/pause", json::object(), {{"Cookie", cookie}, {"X-CSRF-Token", other.second}})
          .status,
      403);
  EXPECT_EQ(Snapshot(), before);
  // With the right token the action reaches the API's route, which answers
  // as it answers the CLI (here a refusal: this agent is not a member).
  auto ok = Post("/ui/api/pause", json::object(), {{"Cookie", cookie}, {"X-CSRF-Token", csrf}});
  auto direct = Call("POST", "/v1/cluster/pause", "{}");
  EXPECT_EQ(ok.status, direct.status) << ok.body;
  EXPECT_EQ(json::parse(ok.body), json::parse(direct.body));
  EXPECT_NE(ok.status, 401);
  EXPECT_NE(ok.status, 403);
}

TEST_F(UiTest, AnExpiredSessionIs401) {
  auto [cookie, csrf] = LogIn();
  auto s = json::parse(Send("GET", "/ui/api/session", "", {{"Cookie", cookie}}).body);
  EXPECT_EQ(s["via"], "login");
  EXPECT_EQ(s["expires_in_ms"], kSessionMs);
  clock_.Advance(kSessionMs);
  const std::string before = Snapshot();
  auto a = Post("/ui/api/resume", json::object(), {{"Cookie", cookie}, {"X-CSRF-Token", csrf}});
  EXPECT_EQ(a.status, 401) << a.body;
  EXPECT_EQ(auth_->session_count(), 0u);
  s = json::parse(Send("GET", "/ui/api/session", "", {{"Cookie", cookie}}).body);
  EXPECT_FALSE(s["authenticated"].get<bool>());
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(UiTest, LogoutEndsTheSession) {
  auto [cookie, csrf] = LogIn();
  EXPECT_EQ(Post("/ui/api/logout", json::object(), {{"Cookie", cookie}}).status, 403);
  auto out = Post("/ui/api/logout", json::object(), {{"Cookie", cookie}, {"X-CSRF-Token", csrf}});
  EXPECT_EQ(out.status, 200);
  EXPECT_NE(HeaderOf(out, "Set-Cookie").find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(
      Post("/ui/api/pause", json::object(), {{"Cookie", cookie}, {"X-CSRF-Token", csrf}}).status,
      401);
}

TEST_F(UiTest, AVerifiedCertificateActsWithItsOwnCsrfToken) {
  cert_ = {true, true, "CN=postgres", ""};
  auto s = json::parse(Send("GET", "/ui/api/session").body);
  EXPECT_EQ(s["via"], "certificate");
  const std::string csrf = s["csrf"];
  EXPECT_EQ(csrf, auth_->CertificateCsrf("CN=postgres"));
  EXPECT_EQ(Post("/ui/api/pause", json::object()).status, 403);
  EXPECT_EQ(
      Post("/ui/api/pause", json::object(), {{"X-CSRF-Token", auth_->CertificateCsrf("CN=x")}})
          .status,
      403);
  // clear-error keeps the API's rule: only this node's own.
  auto other = Post("/ui/api/clear-error", {{"node", "n2"}}, {{"X-CSRF-Token", csrf}});
  EXPECT_EQ(other.status, 409) << other.body;
  EXPECT_EQ(Post("/ui/api/pause", json::object(), {{"X-CSRF-Token", csrf}}).status,
            Call("POST", "/v1/cluster/pause", "{}").status);
}

TEST_F(UiTest, TheServersCertificateRuleLeavesUiPathsToTheDashboard) {
  EXPECT_FALSE(CheckClientCertificate("POST", "/ui/api/login", ClientCertificate{}).has_value());
  EXPECT_FALSE(CheckClientCertificate("POST", "/ui/api/pause", ClientCertificate{}).has_value());
  auto api = CheckClientCertificate("POST", "/v1/cluster/pause", ClientCertificate{});
  ASSERT_TRUE(api.has_value());
  EXPECT_EQ(api->http_status, 401);
  EXPECT_TRUE(CheckClientCertificate("POST", "/uix", ClientCertificate{}).has_value());
}

TEST_F(UiTest, LoginNeedsHttpsAndConfiguredUsers) {
  Routes plain;
  UiAuth plain_auth(clock_, {{"admin", *UiHashPassword("pw")}}, kSessionMs);
  AddUiRoutes(plain, *agent_, plain_auth, /*tls=*/false);
  HttpRequest req;
  req.method = "POST";
  req.path = "/ui/api/login";
  req.headers["content-type"] = "application/json";
  req.body = R"({"user":"admin","password":"pw"})";
  EXPECT_EQ(HttpServer::Answer(plain, req).status, 403);
  Routes nobody;
  UiAuth no_users(clock_, {}, kSessionMs);
  AddUiRoutes(nobody, *agent_, no_users, /*tls=*/true);
  EXPECT_EQ(HttpServer::Answer(nobody, req).status, 403);
  EXPECT_EQ(no_users.session_count(), 0u);
}

TEST(UiHash, HashesVerifyAndBadOnesAreRefused) {
  auto h = UiHashPassword("correct horse");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->rfind("$y$", 0), 0u);
  EXPECT_TRUE(UiPasswordMatches("correct horse", *h));
  EXPECT_FALSE(UiPasswordMatches("correct horsE", *h));
  EXPECT_FALSE(UiPasswordMatches("x", "plain"));
  EXPECT_FALSE(UiPasswordMatches(std::string(2000, 'a'), *h));
  EXPECT_FALSE(UiHashPassword("").ok());
  EXPECT_TRUE(UiHashProblem(*h).empty());
  EXPECT_FALSE(UiHashProblem("$1$md5$x").empty());
  EXPECT_FALSE(UiHashProblem("secret").empty());
}

TEST(UiConfig, UsersMustBeNamesWithCryptHashes) {
  const std::string base = "node:\n  name: n1\n  address: 127.0.0.1\n  state_dir: /tmp/x\n";
  auto ok = agent::ParseConfig(base +
                                   "ui:\n  users:\n    admin: '$y$j9T$abc$def'\n"
                                   "  session_timeout: 10m\n",
                               "t.yaml");
  ASSERT_TRUE(ok.ok()) << ok.error().message();
  EXPECT_EQ(ok->ui_users.at("admin"), "$y$j9T$abc$def");
  EXPECT_EQ(ok->ui_session_timeout_ms, 600'000);
  for (const char* bad :
       {"ui:\n  users:\n    admin: secret\n", "ui:\n  users: [admin]\n",
        "ui:\n  users:\n    'Bad Name': '$y$x'\n", "ui:\n  session_timeout: 0\n"}) {
    auto r = agent::ParseConfig(base + bad, "t.yaml");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find("ui."), std::string::npos) << r.error().message();
  }
}

}  // namespace
}  // namespace tandem::api
