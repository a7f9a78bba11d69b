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
  // While the database is away, a round fails every interval: the first
  // failure is logged, then one line a minute with the count, and one when
  // it works again, instead of a warning every 200 ms.
  failure_log failures(std::chrono::minutes(1));
  std::unique_lock lk(mu_);
  while (!stopping_) {
    lk.unlock();
    bool again = false;
    try {
      again = with_reconnect(db_, pg_url_, [this](pqxx::connection& c) { return task_(c); });
      if (auto r = failures.succeeded(failure_log::clock::now()))
        log_info(what_ + " works again",
                 {{"failed_rounds", static_cast<std::int64_t>(r->failed_rounds)},
                  {"after_ms",
                   static_cast<std::int64_t>(
                       std::chrono::duration_cast<std::chrono::milliseconds>(r->after).count())}});
    } catch (const std::exception& e) {
      if (auto l = failures.failed(failure_log::clock::now()))
        log_warn(what_ + " failed",
                 {{"error", e.what()},
                  {"failed_rounds", static_cast<std::int64_t>(l->failed_rounds)},
                  {"unlogged_failures", static_cast<std::int64_t>(l->unlogged_failures)}});
      db_.reset();
    }
    lk.lock();
    if (!again) cv_.wait_for(lk, interval_, [&] { return stopping_; });
  }
}

std::optional<failure_log::line> failure_log::failed(clock::time_point now) {
  if (failures_++ == 0) first_failure_ = now;
  if (failures_ > 1 && now - last_line_ < every_) {
    ++unlogged_;
    return std::nullopt;
  }
  line l{failures_, unlogged_};
  last_line_ = now;
  unlogged_ = 0;
  return l;
}

std::optional<failure_log::recovery> failure_log::succeeded(clock::time_point now) {
  if (failures_ == 0) return std::nullopt;
  recovery r{failures_, now - first_failure_};
  failures_ = unlogged_ = 0;
  return r;
}

}  // namespace jobs
