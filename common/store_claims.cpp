// The worker's statements: claims, completions, attempt locks and leases
// (common/store.hpp).
#include "common/store.hpp"
#include "common/store_detail.hpp"

#include <fmt/format.h>

namespace jobs {

using detail::append_json_member;
using detail::exec_prepared_as;

namespace {

// A row is judged by the claim's snapshot before any lock is waited for. The
// scheduler publishes a due job while it still holds the row `scheduled`, so
// a worker can get the message first: a due scheduled/failed row must match
// here, so that the UPDATE waits for the scheduler's commit and re-checks the
// row (then `queued`). Matching only `queued` would skip it and drop the job.
// The start is the clock once the row is had, not the transaction's start:
// after such a wait, that would come before the scheduler's `queued` event,
// and the job's timeline would show it running before it was queued.
// A row this worker already holds `running` is taken back as it is (its
// attempt not counted again): the worker claims only what it does not have
// in hand, so that is its own claim whose commit it could not confirm (the
// connection lost during COMMIT); skipping it would drop the message and
// leave the job to its lease, an attempt spent.
// What a claim returns of each row it took (claimed_row() reads it).
constexpr const char* claimed_columns =
    R"(j.id::text, j.tenant_id, j.queue, j.type, j.payload::text,
            j.attempts, j.max_attempts, coalesce(j.timeout_ms, 0), coalesce(j.backoff_base_ms, 0),
            coalesce(j.backoff_cap_ms, 0), coalesce(j.backoff_jitter, ''), coalesce(j.trace_id, ''))";

// The claim's UPDATE of the rows whose ids are the parameter `ids`, by the
// worker $2 with a lease of $3 ms; `also` adds a condition.
std::string claim_update(std::string_view ids, std::string_view also = "true") {
  return fmt::format("UPDATE jobs j SET {} WHERE j.id = ANY({}::uuid[]) AND {} AND {} RETURNING {}",
                     claim_set_sql, ids, own_or_claimable_sql, also, claimed_columns);
}

const std::string claim_sql = claim_update("$1");

claimed_job claimed_row(const pqxx::row& row, int first) {
  auto at = [&](int i) { return row[first + i]; };
  return {at(0).as<std::string>(), at(1).as<std::string>(),  at(2).as<std::string>(),
          at(3).as<std::string>(), at(4).as<std::string>(),  at(5).as<int>(),
          at(6).as<int>(),         at(7).as<int>(),          at(8).as<int>(),
          at(9).as<int>(),         at(10).as<std::string>(), at(11).as<std::string>()};
}

// Statements here and in store_recovery.cpp that name rows by id test the
// state as text (`state::text = 'running'`) for the reason given at
// claimable_sql, and those that join their rows to a recordset also say
// `id = ANY(ids)`: then the jobs are looked up by key whatever join the
// plan picks (a generic plan made on a small table read the whole primary
// key and joined it after).
// A snoozed job goes back to scheduled and its attempt is not counted. A
// cancel request committed while the worker ran ends anything but a success
// cancelled: the UPDATE reads cancel_requested_at from the row it changes,
// and a row changed by a concurrent commit is read again at its newest
// version before the SET is computed (no separate lock step: locking the
// rows first wrote each of them once more).
constexpr const char* outcome_sql =
    "(CASE WHEN x.state <> 'succeeded' AND j.cancel_requested_at IS NOT NULL "
    "THEN 'cancelled'::job_state ELSE x.state END)";

// The completion as two CTEs: `u` updates the jobs, `done` inserts their
// attempt rows and returns the ids that landed. A success clears the error
// an earlier attempt left on the job (its attempt row keeps it); a snooze or
// a hand-back (`scheduled`) leaves it, its own error (why it waits) going to
// its attempt row only. The outcomes are the
// recordset $1, the worker $2; `ids` names the parameter with their ids.
std::string completion_ctes(std::string_view ids) {
  return fmt::format(R"(
  u AS (
    UPDATE jobs j SET state = {0}, result = x.result,
           last_error = CASE WHEN {0} = 'succeeded' THEN NULL WHEN {0} = 'scheduled' THEN j.last_error
                             ELSE coalesce(x.error, j.last_error) END,
           attempts = CASE WHEN {0} = 'scheduled' THEN j.attempts - 1 ELSE j.attempts END,
           finished_at = CASE WHEN {0} IN ('succeeded', 'dead', 'cancelled') THEN now() END,
           failed_at = CASE WHEN {0} IN ('failed', 'dead') THEN now() ELSE j.failed_at END,
           cancelled_at = CASE WHEN {0} = 'cancelled' THEN now() ELSE j.cancelled_at END,
           run_at = coalesce(x.run_at, j.run_at), lease_expires_at = NULL, updated_at = now()
    FROM jsonb_to_recordset($1::jsonb)
      AS x(id uuid, attempt integer, state job_state, result jsonb, error text, run_at timestamptz)
    WHERE j.id = x.id AND j.id = ANY({1}::uuid[]) AND j.state::text = 'running'
      AND j.attempts = x.attempt AND j.worker_id = $2
    RETURNING j.id, j.queue, j.life, x.attempt, j.started_at, j.state, x.error
  ), done AS (
    INSERT INTO job_attempts (job_id, queue, life, attempt, worker_id, started_at, outcome, error)
    SELECT id, queue, life, attempt, $2, started_at, state, error FROM u
    RETURNING job_id
  ))",
                     outcome_sql, ids);
}

const std::string complete_sql = "WITH " + completion_ctes("$3") + " SELECT job_id::text FROM done";

// A worker's round in one statement, so in one round trip and one implicit
// transaction: the completions (ids $4) and the claims (ids $5, lease $3),
// claimed rows first (`true`), then the completed ids. The order in which
// PostgreSQL runs the CTEs is not defined, and a row one of them changed is
// skipped by the other; a worker claims only what it does not hold, and the
// claim leaves out the ids being completed anyway, so an outcome is never
// lost to a claim of its own job (as in two statements: the completion
// lands, the claim finds the job final).
const std::string round_sql = fmt::format(
    "WITH {}, c AS ({}) SELECT true, * FROM c UNION ALL "
    "SELECT false, job_id::text, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    "NULL, NULL FROM done",
    completion_ctes("$4"), claim_update("$5", "j.id <> ALL($4::uuid[])"));

std::string outcome_rows(std::span<const job_outcome> outcomes) {
  std::string rows = "[";
  for (const auto& o : outcomes) {
    if (rows.size() > 1) rows.push_back(',');
    rows += "{\"id\":\"" + o.id + "\",\"attempt\":" + std::to_string(o.attempt) + ",\"state\":\"" +
            std::string(to_string(o.state)) + "\"";
    if (!o.result_json.empty()) rows += ",\"result\":" + o.result_json;
    if (!o.error.empty()) append_json_member(rows, "error", o.error);
    if (!o.run_at.empty()) append_json_member(rows, "run_at", o.run_at);
    rows.push_back('}');
  }
  rows.push_back(']');
  return rows;
}

std::string outcome_ids(std::span<const job_outcome> outcomes) {
  std::vector<std::string> ids;
  ids.reserve(outcomes.size());
  for (const auto& o : outcomes) ids.push_back(o.id);
  return uuid_array(ids);
}

constexpr const char* lock_owned_sql = R"(
  SELECT id::text FROM jobs
  WHERE id = ANY($1::uuid[]) AND (id, attempts) IN (SELECT * FROM unnest($1::uuid[], $2::integer[]))
    AND state::text = 'running' AND worker_id = $3
  FOR UPDATE)";

constexpr const char* extend_leases_sql = R"(
  UPDATE jobs SET lease_expires_at = now() + $3 * interval '1 millisecond'
  WHERE id = ANY($1::uuid[]) AND state::text = 'running' AND worker_id = $2
  RETURNING id::text, cancel_requested_at IS NOT NULL)";

}  // namespace

std::vector<claimed_job> claim_jobs(pqxx::transaction_base& w, std::span<const std::string> ids,
                                    const std::string& worker, std::chrono::milliseconds lease) {
  std::vector<claimed_job> out;
  if (ids.empty()) return out;
  auto res = exec_prepared_as(w, "jobs_claim", claim_sql.c_str(), uuid_array(ids), worker,
                              static_cast<long long>(lease.count()));
  out.reserve(res.size());
  for (const auto& row : res) out.push_back(claimed_row(row, 0));
  return out;
}

std::vector<std::string> complete_jobs(pqxx::transaction_base& w,
                                       std::span<const job_outcome> outcomes,
                                       const std::string& worker) {
  std::vector<std::string> landed;
  if (outcomes.empty()) return landed;
  auto res = exec_prepared_as(w, "jobs_complete", complete_sql.c_str(), outcome_rows(outcomes),
                              worker, outcome_ids(outcomes));
  landed.reserve(res.size());
  for (const auto& row : res) landed.push_back(row[0].as<std::string>());
  return landed;
}

worker_round complete_and_claim(pqxx::transaction_base& w, std::span<const job_outcome> outcomes,
                                std::span<const std::string> ids, const std::string& worker,
                                std::chrono::milliseconds lease) {
  worker_round out;
  if (outcomes.empty() || ids.empty()) {
    out.completed = complete_jobs(w, outcomes, worker);
    out.claimed = claim_jobs(w, ids, worker, lease);
    return out;
  }
  auto res = exec_prepared_as(w, "jobs_round", round_sql.c_str(), outcome_rows(outcomes), worker,
                              static_cast<long long>(lease.count()), outcome_ids(outcomes),
                              uuid_array(ids));
  for (const auto& row : res) {
    if (row[0].as<bool>())
      out.claimed.push_back(claimed_row(row, 1));
    else
      out.completed.push_back(row[1].as<std::string>());
  }
  return out;
}

unclaimed_check check_unclaimed(pqxx::transaction_base& t, const std::string& queue,
                                std::span<const std::string> ids) {
  static const std::string sql = std::string(R"(
    SELECT p.paused, j.id::text
    FROM (SELECT coalesce((SELECT paused FROM queue_controls WHERE queue = $2), false) AS paused) p
    LEFT JOIN jobs j ON j.id = ANY($1::uuid[]) AND )") +
                                 claimable_sql;
  unclaimed_check out;
  for (const auto& row : t.exec_params(sql, uuid_array(ids), queue)) {
    out.paused = row[0].as<bool>();
    if (!row[1].is_null()) out.claimable.push_back(row[1].as<std::string>());
  }
  return out;
}

std::vector<std::string> lock_owned_attempts(pqxx::work& w, std::span<const job_outcome> outcomes,
                                             const std::string& worker) {
  std::vector<std::string> ids, owned;
  std::string attempts = "{";
  for (const auto& o : outcomes) {
    ids.push_back(o.id);
    attempts += (attempts.size() > 1 ? "," : "") + std::to_string(o.attempt);
  }
  if (ids.empty()) return owned;
  for (const auto& row : w.exec_params(lock_owned_sql, uuid_array(ids), attempts + "}", worker))
    owned.push_back(row[0].as<std::string>());
  return owned;
}

lease_renewal extend_leases(pqxx::work& w, std::span<const std::string> ids,
                            const std::string& worker, std::chrono::milliseconds lease) {
  lease_renewal r;
  if (ids.empty()) return r;
  for (const auto& row : w.exec_params(extend_leases_sql, uuid_array(ids), worker,
                                       static_cast<long long>(lease.count()))) {
    r.extended.push_back(row[0].as<std::string>());
    if (row[1].as<bool>()) r.cancel_requested.push_back(r.extended.back());
  }
  return r;
}

}  // namespace jobs
