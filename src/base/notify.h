// systemd's readiness protocol without libsystemd: a service of Type=notify
// is "started" when it sends "READY=1" in a datagram to the unix socket named
// by $NOTIFY_SOCKET (a path, or an abstract name written with a leading '@'),
// and says "STOPPING=1" when it begins to stop (sd_notify(3)).
//
// Thread safety: TakeNotifySocket reads and clears the environment, so it
// must run before the process starts threads or children; Notify may be
// called from any thread.
#pragma once

#include <string>

#include "base/result.h"

namespace tandem {

// $NOTIFY_SOCKET ("" when unset), removed from the environment so children
// (PostgreSQL, built with systemd support, and etcd) never notify in the
// agent's name.
std::string TakeNotifySocket();

// Sends `state` (e.g. "READY=1") as one datagram to `socket` (a path or
// "@abstract"). Ok and nothing sent for an empty socket; kIo when the socket
// cannot be reached (the message names it and errno).
Status Notify(const std::string& socket, const std::string& state);

}  // namespace tandem
