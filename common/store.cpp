#include "common/store.hpp"
#include "common/store_detail.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace jobs {

using detail::append_json_string;

namespace {

// The backoff as the worker applies it: the job's own, else the defaults.
const std::string job_json_sql = fmt::format(R"(
  SELECT json_build_object(
    'id', j.id, 'queue', j.queue, 'type', j.type, 'state', j.state, 'priority', j.priority,
    'attempts', j.attempts, 'max_attempts', j.max_attempts, 'life', j.life, 'payload', j.payload,
    'result', j.result, 'error', j.last_error, 'worker_id', j.worker_id, 'run_at', j.run_at,
    'created_at', j.created_at, 'queued_at', j.queued_at, 'started_at', j.started_at,
    'finished_at', j.finished_at, 'failed_at', j.failed_at, 'cancelled_at', j.cancelled_at,
    'cancel_requested_at', j.cancel_requested_at, 'timeout_ms', j.timeout_ms,
    'backoff', json_build_object('base_ms', coalesce(j.backoff_base_ms, {base}),
      'cap_ms', coalesce(j.backoff_cap_ms, {cap}), 'jitter', coalesce(j.backoff_jitter, 'full')),
    'attempt_history', (SELECT coalesce(json_agg(json_build_object(
        'life', a.life, 'attempt', a.attempt, 'worker_id', a.worker_id, 'started_at', a.started_at,
        'finished_at', a.finished_at, 'outcome', a.outcome, 'error', a.error) ORDER BY a.id), '[]'::json)
      FROM job_attempts a WHERE a.job_id = j.id),
    'links', json_build_object('self', '/v1/jobs/' || j.id))::text
  FROM jobs j WHERE j.id = $1::uuid AND j.tenant_id = $2)",
                                             fmt::arg("base", job_limits::default_backoff_base_ms),
                                             fmt::arg("cap", job_limits::default_backoff_cap_ms));

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
       AND ($9::text = '' OR (length($9::text) >= 8 AND starts_with(id::text, lower($9::text)))
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
    'life', j.life, 'error', j.last_error, 'run_at', j.run_at, 'created_at', j.created_at,
    'finished_at', j.finished_at, 'links', json_build_object('self', '/v1/jobs/' || j.id))::text,
    j.id::text
  FROM ({}) j
  ORDER BY j.id DESC LIMIT $5)",
                     branches);
}

const std::string list_jobs_sql = make_list_jobs_sql();

// cancel_job and retry_job: the row lock makes the state read and the update one step
// against claims, completions and the scheduler.
constexpr const char* lock_state_sql = R"(
  SELECT state::text FROM jobs WHERE id = $1::uuid AND tenant_id = $2 FOR UPDATE)";

constexpr const char* cancel_now_sql = R"(
  UPDATE jobs SET state = 'cancelled', cancelled_at = now(), finished_at = now(),
         lease_expires_at = NULL, updated_at = now()
  WHERE id = $1::uuid AND state IN ('scheduled', 'queued', 'failed'))";

constexpr const char* request_cancel_sql = R"(
  UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now()
  WHERE id = $1::uuid AND state = 'running')";

constexpr const char* retry_sql = R"(
  UPDATE jobs SET state = 'scheduled', run_at = now(), attempts = 0, life = life + 1,
         finished_at = NULL,
         result = NULL, lease_expires_at = NULL, last_error = NULL, worker_id = NULL,
         queued_at = NULL, started_at = NULL, failed_at = NULL, updated_at = now()
  WHERE id = $1::uuid AND tenant_id = $2 AND state IN ('dead', 'failed'))";

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

cancel_outcome cancel_job(pqxx::work& w, const tenant_id& t, const job_id& id) {
  cancel_outcome out;
  if (!is_uuid(id.value)) return out;
  auto locked = w.exec_params(lock_state_sql, id.value, t.value);
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

retry_outcome retry_job(pqxx::work& w, const tenant_id& t, const job_id& id) {
  retry_outcome out;
  if (!is_uuid(id.value)) return out;
  auto locked = w.exec_params(lock_state_sql, id.value, t.value);
  if (locked.empty()) return out;
  out.state = parse_job_state(locked[0][0].as<std::string>()).value_or(job_state::queued);
  if (out.state != job_state::dead && out.state != job_state::failed) {
    out.result = retry_result::not_retryable;
    return out;
  }
  w.exec_params(retry_sql, id.value, t.value);
  out.result = retry_result::retried;
  return out;
}

}  // namespace jobs
