// The recoveries' statements: the scheduler's due, unconfirmed and lost
// jobs; the dead-letter recovery's requeue check and burials
// (common/store.hpp).
#include "common/store.hpp"
#include "common/store_detail.hpp"

namespace jobs {

using detail::bigint_array;

namespace {

// Each kind's earliest time, compared with now: the first entry of the
// index its lock below reads in order (jobs_due, jobs_lease) or of the
// outbox's few rows, so an idle round costs one round trip and two
// one-entry index reads. (As EXISTS, the lease check read `jobs_active`
// and every running job's row instead.)
constexpr const char* round_work_sql = R"(
  SELECT coalesce((SELECT run_at FROM jobs WHERE state IN ('scheduled', 'failed')
                   ORDER BY run_at LIMIT 1) <= now(), false),
         coalesce((SELECT deadline FROM publish_batches ORDER BY deadline LIMIT 1) < now(), false),
         coalesce((SELECT lease_expires_at FROM jobs WHERE state = 'running'
                   ORDER BY lease_expires_at LIMIT 1) < now(), false))";

constexpr const char* lock_due_sql = R"(
  SELECT id::text, tenant_id, queue, type FROM jobs
  WHERE state IN ('scheduled', 'failed') AND run_at <= now()
  ORDER BY run_at, priority DESC LIMIT $1 FOR UPDATE SKIP LOCKED)";

constexpr const char* mark_queued_sql = R"(
  UPDATE jobs SET state = 'queued', queued_at = now(), updated_at = now()
  WHERE id = ANY($1::uuid[]) AND state::text IN ('scheduled', 'failed'))";

constexpr const char* lock_unconfirmed_sql = R"(
  SELECT id FROM publish_batches WHERE deadline < now()
  ORDER BY deadline LIMIT $1 FOR UPDATE SKIP LOCKED)";

// Not SKIP LOCKED: a job a claim holds is waited for, then judged again.
constexpr const char* lock_unconfirmed_jobs_sql = R"(
  SELECT j.id::text, j.tenant_id, j.queue, j.type FROM jobs j
  WHERE j.id IN (SELECT unnest(job_ids) FROM publish_batches WHERE id = ANY($1::bigint[]))
    AND j.state::text = 'queued'
  FOR UPDATE OF j)";

constexpr const char* lock_lost_sql = R"(
  SELECT id::text, tenant_id, queue, type, attempts >= max_attempts FROM jobs
  WHERE state = 'running' AND lease_expires_at < now()
  ORDER BY lease_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)";

// A lost job whose cancel was requested ends cancelled instead (its
// republished message, if any, is then dropped by the worker that gets it),
// and is neither queued again nor failed: those times stay as they were.
constexpr const char* rescue_lost_sql = R"(
  WITH u AS (
    UPDATE jobs j SET
           state = CASE WHEN j.cancel_requested_at IS NULL THEN $2::job_state ELSE 'cancelled' END,
           last_error = 'worker lost: its lease expired during attempt ' || j.attempts,
           queued_at = CASE WHEN $2 = 'queued' AND j.cancel_requested_at IS NULL THEN now()
                            ELSE j.queued_at END,
           finished_at = CASE WHEN $2 = 'dead' OR j.cancel_requested_at IS NOT NULL THEN now()
                              ELSE j.finished_at END,
           cancelled_at = CASE WHEN j.cancel_requested_at IS NOT NULL THEN now()
                               ELSE j.cancelled_at END,
           failed_at = CASE WHEN j.cancel_requested_at IS NULL THEN now() ELSE j.failed_at END,
           lease_expires_at = NULL, updated_at = now()
    WHERE j.id = ANY($1::uuid[]) AND j.state::text = 'running' AND j.lease_expires_at < now()
    RETURNING j.id, j.queue, j.life, j.attempts, j.worker_id, j.started_at, j.last_error, j.state
  )
  INSERT INTO job_attempts (job_id, queue, life, attempt, worker_id, started_at, outcome, error)
  SELECT id, queue, life, attempts, coalesce(worker_id, ''), coalesce(started_at, now()),
         CASE WHEN state = 'cancelled' THEN 'cancelled'::job_state
              WHEN $2 = 'dead' THEN 'dead'::job_state ELSE 'failed'::job_state END, last_error
  FROM u)";

constexpr const char* queued_among_sql = R"(
  SELECT id::text, tenant_id, queue, type FROM jobs
  WHERE id = ANY($1::uuid[]) AND state = 'queued')";

constexpr const char* bury_queued_sql = R"(
  UPDATE jobs SET state = 'dead', last_error = $2, finished_at = now(), failed_at = now(),
                  updated_at = now()
  WHERE id = $1::uuid AND state = 'queued')";

}  // namespace

round_work pending_round_work(pqxx::connection& c) {
  pqxx::nontransaction n(c);
  auto row = n.exec1(round_work_sql);
  return {row[0].as<bool>(), row[1].as<bool>(), row[2].as<bool>()};
}

std::vector<due_job> lock_due_jobs(pqxx::work& w, int limit) {
  std::vector<due_job> out;
  for (const auto& row : w.exec_params(lock_due_sql, limit))
    out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
                   row[3].as<std::string>()});
  return out;
}

void mark_queued(pqxx::work& w, std::span<const std::string> ids) {
  if (!ids.empty()) w.exec_params(mark_queued_sql, uuid_array(ids));
}

unconfirmed_jobs lock_unconfirmed_jobs(pqxx::work& w, int limit) {
  unconfirmed_jobs out;
  for (const auto& row : w.exec_params(lock_unconfirmed_sql, limit))
    out.batches.push_back(row[0].as<std::int64_t>());
  if (out.batches.empty()) return out;
  for (const auto& row : w.exec_params(lock_unconfirmed_jobs_sql, bigint_array(out.batches)))
    out.jobs.push_back({row[0].as<std::string>(), row[1].as<std::string>(),
                        row[2].as<std::string>(), row[3].as<std::string>()});
  return out;
}

std::vector<lost_job> lock_lost_jobs(pqxx::work& w, int limit) {
  std::vector<lost_job> out;
  for (const auto& row : w.exec_params(lock_lost_sql, limit))
    out.push_back({{row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
                    row[3].as<std::string>()},
                   row[4].as<bool>()});
  return out;
}

void rescue_lost_jobs(pqxx::work& w, std::span<const std::string> ids, job_state to) {
  if (!ids.empty()) w.exec_params(rescue_lost_sql, uuid_array(ids), std::string(to_string(to)));
}

std::vector<due_job> queued_among(pqxx::transaction_base& t, std::span<const std::string> ids) {
  std::vector<due_job> out;
  if (ids.empty()) return out;
  for (const auto& row : t.exec_params(queued_among_sql, uuid_array(ids)))
    out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
                   row[3].as<std::string>()});
  return out;
}

bool bury_queued_job(pqxx::work& w, const std::string& id, const std::string& error) {
  return w.exec_params(bury_queued_sql, id, error).affected_rows() == 1;
}

}  // namespace jobs
