#include "api/submitter.hpp"

#include "api/submission.hpp"
#include "common/db.hpp"
#include "common/log.hpp"
#include "queues/message.hpp"

namespace jobs {

namespace {
constexpr const char* undo_sql = "DELETE FROM jobs WHERE id = ANY($1::uuid[]) AND state = 'queued'";
}

submitter::submitter(std::string pg_url, publisher& pub, int batch_max)
    : pg_url_(std::move(pg_url)), pub_(pub), batch_max_(batch_max) {
  thread_ = std::thread([this] { run(); });
}

submitter::~submitter() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void submitter::submit(new_job job, done_fn done) {
  {
    std::lock_guard lk(mu_);
    queue_.emplace_back(std::move(job), std::move(done));
  }
  cv_.notify_one();
}

void submitter::run() {
  for (;;) {
    std::vector<std::pair<new_job, done_fn>> batch;
    std::vector<std::pair<std::string, done_fn>> failed;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty() || !unconfirmed_.empty(); });
      if (stopping_ && queue_.empty() && unconfirmed_.empty()) return;
      while (!queue_.empty() && static_cast<int>(batch.size()) < batch_max_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      failed.swap(unconfirmed_);
    }
    if (!failed.empty()) undo(failed);
    if (!batch.empty()) write(batch);
  }
}

void submitter::write(std::vector<std::pair<new_job, done_fn>>& batch) {
  std::vector<new_job> rows;
  rows.reserve(batch.size());
  for (auto& [job, done] : batch) rows.push_back(job);
  try {
    with_reconnect(db_, pg_url_, [&](pqxx::connection& c) {
      pqxx::work w(c);
      insert_jobs(w, rows);
      w.commit();
      return 0;
    });
  } catch (const std::exception& e) {
    log_warn("submission not recorded",
             {{"error", e.what()}, {"jobs", static_cast<std::int64_t>(batch.size())}});
    db_.reset();
    for (auto& [job, done] : batch)
      done(make_problem(503, "unavailable", "the database is unavailable; retry later"));
    return;
  }
  for (auto& [job, done] : batch) {
    if (job.state != job_state::queued) {
      done(std::nullopt);
      continue;
    }
    auto body = encode_job_message({job.id.value, job.tenant.value, job.queue, job.type});
    pub_.publish(job.queue, job.id.value, std::move(body),
                 [this, id = job.id.value, done = std::move(done)](bool ok, std::string_view why) {
                   if (ok) return done(std::nullopt);
                   log_warn("publish not confirmed", {{"job_id", id}, {"error", why}});
                   {
                     std::lock_guard lk(mu_);
                     unconfirmed_.emplace_back(id, done);
                   }
                   cv_.notify_one();
                 });
  }
}

void submitter::undo(std::vector<std::pair<std::string, done_fn>>& failed) {
  std::vector<std::string> ids;
  for (auto& [id, done] : failed) ids.push_back(id);
  try {
    with_reconnect(db_, pg_url_, [&](pqxx::connection& c) {
      pqxx::work w(c);
      std::string arr = "{";
      for (auto& id : ids) arr += (arr.size() > 1 ? "," : "") + id;
      w.exec_params(undo_sql, arr + "}");
      w.commit();
      return 0;
    });
  } catch (const std::exception& e) {
    // The rows stay `queued` without a message; the recovery sweep publishes them.
    log_error("cannot withdraw unconfirmed jobs", {{"error", e.what()}});
    db_.reset();
  }
  for (auto& [id, done] : failed)
    done(make_problem(503, "unavailable",
                      "the message broker did not confirm the job; retry later"));
}

}  // namespace jobs
