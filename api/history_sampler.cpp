#include "api/history_sampler.hpp"

#include "common/admin_store.hpp"
#include "common/db.hpp"
#include "common/log.hpp"

namespace jobs {

history_sampler::history_sampler(std::string pg_url, std::chrono::milliseconds interval)
    : pg_url_(std::move(pg_url)), interval_(interval) {
  thread_ = std::thread([this] { run(); });
}

history_sampler::~history_sampler() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void history_sampler::run() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    lk.unlock();
    try {
      with_reconnect(db_, pg_url_, [](pqxx::connection& c) { return sample_queue_history(c); });
    } catch (const std::exception& e) {
      log_warn("queue history sample failed", {{"error", e.what()}});
      db_.reset();
    }
    lk.lock();
    cv_.wait_for(lk, interval_, [&] { return stopping_; });
  }
}

}  // namespace jobs
