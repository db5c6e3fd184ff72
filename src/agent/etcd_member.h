// Supervision of the node's embedded etcd member (a child process): its
// flags (each one's reason is beside it in etcd_member.cc and in
// docs/design/etcd-member.md), start, adoption after an agent restart, stop,
// its pid file and its copies of the TLS files. Questions to the running
// member (who leads, move the leadership) go through the store client
// (dcs::Dcs::FirstMemberStatus / MoveLeader) on its pooled connection.
//
// Time: every time read and wait goes through the Clock given to the
// constructor. Thread-safe (one mutex around the child's pid).
#pragma once

#include <sys/types.h>

#include <mutex>
#include <string>
#include <vector>

#include "agent/config.h"
#include "base/clock.h"
#include "base/result.h"

namespace tandem::agent {

// The managed etcd's election timeout for a lease TTL (ttl / 4, 500 ms to
// 1 s) and its heartbeat interval (a fifth of it, the fewest etcd allows):
// etcd's shortest lease is 1.5 election timeouts.
int64_t EtcdElectionMs(int64_t ttl_ms);
int64_t EtcdHeartbeatMs(int64_t ttl_ms);

// The command line of the member (without the TLS flags): every flag but the
// names, URLs, TLS and log level is documented in docs/design/etcd-member.md.
std::vector<std::string> EtcdFlags(const Config& cfg, const std::string& initial_cluster,
                                   bool new_cluster);

// etcd's TLS flags for a node (none without a tls section): https on both
// ports with the node's server pair (server.crt/server.key/ca.crt in
// tls_dir). Peers verify each other in both modes (etcd cannot do less);
// enforce adds client-certificate authentication on the client port;
// tls.verify_hostname false skips etcd's check of a peer's client SAN.
std::vector<std::string> EtcdTlsFlags(const Config& cfg, const std::string& tls_dir);
// "warn", or "error" with client-certificate authentication (enforce): etcd
// 3.4 then warns on every request through its JSON gateway.
std::string EtcdLogLevel(const Config& cfg);

class EtcdMember {
 public:
  // cfg and clock outlive the member object.
  EtcdMember(const Config& cfg, const Clock& clock) : cfg_(cfg), clock_(clock) {}
  ~EtcdMember() = default;

  // Starts etcd. initial_cluster: "n1=http://a:2380,n2=http://b:2380".
  // new_cluster: bootstrap a new cluster, else join an existing one. When the
  // data directory already holds a member, etcd ignores both and resumes.
  Status Start(const std::string& initial_cluster, bool new_cluster);
  // Resumes the member from its data directory (after an agent restart).
  Status Resume();
  // SIGTERM, then SIGKILL after a grace period. Safe when not running.
  void Stop();
  bool Running() const;
  pid_t pid() const;
  bool HasData() const;
  // Polls /health until etcd answers (healthy or a learner that is syncing).
  Status WaitReachable(int64_t timeout_ms) const;
  std::string pid_file() const { return cfg_.state_dir + "/etcd.pid"; }
  // Rewrites the pid file when it does not name the running member (its
  // write failed, e.g. on a full disk, or someone removed it): a restarted
  // agent adopts the member through it, and operators' tools read it.
  void KeepPidFile();
  // Where etcd's copies of the node's server pair and CA live
  // (<state_dir>/tls/etcd, 0700, owned by the run user; keys 0600).
  std::string tls_dir() const { return cfg_.state_dir + "/tls/etcd"; }
  // A rotation: etcd's copies follow the node's private copies (the server
  // pair and CA; written only when changed). etcd uses a new pair from its
  // next handshake on, a new CA only after it restarts.
  Status RefreshTlsFiles();

 private:
  Status Launch(const std::string& initial_cluster, bool new_cluster);
  Status InstallTlsFiles() const;
  // Polls (on clock_) until pid_ has exited or timeout_ms passed; reaps it.
  bool WaitExited(int64_t timeout_ms) const;

  const Config& cfg_;
  const Clock& clock_;
  mutable std::mutex mu_;
  pid_t pid_ = 0;
  bool pid_file_failed_ = false;  // warned once until a write succeeds
  // The pid file's stat (inode, size, mtime) when it last named pid_ ("" =
  // read it again).
  std::string pid_file_signature_;
  std::string initial_cluster_;
};

}  // namespace tandem::agent
