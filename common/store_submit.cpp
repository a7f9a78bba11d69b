// Submissions: the group commit's INSERT and the publish batches (the outbox)
// (common/store.hpp).
#include "common/store.hpp"
#include "common/store_detail.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <tuple>

namespace jobs {

using detail::append_json_member;
using detail::bigint_array;
using detail::exec_prepared_as;

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

// An insert records the submission events of its rows submitted
// `scheduled` (NULL -> scheduled) in the same statement. A submission into
// `queued` writes none: the jobs row implies it (the timeline and the queue
// history read it there, common/admin_store.cpp), and the row with its three
// index entries took a quarter of a batched INSERT's time. A statement
// trigger recorded the events until migration 0019: its transition table
// cost each group commit ~70 us, about a quarter of the INSERT at the few
// rows a commit carries at a moderate rate. `extra` adds CTEs that read
// `ins`.
std::string insert_statement(const char* conflict, const char* extra, const char* select) {
  return fmt::format(R"(
  WITH ins AS ({}{} RETURNING id, queue, state, attempts),
  ev AS (
    INSERT INTO job_events (job_id, queue, from_state, to_state, attempt)
    SELECT id, queue, NULL, state, attempts FROM ins WHERE state <> 'queued'){}
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

constexpr const char* record_batch_sql = R"(
  INSERT INTO publish_batches (deadline, job_ids)
  VALUES (now() + $2 * interval '1 millisecond', $1::uuid[]) RETURNING id)";

constexpr const char* settle_batches_sql =
    "DELETE FROM publish_batches WHERE id = ANY($1::bigint[])";

void append_job_row(std::string& rows, const new_job& j) {
  if (rows.size() > 1) rows.push_back(',');
  rows += "{\"id\":\"" + j.id.value + "\"";
  append_json_member(rows, "tenant_id", j.tenant.value);
  append_json_member(rows, "queue", j.queue);
  append_json_member(rows, "type", j.type);
  rows += ",\"payload\":" + j.payload_json;
  rows += ",\"state\":\"" + std::string(to_string(j.state)) + "\"";
  rows += ",\"priority\":" + std::to_string(j.priority);
  rows += ",\"max_attempts\":" + std::to_string(j.max_attempts);
  if (j.timeout_ms > 0) rows += ",\"timeout_ms\":" + std::to_string(j.timeout_ms);
  if (j.backoff_base_ms > 0) rows += ",\"backoff_base_ms\":" + std::to_string(j.backoff_base_ms);
  if (j.backoff_cap_ms > 0) rows += ",\"backoff_cap_ms\":" + std::to_string(j.backoff_cap_ms);
  if (!j.backoff_jitter.empty()) rows += ",\"backoff_jitter\":\"" + j.backoff_jitter + "\"";
  if (!j.trace_id.empty()) rows += ",\"trace_id\":\"" + j.trace_id + "\"";
  if (!j.run_at.empty()) append_json_member(rows, "run_at", j.run_at);
  if (!j.idempotency_key.empty()) {
    append_json_member(rows, "idempotency_key", j.idempotency_key);
    append_json_member(rows, "request_hash", j.request_hash);
  }
  rows.push_back('}');
}

std::string job_rows_json(std::span<const new_job> jobs) {
  std::string rows = "[";
  for (const auto& j : jobs) append_job_row(rows, j);
  rows.push_back(']');
  return rows;
}

// Keyed rows in the order of their keys: two group commits (two API
// processes) holding the same keys then insert them in the same order, and
// the second waits for the first instead of each waiting for the other (a
// deadlock, which PostgreSQL ends by failing one: a 503 for all its jobs).
// Stable, so of two rows with one key the first sent still wins.
std::string keyed_rows_json(std::span<const new_job> jobs) {
  std::vector<const new_job*> order;
  order.reserve(jobs.size());
  for (const auto& j : jobs) order.push_back(&j);
  std::stable_sort(order.begin(), order.end(), [](const new_job* a, const new_job* b) {
    return std::tie(a->tenant.value, a->idempotency_key) <
           std::tie(b->tenant.value, b->idempotency_key);
  });
  std::string rows = "[";
  for (const auto* j : order) append_job_row(rows, *j);
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
  auto res = has_idempotency_keys(jobs)
                 ? exec_prepared_as(w, "jobs_insert_keyed", insert_keyed_jobs_sql.c_str(),
                                    keyed_rows_json(jobs))
                 : exec_prepared_as(w, "jobs_insert", insert_jobs_sql.c_str(), job_rows_json(jobs));
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

std::int64_t record_publish_batch(pqxx::work& w, std::span<const std::string> ids,
                                  std::chrono::milliseconds grace) {
  return exec_prepared_as(w, "jobs_record_batch", record_batch_sql, uuid_array(ids),
                          static_cast<long long>(grace.count()))[0][0]
      .as<std::int64_t>();
}

void settle_publish_batches(pqxx::work& w, std::span<const std::int64_t> batches) {
  if (!batches.empty()) w.exec_params(settle_batches_sql, bigint_array(batches));
}

}  // namespace jobs
