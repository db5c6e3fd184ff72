// Certificate rotation and the peer-certificate checks (docs/design/tls.md,
// "Rotation").
//
// Threads: ReadTlsSection/RefreshTlsCopies run on the HA loop (housekeeping);
// PeerCertMain on peer_cert_thread_ (Start to the destructor, TLS only), so a
// peer that does not answer never slows the loop.
// Touches: tls_mu_ (tls_cfg_, restart_required_, peer_targets_, peer_certs_,
// peer_wake_), the loop-only fields config_mtime_ns_, config_warned_,
// tls_refresh_warned_, cert_summary_*, pg_->Reload, etcd_ (its TLS copies).
#include <sys/stat.h>

#include <algorithm>
#include <map>

#include "agent/agent.h"
#include "agent/agent_internal.h"
#include "agent/tls_files.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/strings.h"

namespace tandem::agent {
using namespace internal;
namespace {
// Logs "what: message" unless message is the one last logged through *last
// (a problem that persists is logged once, not every cycle).
// What stat says of the TLS sources and their copies (device, inode, size,
// mtime, ctime each; "-" for a file that cannot be stat'ed): while it stays
// the same, contents found equal stay equal, with no file opened.
std::string TlsStatSignature(const Config& tc) {
  const TlsCopyPaths c = TlsCopies(tc);
  std::string sig;
  for (const std::string* p : {&tc.tls_server_key, &tc.tls_server_cert, &tc.tls_client_key,
                               &tc.tls_client_cert, &tc.tls_ca_cert, &c.server_key, &c.server_cert,
                               &c.client_key, &c.client_cert, &c.ca_cert}) {
    struct stat st {};
    if (::stat(p->c_str(), &st) != 0) {
      sig += "-;";
      continue;
    }
    sig += std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
           std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_ctim.tv_sec) + "." +
           std::to_string(st.st_ctim.tv_nsec) + ";";
  }
  return sig;
}

void WarnOnChange(std::string* last, const std::string& what, const std::string& message) {
  if (message == *last) return;
  *last = message;
  TLOG(Warn, "agent") << what << ": " << message;
}

// Rotation, in the order that keeps every connection working: PostgreSQL
// (reload: new handshakes use the new pair), etcd's copies (etcd loads its
// pair at every handshake), the API (its next handshakes), the agent's own
// clients (new connections read the copies). Returns who uses them now.
std::string UseNewCopies(pg::Controller& pg, EtcdMember* etcd, const std::function<void()>& api,
                         const std::shared_ptr<dcs::Dcs>& store) {
  std::string applied = "PostgreSQL";
  if (pg.IsRunning()) {
    if (auto st = pg.Reload(); !st.ok()) TLOG(Warn, "agent") << st.error().message();
  }
  if (etcd != nullptr) {
    if (auto st = etcd->RefreshTlsFiles(); !st.ok()) {
      TLOG(Warn, "agent") << "etcd's certificate copies: " << st.error().message();
    } else {
      applied += ", etcd";
    }
  }
  if (api) {
    api();
    applied += ", the API";
  }
  if (store) store->ResetConnections();
  return applied;
}

}  // namespace

void Agent::ReadTlsSection() {
  struct stat st {};
  if (cfg_.path.empty() || ::stat(cfg_.path.c_str(), &st) != 0) return;
  const int64_t mtime = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  if (mtime == config_mtime_ns_) return;
  config_mtime_ns_ = mtime;
  auto now = LoadConfig(cfg_.path, /*may_run_postgres=*/false);
  if (!now) {
    WarnOnChange(&config_warned_,
                 "the config file changed but does not load; the agent keeps what it read before",
                 now.error().message());
    return;
  }
  config_warned_.clear();
  std::lock_guard<std::mutex> lock(tls_mu_);
  if (now->tls_enabled() != cfg_.tls_enabled() || now->tls_mode != cfg_.tls_mode ||
      now->tls_verify_hostname != cfg_.tls_verify_hostname) {
    const std::string why = "the tls section of " + cfg_.path +
                            " changed (mode, verify_hostname or TLS on/off): restart this node's "
                            "agent to apply it (on the primary, run `tandem cluster switchover` "
                            "first)";
    if (restart_required_ != why) TLOG(Warn, "agent") << why;
    restart_required_ = why;
    return;
  }
  // Put back as the agent runs it: nothing to restart for (a CA change stays).
  if (restart_required_.rfind("the tls section of ", 0) == 0) restart_required_.clear();
  if (now->tls_server_key == tls_cfg_.tls_server_key &&
      now->tls_server_cert == tls_cfg_.tls_server_cert &&
      now->tls_client_key == tls_cfg_.tls_client_key &&
      now->tls_client_cert == tls_cfg_.tls_client_cert &&
      now->tls_ca_cert == tls_cfg_.tls_ca_cert) {
    return;
  }
  TLOG(Info, "agent") << "the config file names other TLS files; checking them";
  tls_cfg_.tls_server_key = now->tls_server_key;
  tls_cfg_.tls_server_cert = now->tls_server_cert;
  tls_cfg_.tls_client_key = now->tls_client_key;
  tls_cfg_.tls_client_cert = now->tls_client_cert;
  tls_cfg_.tls_ca_cert = now->tls_ca_cert;
}

void Agent::RefreshTlsCopies() {
  if (!cfg_.tls_enabled()) return;
  // Once a second, not every cycle: a rotation takes effect within a second
  // (eleven stat calls each time; the files are read only when one changed).
  const MonoMs now = clock_.Now();
  if (tls_checked_at_ != 0 && now - tls_checked_at_ < 1'000) return;
  tls_checked_at_ = now;
  ReadTlsSection();
  const Config tc = TlsConfig();
  // The contents are compared only when a file's stat changed since they
  // were last found equal (no five reads of each pair every cycle).
  const std::string sig = TlsStatSignature(tc);
  const bool current = sig == tls_stat_signature_ || TlsCopiesCurrent(tc);
  tls_stat_signature_ = current ? sig : "";
  if (!current || cert_summary_at_ == 0 || now - cert_summary_at_ >= 60'000) {
    cert_summary_at_ = now;
    cert_summary_ = NodeCertificateSummary(CertificateStates(tc, clock_.WallNow() / 1000));
  }
  if (current) return;
  auto valid = ValidateTlsFiles(tc, clock_.WallNow() / 1000);
  if (!valid.ok()) {
    WarnOnChange(&tls_refresh_warned_,
                 "the TLS files changed but are not usable; the node keeps the certificates it "
                 "uses now",
                 valid.error().message());
    return;
  }
  tls_refresh_warned_.clear();
  auto old_ca = ReadFile(TlsCopies(tc).ca_cert);
  auto copied = InstallTlsCopies(tc, ServiceUser(tc));
  if (!copied) {
    TLOG(Warn, "agent") << "cannot refresh the TLS copies: " << copied.error().message();
    return;
  }
  const std::string applied =
      UseNewCopies(*pg_, cfg_.embedded_etcd() ? &etcd_ : nullptr, tls_reload_hook_, Store());
  if (auto join = JoinStore(); join && join != Store()) join->ResetConnections();
  TLOG(Info, "agent") << "the TLS files changed: checked, copied to " << TlsCopies(tc).dir
                      << " and in use by " << applied << " and this agent's connections";
  RecordEvent(core::EventKind::kConfigChanged,
              cfg_.node_name + "'s TLS files changed and are in use", {{"setting", "tls"}});
  auto new_ca = ReadFile(TlsCopies(tc).ca_cert);
  if (cfg_.embedded_etcd() && old_ca.ok() && new_ca.ok() && *old_ca != *new_ca) {
    // etcd reads its trusted CA only when it starts.
    std::lock_guard<std::mutex> lock(tls_mu_);
    restart_required_ =
        "the CA certificate changed: etcd trusts the new one after this node's agent restarts "
        "(PostgreSQL, the API and the agent's connections already do)";
    TLOG(Warn, "agent") << restart_required_;
  }
  WakePeerCerts();
}

void Agent::UpdatePeerTargets(const ClusterView& view) {
  if (cfg_.tls_enabled()) {
    // The peers whose certificates PeerCertMain checks; checked again at once
    // when one joins, leaves or moves.
    std::vector<NodeInfo> targets;
    for (const auto& [name, n] : view.nodes) {
      if (name != cfg_.node_name) targets.push_back(n);
    }
    bool changed = false;
    {
      std::lock_guard<std::mutex> lock(tls_mu_);
      changed = targets.size() != peer_targets_.size() ||
                !std::equal(targets.begin(), targets.end(), peer_targets_.begin(),
                            [](const NodeInfo& a, const NodeInfo& b) {
                              return a.name == b.name && a.api_url == b.api_url;
                            });
      if (changed) peer_targets_ = std::move(targets);
    }
    if (changed) WakePeerCerts();
  }
}

void Agent::WakePeerCerts() {
  {
    std::lock_guard<std::mutex> lock(tls_mu_);
    peer_wake_ = true;
  }
  peer_cv_.notify_all();
}

void Agent::PeerCertMain() {
  while (!stopping_) {
    std::vector<NodeInfo> targets;
    Config tc;
    {
      std::unique_lock<std::mutex> lock(tls_mu_);
      clock_.WaitUntil(lock, peer_cv_, clock_.Now() + 60'000,
                       [&] { return peer_wake_ || stopping_; });
      peer_wake_ = false;
      if (stopping_) return;
      targets = peer_targets_;
      tc = tls_cfg_;
    }
    const auto copies = TlsCopies(tc);
    std::map<std::string, net::PeerCertificate> seen;
    for (const auto& n : targets) {
      const auto [host, port] = net::HostPortOfUrl(n.api_url);
      if (port <= 0) continue;
      // Judged as enforce would, whatever this node's mode: that is what
      // switching to enforce would meet.
      seen[n.name] = net::CheckPeerCertificate(
          n.name + "'s API certificate", host.empty() ? n.host : host, port,
          net::TlsService::kHttps, copies.ca_cert, copies.client_cert, copies.client_key,
          tc.tls_verify_hostname, clock_.WallNow() / 1000, 2000);
      if (stopping_) return;
    }
    std::lock_guard<std::mutex> lock(tls_mu_);
    for (auto& [name, pc] : seen) {
      auto old = peer_certs_.find(name);
      if (old == peer_certs_.end() || old->second.summary.text != pc.summary.text) {
        const std::string line = "peer " + name + ": Certificate: " + pc.summary.text +
                                 (pc.detail.empty() ? "" : " (" + pc.detail + ")");
        if (pc.summary.state == pki::CertState::kInvalid) {
          TLOG(Warn, "tls") << line;
        } else {
          TLOG(Info, "tls") << line;
        }
      }
    }
    peer_certs_ = std::move(seen);
  }
}

void Agent::StopPeerCerts() {
  {
    std::lock_guard<std::mutex> lock(tls_mu_);
    peer_wake_ = true;
  }
  peer_cv_.notify_all();
  if (peer_cert_thread_.joinable()) peer_cert_thread_.join();
}

}  // namespace tandem::agent
