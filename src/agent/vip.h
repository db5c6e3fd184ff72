// The floating IP on this node's interface (docs/design/vip.md).
//
// The address is added and removed with rtnetlink (RTM_NEWADDR/RTM_DELADDR)
// and announced with gratuitous ARP from the interface's MAC, so the
// neighbours' ARP caches point at the new primary at once instead of when
// their entry goes stale. Both need CAP_NET_ADMIN / CAP_NET_RAW (root).
//
// The free functions are safe in a process forked from the agent (the fence
// guard uses DeleteVip): no threads, no global state.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/config.h"
#include "base/clock.h"
#include "base/result.h"

namespace tandem::agent {

// Adds the address. Ok when it was added or already there (*added says
// which, when given). kFailedPrecondition when the capability is missing.
Status AddVip(const VipConfig& vip, bool* added = nullptr);
// Removes the address. Ok when it was removed or was not there.
Status DeleteVip(const VipConfig& vip);
// Whether the address is on the interface now.
Result<bool> HasVip(const VipConfig& vip);
// One gratuitous ARP request and one reply (sender = target = the address,
// from the interface's MAC, to the broadcast address). Never blocks.
Status AnnounceVip(const VipConfig& vip);

// The agent's floating IP. Thread-safe: the HA loop acquires and releases it,
// the fence thread releases it.
class FloatingIp {
 public:
  // `clock` times the announcements; it must outlive this object.
  FloatingIp(VipConfig vip, const Clock& clock);
  ~FloatingIp();  // stops the announcer; leaves the address as it is
  FloatingIp(const FloatingIp&) = delete;
  FloatingIp& operator=(const FloatingIp&) = delete;

  const VipConfig& config() const { return vip_; }

  // Adds the address, if `allowed()` (evaluated under the lock, so a release
  // by the fence thread cannot be overtaken by a stale acquire) still says
  // so. Called every cycle while this node should hold it: an address someone
  // removed is put back. When it was added, it is announced now and again at
  // 0.5, 1 and 2 s (by a thread, never blocking the caller).
  Status Acquire(const std::function<bool()>& allowed);
  // Removes the address when this node holds it (or `force`: at start-up, a
  // crash's leftover). `why` goes to the log.
  Status Release(const std::string& why, bool force = false);

  bool held() const;
  // The last error (missing capability, interface gone), "" when the last
  // operation worked. An error is logged once, not every cycle.
  std::string error() const;

 private:
  void AnnouncerMain();
  void SetError(const std::string& e);  // under mu_

  const VipConfig vip_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  std::string error_;
  std::vector<MonoMs> announce_at_;  // pending gratuitous ARPs, soonest last
  bool stop_ = false;
  std::thread announcer_;
};

}  // namespace tandem::agent
