#include "api/scheduler.hpp"

#include "common/db.hpp"
#include "common/log.hpp"
#include "common/store.hpp"
#include "queues/message.hpp"

#include <future>

namespace jobs {

scheduler::scheduler(std::string pg_url, publisher& pub, std::chrono::milliseconds interval)
    : pg_url_(std::move(pg_url)), pub_(pub), interval_(interval) {
  thread_ = std::thread([this] { run(); });
}

scheduler::~scheduler() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void scheduler::run() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    lk.unlock();
    int due = 0;
    try {
      due = tick();
    } catch (const std::exception& e) {
      log_warn("scheduler round failed", {{"error", e.what()}});
      db_.reset();
    }
    lk.lock();
    // A full batch means more are due: go again at once.
    if (due < batch) cv_.wait_for(lk, interval_, [&] { return stopping_; });
  }
}

int scheduler::tick() {
  if (!pub_.connected()) return 0;
  return with_reconnect(db_, pg_url_, [&](pqxx::connection& c) { return publish_due(c); });
}

int scheduler::publish_due(pqxx::connection& c) {
  pqxx::work w(c);
  auto due = lock_due_jobs(w, batch);
  if (due.empty()) return 0;
  // Publish all, then wait for every confirm (they pipeline).
  std::vector<std::future<bool>> confirms;
  for (const auto& j : due) {
    auto done = std::make_shared<std::promise<bool>>();
    confirms.push_back(done->get_future());
    pub_.publish(j.queue, j.id, encode_job_message({j.id, j.tenant, j.queue, j.type}),
                 [done](bool ok, std::string_view) { done->set_value(ok); });
  }
  std::vector<std::string> ok;
  for (std::size_t i = 0; i < due.size(); ++i)
    if (confirms[i].get()) ok.push_back(due[i].id);
  mark_queued(w, ok);
  w.commit();
  published += static_cast<long>(ok.size());
  return static_cast<int>(due.size());
}

}  // namespace jobs
