// systemd's service protocol without libsystemd (sd_notify(3)): a service of
// Type=notify is "started" when it sends "READY=1" in a datagram to the unix
// socket named by $NOTIFY_SOCKET (a path, or an abstract name written with a
// leading '@'), says "STOPPING=1" when it begins to stop, "STATUS=..." for the
// line `systemctl status` shows, and, with WatchdogSec= set ($WATCHDOG_USEC),
// "WATCHDOG=1" at least once per watchdog interval or it is killed.
//
// ServiceNotifier keeps the watchdog and the status line for `tandem agent`:
// the HA loop reports each completed cycle (CycleDone) and its end
// (LoopStopped); the main thread ticks once a second (Tick) and keeps the
// watchdog fed only while no loop runs (not a member yet, joining, removed)
// or a declared long action (LongAction: pg_rewind, pg_basebackup) is under
// way. So a loop stuck anywhere else stops the pings and systemd restarts the
// agent. Times are passed in (the caller's Clock), never read here.
//
// Thread safety: TakeNotifySocket and TakeWatchdogMs read and clear the
// environment, so they run before the process starts threads or children;
// Notify and every ServiceNotifier method may be called from any thread.
#pragma once

#include <atomic>
#include <mutex>
#include <string>

#include "base/clock.h"
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

// The watchdog interval systemd asks for, in ms: $WATCHDOG_USEC / 1000, 0
// when unset, unparsable, or meant for another process ($WATCHDOG_PID set
// and not ours). Both variables are removed from the environment.
int64_t TakeWatchdogMs();

class ServiceNotifier {
 public:
  // The one of this process (systemd gives a service's main process one
  // socket). Unconfigured, every method only records and sends nothing.
  static ServiceNotifier& Process();

  // socket: TakeNotifySocket(); watchdog_ms: TakeWatchdogMs() (0 = off).
  void Configure(const std::string& socket, int64_t watchdog_ms);

  // The HA loop after each completed cycle: "WATCHDOG=1" when at least a
  // quarter of the watchdog interval passed since the last one sent (the
  // loop runs every 250 ms; systemd needs far fewer), and "STATUS=<status>"
  // when it differs from the last status sent.
  void CycleDone(MonoMs now, const std::string& status);
  // The HA loop has ended (the node left, or the agent stops): the main
  // thread's Tick feeds the watchdog from now on; status is sent.
  void LoopStopped(const std::string& status);
  // The main thread, about once a second: "WATCHDOG=1" (same rate limit)
  // while no loop runs or a LongAction is alive; nothing otherwise.
  void Tick(MonoMs now);
  // "STATUS=<status>" when it differs from the last one sent.
  void SetStatus(const std::string& status);
  // Sends `state` as is (READY=1, STOPPING=1); a failure is logged once.
  void Send(const std::string& state);
  // Puts $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID back into the
  // environment, for this process's next image (base/reexec.h): the same
  // pid keeps talking to systemd. Nothing when unconfigured.
  void ExportForExec();

  // While alive, a step of the loop that may take longer than the watchdog
  // interval (a whole-database copy) is not taken for a stuck loop: Tick
  // feeds the watchdog. status is shown meanwhile.
  class LongAction {
   public:
    LongAction(ServiceNotifier& n, const std::string& status);
    ~LongAction();
    LongAction(const LongAction&) = delete;
    LongAction& operator=(const LongAction&) = delete;

   private:
    ServiceNotifier& n_;
  };

  // For tests: what Tick and CycleDone look at.
  bool loop_running() const { return loop_running_; }
  int long_actions() const { return long_actions_; }

 private:
  void PingIfDue(MonoMs now);
  void SendLocked(const std::string& state);

  std::mutex mu_;
  std::string socket_;
  int64_t watchdog_ms_ = 0;
  MonoMs last_ping_ = 0;
  bool pinged_ = false;
  std::string status_;
  bool send_failed_ = false;
  std::atomic<bool> loop_running_{false};
  std::atomic<int> long_actions_{0};
};

}  // namespace tandem
