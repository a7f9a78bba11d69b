#pragma once
// Threads that run handlers; finished outcomes are collected for the
// coordinator, which is woken through an eventfd. Each job comes with its
// own stop flag, which the coordinator sets to cancel it, time it out or
// stop it on shutdown; its handler sees it as ctx.stop_requested().

#include "common/store.hpp"
#include "workers/handler.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace jobs::detail {

struct finished_job {
  claimed_job job;
  handler_result outcome;
  std::chrono::steady_clock::duration took{};
  std::vector<commit_hook> hooks;  ///< for a success: run in the outcome's transaction
};

using stop_flag = std::shared_ptr<std::atomic<bool>>;

class handler_pool {
 public:
  handler_pool(int threads, const handler_registry& handlers);
  ~handler_pool();  ///< finishes queued jobs, joins

  void submit(claimed_job j, stop_flag stop);
  /// Moves finished jobs into `out`.
  void take_finished(std::vector<finished_job>& out);
  /// Readable while finished jobs wait.
  int wake_fd() const { return wake_fd_; }

 private:
  void run();
  handler_result execute(const claimed_job& j, const std::atomic<bool>& stop,
                         std::vector<commit_hook>& hooks);

  const handler_registry& handlers_;
  int wake_fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<claimed_job, stop_flag>> queue_;
  std::vector<finished_job> finished_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace jobs::detail
