// The real clock and the test clock (see clock.h).
#include "base/clock.h"

#include <chrono>
#include <thread>

namespace tandem {

MonoMs SystemClock::Now() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

WallMs SystemClock::WallNow() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void SystemClock::SleepFor(MonoMs ms) const {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

bool SystemClock::WaitUntil(std::unique_lock<std::mutex>& lk, std::condition_variable& cv,
                            MonoMs deadline, const std::function<bool()>& done) const {
  // Now() is steady_clock in milliseconds, so the deadline maps back exactly.
  auto at = std::chrono::steady_clock::time_point(std::chrono::milliseconds(deadline));
  return cv.wait_until(lk, at, done);
}

const SystemClock& SystemClock::Get() {
  static const SystemClock clock;
  return clock;
}

void ManualClock::SleepFor(MonoMs ms) const {
  std::unique_lock<std::mutex> lk(sleep_mu_);
  MonoMs deadline = Now() + ms;
  WaitUntil(lk, sleep_cv_, deadline, [] { return false; });
}

bool ManualClock::WaitUntil(std::unique_lock<std::mutex>& lk, std::condition_variable& cv,
                            MonoMs deadline, const std::function<bool()>& done) const {
  // Lock order: waiters_mu_ before a waiter's mutex (Advance). So the
  // waiter's mutex is released while this thread registers and unregisters.
  std::list<Waiter>::iterator me;
  lk.unlock();
  {
    std::lock_guard<std::mutex> g(waiters_mu_);
    me = waiters_.insert(waiters_.end(), Waiter{lk.mutex(), &cv, deadline, &done});
  }
  lk.lock();
  bool result = false;
  for (;;) {
    if (done()) {
      result = true;
      break;
    }
    if (Now() >= deadline) break;
    // Advance() moves the time first, then takes our mutex to notify: a tick
    // between the checks above and this wait cannot be lost.
    cv.wait(lk);
  }
  lk.unlock();
  {
    std::lock_guard<std::mutex> g(waiters_mu_);
    waiters_.erase(me);
  }
  lk.lock();
  return result;
}

void ManualClock::Advance(MonoMs ms) {
  now_ += ms;
  std::lock_guard<std::mutex> g(waiters_mu_);
  for (const Waiter& w : waiters_) {
    // Lock the waiter's mutex: it is either before its checks (it will see the
    // new time) or inside cv.wait (it gets the notification).
    std::lock_guard<std::mutex> wl(*w.mu);
    w.cv->notify_all();
  }
}

void ManualClock::SetWall(WallMs wall) {
  wall_offset_ = wall - now_.load();
}

int ManualClock::Waiters() const {
  std::lock_guard<std::mutex> g(waiters_mu_);
  return static_cast<int>(waiters_.size());
}

int ManualClock::IdleWaiters() const {
  std::lock_guard<std::mutex> g(waiters_mu_);
  const MonoMs now = Now();
  int idle = 0;
  for (const Waiter& w : waiters_) {
    if (w.deadline <= now) continue;
    // try_lock: the waiter's mutex may be held by a thread about to register
    // (it takes waiters_mu_ after releasing it): never wait for it here.
    std::unique_lock<std::mutex> wl(*w.mu, std::try_to_lock);
    if (!wl.owns_lock()) continue;
    if (!(*w.done)()) ++idle;
  }
  return idle;
}

void Event::Notify() {
  {
    std::lock_guard<std::mutex> g(mu_);
    set_ = true;
  }
  cv_.notify_all();
}

void Event::Reset() {
  std::lock_guard<std::mutex> g(mu_);
  set_ = false;
}

bool Event::WaitUntil(MonoMs deadline) {
  std::unique_lock<std::mutex> lk(mu_);
  bool notified = clock_.WaitUntil(lk, cv_, deadline, [this] { return set_; });
  set_ = false;
  return notified;
}

}  // namespace tandem
