// The submitter's group commit and what follows it: the publishes, the
// duplicates of idempotency keys, and the withdrawal of jobs whose clients
// were told 503 meanwhile (api/submitter.hpp).
#include "api/submission.hpp"
#include "api/submitter.hpp"
#include "common/db.hpp"
#include "common/log.hpp"
#include "common/trace.hpp"
#include "queues/message.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <unordered_set>

namespace jobs {

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
    unrecorded_log_.write(log_level::warn, "submission not recorded",
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
          unconfirmed_log_.write(log_level::warn, "publish not confirmed",
                                 {{"job_id", id}, {"error", why}});
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
      } else if (withdrawing(it->second->id.value)) {
        // Answered 503 and not yet withdrawn (the database was away): not
        // accepted, whatever the row says until the withdrawal lands.
        answers.emplace_back(std::move(done),
                             make_problem(503, "unavailable",
                                          "the job this idempotency key named was not accepted "
                                          "and is being withdrawn; retry"));
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

}  // namespace jobs
