// The node's TLS files: the start-up checks (ValidateTlsFiles, through
// pki::Inspect), the private copies under <state_dir>/tls/ (InstallTlsCopies,
// TlsCopiesCurrent), the certificate state in status (its alarms are core/alarms.h's), and the
// client TLS options the agent's HTTP calls use. Its only state is the last
// CertificateStates answer (a cache under a mutex); called from agent
// start-up, the TLS rotation thread, status and the CLI.
#include "agent/tls_files.h"

#include <sys/stat.h>

#include <algorithm>
#include <mutex>
#include <optional>

#include "base/file.h"
#include "base/strings.h"

namespace tandem::agent {
namespace {

constexpr const char* kClientCn = "postgres";

struct Source {
  const char* key;  // config key, "tls.server_cert"
  const std::string* path;
};

// The failed findings of an inspection, as "tls.KEY: detail" lines. The key
// mode is left out: PostgreSQL reads the private copies, not the source.
void Collect(const char* key, const pki::Inspection& in, const Config& cfg,
             std::vector<std::string>* out) {
  for (const auto& f : in.findings) {
    if (f.ok || f.check == pki::Check::kKeyMode) continue;
    // A key problem is the key file's: name its key (tls.server_key).
    std::string name = key;
    if (f.check == pki::Check::kKey && name.size() > 5 && name.ends_with("_cert")) {
      name = name.substr(0, name.size() - 5) + "_key";
    }
    std::string line = name + ": " + f.detail;
    if (f.check == pki::Check::kHost) {
      line +=
          "; or, when the certificates name the node by its domain name only (a CN and no "
          "SAN, checked with sslmode=verify-ca), set `tls.verify_hostname: false` in " +
          cfg.path;
    }
    out->push_back(line);
  }
}

pki::InspectOptions Opts(const Config& cfg, int64_t now, const std::string& key,
                         std::optional<pki::Role> role, const std::string& host) {
  pki::InspectOptions o;
  o.ca_path = cfg.tls_ca_cert;
  o.key_path = key;
  o.role = role;
  o.host = host;
  o.now = now;
  return o;
}

// The CA certificate itself: file and validity.
pki::Inspection InspectCa(const Config& cfg, int64_t now) {
  pki::InspectOptions o;
  o.now = now;
  return pki::Inspect(cfg.tls_ca_cert, o);
}

std::string ServerHost(const Config& cfg) {
  return cfg.tls_mode == TlsMode::kEnforce && cfg.tls_verify_hostname ? cfg.node_address : "";
}

// The CN rule for the client certificate, as a failure text ("" = fine).
std::string ClientCnProblem(const pki::Inspection& in) {
  if (!in.cert || in.cert->common_name == kClientCn) return "";
  return "tls.client_cert: " + in.path + " has Common Name '" + in.cert->common_name +
         "', but the client certificate must have CN postgres: PostgreSQL's certificate "
         "authentication maps CN postgres to the replication user (pg_ident.conf map tandem). "
         "Issue one with `tandem pki issue NODE` (its client.crt) or `tandem pki csr client "
         "--cn postgres` signed with `tandem pki sign client.csr --client`";
}

std::string CaProblem(const pki::Inspection& in) {
  if (!in.cert || in.cert->is_ca) return "";
  return "tls.ca_cert: " + in.path +
         " is not a CA certificate (no basicConstraints CA:TRUE); give the cluster CA's ca.crt "
         "(`tandem pki ca init` made it)";
}

std::vector<std::pair<std::string, std::string>> CopyPairs(const Config& cfg) {
  auto c = TlsCopies(cfg);
  return {{cfg.tls_server_key, c.server_key},
          {cfg.tls_server_cert, c.server_cert},
          {cfg.tls_client_key, c.client_key},
          {cfg.tls_client_cert, c.client_cert},
          {cfg.tls_ca_cert, c.ca_cert}};
}

}  // namespace

Status ValidateTlsFiles(const Config& cfg, int64_t now) {
  if (!cfg.tls_enabled()) return Ok();
  std::vector<std::string> problems;
  auto ca = InspectCa(cfg, now);
  Collect("tls.ca_cert", ca, cfg, &problems);
  if (auto p = CaProblem(ca); !p.empty()) problems.push_back(p);
  const bool ca_ok = ca.ok() && CaProblem(ca).empty();

  auto server = pki::Inspect(
      cfg.tls_server_cert, Opts(cfg, now, cfg.tls_server_key, pki::Role::kServer, ServerHost(cfg)));
  auto client =
      pki::Inspect(cfg.tls_client_cert, Opts(cfg, now, cfg.tls_client_key, pki::Role::kClient, ""));
  for (auto* in : {&server, &client}) {
    // With a broken CA file every chain check fails for the same reason: say it once.
    if (!ca_ok) {
      in->findings.erase(
          std::remove_if(in->findings.begin(), in->findings.end(),
                         [](const pki::Finding& f) { return f.check == pki::Check::kChain; }),
          in->findings.end());
    }
  }
  Collect("tls.server_cert", server, cfg, &problems);
  Collect("tls.client_cert", client, cfg, &problems);
  if (auto p = ClientCnProblem(client); !p.empty()) problems.push_back(p);
  if (problems.empty()) return Ok();
  return Error(ErrorCode::kInvalidArgument,
               "the TLS files in " + cfg.path + " are not usable (" + Join(problems, "; ") +
                   "); fix the files (check them with `tandem pki inspect`)");
}

TlsCopyPaths TlsCopies(const Config& cfg) {
  TlsCopyPaths c;
  c.dir = cfg.state_dir + "/tls";
  c.server_key = c.dir + "/server.key";
  c.server_cert = c.dir + "/server.crt";
  c.client_key = c.dir + "/client.key";
  c.client_cert = c.dir + "/client.crt";
  c.ca_cert = c.dir + "/ca.crt";
  return c;
}

Result<bool> InstallTlsCopies(const Config& cfg, const std::string& user) {
  if (!cfg.tls_enabled()) return false;
  const auto c = TlsCopies(cfg);
  if (!IsDirectory(c.dir)) {
    TANDEM_TRY(MakeDirs(c.dir, 0700));
  }
  if (::chmod(c.dir.c_str(), 0700) != 0) {
    return Error(ErrorCode::kIo, "cannot set mode 0700 on " + c.dir);
  }
  TANDEM_TRY(Chown(c.dir, user));
  bool changed = false;
  for (const auto& [from, to] : CopyPairs(cfg)) {
    auto content = ReadFile(from);
    if (!content) return content.error().Wrap("TLS file " + from);
    auto cur = ReadFile(to);
    struct stat st {};
    const bool mode_ok = ::stat(to.c_str(), &st) == 0 && (st.st_mode & 07777) == 0600;
    if (cur && *cur == *content && mode_ok) {
      TANDEM_TRY(Chown(to, user));  // the owner too (e.g. the sources are the copies)
      continue;
    }
    // Owner and mode are right before the file appears under its name.
    const std::string tmp = to + ".new";
    TANDEM_TRY(WriteFileAtomic(tmp, *content, 0600));
    TANDEM_TRY(Chown(tmp, user));
    TANDEM_TRY(RenamePath(tmp, to));
    changed = true;
  }
  return changed;
}

bool TlsCopiesCurrent(const Config& cfg) {
  if (!cfg.tls_enabled()) return true;
  for (const auto& [from, to] : CopyPairs(cfg)) {
    auto a = ReadFile(from);
    auto b = ReadFile(to);
    if (!a || !b || *a != *b) return false;
  }
  return true;
}

namespace {

// A file's identity: a replaced or rewritten file has another one.
std::string FileIdentity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "missing";
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

// The last answer of CertificateStates: decoding the keys and certificates
// (OpenSSL 3's decoders) costs milliseconds, and status (the dashboard polls
// it every 2 s), metrics and the alarms ask often. Reused while the files and
// the settings are the same and for at most kCertificateStatesReuseS seconds.
constexpr int64_t kCertificateStatesReuseS = 10;
struct CertificateStatesCache {
  std::mutex mu;
  std::string key;
  int64_t at = 0;
  std::vector<CertificateState> states;
};
CertificateStatesCache& StatesCache() {
  static CertificateStatesCache cache;
  return cache;
}

std::vector<CertificateState> ComputeCertificateStates(const Config& cfg, int64_t now);

}  // namespace

std::vector<CertificateState> CertificateStates(const Config& cfg, int64_t now) {
  if (!cfg.tls_enabled()) return {};
  std::string key = ServerHost(cfg) + "|" + (cfg.tls_verify_hostname ? "v" : "-");
  for (const std::string* p : {&cfg.tls_server_cert, &cfg.tls_server_key, &cfg.tls_client_cert,
                               &cfg.tls_client_key, &cfg.tls_ca_cert}) {
    key += "|" + *p + "=" + FileIdentity(*p);
  }
  auto& cache = StatesCache();
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    if (cache.key == key && now >= cache.at && now - cache.at < kCertificateStatesReuseS) {
      return cache.states;
    }
  }
  auto states = ComputeCertificateStates(cfg, now);
  std::lock_guard<std::mutex> lock(cache.mu);
  cache.key = std::move(key);
  cache.at = now;
  cache.states = states;
  return states;
}

namespace {

std::vector<CertificateState> ComputeCertificateStates(const Config& cfg, int64_t now) {
  std::vector<CertificateState> out;
  auto add = [&](const char* name, const std::string& path, pki::Inspection in,
                 const std::string& extra_problem) {
    // The source key's mode does not matter (PostgreSQL reads the private copy).
    in.findings.erase(
        std::remove_if(in.findings.begin(), in.findings.end(),
                       [](const pki::Finding& f) { return f.check == pki::Check::kKeyMode; }),
        in.findings.end());
    CertificateState s;
    s.name = name;
    s.path = path;
    s.summary = pki::Summarize(in);
    if (!extra_problem.empty() && s.summary.state != pki::CertState::kInvalid) {
      s.summary = {pki::CertState::kInvalid, "Invalid (" + extra_problem + ")"};
    }
    if (in.cert) {
      s.days_left = in.cert->days_left;
      s.not_after = in.cert->not_after;
    }
    out.push_back(std::move(s));
  };
  auto server = pki::Inspect(
      cfg.tls_server_cert, Opts(cfg, now, cfg.tls_server_key, pki::Role::kServer, ServerHost(cfg)));
  add("server", cfg.tls_server_cert, server, "");
  auto client =
      pki::Inspect(cfg.tls_client_cert, Opts(cfg, now, cfg.tls_client_key, pki::Role::kClient, ""));
  add("client", cfg.tls_client_cert, client,
      ClientCnProblem(client).empty() ? "" : "Common Name is not postgres");
  auto ca = InspectCa(cfg, now);
  add("ca", cfg.tls_ca_cert, ca, CaProblem(ca).empty() ? "" : "not a CA certificate");
  return out;
}

}  // namespace

std::string NodeCertificateSummary(const std::vector<CertificateState>& states) {
  const CertificateState* worst = nullptr;
  auto rank = [](pki::CertState st) {
    return st == pki::CertState::kInvalid ? 2 : st == pki::CertState::kExpiring ? 1 : 0;
  };
  for (const auto& s : states) {
    if (s.name == "ca") continue;
    if (worst == nullptr || rank(s.summary.state) > rank(worst->summary.state) ||
        (s.summary.state == pki::CertState::kExpiring &&
         worst->summary.state == pki::CertState::kExpiring && s.days_left < worst->days_left)) {
      worst = &s;
    }
  }
  if (worst == nullptr) return "";
  if (worst->summary.state == pki::CertState::kInvalid) {
    // "Invalid (client: reason)"
    std::string t = worst->summary.text;
    const std::string head = "Invalid (";
    if (t.rfind(head, 0) == 0) t = head + worst->name + ": " + t.substr(head.size());
    return t;
  }
  return worst->summary.text;
}

dcs::TlsClientOptions ClientTlsFor(const Config& cfg) {
  dcs::TlsClientOptions t;
  if (!cfg.tls_enabled()) return t;
  t.ca_file = cfg.tls_ca_cert;
  t.cert_file = cfg.tls_client_cert;
  t.key_file = cfg.tls_client_key;
  t.verify_peer = cfg.tls_mode == TlsMode::kEnforce;
  t.verify_hostname = cfg.tls_verify_hostname;
  return t;
}

dcs::TlsClientOptions AgentClientTls(const Config& cfg) {
  dcs::TlsClientOptions t = ClientTlsFor(cfg);
  if (!cfg.tls_enabled()) return t;
  const auto copies = TlsCopies(cfg);
  t.ca_file = copies.ca_cert;
  t.cert_file = copies.client_cert;
  t.key_file = copies.client_key;
  return t;
}

}  // namespace tandem::agent
