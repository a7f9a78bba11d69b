#pragma once
// Runs `task` on a PostgreSQL connection of its own, in a thread of its own,
// at once and then every `interval`, until destroyed; at once again when
// the task returns true (it left work due). A failure is logged with `what`
// (the first of a run of them, then one line a minute with their count, and
// one when a round works again) and the connection is made anew for the
// next round. The API's background
// work runs this way: the scheduler (api/scheduler.hpp), the queue history
// for the dashboard (common/admin_store.hpp, sample_queue_history) and the
// retention of finished jobs (common/retention.hpp). Tasks that several API processes may
// run at once coordinate in PostgreSQL (advisory locks, SKIP LOCKED).
//
// Thread-safety: owns its thread; construct and destroy from one thread.

#include <pqxx/connection>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace jobs {

/// What of a run of failures goes to the log: its first failure, then one
/// line every `every` with the failures since the last line, and its end.
/// Not thread-safe: one per loop.
class failure_log {
 public:
  using clock = std::chrono::steady_clock;
  explicit failure_log(clock::duration every) : every_(every) {}

  struct line {
    long failed_rounds;      ///< in this run, this one included
    long unlogged_failures;  ///< since the last line
  };
  /// A failure at `now`: the line to log, when one is due.
  std::optional<line> failed(clock::time_point now);

  struct recovery {
    long failed_rounds;
    clock::duration after;  ///< since the run's first failure
  };
  /// A success at `now`: the run of failures it ends, if any.
  std::optional<recovery> succeeded(clock::time_point now);

 private:
  clock::duration every_;
  long failures_ = 0, unlogged_ = 0;
  clock::time_point first_failure_, last_line_;
};

class periodic_task {
 public:
  /// Returns true to run again at once.
  using task_fn = std::function<bool(pqxx::connection&)>;
  periodic_task(std::string pg_url, std::chrono::milliseconds interval, std::string what,
                task_fn task);
  ~periodic_task();
  periodic_task(const periodic_task&) = delete;
  periodic_task& operator=(const periodic_task&) = delete;

 private:
  void run();

  std::string pg_url_;
  std::chrono::milliseconds interval_;
  std::string what_;
  task_fn task_;
  std::unique_ptr<pqxx::connection> db_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace jobs
