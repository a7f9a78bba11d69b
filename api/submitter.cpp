#include "api/submitter.hpp"

#include "common/db.hpp"
#include "common/log.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace jobs {

namespace {
problem commit_timed_out(std::chrono::milliseconds after) {
  return make_problem(503, "unavailable",
                      fmt::format("the database did not record the job within {} ms; it was not "
                                  "accepted; retry later",
                                  after.count()));
}

// Settled publish batches are deleted in one statement a second: a
// commit a second instead of one per group commit.
constexpr auto settle_interval = std::chrono::seconds(1);
}  // namespace

submitter::submitter(std::string pg_url, publisher& pub, int batch_max,
                     std::chrono::milliseconds publish_grace, std::string test_fault,
                     std::chrono::milliseconds idempotency_ttl, metrics::histogram* commit_seconds,
                     metrics::histogram* commit_jobs, std::chrono::milliseconds commit_timeout,
                     std::chrono::milliseconds commit_gap)
    : pg_url_(std::move(pg_url)),
      pub_(pub),
      batch_max_(batch_max),
      publish_grace_(publish_grace),
      commit_timeout_(commit_timeout),
      pace_(commit_gap),
      idempotency_ttl_(idempotency_ttl),
      commit_seconds_(commit_seconds),
      commit_jobs_(commit_jobs),
      next_sweep_(std::chrono::steady_clock::now()) {
  if (test_fault.starts_with("api_crash_after_commit:"))
    crash_after_batches_ = std::stoi(test_fault.substr(test_fault.find(':') + 1));
  if (test_fault.starts_with("api_commit_reply_lost:"))
    lose_replies_ = std::stoi(test_fault.substr(test_fault.find(':') + 1));
  machine_busy_fault_ = test_fault == "api_machine_busy";
  thread_ = std::thread([this] { run(); });
  watchdog_ = std::thread([this] { watch(); });
}

submitter::~submitter() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  watch_cv_.notify_all();
  thread_.join();
  watchdog_.join();
}

void submitter::submit(new_job job, done_fn done) {
  bool wake = false, notify = true;
  {
    std::lock_guard lk(mu_);
    // Under the lock: deadlines queued in order, as the watchdog reads them.
    auto due = std::chrono::steady_clock::now() + commit_timeout_;
    enqueue(std::move(job), std::move(done), due);
    wake = std::exchange(watch_idle_, false);
    notify = !holding_ || past_gap_wait();
  }
  if (notify) cv_.notify_one();
  if (wake) watch_cv_.notify_one();
}

void submitter::submit_many(std::vector<new_job> jobs, std::vector<done_fn> done) {
  bool wake = false, notify = true;
  {
    std::lock_guard lk(mu_);
    // Under the lock: deadlines queued in order, as the watchdog reads them.
    auto due = std::chrono::steady_clock::now() + commit_timeout_;
    for (std::size_t i = 0; i < jobs.size(); ++i)
      enqueue(std::move(jobs[i]), std::move(done[i]), due);
    wake = std::exchange(watch_idle_, false);
    notify = !holding_ || past_gap_wait();
  }
  if (notify) cv_.notify_one();
  if (wake) watch_cv_.notify_one();
}

bool submitter::may_hold(std::chrono::steady_clock::time_point now) const {
  // Not with withdrawals to make, nor when the oldest submission queued
  // would have less than a gap's time left to commit in after it (the
  // watchdog's 503 would come first).
  return !stopping_ && !queue_.empty() && unconfirmed_.empty() &&
         pace_.within_gap(now, queue_.size(), static_cast<std::size_t>(batch_max_)) &&
         queue_.front().second->due > pace_.gap_end() + pace_.gap();
}

void submitter::enqueue(new_job job, done_fn done, std::chrono::steady_clock::time_point due) {
  auto t = std::make_shared<ticket>();
  t->done = std::move(done);
  t->due = due;
  queue_.emplace_back(std::move(job), std::move(t));
}

// Sleeps until the oldest submission not yet committed is due (or with
// nothing to watch, until one arrives). Jobs are queued in arrival order, and
// those in the commit arrived before any still queued.
void submitter::watch() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    auto now = std::chrono::steady_clock::now();
    std::vector<std::shared_ptr<ticket>> late;
    auto due = std::find_if(in_commit_.begin(), in_commit_.end(),
                            [&](const auto& t) { return t->due > now; });
    late.assign(std::make_move_iterator(in_commit_.begin()), std::make_move_iterator(due));
    in_commit_.erase(in_commit_.begin(), due);
    while (!queue_.empty() && queue_.front().second->due <= now) {
      late.push_back(std::move(queue_.front().second));
      queue_.pop_front();
    }
    if (!late.empty()) {
      lk.unlock();
      std::int64_t answered = 0;
      for (auto& t : late)
        if (!t->settled.exchange(true)) {
          // Let go of it with the answer: it holds the request's handler.
          std::exchange(t->done, nullptr)(commit_timed_out(commit_timeout_));
          ++answered;
        }
      if (answered > 0)
        log_warn("submissions not committed in time: answered 503",
                 {{"jobs", answered}, {"timeout_ms", commit_timeout_.count()}});
      lk.lock();
      continue;
    }
    auto next = std::chrono::steady_clock::time_point::max();
    if (!in_commit_.empty()) next = in_commit_.front()->due;
    if (!queue_.empty()) next = std::min(next, queue_.front().second->due);
    if (next == std::chrono::steady_clock::time_point::max()) {
      watch_idle_ = true;
      watch_cv_.wait(lk);
      watch_idle_ = false;
    } else {
      watch_cv_.wait_until(lk, next);
    }
  }
}

void submitter::run() {
  std::vector<std::int64_t> settled;  // deleted at the next settle
  auto next_settle = std::chrono::steady_clock::now() + settle_interval;
  for (;;) {
    std::vector<queued_job> batch;
    std::vector<refused> failed;
    bool last = false;
    {
      std::unique_lock lk(mu_);
      auto wake = std::min(next_sweep_, next_settle);
      if (!withdraw_again_.empty()) wake = std::min(wake, next_withdraw_);
      cv_.wait_until(lk, wake,
                     [&] { return stopping_ || !queue_.empty() || !unconfirmed_.empty(); });
      if (may_hold(std::chrono::steady_clock::now())) {
        // The machine read without mu_ held (/proc/stat at most every 100 ms).
        auto now = std::chrono::steady_clock::now();
        double busy = 1.0;
        if (!machine_busy_fault_) {
          lk.unlock();
          busy = machine_.busy_share(now);
          lk.lock();
        }
        if (may_hold(now) &&
            pace_.wait(now, queue_.size(), static_cast<std::size_t>(batch_max_), busy)) {
          holding_ = true;
          cv_.wait_until(lk, pace_.gap_end(),
                         [&] { return stopping_ || past_gap_wait() || !unconfirmed_.empty(); });
          holding_ = false;
        }
      }
      last = stopping_ && queue_.empty() && unconfirmed_.empty();
      in_commit_.clear();
      while (!queue_.empty() && static_cast<int>(batch.size()) < batch_max_) {
        in_commit_.push_back(queue_.front().second);
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      failed.swap(unconfirmed_);
      settled.insert(settled.end(), settled_.begin(), settled_.end());
      settled_.clear();
    }
    // Jobs answered 503 whose withdrawal failed go before a write of keyed
    // jobs, whatever the backoff: a retry of one with its idempotency key
    // must not find the job still there and be told it was accepted.
    auto keyed = [&] {
      return std::any_of(batch.begin(), batch.end(),
                         [](const queued_job& q) { return !q.first.idempotency_key.empty(); });
    };
    if (!withdraw_again_.empty() &&
        (std::chrono::steady_clock::now() >= next_withdraw_ || keyed())) {
      auto again = std::move(withdraw_again_);
      withdraw_again_.clear();
      failed.insert(failed.end(), std::make_move_iterator(again.begin()),
                    std::make_move_iterator(again.end()));
    }
    if (!failed.empty()) undo(failed);
    if (!batch.empty()) {
      pace_.began(std::chrono::steady_clock::now());
      write(batch);
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= next_settle || last) {
      settle(settled);
      next_settle = now + settle_interval;
    }
    if (last) {
      if (!withdraw_again_.empty())
        log_error(
            "stopping with jobs not withdrawn (the database unreachable): the recovery "
            "may publish them",
            {{"jobs", static_cast<std::int64_t>(withdraw_again_.size())}});
      return;
    }
    if (now >= next_sweep_) sweep_keys();
    try {
      if (db_ && db_->is_open()) plans_.tick(*db_);
    } catch (const std::exception& e) {
      log_warn("cannot discard cached plans", {{"error", e.what()}});
      db_.reset();
    }
  }
}

}  // namespace jobs
