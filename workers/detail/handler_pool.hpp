#pragma once
// Threads that run handlers; finished outcomes are collected for the
// coordinator, which is woken through an eventfd. Each job comes with its
// own stop flag, which the coordinator sets to cancel it, time it out or
// stop it on shutdown; its handler sees it as ctx.stop_requested().
//
// An async handler is started on a handler thread, which is free again as
// soon as the handler returns; its completion, called later from any
// thread, delivers the outcome the same way. The finished list outlives the
// pool while completions may still hold it, so a late completion after the
// pool is gone is harmless.

#include "common/store.hpp"
#include "workers/handler.hpp"

#include <atomic>
#include <chrono>
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

/// Finished jobs waiting for the coordinator; wake_fd is readable meanwhile.
class finished_list {
 public:
  finished_list();
  ~finished_list();
  void push(finished_job f);
  void take(std::vector<finished_job>& out);
  int wake_fd() const { return wake_fd_; }

 private:
  int wake_fd_;
  std::mutex mu_;
  std::vector<finished_job> jobs_;  ///< the eventfd is written when this stops being empty
};

class handler_pool {
 public:
  handler_pool(int threads, const handler_registry& handlers);
  ~handler_pool();  ///< finishes queued jobs, joins

  using queued_job = std::pair<claimed_job, stop_flag>;
  void submit(claimed_job j, stop_flag stop);
  /// A round's claimed jobs at once: the queue is locked once, and the
  /// threads are woken after it is unlocked, so that they do not contend
  /// with the coordinator for it job after job.
  void submit(std::vector<queued_job> jobs);
  /// Moves finished jobs into `out`.
  void take_finished(std::vector<finished_job>& out) { finished_->take(out); }
  /// Readable while finished jobs wait.
  int wake_fd() const { return finished_->wake_fd(); }

 private:
  void run();
  /// The wakes the queue needs now, counted in waking_; the caller sends
  /// them (cv_.notify_one() each), under the lock or after it.
  int wakes_locked();
  handler_result execute(const claimed_job& j, const std::atomic<bool>& stop,
                         std::vector<commit_hook>& hooks);
  void start_async(claimed_job j, stop_flag stop, const async_handler_fn& fn);

  const handler_registry& handlers_;
  std::shared_ptr<finished_list> finished_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<queued_job> queue_;
  int idle_ = 0;            ///< threads waiting on cv_
  int waking_ = 0;          ///< wakes sent and not yet taken by a waiting thread
  double quick_share_ = 1;  ///< of recent handlers, those quicker than a wake (a running average)
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace jobs::detail
