// The API server's worker pool (http_server.cc's): a fixed number of threads
// and a bounded queue, so a flood of requests is refused (TrySubmit returns
// false and the caller answers 503) instead of queued without end. Idle
// workers wait on a condition variable: no wake-up while nothing is queued.
//
// Thread safety: TrySubmit from any thread; Start and Stop from the owner.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "base/thread_name.h"

namespace tandem::api {

class WorkerPool {
 public:
  WorkerPool(size_t threads, size_t queue) : threads_(threads), queue_limit_(queue) {}
  ~WorkerPool() { Stop(); }

  void Start() {
    for (size_t i = 0; i < threads_; ++i) running_.emplace_back([this] { Run(); });
  }
  // Queues a task; false when the queue is full or the pool stopped.
  bool TrySubmit(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || tasks_.size() >= queue_limit_) return false;
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
    return true;
  }
  // Drops what is queued, lets running tasks finish, joins.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      tasks_.clear();
    }
    cv_.notify_all();
    for (auto& t : running_) {
      if (t.joinable()) t.join();
    }
    running_.clear();
  }

 private:
  void Run() {
    NameThisThread("api-worker");
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        // A plain condition-variable wait: no deadline, so no clock.
        cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
        if (stopping_) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  const size_t threads_;
  const size_t queue_limit_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> running_;
};

}  // namespace tandem::api
