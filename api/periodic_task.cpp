#include "api/periodic_task.hpp"

#include "common/db.hpp"
#include "common/log.hpp"

namespace jobs {

periodic_task::periodic_task(std::string pg_url, std::chrono::milliseconds interval,
                             std::string what, task_fn task)
    : pg_url_(std::move(pg_url)),
      interval_(interval),
      what_(std::move(what)),
      task_(std::move(task)) {
  thread_ = std::thread([this] { run(); });
}

periodic_task::~periodic_task() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void periodic_task::run() {
  using clock = std::chrono::steady_clock;
  // While the database is away, a round fails every interval: the first
  // failure is logged, then one line a minute with the count, and one when
  // it works again, instead of a warning every 200 ms.
  constexpr auto log_every = std::chrono::minutes(1);
  long failures = 0, unlogged = 0;
  clock::time_point first_failure, last_log;
  std::unique_lock lk(mu_);
  while (!stopping_) {
    lk.unlock();
    bool again = false;
    try {
      again = with_reconnect(db_, pg_url_, [this](pqxx::connection& c) { return task_(c); });
      if (failures > 0) {
        log_info(what_ + " works again",
                 {{"failed_rounds", static_cast<std::int64_t>(failures)},
                  {"after_ms",
                   static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 clock::now() - first_failure)
                                                 .count())}});
        failures = unlogged = 0;
      }
    } catch (const std::exception& e) {
      auto now = clock::now();
      if (failures++ == 0) first_failure = now;
      if (failures == 1 || now - last_log >= log_every) {
        log_warn(what_ + " failed", {{"error", e.what()},
                                     {"failed_rounds", static_cast<std::int64_t>(failures)},
                                     {"unlogged_failures", static_cast<std::int64_t>(unlogged)}});
        last_log = now;
        unlogged = 0;
      } else {
        ++unlogged;
      }
      db_.reset();
    }
    lk.lock();
    if (!again) cv_.wait_for(lk, interval_, [&] { return stopping_; });
  }
}

}  // namespace jobs
