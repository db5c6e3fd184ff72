// Time as an input. Core code never reads a clock: it gets `now` in its
// Observation. Everything else reads time and waits through a Clock that is
// passed in (never SystemClock::Get() outside src/base and main), so a test
// can run whole components on a ManualClock it advances by hand.
//
// Waiting is part of the clock: a thread that waits for a deadline, or for a
// deadline or a notification, calls Clock::SleepFor / Clock::WaitUntil (or
// uses an Event). On a ManualClock those waits end when the test advances the
// clock past the deadline, never because real time passed.
//
// Thread safety: every method of both clocks may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>

namespace tandem {

// Milliseconds on a monotonic clock (never jumps, meaningless across hosts).
using MonoMs = int64_t;
// Milliseconds since the Unix epoch (wall clock; for display, history and
// certificate validity only).
using WallMs = int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoMs Now() const = 0;
  virtual WallMs WallNow() const = 0;
  // Wall time in whole seconds since the epoch (certificate judgements).
  int64_t WallSeconds() const { return WallNow() / 1000; }

  // Blocks the calling thread until Now() >= Now()+ms.
  virtual void SleepFor(MonoMs ms) const = 0;
  // Waits on `cv` (whose mutex `lk` holds) until `done()` is true or Now()
  // reaches `deadline`. Returns done()'s last value. `done` is evaluated with
  // the lock held. Whoever makes done() true must notify `cv` after changing
  // the state under the same mutex.
  virtual bool WaitUntil(std::unique_lock<std::mutex>& lk, std::condition_variable& cv,
                         MonoMs deadline, const std::function<bool()>& done) const = 0;
};

// The real clocks (steady_clock / system_clock).
class SystemClock final : public Clock {
 public:
  MonoMs Now() const override;
  WallMs WallNow() const override;
  void SleepFor(MonoMs ms) const override;
  bool WaitUntil(std::unique_lock<std::mutex>& lk, std::condition_variable& cv, MonoMs deadline,
                 const std::function<bool()>& done) const override;
  // The process's one real clock; only main() and src/base take it from here.
  static const SystemClock& Get();
};

// A clock tests advance by hand. Waits in other threads end when Advance()
// moves Now() past their deadline (Advance notifies every waiter).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(MonoMs start = 1'000'000, WallMs wall_start = 1'700'000'000'000)
      : now_(start), wall_offset_(wall_start - start) {}
  MonoMs Now() const override { return now_.load(); }
  WallMs WallNow() const override { return now_.load() + wall_offset_.load(); }
  void SleepFor(MonoMs ms) const override;
  bool WaitUntil(std::unique_lock<std::mutex>& lk, std::condition_variable& cv, MonoMs deadline,
                 const std::function<bool()>& done) const override;

  // Moves both clocks forward by ms (>= 0) and wakes every waiter.
  void Advance(MonoMs ms);
  // Sets the wall clock (the monotonic one does not move): a wall-clock jump.
  void SetWall(WallMs wall);
  // How many threads are blocked in SleepFor/WaitUntil right now. A thread
  // Advance() just woke still counts until it runs.
  int Waiters() const;
  // Waiters that are parked for good until the clock moves: their deadline is
  // ahead and their predicate is false (checked under their mutex when it is
  // free; a busy mutex counts as not idle). A test advances the clock once
  // every thread it drives is idle, so "all parked" is told from "about to act".
  int IdleWaiters() const;

 private:
  struct Waiter {
    std::mutex* mu;
    std::condition_variable* cv;
    MonoMs deadline;
    const std::function<bool()>* done;
  };
  std::atomic<MonoMs> now_;
  std::atomic<int64_t> wall_offset_;
  mutable std::mutex waiters_mu_;
  mutable std::list<Waiter> waiters_;
  // SleepFor's own wait.
  mutable std::mutex sleep_mu_;
  mutable std::condition_variable sleep_cv_;
};

// A one-shot wake-up flag with a timed wait on a Clock: a loop waits for its
// next tick or for somebody's Notify, whichever comes first.
class Event {
 public:
  explicit Event(const Clock& clock) : clock_(clock) {}
  // Sets the flag and wakes a waiter.
  void Notify();
  // Clears the flag: a Notify before this call no longer ends a wait.
  void Reset();
  // Waits until notified or Now() >= deadline. Returns true (and clears the
  // flag) when notified.
  bool WaitUntil(MonoMs deadline);
  bool WaitFor(MonoMs ms) { return WaitUntil(clock_.Now() + ms); }

 private:
  const Clock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool set_ = false;
};

}  // namespace tandem
