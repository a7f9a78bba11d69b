#include "common/store.hpp"

#include <fmt/format.h>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <algorithm>
#include <stdexcept>

namespace jobs {

namespace {

// Rows without an idempotency key go in with a plain INSERT: ON CONFLICT
// makes every row a speculative insertion (checked, inserted, then
// confirmed by one more WAL record), which only keyed rows need.
constexpr const char* insert_rows_sql = R"(
  INSERT INTO jobs (id, tenant_id, queue, type, payload, state, priority, max_attempts, run_at,
                    queued_at, timeout_ms, idempotency_key, request_hash,
                    backoff_base_ms, backoff_cap_ms, backoff_jitter, trace_id)
  SELECT x.id, x.tenant_id, x.queue, x.type, x.payload, x.state, x.priority, x.max_attempts,
         coalesce(x.run_at, now()), CASE WHEN x.state = 'queued' THEN now() END, x.timeout_ms,
         x.idempotency_key, x.request_hash, x.backoff_base_ms, x.backoff_cap_ms, x.backoff_jitter, x.trace_id
  FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, tenant_id text, queue text, type text,
       payload jsonb, state job_state, priority smallint, max_attempts integer, run_at timestamptz,
       timeout_ms integer, idempotency_key text, request_hash text,
       backoff_base_ms integer, backoff_cap_ms integer, backoff_jitter text, trace_id text))";
constexpr const char* keyed_sql =
    " ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING";

// Every insert records its rows' submission events (NULL -> queued or
// scheduled) in the same statement. A statement trigger did this until
// migration 0019: its transition table cost each group commit ~70 us,
// about a quarter of the INSERT at the few rows a commit carries at a
// moderate rate. `extra` adds CTEs that read `ins`.
std::string insert_statement(const char* conflict, const char* extra, const char* select) {
  return fmt::format(R"(
  WITH ins AS ({}{} RETURNING id, queue, state, attempts),
  ev AS (
    INSERT INTO job_events (job_id, queue, from_state, to_state, attempt)
    SELECT id, queue, NULL, state, attempts FROM ins){}
  {})",
                     insert_rows_sql, conflict, extra, select);
}
const std::string insert_jobs_sql = insert_statement("", "", "SELECT id::text FROM ins");
const std::string insert_published_jobs_sql =
    insert_statement("", R"(,
  b AS (
    INSERT INTO publish_batches (deadline, job_ids)
    SELECT now() + $2 * interval '1 millisecond', array_agg(id) FROM ins WHERE state = 'queued'
    HAVING count(*) > 0 RETURNING id))",
                     "SELECT id::text, coalesce((SELECT id FROM b), 0) FROM ins");
const std::string insert_keyed_jobs_sql =
    insert_statement(keyed_sql, "", "SELECT id::text FROM ins");

constexpr const char* job_json_sql = R"(
  SELECT json_build_object(
    'id', j.id, 'queue', j.queue, 'type', j.type, 'state', j.state, 'priority', j.priority,
    'attempts', j.attempts, 'max_attempts', j.max_attempts, 'payload', j.payload,
    'result', j.result, 'error', j.last_error, 'worker_id', j.worker_id, 'run_at', j.run_at,
    'created_at', j.created_at, 'queued_at', j.queued_at, 'started_at', j.started_at,
    'finished_at', j.finished_at, 'failed_at', j.failed_at, 'cancelled_at', j.cancelled_at,
    'cancel_requested_at', j.cancel_requested_at, 'timeout_ms', j.timeout_ms,
    'attempt_history', (SELECT coalesce(json_agg(json_build_object(
        'attempt', a.attempt, 'worker_id', a.worker_id, 'started_at', a.started_at,
        'finished_at', a.finished_at, 'outcome', a.outcome, 'error', a.error) ORDER BY a.id), '[]'::json)
      FROM job_attempts a WHERE a.job_id = j.id),
    'links', json_build_object('self', '/v1/jobs/' || j.id))::text
  FROM jobs j WHERE j.id = $1::uuid AND j.tenant_id = $2)";

// GET /v1/jobs, newest first. Empty filters match everything; nullif turns
// them into NULL before the casts. There is no index on (tenant_id, id):
// each of a job's three row versions would add an entry to it, about a
// tenth of PostgreSQL's CPU per job (README "Performance"). Instead one
// branch per state reads jobs_tenant_state (tenant_id, state, id DESC) in
// order and stops at the page's size, and the branches are merged. The
// statement is planned with its parameters (exec_params), so the state
// filter's test, which names no column, drops the other states' branches
// unrun, and '' filters fold away. (A bare `id` in the outer ORDER BY would
// name the output column `id::text`: sorting text defeats the index.)
std::string make_list_jobs_sql() {
  constexpr const char* branch = R"(
    (SELECT * FROM jobs
     WHERE tenant_id = $1 AND state = '{0}' AND ($3::text = '' OR $3::text = '{0}')
       AND ($2::text = '' OR queue = $2::text)
       AND ($4::text = '' OR id < nullif($4::text, '')::uuid)
       AND ($6::text = '' OR type = $6::text)
       AND ($7::text = '' OR created_at >= nullif($7::text, '')::timestamptz)
       AND ($8::text = '' OR created_at < nullif($8::text, '')::timestamptz)
       AND ($9::text = '' OR id::text = lower($9::text)
            OR strpos(lower(payload::text), lower($9::text)) > 0
            OR strpos(lower(coalesce(last_error, '')), lower($9::text)) > 0)
     ORDER BY id DESC LIMIT $5))";
  std::string branches;
  for (auto st : all_job_states) {
    if (!branches.empty()) branches += " UNION ALL";
    branches += fmt::format(branch, to_string(st));
  }
  return fmt::format(R"(
  SELECT json_build_object('id', j.id, 'queue', j.queue, 'type', j.type, 'state', j.state,
    'priority', j.priority, 'attempts', j.attempts, 'max_attempts', j.max_attempts,
    'error', j.last_error, 'run_at', j.run_at, 'created_at', j.created_at,
    'finished_at', j.finished_at, 'links', json_build_object('self', '/v1/jobs/' || j.id))::text,
    j.id::text
  FROM ({}) j
  ORDER BY j.id DESC LIMIT $5)",
                     branches);
}
const std::string list_jobs_sql = make_list_jobs_sql();

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
const std::string claim_sql = fmt::format(R"(
  UPDATE jobs j SET {}
  WHERE j.id = ANY($1::uuid[]) AND {}
  RETURNING id::text, tenant_id, queue, type, payload::text, attempts, max_attempts,
            coalesce(timeout_ms, 0), coalesce(backoff_base_ms, 0), coalesce(backoff_cap_ms, 0),
            coalesce(backoff_jitter, ''), coalesce(trace_id, ''))",
                                          claim_set_sql, own_or_claimable_sql);

// Statements below that name rows by id test the state as text
// (`state::text = 'running'`) for the reason given at claimable_sql, and
// those that join their rows to a recordset also say `id = ANY(ids)`: then
// the jobs are looked up by key whatever join the plan picks (a generic plan
// made on a small table read the whole primary key and joined it after).
// A snoozed job goes back to scheduled and its attempt is not counted. A
// cancel request committed while the worker ran ends anything but a success
// cancelled: the UPDATE reads cancel_requested_at from the row it changes,
// and a row changed by a concurrent commit is read again at its newest
// version before the SET is computed (no separate lock step: locking the
// rows first wrote each of them once more).
constexpr const char* outcome_sql =
    "(CASE WHEN x.state <> 'succeeded' AND j.cancel_requested_at IS NOT NULL "
    "THEN 'cancelled'::job_state ELSE x.state END)";
const std::string complete_sql = fmt::format(R"(
  WITH u AS (
    UPDATE jobs j SET state = {0}, result = x.result,
           last_error = coalesce(x.error, j.last_error),
           attempts = CASE WHEN {0} = 'scheduled' THEN j.attempts - 1 ELSE j.attempts END,
           finished_at = CASE WHEN {0} IN ('succeeded', 'dead', 'cancelled') THEN now() END,
           failed_at = CASE WHEN {0} IN ('failed', 'dead') THEN now() ELSE j.failed_at END,
           cancelled_at = CASE WHEN {0} = 'cancelled' THEN now() ELSE j.cancelled_at END,
           run_at = coalesce(x.run_at, j.run_at), lease_expires_at = NULL, updated_at = now()
    FROM jsonb_to_recordset($1::jsonb)
      AS x(id uuid, attempt integer, state job_state, result jsonb, error text, run_at timestamptz)
    WHERE j.id = x.id AND j.id = ANY($3::uuid[]) AND j.state::text = 'running'
      AND j.attempts = x.attempt AND j.worker_id = $2
    RETURNING j.id, j.queue, x.attempt, j.started_at, j.state, x.error
  )
  INSERT INTO job_attempts (job_id, queue, attempt, worker_id, started_at, outcome, error)
  SELECT id, queue, attempt, $2, started_at, state, error FROM u
  RETURNING job_id::text)",
                                             outcome_sql);

constexpr const char* lock_owned_sql = R"(
  SELECT id::text FROM jobs
  WHERE id = ANY($1::uuid[]) AND (id, attempts) IN (SELECT * FROM unnest($1::uuid[], $2::integer[]))
    AND state::text = 'running' AND worker_id = $3
  FOR UPDATE)";

constexpr const char* extend_leases_sql = R"(
  UPDATE jobs SET lease_expires_at = now() + $3 * interval '1 millisecond'
  WHERE id = ANY($1::uuid[]) AND state::text = 'running' AND worker_id = $2
  RETURNING id::text, cancel_requested_at IS NOT NULL)";

// cancel_job: the row lock makes the state read and the update one step
// against claims, completions and the scheduler.
constexpr const char* lock_for_cancel_sql = R"(
  SELECT state::text FROM jobs WHERE id = $1::uuid AND tenant_id = $2 FOR UPDATE)";

constexpr const char* cancel_now_sql = R"(
  UPDATE jobs SET state = 'cancelled', cancelled_at = now(), finished_at = now(),
         lease_expires_at = NULL, updated_at = now()
  WHERE id = $1::uuid AND state IN ('scheduled', 'queued', 'failed'))";

constexpr const char* request_cancel_sql = R"(
  UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now()
  WHERE id = $1::uuid AND state = 'running')";

constexpr const char* retry_sql = R"(
  UPDATE jobs SET state = 'scheduled', run_at = now(), attempts = 0, finished_at = NULL,
         result = NULL, lease_expires_at = NULL, last_error = NULL, worker_id = NULL,
         queued_at = NULL, started_at = NULL, failed_at = NULL, updated_at = now()
  WHERE id = $1::uuid AND tenant_id = $2 AND state IN ('dead', 'failed')
  RETURNING id)";

constexpr const char* job_exists_sql = "SELECT 1 FROM jobs WHERE id = $1::uuid AND tenant_id = $2";

constexpr const char* lock_due_sql = R"(
  SELECT id::text, tenant_id, queue, type FROM jobs
  WHERE state IN ('scheduled', 'failed') AND run_at <= now()
  ORDER BY run_at, priority DESC LIMIT $1 FOR UPDATE SKIP LOCKED)";

constexpr const char* mark_queued_sql = R"(
  UPDATE jobs SET state = 'queued', queued_at = now(), updated_at = now()
  WHERE id = ANY($1::uuid[]) AND state::text IN ('scheduled', 'failed'))";

constexpr const char* record_batch_sql = R"(
  INSERT INTO publish_batches (deadline, job_ids)
  VALUES (now() + $2 * interval '1 millisecond', $1::uuid[]) RETURNING id)";

constexpr const char* settle_batches_sql =
    "DELETE FROM publish_batches WHERE id = ANY($1::bigint[])";

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
// republished message, if any, is then dropped by the worker that gets it).
constexpr const char* rescue_lost_sql = R"(
  WITH u AS (
    UPDATE jobs j SET
           state = CASE WHEN j.cancel_requested_at IS NULL THEN $2::job_state ELSE 'cancelled' END,
           last_error = 'worker lost: its lease expired during attempt ' || j.attempts,
           queued_at = CASE WHEN $2 = 'queued' THEN now() ELSE j.queued_at END,
           finished_at = CASE WHEN $2 = 'dead' OR j.cancel_requested_at IS NOT NULL THEN now()
                              ELSE j.finished_at END,
           cancelled_at = CASE WHEN j.cancel_requested_at IS NOT NULL THEN now()
                               ELSE j.cancelled_at END,
           failed_at = now(), lease_expires_at = NULL, updated_at = now()
    WHERE j.id = ANY($1::uuid[]) AND j.state::text = 'running' AND j.lease_expires_at < now()
    RETURNING j.id, j.queue, j.attempts, j.worker_id, j.started_at, j.last_error, j.state
  )
  INSERT INTO job_attempts (job_id, queue, attempt, worker_id, started_at, outcome, error)
  SELECT id, queue, attempts, coalesce(worker_id, ''), coalesce(started_at, now()),
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

// The hot statements run prepared: PostgreSQL plans them once per connection
// instead of at every call (planning the claim and the completion cost about
// as much as running them). libpqxx keeps the definition per connection and
// prepares it on first use; registering the same one again is a no-op.
template <class... Args>
pqxx::result exec_prepared_as(pqxx::transaction_base& w, const char* name, const char* sql,
                              Args&&... args) {
  w.conn().prepare(name, sql);
  return w.exec_prepared(name, std::forward<Args>(args)...);
}

void append_json_string(std::string& out, std::string_view s) {
  out += boost::json::serialize(boost::json::string(s));
}

}  // namespace

std::string uuid_array(std::span<const std::string> ids) {
  std::string out = "{";
  for (const auto& id : ids) {
    if (!is_uuid(id)) throw std::invalid_argument("not a uuid: " + id);
    if (out.size() > 1) out.push_back(',');
    out += id;
  }
  out.push_back('}');
  return out;
}

// PostgreSQL's JSON text has spaces around ':' and after ','; clients get it
// compact. Only whitespace outside strings goes; numbers keep their text.
std::string compact_json(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      continue;
    }
    out.push_back(c);
  }
  return out;
}

namespace {

std::string job_rows_json(std::span<const new_job> jobs) {
  std::string rows = "[";
  for (const auto& j : jobs) {
    if (rows.size() > 1) rows.push_back(',');
    rows += "{\"id\":\"" + j.id.value + "\",\"tenant_id\":";
    append_json_string(rows, j.tenant.value);
    rows += ",\"queue\":";
    append_json_string(rows, j.queue);
    rows += ",\"type\":";
    append_json_string(rows, j.type);
    rows += ",\"payload\":" + j.payload_json;
    rows += ",\"state\":\"" + std::string(to_string(j.state)) + "\"";
    rows += ",\"priority\":" + std::to_string(j.priority);
    rows += ",\"max_attempts\":" + std::to_string(j.max_attempts);
    if (j.timeout_ms > 0) rows += ",\"timeout_ms\":" + std::to_string(j.timeout_ms);
    if (j.backoff_base_ms > 0) rows += ",\"backoff_base_ms\":" + std::to_string(j.backoff_base_ms);
    if (j.backoff_cap_ms > 0) rows += ",\"backoff_cap_ms\":" + std::to_string(j.backoff_cap_ms);
    if (!j.backoff_jitter.empty()) rows += ",\"backoff_jitter\":\"" + j.backoff_jitter + "\"";
    if (!j.trace_id.empty()) rows += ",\"trace_id\":\"" + j.trace_id + "\"";
    if (!j.run_at.empty()) {
      rows += ",\"run_at\":";
      append_json_string(rows, j.run_at);
    }
    if (!j.idempotency_key.empty()) {
      rows += ",\"idempotency_key\":";
      append_json_string(rows, j.idempotency_key);
      rows += ",\"request_hash\":";
      append_json_string(rows, j.request_hash);
    }
    rows.push_back('}');
  }
  rows.push_back(']');
  return rows;
}

}  // namespace

bool has_idempotency_keys(std::span<const new_job> jobs) {
  return std::any_of(jobs.begin(), jobs.end(),
                     [](const new_job& j) { return !j.idempotency_key.empty(); });
}

std::vector<std::string> insert_jobs(pqxx::work& w, std::span<const new_job> jobs) {
  std::vector<std::string> inserted;
  if (jobs.empty()) return inserted;
  auto rows = job_rows_json(jobs);
  auto res = has_idempotency_keys(jobs)
                 ? exec_prepared_as(w, "jobs_insert_keyed", insert_keyed_jobs_sql.c_str(), rows)
                 : exec_prepared_as(w, "jobs_insert", insert_jobs_sql.c_str(), rows);
  inserted.reserve(res.size());
  for (const auto& row : res) inserted.push_back(row[0].as<std::string>());
  return inserted;
}

inserted_jobs insert_unkeyed_jobs(pqxx::transaction_base& t, std::span<const new_job> jobs,
                                  std::chrono::milliseconds grace) {
  inserted_jobs out;
  if (jobs.empty()) return out;
  if (has_idempotency_keys(jobs)) throw std::invalid_argument("insert_unkeyed_jobs: keyed job");
  auto res = exec_prepared_as(t, "jobs_insert_published", insert_published_jobs_sql.c_str(),
                              job_rows_json(jobs), static_cast<long long>(grace.count()));
  out.ids.reserve(res.size());
  for (const auto& row : res) {
    out.ids.push_back(row[0].as<std::string>());
    out.batch = row[1].as<std::int64_t>();
  }
  return out;
}

std::optional<std::string> find_job_json(pqxx::connection& c, const tenant_id& t,
                                         const job_id& id) {
  if (!is_uuid(id.value)) return std::nullopt;
  pqxx::read_transaction r(c);
  auto res = r.exec_params(job_json_sql, id.value, t.value);
  if (res.empty()) return std::nullopt;
  return compact_json(std::string_view(res[0][0].c_str(), res[0][0].size()));
}

const std::string& list_jobs_statement() { return list_jobs_sql; }

std::string list_jobs_json(pqxx::connection& c, const tenant_id& t, const job_filter& f) {
  pqxx::read_transaction r(c);
  auto res = r.exec_params(list_jobs_sql.c_str(), t.value, f.queue, f.state, f.before, f.limit + 1,
                           f.type, f.created_after, f.created_before, f.text);
  std::string out = "{\"jobs\":[";
  int n = 0;
  std::string last;
  for (const auto& row : res) {
    if (n == f.limit) break;
    if (n++) out.push_back(',');
    out += compact_json(std::string_view(row[0].c_str(), row[0].size()));
    last = row[1].as<std::string>();
  }
  out += "],\"next_cursor\":";
  if (static_cast<int>(res.size()) > f.limit)
    append_json_string(out, last);
  else
    out += "null";
  out += "}";
  return out;
}

std::vector<claimed_job> claim_jobs(pqxx::work& w, std::span<const std::string> ids,
                                    const std::string& worker, std::chrono::milliseconds lease) {
  std::vector<claimed_job> out;
  if (ids.empty()) return out;
  auto res = exec_prepared_as(w, "jobs_claim", claim_sql.c_str(), uuid_array(ids), worker,
                              static_cast<long long>(lease.count()));
  out.reserve(res.size());
  for (const auto& row : res)
    out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
                   row[3].as<std::string>(), row[4].as<std::string>(), row[5].as<int>(),
                   row[6].as<int>(), row[7].as<int>(), row[8].as<int>(), row[9].as<int>(),
                   row[10].as<std::string>(), row[11].as<std::string>()});
  return out;
}

std::vector<std::string> complete_jobs(pqxx::work& w, std::span<const job_outcome> outcomes,
                                       const std::string& worker) {
  std::vector<std::string> landed;
  if (outcomes.empty()) return landed;
  std::string rows = "[";
  for (const auto& o : outcomes) {
    if (rows.size() > 1) rows.push_back(',');
    rows += "{\"id\":\"" + o.id + "\",\"attempt\":" + std::to_string(o.attempt) + ",\"state\":\"" +
            std::string(to_string(o.state)) + "\"";
    if (!o.result_json.empty()) rows += ",\"result\":" + o.result_json;
    if (!o.error.empty()) {
      rows += ",\"error\":";
      append_json_string(rows, o.error);
    }
    if (!o.run_at.empty()) {
      rows += ",\"run_at\":";
      append_json_string(rows, o.run_at);
    }
    rows.push_back('}');
  }
  rows.push_back(']');
  std::vector<std::string> ids;
  ids.reserve(outcomes.size());
  for (const auto& o : outcomes) ids.push_back(o.id);
  auto res =
      exec_prepared_as(w, "jobs_complete", complete_sql.c_str(), rows, worker, uuid_array(ids));
  landed.reserve(res.size());
  for (const auto& row : res) landed.push_back(row[0].as<std::string>());
  return landed;
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

std::vector<std::string> extend_leases(pqxx::work& w, std::span<const std::string> ids,
                                       const std::string& worker, std::chrono::milliseconds lease) {
  std::vector<std::string> cancel_requested;
  if (ids.empty()) return cancel_requested;
  for (const auto& row : w.exec_params(extend_leases_sql, uuid_array(ids), worker,
                                       static_cast<long long>(lease.count())))
    if (row[1].as<bool>()) cancel_requested.push_back(row[0].as<std::string>());
  return cancel_requested;
}

cancel_outcome cancel_job(pqxx::work& w, const tenant_id& t, const job_id& id) {
  cancel_outcome out;
  if (!is_uuid(id.value)) return out;
  auto locked = w.exec_params(lock_for_cancel_sql, id.value, t.value);
  if (locked.empty()) return out;
  out.state = parse_job_state(locked[0][0].as<std::string>()).value_or(job_state::queued);
  if (out.state == job_state::running) {
    w.exec_params(request_cancel_sql, id.value);
    w.exec_params("SELECT pg_notify($1, $2)", std::string(cancel_channel), id.value);
    out.result = cancel_result::requested;
  } else if (is_final(out.state)) {
    out.result = cancel_result::not_cancellable;
  } else {
    w.exec_params(cancel_now_sql, id.value);
    out.result = cancel_result::cancelled;
  }
  return out;
}

retry_result retry_job(pqxx::work& w, const tenant_id& t, const job_id& id) {
  if (!is_uuid(id.value)) return retry_result::not_found;
  if (!w.exec_params(retry_sql, id.value, t.value).empty()) return retry_result::retried;
  return w.exec_params(job_exists_sql, id.value, t.value).empty() ? retry_result::not_found
                                                                  : retry_result::not_retryable;
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

namespace {
std::string bigint_array(std::span<const std::int64_t> ids) {
  std::string out = "{";
  for (auto id : ids) out += (out.size() > 1 ? "," : "") + std::to_string(id);
  return out + "}";
}
}  // namespace

std::int64_t record_publish_batch(pqxx::work& w, std::span<const std::string> ids,
                                  std::chrono::milliseconds grace) {
  return exec_prepared_as(w, "jobs_record_batch", record_batch_sql, uuid_array(ids),
                          static_cast<long long>(grace.count()))[0][0]
      .as<std::int64_t>();
}

void settle_publish_batches(pqxx::work& w, std::span<const std::int64_t> batches) {
  if (!batches.empty()) w.exec_params(settle_batches_sql, bigint_array(batches));
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
