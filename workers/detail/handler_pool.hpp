#pragma once
// Threads that run handlers; finished outcomes are collected for the
// coordinator, which is woken through an eventfd.

#include "common/store.hpp"
#include "workers/handler.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace jobs::detail {

struct finished_job {
  claimed_job job;
  handler_result outcome;
  std::chrono::steady_clock::duration took{};
};

class handler_pool {
 public:
  handler_pool(int threads, const handler_registry& handlers);
  ~handler_pool();  ///< finishes queued jobs, joins

  void submit(claimed_job j);
  /// Moves finished jobs into `out`.
  void take_finished(std::vector<finished_job>& out);
  /// Readable while finished jobs wait.
  int wake_fd() const { return wake_fd_; }

 private:
  void run();
  handler_result execute(const claimed_job& j);

  const handler_registry& handlers_;
  int wake_fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<claimed_job> queue_;
  std::vector<finished_job> finished_;
  bool stopping_ = false;
  std::atomic<bool> cancel_{false};
  std::vector<std::thread> threads_;
};

}  // namespace jobs::detail
