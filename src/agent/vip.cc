// The floating IP: the rtnetlink calls that add, delete and look up the
// address, the gratuitous ARP, and FloatingIp, which holds it for the agent.
// Acquire/Release run on the HA loop's thread; the announcer thread (started
// by the first Acquire) sends the ARP bursts on the injected clock; both under
// mu_. The free functions keep no state and are safe in the fence guard.
#include "agent/vip.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/log.h"

namespace tandem::agent {
namespace {

// Closes a descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

Error SysError(const VipConfig& vip, const std::string& what, int err) {
  if (err == EPERM || err == EACCES) {
    return Error(ErrorCode::kFailedPrecondition,
                 what + " " + vip.cidr() + " on " + vip.interface + ": " + std::strerror(err) +
                     " (the floating IP needs CAP_NET_ADMIN and CAP_NET_RAW: run the agent as "
                     "root or grant them, e.g. AmbientCapabilities= in its systemd unit)");
  }
  if (err == ENODEV) {
    return Error(ErrorCode::kFailedPrecondition, what + " " + vip.cidr() + ": the interface " +
                                                     vip.interface +
                                                     " does not exist (any more); fix "
                                                     "vip.interface");
  }
  return Error(ErrorCode::kIo,
               what + " " + vip.cidr() + " on " + vip.interface + ": " + std::strerror(err));
}

// RTM_NEWADDR / RTM_DELADDR for the address; returns 0 or the kernel's errno.
int AddressRequest(const VipConfig& vip, uint16_t type, uint16_t flags, int* sys_err) {
  *sys_err = 0;
  const unsigned index = ::if_nametoindex(vip.interface.c_str());
  if (index == 0) return ENODEV;
  struct in_addr a4;
  if (inet_pton(AF_INET, vip.address.c_str(), &a4) != 1) return EINVAL;

  struct {
    struct nlmsghdr nh;
    struct ifaddrmsg ifa;
    char attrs[64];
  } req;
  std::memset(&req, 0, sizeof req);
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
  req.nh.nlmsg_type = type;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  req.nh.nlmsg_seq = 1;
  req.ifa.ifa_family = AF_INET;
  req.ifa.ifa_prefixlen = static_cast<unsigned char>(vip.prefix_len);
  req.ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  req.ifa.ifa_index = index;
  auto add_attr = [&](uint16_t t, const void* data, size_t len) {
    auto* rta = reinterpret_cast<struct rtattr*>(reinterpret_cast<char*>(&req) +
                                                 NLMSG_ALIGN(req.nh.nlmsg_len));
    rta->rta_type = t;
    rta->rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
    std::memcpy(RTA_DATA(rta), data, len);
    req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
  };
  add_attr(IFA_LOCAL, &a4, sizeof a4);
  add_attr(IFA_ADDRESS, &a4, sizeof a4);

  Fd s(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (s.fd < 0) return *sys_err = errno;
  struct timeval tv {
    1, 0
  };
  ::setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_nl kernel;
  std::memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  if (::sendto(s.fd, &req, req.nh.nlmsg_len, 0, reinterpret_cast<struct sockaddr*>(&kernel),
               sizeof kernel) < 0) {
    return *sys_err = errno;
  }
  char buf[4096];
  while (true) {
    const ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return *sys_err = errno;
    }
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<struct nlmsghdr*>(buf); NLMSG_OK(h, len);
         h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<struct nlmsgerr*>(NLMSG_DATA(h));
        return -e->error;  // 0 = acknowledged
      }
    }
  }
}

}  // namespace

Status AddVip(const VipConfig& vip, bool* added) {
  if (added != nullptr) *added = false;
  int sys = 0;
  const int err = AddressRequest(vip, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &sys);
  if (err == EEXIST) return Ok();
  if (err != 0) return SysError(vip, "adding the floating IP", err);
  if (added != nullptr) *added = true;
  return Ok();
}

Status DeleteVip(const VipConfig& vip) {
  int sys = 0;
  const int err = AddressRequest(vip, RTM_DELADDR, 0, &sys);
  if (err == 0 || err == EADDRNOTAVAIL || err == ESRCH) return Ok();
  return SysError(vip, "removing the floating IP", err);
}

Result<bool> HasVip(const VipConfig& vip) {
  struct ifaddrs* addrs = nullptr;
  if (getifaddrs(&addrs) != 0) {
    return Error(ErrorCode::kIo, std::string("getifaddrs: ") + std::strerror(errno));
  }
  bool found = false;
  for (auto* a = addrs; a != nullptr && !found; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    if (vip.interface != a->ifa_name) continue;
    char buf[INET_ADDRSTRLEN];
    auto* sin = reinterpret_cast<struct sockaddr_in*>(a->ifa_addr);
    found = inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf) != nullptr && vip.address == buf;
  }
  freeifaddrs(addrs);
  return found;
}

Status AnnounceVip(const VipConfig& vip) {
  const unsigned index = ::if_nametoindex(vip.interface.c_str());
  if (index == 0) return SysError(vip, "announcing the floating IP", ENODEV);
  struct in_addr a4;
  if (inet_pton(AF_INET, vip.address.c_str(), &a4) != 1) {
    return Error(ErrorCode::kInvalidArgument, "not an IPv4 address: " + vip.address);
  }
  // The interface's MAC.
  unsigned char mac[ETH_ALEN];
  {
    Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (s.fd < 0) return SysError(vip, "announcing the floating IP", errno);
    struct ifreq ifr;
    std::memset(&ifr, 0, sizeof ifr);
    std::strncpy(ifr.ifr_name, vip.interface.c_str(), IFNAMSIZ - 1);
    if (::ioctl(s.fd, SIOCGIFHWADDR, &ifr) != 0) {
      return SysError(vip, "reading the MAC address for", errno);
    }
    std::memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
  }
  Fd s(::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ARP)));
  if (s.fd < 0) return SysError(vip, "announcing the floating IP", errno);
  struct sockaddr_ll to;
  std::memset(&to, 0, sizeof to);
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_ARP);
  to.sll_ifindex = static_cast<int>(index);
  to.sll_halen = ETH_ALEN;
  std::memset(to.sll_addr, 0xff, ETH_ALEN);
  // A request and a reply, sender = target = the address: some hosts
  // (and older kernels) take only one kind as a cache update.
  for (uint16_t op : {ARPOP_REQUEST, ARPOP_REPLY}) {
    unsigned char pkt[28];
    pkt[0] = 0;
    pkt[1] = ARPHRD_ETHER;
    pkt[2] = ETH_P_IP >> 8;
    pkt[3] = ETH_P_IP & 0xff;
    pkt[4] = ETH_ALEN;
    pkt[5] = 4;
    pkt[6] = static_cast<unsigned char>(op >> 8);
    pkt[7] = static_cast<unsigned char>(op & 0xff);
    std::memcpy(pkt + 8, mac, ETH_ALEN);
    std::memcpy(pkt + 14, &a4, 4);
    if (op == ARPOP_REQUEST) {
      std::memset(pkt + 18, 0, ETH_ALEN);
    } else {
      std::memset(pkt + 18, 0xff, ETH_ALEN);
    }
    std::memcpy(pkt + 24, &a4, 4);
    if (::sendto(s.fd, pkt, sizeof pkt, 0, reinterpret_cast<struct sockaddr*>(&to), sizeof to) <
        0) {
      return SysError(vip, "announcing (gratuitous ARP) the floating IP", errno);
    }
  }
  return Ok();
}

// ------------------------------------------------------------- FloatingIp

FloatingIp::FloatingIp(VipConfig vip, const Clock& clock) : vip_(std::move(vip)), clock_(clock) {}

FloatingIp::~FloatingIp() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (announcer_.joinable()) announcer_.join();
}

void FloatingIp::SetError(const std::string& e) {
  if (e == error_) return;
  if (!e.empty()) {
    TLOG(Error, "vip") << e;
  } else if (!error_.empty()) {
    TLOG(Info, "vip") << "the floating IP works again";
  }
  error_ = e;
}

Status FloatingIp::Acquire(const std::function<bool()>& allowed) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!allowed()) return Ok();
  bool added = false;
  auto st = AddVip(vip_, &added);
  if (!st.ok()) {
    SetError(st.error().message());
    return st;
  }
  SetError("");
  if (added || !held_) {
    TLOG(Info, "vip") << (added ? "added" : "holding") << " the floating IP " << vip_.cidr()
                      << " on " << vip_.interface << "; announcing it (gratuitous ARP)";
    const MonoMs now = clock_.Now();
    announce_at_ = {now + 2'000, now + 1'000, now + 500, now};
    if (!announcer_.joinable()) announcer_ = std::thread([this] { AnnouncerMain(); });
    cv_.notify_all();
  }
  held_ = true;
  return Ok();
}

Status FloatingIp::Release(const std::string& why, bool force) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!held_ && !force) return Ok();
  announce_at_.clear();
  auto st = DeleteVip(vip_);
  if (!st.ok()) {
    SetError(st.error().message());
    return st;
  }
  if (held_) TLOG(Warn, "vip") << "removed the floating IP " << vip_.cidr() << ": " << why;
  held_ = false;
  SetError("");
  return Ok();
}

bool FloatingIp::held() const {
  std::lock_guard<std::mutex> lock(mu_);
  return held_;
}

std::string FloatingIp::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void FloatingIp::AnnouncerMain() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (announce_at_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const MonoMs at = announce_at_.back();
    if (clock_.Now() < at) {
      // Ends at `at`, or earlier when the list or stop_ changed (notified).
      const auto pending = announce_at_;
      clock_.WaitUntil(lock, cv_, at, [&] { return stop_ || announce_at_ != pending; });
      continue;
    }
    announce_at_.pop_back();
    if (!held_) continue;
    auto st = AnnounceVip(vip_);  // non-blocking socket: fine under the lock
    if (!st.ok()) SetError(st.error().message());
  }
}

}  // namespace tandem::agent
