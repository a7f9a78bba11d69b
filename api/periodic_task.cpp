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
  std::unique_lock lk(mu_);
  while (!stopping_) {
    lk.unlock();
    bool again = false;
    try {
      again = with_reconnect(db_, pg_url_, [this](pqxx::connection& c) { return task_(c); });
    } catch (const std::exception& e) {
      log_warn(what_ + " failed", {{"error", e.what()}});
      db_.reset();
    }
    lk.lock();
    if (!again) cv_.wait_for(lk, interval_, [&] { return stopping_; });
  }
}

}  // namespace jobs
