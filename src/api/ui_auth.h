// The dashboard's login (docs/dashboard.md): the users of ui.users with their
// crypt(3) hashes (yescrypt or bcrypt, checked with libcrypt's crypt_r), the
// in-memory sessions they open (expiring on the injected Clock), the CSRF
// token every action carries, and the refusal of a wrong password (a fixed
// delay, a counter, the same answer for an unknown user). Also the CSRF
// token of a browser that authenticates with a client certificate instead.
//
// Thread safety: every method may be called from any API worker; one mutex
// guards the sessions, and at most one login is checked at a time (a second
// one meanwhile is refused at once, so logins never hold more than one
// worker). Time (expiry, the delay) comes only from the Clock.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "base/clock.h"
#include "base/result.h"

namespace tandem::api {

inline constexpr MonoMs kUiLoginFailureDelayMs = 1000;  // every refused login waits this long
inline constexpr size_t kUiMaxSessions = 256;           // more: the oldest is ended
inline constexpr size_t kUiMaxPasswordBytes = 1024;     // longer is refused as wrong

// Whether `hash` is a crypt(3) hash the dashboard accepts: yescrypt ("$y$")
// or bcrypt ("$2b$", "$2y$", "$2a$"); "" when it is, else what is wrong.
std::string UiHashProblem(const std::string& hash);
// A new yescrypt hash of password (random salt); for `tandem ui hash-password`.
Result<std::string> UiHashPassword(const std::string& password);
// Whether password matches hash (crypt_r; constant-time compare).
bool UiPasswordMatches(const std::string& password, const std::string& hash);
// 32 random bytes as 64 hex digits (OpenSSL's RAND_bytes).
std::string UiRandomToken();

struct UiSession {
  std::string user;
  std::string csrf;       // the X-CSRF-Token its actions must carry
  MonoMs expires_at = 0;  // Clock::Now() from which it no longer counts
};

class UiAuth {
 public:
  // users: name -> crypt(3) hash (config ui.users, checked at load);
  // session_ms: how long a session lasts from its login.
  UiAuth(const Clock& clock, std::map<std::string, std::string> users, MonoMs session_ms);

  bool login_enabled() const { return !users_.empty(); }
  MonoMs session_ms() const { return session_ms_; }

  enum class LoginResult { kOk, kRefused, kBusy };
  // Checks user and password; kOk fills *token (the cookie's value) and
  // *session. A wrong password and an unknown user are the same kRefused,
  // after the same crypt_r work and kUiLoginFailureDelayMs, and count one
  // failure. kBusy: another login is being checked right now (try again).
  LoginResult Login(const std::string& user, const std::string& password, std::string* token,
                    UiSession* session);
  // The session of a cookie's token, unless unknown or expired (an expired
  // one is forgotten).
  std::optional<UiSession> Find(const std::string& token);
  void Logout(const std::string& token);
  // The CSRF token of a browser that presents the verified client
  // certificate `subject` (a keyed hash: the same for that subject while
  // this agent runs, unguessable without reading it from the page).
  std::string CertificateCsrf(const std::string& subject) const;

  uint64_t failed_logins() const;
  size_t session_count() const;

 private:
  const Clock& clock_;
  const std::map<std::string, std::string> users_;
  const MonoMs session_ms_;
  const std::string secret_;                   // keys CertificateCsrf
  std::mutex login_mu_;                        // one login check at a time
  mutable std::mutex mu_;                      // guards sessions_, failed_
  std::map<std::string, UiSession> sessions_;  // token -> session
  uint64_t failed_ = 0;
};

// Constant-time equality of two strings (different lengths: false).
bool UiSameSecret(const std::string& a, const std::string& b);

}  // namespace tandem::api
