#pragma once
// Records queue history for the dashboard (common/admin_store.hpp,
// sample_queue_history): every `interval` it writes the 10 s point that
// ended, if no process did yet, folds it into the 1 min and 10 min buckets
// and prunes old points. Several API processes may run it: an advisory lock
// lets one write each point.
//
// Thread-safety: owns its thread; construct and destroy from one thread.

#include <pqxx/connection>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace jobs {

class history_sampler {
 public:
  history_sampler(std::string pg_url, std::chrono::milliseconds interval);
  ~history_sampler();

 private:
  void run();

  std::string pg_url_;
  std::chrono::milliseconds interval_;
  std::unique_ptr<pqxx::connection> db_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace jobs
