// The embedded etcd member's supervision (etcd_member.h). Runs on whichever
// agent thread calls it; time only through the injected Clock.
#include "agent/etcd_member.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "agent/tls_files.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/process.h"
#include "base/strings.h"
#include "net/http_client.h"

namespace tandem::agent {

// A primary demotes when its renewals fail for ttl - safety_margin; an etcd
// leader crash stops renewals until a follower notices (one to two election
// timeouts, randomised) and wins the vote. At the default 2s ttl that window
// is 1.5 s, so the election timeout is 500 ms (a new leader within ~1 s); it
// grows to etcd's default 1000 ms only from a 4s ttl.
int64_t EtcdElectionMs(int64_t ttl_ms) {
  return std::clamp<int64_t>(ttl_ms / 4, 500, 1000);
}

// As few heartbeats as etcd allows for that election timeout (it refuses an
// election timeout under 5 heartbeats): heartbeats are most of an idle
// member's cost, and how soon a dead leader is noticed depends on the
// election timeout alone (raft waits a random 1x to 2x of it, whatever the
// heartbeat). 100 ms at the default 2s ttl.
int64_t EtcdHeartbeatMs(int64_t ttl_ms) {
  return EtcdElectionMs(ttl_ms) / 5;
}

namespace {
// "pid|inode:size:mtime" of the pid file, "" when it cannot be stat'ed.
std::string PidFileSignature(pid_t pid, const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return std::to_string(pid) + "|" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) +
         ":" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

std::string ServiceUser(const Config& cfg) {
  return ::geteuid() == 0 ? cfg.run_as_user : "";
}
}  // namespace

std::vector<std::string> EtcdFlags(const Config& cfg, const std::string& initial_cluster,
                                   bool new_cluster) {
  return {
      "--name=" + cfg.node_name,
      "--data-dir=" + cfg.etcd_data_dir(),
      "--listen-client-urls=" + cfg.etcd_client_url(),
      "--advertise-client-urls=" + cfg.etcd_client_url(),
      "--listen-peer-urls=" + cfg.etcd_peer_url(),
      "--initial-advertise-peer-urls=" + cfg.etcd_peer_url(),
      "--initial-cluster=" + initial_cluster,
      std::string("--initial-cluster-state=") + (new_cluster ? "new" : "existing"),
      "--initial-cluster-token=tandem-" + cfg.cluster,
      // etcd grants no lease shorter than 1.5 election timeouts (rounded up
      // to whole seconds): 100/500 ms allows a 1s ttl. See EtcdElectionMs.
      "--heartbeat-interval=" + std::to_string(EtcdHeartbeatMs(cfg.ha.ttl_ms)),
      "--election-timeout=" + std::to_string(EtcdElectionMs(cfg.ha.ttl_ms)),
      // A member that was cut off or restarted asks the others first instead
      // of deposing a healthy leader with a higher term (every such election
      // stalls lease renewals, and may demote the primary).
      "--pre-vote=true",
      // Every member publishes its state each cycle: compact history, or the
      // store reaches its space quota in weeks and refuses every write. One
      // compaction every 10 minutes (etcd's periodic mode compacts once per
      // retention below an hour): rare, and each one small.
      "--auto-compaction-mode=periodic",
      "--auto-compaction-retention=10m",
      // A snapshot every 10000 writes instead of 100000: the keyspace is a few
      // kilobytes, so a snapshot costs next to nothing, while etcd keeps
      // every raft entry since the last one in memory and replays them at a
      // restart (an idle 3-node cluster writes about 12 a second: 14 minutes
      // of entries instead of 2.3 hours).
      "--snapshot-count=10000",
      // The agents' watch streams ask for progress notifications: an idle
      // stream then carries one small message every 30 s, which keeps it
      // open (the client reopens a stream silent for 60 s, in case it is a
      // half-open connection) and tells how far it is complete.
      "--experimental-watch-progress-notify-interval=30s",
      "--logger=zap",
      "--log-outputs=stderr",
      "--log-level=" + EtcdLogLevel(cfg),
  };
}

std::vector<std::string> EtcdTlsFlags(const Config& cfg, const std::string& tls_dir) {
  if (!cfg.tls_enabled()) return {};
  const std::string cert = tls_dir + "/server.crt";
  const std::string key = tls_dir + "/server.key";
  const std::string ca = tls_dir + "/ca.crt";
  // One pair for clients and peers: etcd presents the peer pair both as a
  // server and as a client of its peers (and its JSON gateway dials its own
  // gRPC port with the client-side pair), so it carries both usages.
  std::vector<std::string> flags = {"--cert-file=" + cert, "--key-file=" + key};
  // etcd 3.4 requires a client certificate of the trusted CA as soon as one
  // is given: permissive leaves the client port's CA out (encrypted, any
  // client), enforce gives it and says so.
  if (cfg.tls_mode == TlsMode::kEnforce) {
    flags.push_back("--trusted-ca-file=" + ca);
    flags.push_back("--client-cert-auth=true");
  }
  // Peers: etcd verifies a peer's server certificate only against the peer
  // CA (without it, against the system's roots, which never know ours), and
  // with the peer CA it also requires the peers' client certificates. So
  // peers verify each other in both modes: permissive cannot relax etcd's
  // peer side (docs/design/tls.md).
  flags.push_back("--peer-cert-file=" + cert);
  flags.push_back("--peer-key-file=" + key);
  flags.push_back("--peer-trusted-ca-file=" + ca);
  flags.push_back("--peer-client-cert-auth=true");
  // etcd checks a peer's client certificate against the address it connects
  // from (IP SAN, or a DNS SAN that resolves to it); without hostname checks
  // that is skipped.
  if (!cfg.tls_verify_hostname) {
    flags.push_back("--experimental-peer-skip-client-san-verification=true");
  }
  return flags;
}

std::string EtcdLogLevel(const Config& cfg) {
  // etcd 3.4 with client-certificate authentication warns on every request
  // that comes through its JSON gateway ("ignoring common name in gRPC-gateway
  // proxy request": the gateway dials etcd with the server pair, whose CN it
  // then ignores). The agent's calls all do, about ten lines a second per
  // member, so etcd logs errors only in enforce mode.
  return cfg.tls_enabled() && cfg.tls_mode == TlsMode::kEnforce ? "error" : "warn";
}

Status EtcdMember::InstallTlsFiles() const {
  if (!cfg_.tls_enabled()) return Ok();
  // etcd runs as the run user when the agent is root: it reads its own
  // copies of the node's validated private copies (<state_dir>/tls), made at
  // every start and refreshed on a rotation (RefreshTlsFiles). etcd loads its
  // pair at every TLS handshake, so a new pair is used at once; its trusted
  // CA only when it starts.
  const std::string dir = tls_dir();
  TANDEM_TRY(MakeDirs(dir, 0700));
  const auto copies = TlsCopies(cfg_);
  const std::pair<const std::string*, const char*> files[] = {{&copies.server_cert, "server.crt"},
                                                              {&copies.server_key, "server.key"},
                                                              {&copies.ca_cert, "ca.crt"}};
  for (const auto& [src, name] : files) {
    auto text = ReadFile(*src);
    if (!text) return text.error().Wrap("reading " + *src + " for etcd");
    const bool is_key = std::string(name) == "server.key";
    const std::string dst = dir + "/" + name;
    auto old = ReadFile(dst);
    Status st = Ok();
    if (!old.ok() || *old != *text) st = WriteFileAtomic(dst, *text, is_key ? 0600 : 0644);
    std::fill(text->begin(), text->end(), '\0');
    if (old.ok()) std::fill(old->begin(), old->end(), '\0');
    TANDEM_TRY(st);
  }
  // <state_dir>/tls (PostgreSQL's copies live there too) must let the run
  // user through to its own subdirectory.
  TANDEM_TRY(Chown(cfg_.state_dir + "/tls", ServiceUser(cfg_)));
  return ChownRecursive(dir, ServiceUser(cfg_));
}

Status EtcdMember::RefreshTlsFiles() {
  std::lock_guard<std::mutex> lock(mu_);
  return InstallTlsFiles();
}

bool EtcdMember::HasData() const {
  return IsDirectory(cfg_.etcd_data_dir() + "/member");
}

Status EtcdMember::Start(const std::string& initial_cluster, bool new_cluster) {
  std::lock_guard<std::mutex> lock(mu_);
  initial_cluster_ = initial_cluster;
  return Launch(initial_cluster, new_cluster);
}

Status EtcdMember::Resume() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!HasData()) {
    return Error(ErrorCode::kFailedPrecondition,
                 "no etcd data in " + cfg_.etcd_data_dir() + "; the node must join again");
  }
  return Launch(cfg_.node_name + "=" + cfg_.etcd_peer_url(), false);
}

Status EtcdMember::Launch(const std::string& initial_cluster, bool new_cluster) {
  if (pid_ > 0 && IsAlive(pid_)) return Ok();
  // An etcd left running by an earlier agent process (it crashed): adopt it
  // rather than start a second one that would fail on the busy ports.
  if (auto text = ReadFile(pid_file()); text.ok()) {
    auto old = ParseInt(Trim(*text));
    if (old && IsAlive(static_cast<pid_t>(*old))) {
      auto cmdline = ReadFile("/proc/" + std::to_string(*old) + "/cmdline");
      if (cmdline.ok() && cmdline->find("etcd") != std::string::npos &&
          cmdline->find(cfg_.etcd_data_dir()) != std::string::npos) {
        pid_ = static_cast<pid_t>(*old);
        TLOG(Info, "etcd") << "adopted the running etcd member pid=" << pid_;
        return Ok();
      }
    }
  }
  const std::string user = ServiceUser(cfg_);
  TANDEM_TRY(MakeDirs(cfg_.etcd_data_dir(), 0700));
  TANDEM_TRY(ChownRecursive(cfg_.etcd_data_dir(), user));
  TANDEM_TRY(MakeDirs(cfg_.log_dir(), 0755));
  TANDEM_TRY(InstallTlsFiles());
  std::string bin = FindInPath(cfg_.etcd_bin);
  if (bin.empty()) {
    return Error(ErrorCode::kNotFound, "etcd not found ('" + cfg_.etcd_bin +
                                           "'); install Debian's etcd-server (scripts/setup.sh)");
  }
  std::vector<std::string> argv = {bin};
  for (auto& f : EtcdFlags(cfg_, initial_cluster, new_cluster)) argv.push_back(std::move(f));
  for (auto& f : EtcdTlsFlags(cfg_, tls_dir())) argv.push_back(std::move(f));
  SpawnOptions opts;
  opts.run_as_user = user;
  opts.output_file = cfg_.log_dir() + "/etcd.log";
  opts.cwd = cfg_.etcd_data_dir();
  auto pid = Spawn(argv, opts);
  if (!pid) return pid.error().Wrap("starting etcd");
  pid_ = *pid;
  if (auto st = WriteFileAtomic(pid_file(), std::to_string(pid_) + "\n"); !st.ok()) {
    pid_file_failed_ = true;
    TLOG(Warn, "etcd") << st.error().message() << ": the etcd member runs (pid " << pid_
                       << ") but an agent restarted now could not find it; free space in "
                       << cfg_.state_dir << " (retried every cycle)";
  }
  TLOG(Info, "etcd") << "started etcd member pid=" << pid_
                     << " state=" << (new_cluster ? "new" : "existing")
                     << " initial_cluster=" << initial_cluster;
  return Ok();
}

void EtcdMember::KeepPidFile() {
  std::lock_guard<std::mutex> lock(mu_);
  if (pid_ <= 0 || !IsAlive(pid_)) return;
  const std::string want = std::to_string(pid_);
  // Read again only when stat says the file changed since it was last found
  // right (no open every cycle).
  const std::string sig = PidFileSignature(pid_, pid_file());
  if (!sig.empty() && sig == pid_file_signature_) return;
  auto text = ReadFile(pid_file());
  if (text.ok() && Trim(*text) == want) {
    pid_file_signature_ = sig;
    return;
  }
  pid_file_signature_.clear();
  auto st = WriteFileAtomic(pid_file(), want + "\n");
  if (!st.ok()) {
    if (!pid_file_failed_) {
      TLOG(Warn, "etcd") << st.error().message() << ": the etcd member runs (pid " << pid_
                         << ") but an agent restarted now could not find it; free space in "
                         << cfg_.state_dir << " (retried every cycle)";
    }
    pid_file_failed_ = true;
    return;
  }
  if (pid_file_failed_) TLOG(Info, "etcd") << "wrote " << pid_file() << " again";
  pid_file_failed_ = false;
}

void EtcdMember::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (pid_ <= 0) return;
  if (IsAlive(pid_)) {
    KillProcessTree(pid_, SIGTERM);
    if (!WaitExited(10'000)) {
      KillProcessTree(pid_, SIGKILL);
      (void)WaitExited(5'000);
    }
  }
  TLOG(Info, "etcd") << "stopped etcd member pid=" << pid_;
  pid_ = 0;
  (void)RemoveAll(pid_file());
}

bool EtcdMember::Running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pid_ > 0 && IsAlive(pid_);
}

pid_t EtcdMember::pid() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pid_;
}

bool EtcdMember::WaitExited(int64_t timeout_ms) const {
  const MonoMs deadline = clock_.Now() + timeout_ms;
  while (true) {
    int st = 0;
    ::waitpid(pid_, &st, WNOHANG);  // reap it (it is our child unless adopted)
    if (!IsAlive(pid_)) return true;
    if (clock_.Now() >= deadline) return false;
    clock_.SleepFor(20);
  }
}

Status EtcdMember::WaitReachable(int64_t timeout_ms) const {
  const MonoMs start = clock_.Now();
  std::string last;
  while (clock_.Now() - start < timeout_ms) {
    if (!Running()) {
      return Error(ErrorCode::kUnavailable,
                   "etcd exited during start-up; see " + cfg_.log_dir() + "/etcd.log");
    }
    auto r = net::HttpCall("GET", cfg_.etcd_client_url() + "/version", "", 1000);
    if (r && r->status == 200) return Ok();
    if (!r) last = r.error().message();
    clock_.SleepFor(100);
  }
  return Error(ErrorCode::kTimeout, "etcd did not answer on " + cfg_.etcd_client_url() +
                                        " within " + std::to_string(timeout_ms / 1000) + " s (" +
                                        last + "); see " + cfg_.log_dir() + "/etcd.log");
}

}  // namespace tandem::agent
