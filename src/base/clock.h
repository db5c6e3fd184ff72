// Time as an input. Core code never reads a clock: it gets `now` in its
// Observation. Everything else reads time through a Clock so tests can
// substitute a ManualClock.
#pragma once

#include <cstdint>

namespace tandem {

// Milliseconds on a monotonic clock (never jumps, meaningless across hosts).
using MonoMs = int64_t;
// Milliseconds since the Unix epoch (wall clock; for display and history only).
using WallMs = int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoMs Now() const = 0;
  virtual WallMs WallNow() const = 0;
};

// The real clocks (steady_clock / system_clock).
class SystemClock final : public Clock {
 public:
  MonoMs Now() const override;
  WallMs WallNow() const override;
  static const SystemClock& Get();
};

// A clock tests advance by hand.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(MonoMs start = 1'000'000) : now_(start) {}
  MonoMs Now() const override { return now_; }
  WallMs WallNow() const override { return 1'700'000'000'000 + now_; }
  void Advance(MonoMs ms) { now_ += ms; }

 private:
  MonoMs now_;
};

}  // namespace tandem
