#include "api/submitter.hpp"

#include "api/submission.hpp"
#include "common/db.hpp"
#include "common/log.hpp"
#include "common/trace.hpp"
#include "queues/message.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <unordered_set>

namespace jobs {

namespace {
// A withdrawn job goes with its submission event (job_events has no
// foreign key to cascade from). Queued, or scheduled and never started (a
// scheduled submission whose commit timed out).
constexpr const char* undo_sql = R"(
  WITH gone AS (
    DELETE FROM jobs
    WHERE id = ANY($1::uuid[]) AND (state = 'queued' OR state = 'scheduled' AND started_at IS NULL)
    RETURNING id)
  DELETE FROM job_events WHERE job_id IN (SELECT id FROM gone))";

problem commit_timed_out(std::chrono::milliseconds after) {
  return make_problem(503, "unavailable",
                      fmt::format("the database did not record the job within {} ms; it was not "
                                  "accepted; retry later",
                                  after.count()));
}

// Settled publish batches are deleted in one statement a second: a
// commit a second instead of one per group commit.
constexpr auto settle_interval = std::chrono::seconds(1);

// Expired keys are freed on use anyway; the sweep only keeps the key index
// small, so once a minute is plenty (a short TTL, as in tests, goes faster).
std::chrono::milliseconds sweep_interval(std::chrono::milliseconds ttl) {
  using std::chrono::milliseconds;
  return std::clamp<milliseconds>(ttl / 2, milliseconds(100), milliseconds(60000));
}

}  // namespace

submitter::submitter(std::string pg_url, publisher& pub, int batch_max,
                     std::chrono::milliseconds publish_grace, std::string test_fault,
                     std::chrono::milliseconds idempotency_ttl, metrics::histogram* commit_seconds,
                     metrics::histogram* commit_jobs, std::chrono::milliseconds commit_timeout)
    : pg_url_(std::move(pg_url)),
      pub_(pub),
      batch_max_(batch_max),
      publish_grace_(publish_grace),
      commit_timeout_(commit_timeout),
      idempotency_ttl_(idempotency_ttl),
      commit_seconds_(commit_seconds),
      commit_jobs_(commit_jobs),
      next_sweep_(std::chrono::steady_clock::now()) {
  if (test_fault.starts_with("api_crash_after_commit:"))
    crash_after_batches_ = std::stoi(test_fault.substr(test_fault.find(':') + 1));
  if (test_fault.starts_with("api_commit_reply_lost:"))
    lose_replies_ = std::stoi(test_fault.substr(test_fault.find(':') + 1));
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
  auto due = std::chrono::steady_clock::now() + commit_timeout_;
  bool wake = false;
  {
    std::lock_guard lk(mu_);
    enqueue(std::move(job), std::move(done), due);
    wake = std::exchange(watch_idle_, false);
  }
  cv_.notify_one();
  if (wake) watch_cv_.notify_one();
}

void submitter::submit_many(std::vector<new_job> jobs, std::vector<done_fn> done) {
  auto due = std::chrono::steady_clock::now() + commit_timeout_;
  bool wake = false;
  {
    std::lock_guard lk(mu_);
    for (std::size_t i = 0; i < jobs.size(); ++i)
      enqueue(std::move(jobs[i]), std::move(done[i]), due);
    wake = std::exchange(watch_idle_, false);
  }
  cv_.notify_one();
  if (wake) watch_cv_.notify_one();
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
    if (!withdraw_again_.empty() && std::chrono::steady_clock::now() >= next_withdraw_) {
      auto again = std::move(withdraw_again_);
      withdraw_again_.clear();
      failed.insert(failed.end(), std::make_move_iterator(again.begin()),
                    std::make_move_iterator(again.end()));
    }
    if (!failed.empty()) undo(failed);
    if (!batch.empty()) write(batch);
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

void submitter::write(std::vector<queued_job>& taken) {
  std::vector<new_job> rows;
  rows.reserve(taken.size());
  for (auto& [job, t] : taken) rows.push_back(job);
  std::vector<std::string> inserted, queued;
  std::int64_t publish_batch = 0;
  std::vector<key_holder> holders;
  auto started = std::chrono::steady_clock::now();
  bool keyed = has_idempotency_keys(rows);
  int tries = 0;  // with_reconnect tries again on a new connection once
  try {
    with_reconnect(
        db_, pg_url_,
        [&](pqxx::connection& c) {
          ++tries;
          if (!keyed) {
            // One statement outside a transaction block: it commits on its
            // own, so the group commit is one round trip.
            pqxx::nontransaction n(c);
            auto got = insert_unkeyed_jobs(n, rows, publish_grace_);
            inserted = std::move(got.ids);
            publish_batch = got.batch;
            queued.clear();
            for (const auto& r : rows)
              if (r.state == job_state::queued) queued.push_back(r.id.value);
            lose_reply(false);
            return 0;
          }
          pqxx::work w(c);
          release_expired_keys(w, rows, idempotency_ttl_);
          inserted = insert_jobs(w, rows);
          queued.clear();
          std::unordered_set<std::string_view> fresh(inserted.begin(), inserted.end());
          for (const auto& r : rows)
            if (r.state == job_state::queued && fresh.contains(r.id.value))
              queued.push_back(r.id.value);
          if (!queued.empty()) publish_batch = record_publish_batch(w, queued, publish_grace_);
          holders.clear();
          if (inserted.size() < rows.size()) {
            std::unordered_set<std::string> fresh(inserted.begin(), inserted.end());
            std::vector<new_job> skipped;
            for (const auto& r : rows)
              if (!fresh.contains(r.id.value)) skipped.push_back(r);
            holders = find_key_holders(w, skipped);
          }
          w.commit();
          lose_reply(true);
          return 0;
        },
        pg_connect_hot);
  } catch (const std::exception& e) {
    log_warn("submission not recorded",
             {{"error", e.what()}, {"jobs", static_cast<std::int64_t>(taken.size())}});
    db_.reset();
    // A connection lost while the statement or its COMMIT was on its way
    // leaves the outcome unknown: it may have committed (and then the try on
    // a new connection fails on the ids it finds). The jobs are withdrawn,
    // as unconfirmed ones are, so that none answered 503 runs after all (the
    // recovery would publish them once their batch's deadline passed).
    bool unknown = tries > 1 || (tries == 1 && (dynamic_cast<const pqxx::broken_connection*>(&e) ||
                                                dynamic_cast<const pqxx::in_doubt_error*>(&e)));
    {
      std::lock_guard lk(mu_);
      in_commit_.clear();
      if (unknown)
        for (const auto& r : rows) unconfirmed_.push_back({r.id.value, nullptr, 0});
    }
    for (auto& [job, t] : taken)
      if (!t->settled.exchange(true))
        t->done(make_problem(503, "unavailable", "the database is unavailable; retry later"));
    return;
  }
  {
    std::lock_guard lk(mu_);
    in_commit_.clear();
  }
  // The jobs the watchdog answered while the commit waited are withdrawn, not
  // published: their clients were told they were not accepted.
  std::vector<queued_job> late;
  std::vector<std::pair<new_job, done_fn>> batch;
  batch.reserve(taken.size());
  for (auto& [job, t] : taken) {
    if (t->settled.exchange(true))
      late.emplace_back(std::move(job), nullptr);
    else
      batch.emplace_back(std::move(job), std::move(t->done));
  }
  if (!late.empty()) withdraw_late(late, inserted, holders, publish_batch);
  if (commit_seconds_)
    commit_seconds_->observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  if (commit_jobs_) commit_jobs_->observe(static_cast<double>(batch.size()));
  if (crash_after_batches_ > 0 && ++batches_ >= crash_after_batches_) {
    log_warn("test fault: crashing after the commit, before publishing");
    std::_Exit(70);
  }
  settle_duplicates(batch, rows.size(), inserted, holders);
  if (!queued.empty()) {
    std::lock_guard lk(mu_);
    pending_[publish_batch] = static_cast<int>(queued.size());
  }
  for (auto& [job, done] : batch) {
    if (!done) continue;  // a duplicate, settled above
    if (job.state != job_state::queued) {
      done(std::nullopt);
      continue;
    }
    auto body =
        encode_job_message({job.id.value, job.tenant.value, job.queue, job.type, job.trace_id});
    publisher::headers traceparent;
    if (!job.trace_id.empty())
      traceparent.emplace_back("traceparent", make_traceparent(job.trace_id));
    pub_.publish(
        job.queue, job.id.value, std::move(body),
        [this, id = job.id.value, done = std::move(done), publish_batch](bool ok,
                                                                         std::string_view why) {
          if (ok) {
            {
              std::lock_guard lk(mu_);
              settle_one(publish_batch);
            }
            return done(std::nullopt);
          }
          log_warn("publish not confirmed", {{"job_id", id}, {"error", why}});
          {
            std::lock_guard lk(mu_);
            unconfirmed_.push_back({id, done, publish_batch});
          }
          cv_.notify_one();
        },
        std::move(traceparent));
  }
}

// As libpqxx reports it: a statement outside a transaction block whose
// connection broke is a broken_connection (and with_reconnect tries it again);
// a transaction's COMMIT is in doubt.
void submitter::lose_reply(bool in_transaction) {
  if (lose_replies_ <= 0) return;
  --lose_replies_;
  log_warn("test fault: the commit's reply lost");
  if (in_transaction) throw pqxx::in_doubt_error("test fault: connection lost during COMMIT");
  throw pqxx::broken_connection("test fault: connection lost after the commit");
}

void submitter::withdraw_late(const std::vector<queued_job>& late,
                              const std::vector<std::string>& inserted,
                              std::vector<key_holder>& holders, std::int64_t publish_batch) {
  std::unordered_set<std::string_view> fresh(inserted.begin(), inserted.end());
  std::unordered_set<std::string_view> gone;
  std::lock_guard lk(mu_);
  for (const auto& [job, t] : late) {
    if (!fresh.contains(job.id.value)) continue;  // a duplicate: nothing was written
    gone.insert(job.id.value);
    // A queued one is among its publish batch's confirms awaited (write()).
    unconfirmed_.push_back(
        {job.id.value, nullptr, job.state == job_state::queued ? publish_batch : 0});
  }
  // A key a withdrawn job held is not replayed to its duplicates: they are
  // told to retry (settle_duplicates finds no holder).
  std::erase_if(holders, [&](const key_holder& h) { return gone.contains(h.id.value); });
  if (!gone.empty())
    log_warn("jobs committed after their submissions timed out: withdrawing",
             {{"jobs", static_cast<std::int64_t>(gone.size())}});
}

void submitter::settle_duplicates(std::vector<std::pair<new_job, done_fn>>& batch, std::size_t rows,
                                  const std::vector<std::string>& inserted,
                                  const std::vector<key_holder>& holders) {
  // Every row inserted (`rows` written, those withdrawn since included).
  if (inserted.size() == rows && std::none_of(batch.begin(), batch.end(), [](auto& b) {
        return !b.first.idempotency_key.empty() && b.first.state == job_state::queued;
      }))
    return;
  std::unordered_set<std::string_view> fresh(inserted.begin(), inserted.end());
  std::map<std::pair<std::string_view, std::string_view>, const key_holder*> by_key;
  for (const auto& h : holders) by_key[{h.tenant.value, h.key}] = &h;
  std::vector<std::pair<done_fn, submit_result>> answers;
  {
    std::lock_guard lk(in_flight_mu_);
    // Keyed jobs of this batch first, so that their duplicates in it wait too.
    for (auto& [job, done] : batch) {
      if (!fresh.contains(job.id.value) || job.idempotency_key.empty() ||
          job.state != job_state::queued)
        continue;
      in_flight_.try_emplace(job.id.value);
      done = [this, id = job.id.value, state = job.state, done = std::move(done)](submit_result r) {
        finish_in_flight(id, state, done, std::move(r));
      };
    }
    for (auto& [job, done] : batch) {
      if (fresh.contains(job.id.value)) continue;
      auto it = by_key.find({job.tenant.value, job.idempotency_key});
      if (it == by_key.end()) {
        // Its holder lost the key between the INSERT and the look-up (expired).
        answers.emplace_back(std::move(done), make_problem(503, "unavailable",
                                                           "the idempotency key was released "
                                                           "meanwhile; retry"));
      } else if (it->second->request_hash != job.request_hash) {
        answers.emplace_back(
            std::move(done),
            make_problem(409, "idempotency_key_reused",
                         fmt::format("idempotency key {:?} belongs to job {}, submitted with a "
                                     "different request",
                                     job.idempotency_key, it->second->id.value)));
      } else if (auto waiting = in_flight_.find(it->second->id.value);
                 waiting != in_flight_.end()) {
        waiting->second.push_back(std::move(done));
      } else {
        answers.emplace_back(std::move(done), replayed_job{it->second->id, it->second->state});
      }
      done = nullptr;
    }
  }
  for (auto& [done, r] : answers) done(std::move(r));
}

void submitter::finish_in_flight(const std::string& id, job_state state, const done_fn& done,
                                 submit_result r) {
  std::vector<done_fn> waiting;
  {
    std::lock_guard lk(in_flight_mu_);
    if (auto it = in_flight_.find(id); it != in_flight_.end()) {
      waiting = std::move(it->second);
      in_flight_.erase(it);
    }
  }
  submit_result replay = r.refused ? r : submit_result(replayed_job{job_id{id}, state});
  done(std::move(r));
  for (auto& w : waiting) w(replay);
}

void submitter::sweep_keys() {
  int swept = 0;
  try {
    swept = with_reconnect(
        db_, pg_url_,
        [&](pqxx::connection& c) {
          pqxx::work w(c);
          int n = sweep_idempotency_keys(w, idempotency_ttl_, idempotency_limits::sweep_batch);
          w.commit();
          return n;
        },
        pg_connect_hot);
  } catch (const std::exception& e) {
    log_warn("cannot sweep expired idempotency keys", {{"error", e.what()}});
    db_.reset();
  }
  if (swept > 0) log_debug("expired idempotency keys cleared", {{"keys", swept}});
  // A full batch: more are due, go on after the next round of submissions.
  auto now = std::chrono::steady_clock::now();
  next_sweep_ =
      swept == idempotency_limits::sweep_batch ? now : now + sweep_interval(idempotency_ttl_);
}

void submitter::settle_one(std::int64_t batch) {
  auto it = pending_.find(batch);
  if (it == pending_.end() || --it->second > 0) return;
  pending_.erase(it);
  settled_.push_back(batch);
}

void submitter::settle(std::vector<std::int64_t>& batches) {
  if (batches.empty()) return;
  // Bookkeeping only: if it fails, the batches stay, and the recovery
  // publishes their jobs still queued once more; workers drop the duplicates.
  try {
    with_reconnect(
        db_, pg_url_,
        [&](pqxx::connection& c) {
          pqxx::work w(c);
          settle_publish_batches(w, batches);
          w.commit();
          return 0;
        },
        pg_connect_hot);
  } catch (const std::exception& e) {
    log_warn("cannot settle publish batches", {{"error", e.what()}});
    db_.reset();
  }
  batches.clear();
}

void submitter::undo(std::vector<refused>& failed) {
  std::vector<std::string> ids;
  for (const auto& f : failed) ids.push_back(f.id);
  bool undone = false;
  try {
    with_reconnect(
        db_, pg_url_,
        [&](pqxx::connection& c) {
          pqxx::work w(c);
          w.exec_params(undo_sql, uuid_array(ids));
          w.commit();
          return 0;
        },
        pg_connect_hot);
    undone = true;
  } catch (const std::exception& e) {
    // Tried again, backing off, until it lands: the clients were told 503.
    // Their batch stays unsettled meanwhile; should the database stay away
    // past its deadline (publish_grace), the recovery may publish them first.
    log_error("cannot withdraw jobs answered 503; retrying",
              {{"error", e.what()},
               {"jobs", static_cast<std::int64_t>(failed.size())},
               {"retry_ms", static_cast<std::int64_t>(withdraw_backoff_.count())}});
    db_.reset();
  }
  if (undone) {
    withdraw_backoff_ = withdraw_backoff_min;
  } else {
    next_withdraw_ = std::chrono::steady_clock::now() + withdraw_backoff_;
    withdraw_backoff_ = std::min(withdraw_backoff_ * 2, withdraw_backoff_max);
  }
  {
    std::lock_guard lk(mu_);
    if (undone)
      for (const auto& f : failed) settle_one(f.batch);
  }
  for (auto& f : failed) {
    if (f.done)  // none for a job withdrawn after its commit timed out or was in doubt
      std::exchange(f.done, nullptr)(make_problem(
          503, "unavailable", "the message broker did not confirm the job; retry later"));
    if (!undone) withdraw_again_.push_back(std::move(f));
  }
}

}  // namespace jobs
