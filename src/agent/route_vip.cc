// Route and floating-IP publishing: the client endpoint's route handed to
// the sink (the proxy) and the floating IP acquired and released.
//
// Threads: PublishRoute/PublishNoRoute and the VIP calls run on the HA loop;
// ExtendSelfRoute on the lease thread; VipAllowed also on the fence thread.
// Touches: route_mu_ (last_route_, last_route_at_; never held across I/O),
// mu_ (vip_reason_), vip_ (thread-safe).
#include <algorithm>
#include <map>

#include "agent/agent.h"
#include "base/clock.h"
#include "core/route.h"
#include "core/vip.h"

namespace tandem::agent {

void Agent::PublishRoute(const core::Observation& obs, const core::Decision& d,
                         const ClusterView& view) {
  std::map<std::string, core::Endpoint> addresses;
  for (const auto& [name, n] : view.nodes) addresses[name] = core::Endpoint{n.host, n.pg_port};
  core::RouteConfig rc;
  rc.read_only_max_lag_bytes = cfg_.proxy_read_only_max_lag_bytes;
  rc.read_only_fallback_to_primary = cfg_.proxy_read_only_fallback_to_primary;
  // A route lives one lease TTL without renewal: past it, a new primary may
  // have been elected without this node having seen it.
  rc.validity_ms = cfg_.ha.ttl_ms;
  std::lock_guard<std::mutex> lock(route_mu_);
  last_route_ = core::RouteForCycle(last_route_, obs, d, addresses, rc);
  last_route_at_ = obs.now;
  if (route_sink_) route_sink_(last_route_);
}

void Agent::ExtendSelfRoute(MonoMs lease_deadline) {
  std::lock_guard<std::mutex> lock(route_mu_);
  const auto& rw = last_route_.read_write;
  if (!rw || rw->member != cfg_.node_name) return;
  const MonoMs now = clock_.Now();
  if (now >= last_route_.valid_until) return;  // expired: only the loop may route again
  const MonoMs until = std::min<MonoMs>(lease_deadline, last_route_at_ + cfg_.ha.ttl_ms);
  if (until <= last_route_.valid_until) return;
  last_route_.valid_until = until;
  if (route_sink_) route_sink_(last_route_);
}

void Agent::PublishNoRoute(const std::string& reason) {
  core::Route none;
  none.reason = reason;
  std::lock_guard<std::mutex> lock(route_mu_);
  last_route_ = none;
  if (route_sink_) route_sink_(none);
}

bool Agent::VipAllowed() const {
  return lease_.load() != 0 && clock_.Now() < lease_deadline_.load() && loop_running_ && !stopping_;
}

void Agent::ReleaseVipIfNeeded(const core::Observation& obs, const core::Decision& d) {
  if (!vip_) return;
  const core::VipDecision vd = core::DecideVip(obs, d, vip_->held());
  {
    std::lock_guard<std::mutex> lock(mu_);
    vip_reason_ = vd.reason;
  }
  if (!vd.hold) (void)vip_->Release(vd.reason);  // errors are logged once and shown in status
}

void Agent::AcquireVipIfNeeded(const core::Observation& obs, const core::Decision& d) {
  if (!vip_) return;
  const core::VipDecision vd = core::DecideVip(obs, d, vip_->held());
  if (vd.hold) (void)vip_->Acquire([this] { return VipAllowed(); });
}

}  // namespace tandem::agent
