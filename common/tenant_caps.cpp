#include "common/tenant_caps.hpp"

#include "common/store.hpp"

#include <fmt/format.h>

namespace jobs {

namespace {

// Key space of the per-tenant claim locks ("jobs" in ASCII); the second key
// is the tenant's hash (a collision only serialises two tenants' claims).
// Sorted, so that two claimers always lock in the same order.
constexpr const char* lock_tenants_sql = R"(
  SELECT pg_advisory_xact_lock(1785686643, k) FROM (
    SELECT DISTINCT hashtext(tenant_id) AS k FROM jobs WHERE id = ANY($1::uuid[]) ORDER BY 1) t)";

// Runs after the locks, so its snapshot holds every claim of these tenants
// committed before. `room`: how many more each tenant may start (a running
// row among the candidates, a lease taken over, is not counted twice). The
// claimable conditions (claimable_sql, as in claim_jobs()) are repeated in the
// UPDATE so that a row changed meanwhile is judged again on its new version.
// A row this worker already holds `running` is taken back, as in claim_jobs(),
// whatever the room (it is running already) and before the rows it does not
// hold take what room there is: it would otherwise be neither claimed nor
// deferred, and its message dropped while the job waited for its lease.
// started_at is the clock after the count (not the transaction's start, which
// may precede a wait for the lock), so the attempts' times show the cap held.
const std::string claim_capped_sql = fmt::format(R"(
  WITH c AS (
    SELECT j.id, j.tenant_id, j.state::text = 'running' AND j.worker_id = $2 AS own,
           row_number() OVER (PARTITION BY j.tenant_id
                              ORDER BY j.state::text = 'running' AND j.worker_id = $2 DESC,
                                       j.priority DESC, j.run_at, j.id) AS rn
    FROM jobs j
    WHERE j.id = ANY($1::uuid[]) AND {1}
  ), room AS (
    SELECT t.tenant_id, coalesce(l.max_running, $4) = 0 AS unlimited,
           coalesce(l.max_running, $4) - (
             SELECT count(*) FROM jobs r
             WHERE r.tenant_id = t.tenant_id AND r.state = 'running'
               AND r.id <> ALL($1::uuid[])) AS free
    FROM (SELECT DISTINCT tenant_id FROM c) t
    LEFT JOIN tenant_limits l ON l.tenant_id = t.tenant_id
  ), fits AS (
    SELECT c.id, c.own OR room.unlimited OR c.rn <= room.free AS fits
    FROM c JOIN room ON room.tenant_id = c.tenant_id
  ), claimed AS (
    UPDATE jobs j SET {0}
    FROM fits f
    WHERE j.id = f.id AND j.id = ANY($1::uuid[]) AND f.fits AND {1}
    RETURNING j.id::text, j.tenant_id, j.queue, j.type, j.payload::text, j.attempts,
              j.max_attempts, coalesce(j.timeout_ms, 0), coalesce(j.backoff_base_ms, 0),
              coalesce(j.backoff_cap_ms, 0), coalesce(j.backoff_jitter, ''),
              coalesce(j.trace_id, '')
  ), deferred AS (
    UPDATE jobs j SET state = 'scheduled', run_at = now() + $5 * interval '1 millisecond',
           updated_at = now()
    FROM fits f
    WHERE j.id = f.id AND j.id = ANY($1::uuid[]) AND NOT f.fits
      AND (j.state::text = 'queued' OR (j.state::text IN ('scheduled', 'failed') AND j.run_at <= now()))
    RETURNING j.id::text
  )
  SELECT true, * FROM claimed
  UNION ALL
  SELECT false, id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM deferred)",
                                                 claim_set_sql, own_or_claimable_sql);

}  // namespace

capped_claim claim_jobs_capped(pqxx::work& w, std::span<const std::string> ids,
                               const std::string& worker, std::chrono::milliseconds lease,
                               const tenant_caps& caps) {
  capped_claim out;
  if (!caps.enabled()) {
    out.claimed = claim_jobs(w, ids, worker, lease);
    return out;
  }
  if (ids.empty()) return out;
  auto array = uuid_array(ids);
  w.exec_params(lock_tenants_sql, array);
  auto res =
      w.exec_params(claim_capped_sql.c_str(), array, worker, static_cast<long long>(lease.count()),
                    caps.max_running, static_cast<long long>(caps.defer.count()));
  for (const auto& row : res) {
    if (!row[0].as<bool>()) {
      out.deferred.push_back(row[1].as<std::string>());
      continue;
    }
    out.claimed.push_back({row[1].as<std::string>(), row[2].as<std::string>(),
                           row[3].as<std::string>(), row[4].as<std::string>(),
                           row[5].as<std::string>(), row[6].as<int>(), row[7].as<int>(),
                           row[8].as<int>(), row[9].as<int>(), row[10].as<int>(),
                           row[11].as<std::string>(), row[12].as<std::string>()});
  }
  return out;
}

}  // namespace jobs
