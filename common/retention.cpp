#include "common/retention.hpp"

#include <pqxx/transaction>

#include <utility>

namespace jobs {

namespace {

// job_attempts and job_events have no foreign key to jobs (checking one
// costs the hot path a query and a row lock per row; migration 0017), so a
// job's rows in both are deleted here by job id, in the statement that
// deletes the job. The oldest finished rows are found through jobs_finished
// (BRIN on finished_at, migration 0016).
constexpr const char* prune_sql = R"(
  WITH gone AS (
    DELETE FROM jobs WHERE id IN (
      SELECT id FROM jobs
      WHERE state = $1::job_state AND finished_at < now() - $2 * interval '1 second'
      LIMIT $3 FOR UPDATE SKIP LOCKED)
    RETURNING id
  ), attempts AS (
    DELETE FROM job_attempts WHERE job_id IN (SELECT id FROM gone)
  ), events AS (
    DELETE FROM job_events WHERE job_id IN (SELECT id FROM gone)
  )
  SELECT count(*) FROM gone)";

}  // namespace

long prune_finished_jobs(pqxx::connection& c, const retention_policy& p) {
  long total = 0;
  const std::pair<const char*, std::chrono::seconds> states[] = {
      {"succeeded", p.succeeded}, {"cancelled", p.cancelled}, {"dead", p.dead}};
  for (const auto& [state, keep] : states) {
    if (keep.count() <= 0) continue;
    for (int i = 0; i < p.max_batches; ++i) {
      pqxx::work w(c);
      auto n = w.exec_params(prune_sql, state, static_cast<long long>(keep.count()), p.batch)[0][0]
                   .as<long>();
      w.commit();
      total += n;
      if (n < p.batch) break;
    }
  }
  return total;
}

}  // namespace jobs
