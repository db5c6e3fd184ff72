// ExitNotifier: tells, on a thread of its own, when one watched process exits,
// with no timer and no polling: the thread blocks in poll() on the process's
// pidfd and an eventfd that Watch() and the destructor signal.
//
// The thread starts on the first Watch() of a pid > 0 (so an owner that never
// watches a real process, such as an agent on a fake PostgreSQL in tests, runs
// no extra thread). Without pidfd support (Linux < 5.3) Supported() is false
// and nothing is watched: the owner must poll instead.
// Thread safety: Watch() may be called from any thread; on_exit runs on the
// notifier's thread, must be quick and must not call Watch() or destroy it.
#pragma once

#include <sys/types.h>

#include <functional>
#include <mutex>
#include <thread>

namespace tandem {

class ExitNotifier {
 public:
  explicit ExitNotifier(std::function<void(pid_t)> on_exit);
  ~ExitNotifier();  // stops and joins the thread
  ExitNotifier(const ExitNotifier&) = delete;
  ExitNotifier& operator=(const ExitNotifier&) = delete;

  // Whether this kernel has pidfds (checked once per process).
  static bool Supported();
  // Watches pid instead of the previous one (0: none). on_exit(pid) is called
  // once when that process has exited (also when it already had), unless
  // another Watch() replaced it first.
  void Watch(pid_t pid);

 private:
  void Main();

  std::function<void(pid_t)> on_exit_;
  std::mutex mu_;
  pid_t pid_ = 0;               // guarded by mu_
  unsigned long long gen_ = 0;  // bumped by every Watch(), guarded by mu_
  bool stop_ = false;           // guarded by mu_
  int wake_fd_ = -1;            // an eventfd
  std::thread thread_;
};

}  // namespace tandem
