// UiAuth (ui_auth.h): crypt(3) hashes checked with libcrypt's crypt_r, the
// session table, the CSRF tokens. Runs on the API's workers; reads time only
// through the Clock it was given.
#include "api/ui_auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <memory>

#include "base/log.h"
#include "base/strings.h"

namespace tandem::api {
namespace {

std::string Hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

// crypt_r of password with setting (a hash or a salt); "" when it fails.
std::string Crypt(const std::string& password, const std::string& setting) {
  auto data = std::make_unique<crypt_data>();  // ~32 KiB: not on the worker's stack
  const char* out = crypt_r(password.c_str(), setting.c_str(), data.get());
  if (out == nullptr || out[0] == '*') return "";  // libxcrypt's failure token
  return out;
}

// A yescrypt hash of a password nobody has: an unknown user's login costs
// the same crypt_r work as a known one's.
const std::string& DummyHash() {
  static const std::string hash = [] {
    auto h = UiHashPassword(UiRandomToken());
    return h ? *h
             : std::string(
                   "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7");
  }();
  return hash;
}

}  // namespace

std::string UiHashProblem(const std::string& hash) {
  const bool known = StartsWith(hash, "$y$") || StartsWith(hash, "$2b$") ||
                     StartsWith(hash, "$2y$") || StartsWith(hash, "$2a$");
  if (!known) {
    return "is not a yescrypt ($y$...) or bcrypt ($2b$...) hash; make one with `tandem ui "
           "hash-password` (or mkpasswd -m yescrypt)";
  }
  for (char c : hash) {
    if (c <= ' ' || c > '~' || c == ':') return "contains a character no crypt(3) hash has";
  }
  return "";
}

Result<std::string> UiHashPassword(const std::string& password) {
  if (password.empty()) return Error(ErrorCode::kInvalidArgument, "the password is empty");
  if (password.size() > kUiMaxPasswordBytes) {
    return Error(ErrorCode::kInvalidArgument, "the password is longer than 1024 bytes");
  }
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$y$", 0, nullptr, 0, salt, sizeof salt) == nullptr) {
    return Error(ErrorCode::kInternal, "libcrypt cannot make a yescrypt salt");
  }
  std::string hash = Crypt(password, salt);
  if (hash.empty()) return Error(ErrorCode::kInternal, "libcrypt's crypt_r failed");
  return hash;
}

bool UiSameSecret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool UiPasswordMatches(const std::string& password, const std::string& hash) {
  if (password.size() > kUiMaxPasswordBytes || !UiHashProblem(hash).empty()) return false;
  const std::string got = Crypt(password, hash);
  return !got.empty() && UiSameSecret(got, hash);
}

std::string UiRandomToken() {
  unsigned char buf[32];
  TANDEM_CHECK(RAND_bytes(buf, sizeof buf) == 1, "RAND_bytes failed");
  return Hex(buf, sizeof buf);
}

UiAuth::UiAuth(const Clock& clock, std::map<std::string, std::string> users, MonoMs session_ms)
    : clock_(clock), users_(std::move(users)), session_ms_(session_ms), secret_(UiRandomToken()) {}

UiAuth::LoginResult UiAuth::Login(const std::string& user, const std::string& password,
                                  std::string* token, UiSession* session) {
  std::unique_lock<std::mutex> one(login_mu_, std::try_to_lock);
  if (!one.owns_lock()) return LoginResult::kBusy;
  auto it = users_.find(user);
  // The same work whether or not the user exists (no user enumeration).
  const bool ok = UiPasswordMatches(password, it != users_.end() ? it->second : DummyHash()) &&
                  it != users_.end();
  if (!ok) {
    uint64_t n = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      n = ++failed_;
    }
    TLOG(Warn, "api") << "refused a dashboard login (wrong user or password; " << n
                      << " refused since the agent started)";
    clock_.SleepFor(kUiLoginFailureDelayMs);
    return LoginResult::kRefused;
  }
  UiSession s{user, UiRandomToken(), clock_.Now() + session_ms_};
  std::string t = UiRandomToken();
  {
    std::lock_guard<std::mutex> lock(mu_);
    const MonoMs now = clock_.Now();
    for (auto i = sessions_.begin(); i != sessions_.end();) {
      i = i->second.expires_at <= now ? sessions_.erase(i) : std::next(i);
    }
    while (sessions_.size() >= kUiMaxSessions) {
      auto oldest = sessions_.begin();
      for (auto i = sessions_.begin(); i != sessions_.end(); ++i) {
        if (i->second.expires_at < oldest->second.expires_at) oldest = i;
      }
      sessions_.erase(oldest);
    }
    sessions_[t] = s;
  }
  TLOG(Info, "api") << "dashboard login of user " << user;
  *token = std::move(t);
  *session = std::move(s);
  return LoginResult::kOk;
}

std::optional<UiSession> UiAuth::Find(const std::string& token) {
  if (token.empty()) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(token);
  if (it == sessions_.end()) return std::nullopt;
  if (it->second.expires_at <= clock_.Now()) {
    sessions_.erase(it);
    return std::nullopt;
  }
  return it->second;
}

void UiAuth::Logout(const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.erase(token);
}

std::string UiAuth::CertificateCsrf(const std::string& subject) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const std::string msg = "certificate:" + subject;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len);
  return Hex(mac, len);
}

uint64_t UiAuth::failed_logins() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failed_;
}

size_t UiAuth::session_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_.size();
}

}  // namespace tandem::api
