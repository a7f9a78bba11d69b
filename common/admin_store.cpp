#include "common/admin_store.hpp"

#include <algorithm>
#include <functional>

namespace jobs {

namespace {

// A job's timeline: its job_events (a scheduled submission, the scheduler,
// cancels, retries) and, from job_attempts, each attempt's start (into
// `running`) and end (schemas/migrations/0014_lean_events.sql), both with
// the attempt's worker (for a lost attempt, the one that lost it), plus the
// start of the attempt running now. An attempt's start comes from the state
// before it. A job without a stored submission event was submitted `queued`
// at its created_at (common/store_submit.cpp, insert_statement).
constexpr const char* events_sql = R"(
  WITH j AS (SELECT id, state, attempts, worker_id, started_at, created_at FROM jobs
             WHERE id = $1::uuid AND tenant_id = $2),
  ev AS (
    SELECT e.from_state, e.to_state, e.attempt, e.worker_id, e.at, 0 AS k, e.id AS seq
    FROM job_events e JOIN j ON e.job_id = j.id
    UNION ALL
    SELECT NULL, 'queued', 0, NULL, j.created_at, 0, 0 FROM j
    WHERE NOT EXISTS (SELECT FROM job_events e WHERE e.job_id = j.id AND e.from_state IS NULL)
    UNION ALL
    SELECT NULL, 'running', a.attempt, a.worker_id, a.started_at, 1, a.id
    FROM job_attempts a JOIN j ON a.job_id = j.id
    UNION ALL
    SELECT 'running', a.outcome, a.attempt, a.worker_id, a.finished_at, 2, a.id
    FROM job_attempts a JOIN j ON a.job_id = j.id
    UNION ALL
    SELECT NULL, 'running', j.attempts, j.worker_id, j.started_at, 1, 0 FROM j
    WHERE j.state = 'running' AND j.started_at IS NOT NULL),
  ordered AS (
    SELECT coalesce(from_state, lag(to_state) OVER w) AS from_state, to_state, attempt,
           worker_id, at, row_number() OVER w AS n
    FROM ev WINDOW w AS (ORDER BY at, k, seq))
  SELECT (SELECT coalesce(json_agg(json_build_object('from', o.from_state, 'to', o.to_state,
            'attempt', o.attempt, 'worker_id', o.worker_id, 'at', o.at) ORDER BY o.n),
            '[]'::json) FROM ordered o)::text
  FROM j)";

// The filter of GET /v1/jobs (common/store.cpp, list_jobs_sql) over $1..$7,
// and the states the action applies to in $8.
#define JOBS_BULK_WHERE                                                     \
  " tenant_id = $1 AND ($2::text = '' OR queue = $2::text)"                 \
  " AND ($3::text = '' OR state = nullif($3::text, '')::job_state)"         \
  " AND ($4::text = '' OR type = $4::text)"                                 \
  " AND ($5::text = '' OR created_at >= nullif($5::text, '')::timestamptz)" \
  " AND ($6::text = '' OR created_at < nullif($6::text, '')::timestamptz)"  \
  " AND ($7::text = '' OR (length($7::text) >= 8"                           \
  "      AND starts_with(id::text, lower($7::text)))"                       \
  "      OR strpos(lower(payload::text), lower($7::text)) > 0"              \
  "      OR strpos(lower(coalesce(last_error, '')), lower($7::text)) > 0)"  \
  " AND state = ANY($8::job_state[]) "

// A running job already asked to stop is not counted: cancel leaves it be.
constexpr const char* count_sql = "SELECT count(*) FROM jobs WHERE" JOBS_BULK_WHERE
                                  " AND (state <> 'running' OR cancel_requested_at IS NULL)";

// The same updates as cancel_job and retry_job (common/store.cpp), for a
// batch of rows locked with SKIP LOCKED.
constexpr const char* cancel_batch_sql =
    "WITH c AS (SELECT id FROM jobs WHERE" JOBS_BULK_WHERE
    " LIMIT $9 FOR UPDATE SKIP LOCKED)"
    " UPDATE jobs j SET state = 'cancelled', cancelled_at = now(), finished_at = now(),"
    "   lease_expires_at = NULL, updated_at = now()"
    " FROM c WHERE j.id = c.id RETURNING j.id::text";

constexpr const char* request_cancel_batch_sql =
    "WITH c AS (SELECT id FROM jobs WHERE" JOBS_BULK_WHERE
    " AND cancel_requested_at IS NULL LIMIT $9 FOR UPDATE SKIP LOCKED)"
    " UPDATE jobs j SET cancel_requested_at = now(), updated_at = now()"
    " FROM c WHERE j.id = c.id RETURNING j.id::text";

// Unchanged since the request started ($10): a job retried here that fails
// again before the loop ends must not be retried a second time.
constexpr const char* retry_batch_sql =
    "WITH c AS (SELECT id FROM jobs WHERE" JOBS_BULK_WHERE
    " AND updated_at < $10::timestamptz LIMIT $9 FOR UPDATE SKIP LOCKED)"
    " UPDATE jobs j SET state = 'scheduled', run_at = now(), attempts = 0, life = j.life + 1,"
    "   finished_at = NULL,"
    "   result = NULL, lease_expires_at = NULL, last_error = NULL, worker_id = NULL,"
    "   queued_at = NULL, started_at = NULL, failed_at = NULL, updated_at = now()"
    " FROM c WHERE j.id = c.id RETURNING j.id::text";
// Queued before the request started ($10): the scheduler queues a requeued
// job again, and the loop must not take it twice.
constexpr const char* requeue_batch_sql =
    "WITH c AS (SELECT id FROM jobs WHERE" JOBS_BULK_WHERE
    " AND coalesce(queued_at, created_at) < $10::timestamptz LIMIT $9 FOR UPDATE SKIP LOCKED)"
    " UPDATE jobs j SET state = 'scheduled', queued_at = NULL, updated_at = now()"
    " FROM c WHERE j.id = c.id RETURNING j.id::text";

constexpr const char* count_requeue_sql = "SELECT count(*) FROM jobs WHERE" JOBS_BULK_WHERE
                                          " AND coalesce(queued_at, created_at) < $9::timestamptz";
constexpr const char* count_retry_sql =
    "SELECT count(*) FROM jobs WHERE" JOBS_BULK_WHERE " AND updated_at < $9::timestamptz";
#undef JOBS_BULK_WHERE

constexpr const char* notify_cancels_sql = "SELECT pg_notify($1, x) FROM unnest($2::text[]) AS x";

// Whether it changed: a row was written (a concurrent call that wrote first
// leaves this one nothing to write) and the queue was not already so (no
// row: running).
constexpr const char* set_paused_sql = R"(
  WITH prev AS (SELECT paused FROM queue_controls WHERE queue = $1),
  up AS (
    INSERT INTO queue_controls (queue, paused, changed_at, changed_by) VALUES ($1, $2, now(), $3)
    ON CONFLICT (queue) DO UPDATE SET paused = $2, changed_at = now(), changed_by = $3
    WHERE queue_controls.paused IS DISTINCT FROM $2
    RETURNING 1)
  SELECT EXISTS (SELECT FROM up) AND coalesce((SELECT paused FROM prev), false) <> $2)";

constexpr const char* overview_sql = R"(
  WITH q AS (SELECT unnest($1::text[]) AS queue),
  d AS (
    SELECT queue, count(*) FILTER (WHERE state = 'scheduled') AS scheduled,
           count(*) FILTER (WHERE state = 'queued') AS ready,
           count(*) FILTER (WHERE state = 'running') AS running,
           extract(epoch FROM now() - min(queued_at) FILTER (WHERE state = 'queued')) AS oldest
    FROM jobs WHERE state IN ('scheduled', 'queued', 'running') GROUP BY queue),
  h AS (
    SELECT queue, sum(submitted) AS submitted, sum(succeeded) AS succeeded, sum(failed) AS failed,
           sum(dead) AS dead, sum(cancelled) AS cancelled
    FROM queue_history WHERE resolution = 10 AND bucket >= now() - interval '70 seconds'
    GROUP BY queue),
  h5 AS (
    SELECT queue, sum(succeeded) AS succeeded, sum(failed) + sum(dead) AS failed
    FROM queue_history WHERE resolution = 10 AND bucket >= now() - interval '5 minutes'
    GROUP BY queue)
  SELECT json_build_object('sampled_at', now(), 'queues', json_agg(json_build_object(
    'name', q.queue, 'paused', coalesce(c.paused, false), 'paused_at',
    CASE WHEN c.paused THEN c.changed_at END,
    'scheduled', coalesce(d.scheduled, 0), 'ready', coalesce(d.ready, 0),
    'running', coalesce(d.running, 0), 'oldest_waiting_age_s', round(coalesce(d.oldest, 0)::numeric, 1),
    'in_per_s', round(coalesce(h.submitted, 0) / 60.0, 2),
    'out_per_s', round(coalesce(h.succeeded + h.dead + h.cancelled, 0) / 60.0, 2),
    'last_5m', json_build_object('succeeded', coalesce(h5.succeeded, 0),
                                 'failed', coalesce(h5.failed, 0)))
    ORDER BY q.queue))::text
  FROM q LEFT JOIN d USING (queue) LEFT JOIN h USING (queue) LEFT JOIN h5 USING (queue)
  LEFT JOIN queue_controls c ON c.queue = q.queue)";

// Any 64-bit constant unique to this project: one sampler at a time.
constexpr long long sampler_lock_key = 0x6a6f627368697374;  // "jobshist"

// The window [start, end): from the end of the last 10 s point (at most an
// hour back) to the start of the current 10 s bucket.
constexpr const char* window_sql = R"(
  SELECT greatest(coalesce(m + interval '10 seconds', b - interval '10 seconds'),
                  b - interval '1 hour')::text,
         b::text, m IS NULL OR m + interval '10 seconds' < b
  FROM (SELECT max(bucket) AS m FROM queue_history WHERE resolution = 10) AS last,
       (SELECT date_bin('10 seconds', now(), 'epoch') AS b) AS current)";

// One point per queue and resolution; a coarse bucket keeps the latest
// depths and adds the counts.
constexpr const char* sample_sql = R"(
  WITH q AS (SELECT unnest($3::text[]) AS queue),
  d AS (
    SELECT queue, count(*) FILTER (WHERE state = 'scheduled') AS scheduled,
           count(*) FILTER (WHERE state = 'queued') AS ready,
           count(*) FILTER (WHERE state = 'running') AS running
    FROM jobs WHERE state IN ('scheduled', 'queued', 'running') GROUP BY queue),
  -- Submissions are the jobs created in the window (created_at, the
  -- database's clock, as their events had), found through the primary key:
  -- job ids are UUIDv7 (common/job.cpp), the API host's time in their first
  -- 48 bits, made before the row's commit (up to the submitter's 10 s
  -- commit timeout) on a clock that may differ from the database's. So the
  -- ids read span the window from 20 s before to 10 s after; a host whose
  -- clock is off by more than 10 s has its submissions uncounted. (A BRIN
  -- index on created_at would blur: new row versions and reused space mix
  -- old and new rows in its page ranges.)
  ids AS (
    SELECT (lpad(to_hex(floor(extract(epoch FROM $1::timestamptz - interval '20 seconds')
                              * 1000)::bigint), 12, '0') || repeat('0', 20))::uuid AS lo,
           (lpad(to_hex(floor(extract(epoch FROM $2::timestamptz + interval '10 seconds')
                              * 1000)::bigint), 12, '0') || repeat('0', 20))::uuid AS hi),
  e AS (
    SELECT queue, sum(submitted) AS submitted, sum(succeeded) AS succeeded,
           sum(failed) AS failed, sum(dead) AS dead, sum(cancelled) AS cancelled
    FROM (
      -- Submissions are counted from the jobs rows (most have no event row).
      SELECT queue, count(*) AS submitted, 0 AS succeeded, 0 AS failed, 0 AS dead,
             0 AS cancelled
      FROM jobs WHERE id >= (SELECT lo FROM ids) AND id < (SELECT hi FROM ids)
        AND created_at >= $1::timestamptz AND created_at < $2::timestamptz
      GROUP BY queue
      UNION ALL
      SELECT queue, 0, 0, 0, count(*) FILTER (WHERE to_state = 'dead'),
             count(*) FILTER (WHERE to_state = 'cancelled')
      FROM job_events WHERE at >= $1::timestamptz AND at < $2::timestamptz
        AND to_state IN ('dead', 'cancelled')
      GROUP BY queue
      UNION ALL
      -- Attempts' ends (out of `running`) are in job_attempts, not job_events.
      SELECT queue, 0, count(*) FILTER (WHERE outcome = 'succeeded'),
             count(*) FILTER (WHERE outcome = 'failed'), count(*) FILTER (WHERE outcome = 'dead'),
             count(*) FILTER (WHERE outcome = 'cancelled')
      FROM job_attempts WHERE finished_at >= $1::timestamptz AND finished_at < $2::timestamptz
      GROUP BY queue) x
    GROUP BY queue)
  INSERT INTO queue_history AS h (queue, resolution, bucket, scheduled, ready, running, submitted,
                                  succeeded, failed, dead, cancelled)
  SELECT q.queue, r.s,
         date_bin(r.s * interval '1 second', $2::timestamptz - interval '10 seconds', 'epoch'),
         coalesce(d.scheduled, 0), coalesce(d.ready, 0), coalesce(d.running, 0),
         coalesce(e.submitted, 0), coalesce(e.succeeded, 0), coalesce(e.failed, 0),
         coalesce(e.dead, 0), coalesce(e.cancelled, 0)
  FROM q LEFT JOIN d USING (queue) LEFT JOIN e USING (queue), unnest($4::integer[]) AS r(s)
  ON CONFLICT (queue, resolution, bucket) DO UPDATE SET
    scheduled = excluded.scheduled, ready = excluded.ready, running = excluded.running,
    submitted = h.submitted + excluded.submitted, succeeded = h.succeeded + excluded.succeeded,
    failed = h.failed + excluded.failed, dead = h.dead + excluded.dead,
    cancelled = h.cancelled + excluded.cancelled)";

constexpr const char* prune_sql = R"(
  DELETE FROM queue_history h USING unnest($1::integer[], $2::integer[]) AS k(res, keep)
  WHERE h.resolution = k.res AND h.bucket < now() - k.keep * interval '1 second')";

constexpr const char* history_sql = R"(
  SELECT coalesce(json_object_agg(queue, points), '{}'::json)::text FROM (
    SELECT queue, json_agg(json_build_object('t', bucket, 'scheduled', scheduled, 'ready', ready,
             'running', running, 'submitted', submitted, 'succeeded', succeeded,
             'failed', failed, 'dead', dead, 'cancelled', cancelled) ORDER BY bucket) AS points
    FROM queue_history
    WHERE resolution = $1 AND bucket >= now() - $2 * interval '1 second'
    GROUP BY queue) AS p)";

std::string queue_array() {
  std::string out = "{";
  for (auto q : known_queues) out += (out.size() > 1 ? "," : "") + std::string(q);
  return out + "}";
}

std::string states_for(bulk_action a, bool running) {
  if (a == bulk_action::retry) return "{dead,failed}";
  if (a == bulk_action::requeue) return "{queued}";
  return running ? "{running}" : "{scheduled,queued,failed}";
}

long count_states(pqxx::connection& c, const tenant_id& t, const job_filter& f,
                  const std::string& states) {
  pqxx::read_transaction r(c);
  return r
      .exec_params(count_sql, t.value, f.queue, f.state, f.type, f.created_after, f.created_before,
                   f.text, states)[0][0]
      .as<long>();
}

// The jobs a step started at `since` would still take (count_requeue_sql,
// count_retry_sql).
long count_since(pqxx::connection& c, const char* sql, const tenant_id& t, const job_filter& f,
                 const std::string& states, const std::string& since) {
  pqxx::read_transaction r(c);
  return r
      .exec_params(sql, t.value, f.queue, f.state, f.type, f.created_after, f.created_before,
                   f.text, states, since)[0][0]
      .as<long>();
}

// One batch in its own transaction; the ids changed. `extra` follows the
// filter's nine parameters (requeue's start, $10).
template <typename... Extra>
std::vector<std::string> run_batch(pqxx::connection& c, const char* sql, bool notify,
                                   const tenant_id& t, const job_filter& f,
                                   const std::string& states, int n, const Extra&... extra) {
  pqxx::work w(c);
  std::vector<std::string> ids;
  for (const auto& row : w.exec_params(sql, t.value, f.queue, f.state, f.type, f.created_after,
                                       f.created_before, f.text, states, n, extra...))
    ids.push_back(row[0].template as<std::string>());
  if (notify && !ids.empty()) {
    std::string arr = "{";
    for (const auto& id : ids) arr += (arr.size() > 1 ? "," : "") + id;
    w.exec_params(notify_cancels_sql, std::string(cancel_channel), arr + "}");
  }
  w.commit();
  return ids;
}

}  // namespace

std::optional<std::string> job_events_json(pqxx::connection& c, const tenant_id& t,
                                           const job_id& id) {
  if (!is_uuid(id.value)) return std::nullopt;
  pqxx::read_transaction r(c);
  auto res = r.exec_params(events_sql, id.value, t.value);
  if (res.empty()) return std::nullopt;
  return "{\"events\":" + compact_json(std::string_view(res[0][0].c_str(), res[0][0].size())) + "}";
}

std::span<const std::string_view> bulk_states(bulk_action a) {
  static constexpr std::string_view cancel[] = {"scheduled", "queued", "failed", "running"};
  static constexpr std::string_view retry[] = {"dead", "failed"};
  static constexpr std::string_view requeue[] = {"queued"};
  if (a == bulk_action::retry) return retry;
  if (a == bulk_action::requeue) return requeue;
  return cancel;
}

long count_bulk(pqxx::connection& c, const tenant_id& t, const job_filter& f, bulk_action a) {
  long n = count_states(c, t, f, states_for(a, false));
  if (a == bulk_action::cancel) n += count_states(c, t, f, states_for(a, true));
  return n;
}

bulk_outcome apply_bulk(pqxx::connection& c, const tenant_id& t, const job_filter& f, bulk_action a,
                        const bulk_limits& l) {
  // Each step changes the jobs of one kind in batches: `batch(n)` changes up
  // to n and returns their ids, `left()` counts those it would still change.
  struct step {
    std::function<std::vector<std::string>(int)> batch;
    std::function<long()> left;
  };
  std::vector<step> steps;
  auto plain = [&](const char* sql, bool running, bool notify) {
    auto states = states_for(a, running);
    steps.push_back({[&c, &t, &f, sql, notify, states](int n) {
                       return run_batch(c, sql, notify, t, f, states, n);
                     },
                     [&c, &t, &f, states] { return count_states(c, t, f, states); }});
  };
  if (a == bulk_action::retry || a == bulk_action::requeue) {
    // Only jobs as they were before this call: one requeued here is queued
    // again at once, and one retried here may fail again before the loop
    // ends; neither may be taken a second time.
    std::string since;
    {
      pqxx::read_transaction r(c);
      since = r.exec("SELECT now()::text")[0][0].as<std::string>();
    }
    auto states = states_for(a, false);
    const char* sql = a == bulk_action::retry ? retry_batch_sql : requeue_batch_sql;
    const char* left = a == bulk_action::retry ? count_retry_sql : count_requeue_sql;
    steps.push_back(
        {[&c, &t, &f, states, since, sql](int n) {
           return run_batch(c, sql, false, t, f, states, n, since);
         },
         [&c, &t, &f, states, since, left] { return count_since(c, left, t, f, states, since); }});
  } else {
    plain(cancel_batch_sql, false, false);
    plain(request_cancel_batch_sql, true, true);
  }
  bulk_outcome out;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    for (;;) {
      long room = l.max_jobs - out.applied;
      if (room <= 0) {
        // Complete only if neither this step nor a later one (a cancel's
        // running jobs) has any left.
        out.complete = std::all_of(steps.begin() + static_cast<std::ptrdiff_t>(i), steps.end(),
                                   [](const step& s) { return s.left() == 0; });
        return out;
      }
      int n = static_cast<int>(std::min<long>(room, l.batch));
      auto ids = steps[i].batch(n);
      out.applied += static_cast<long>(ids.size());
      if (static_cast<int>(ids.size()) < n) break;
    }
  }
  return out;
}

bool set_queue_paused(pqxx::work& w, const std::string& queue, bool paused, const std::string& by) {
  bool changed = w.exec_params1(set_paused_sql, queue, paused, by)[0].as<bool>();
  w.exec_params("SELECT pg_notify($1, $2)", std::string(pause_channel), queue);
  return changed;
}

bool queue_paused(pqxx::connection& c, const std::string& queue) {
  pqxx::read_transaction r(c);
  auto res = r.exec_params("SELECT paused FROM queue_controls WHERE queue = $1", queue);
  return !res.empty() && res[0][0].as<bool>();
}

std::string queue_overview_json(pqxx::connection& c) {
  pqxx::read_transaction r(c);
  auto res = r.exec_params(overview_sql, queue_array());
  return compact_json(std::string_view(res[0][0].c_str(), res[0][0].size()));
}

bool sample_queue_history(pqxx::connection& c) {
  pqxx::work w(c);
  if (!w.exec_params("SELECT pg_try_advisory_xact_lock($1)", sampler_lock_key)[0][0].as<bool>())
    return false;
  auto win = w.exec(window_sql);
  if (!win[0][2].as<bool>()) return false;  // this bucket's point is written
  auto start = win[0][0].as<std::string>(), end = win[0][1].as<std::string>();
  std::string res = "{", keep = "{";
  for (const auto& h : history_ranges) {
    res += (res.size() > 1 ? "," : "") + std::to_string(h.resolution_s);
    keep += (keep.size() > 1 ? "," : "") + std::to_string(h.keep_s);
  }
  res += "}";
  keep += "}";
  w.exec_params(sample_sql, start, end, queue_array(), res);
  w.exec_params(prune_sql, res, keep);
  w.commit();
  return true;
}

std::optional<std::string> queue_history_json(pqxx::connection& c, const std::string& range) {
  for (const auto& h : history_ranges) {
    if (range != h.name) continue;
    pqxx::read_transaction r(c);
    auto res = r.exec_params(history_sql, h.resolution_s, h.keep_s);
    return "{\"range\":\"" + range + "\",\"resolution_s\":" + std::to_string(h.resolution_s) +
           ",\"queues\":" + compact_json(std::string_view(res[0][0].c_str(), res[0][0].size())) +
           "}";
  }
  return std::nullopt;
}

}  // namespace jobs
