#pragma once
// Fair scheduling across tenants: a cap on the jobs each tenant has running
// at once, over every worker process, so one tenant's flood cannot take all
// the handler threads from the others.
//
// The cap is enforced by the claim itself. claim_jobs_capped() first takes a
// transaction-level advisory lock per tenant of the batch (in one order, so
// claimers never deadlock), then, in one statement, counts each tenant's
// running jobs (index jobs_tenant_state) and claims at most the room left.
// Claimers of the same tenant thus see each other's committed claims, and
// the count never goes over the cap. A claimable job over its tenant's cap is
// deferred: back to `scheduled` for `defer` from now, its attempt not
// counted, and the scheduler republishes it when due, so the messages of
// other tenants behind it in the queue are served meanwhile.
//
// Settings (common/config.hpp):
//   JOBS_TENANT_MAX_RUNNING  default cap per tenant; 0 (default): no caps,
//                            and the claim is the plain one (no extra query)
//   JOBS_TENANT_DEFER_MS     how long a job over its cap waits (1000)
// Per-tenant overrides: rows of the table tenant_limits (tenant_id,
// max_running; 0 there means no cap for that tenant). Every worker process
// must run with the same JOBS_TENANT_MAX_RUNNING.
//
// Throws pqxx errors; callers commit. Thread-safety: free functions on
// caller-owned transactions.

#include "common/store.hpp"

#include <chrono>
#include <span>
#include <string>
#include <vector>

namespace jobs {

struct tenant_caps {
  int max_running = 0;  ///< per tenant without a tenant_limits row; 0: caps off
  std::chrono::milliseconds defer{1000};
  bool enabled() const { return max_running > 0; }
};

struct capped_claim {
  std::vector<claimed_job> claimed;
  std::vector<std::string> deferred;  ///< over their tenant's cap: scheduled again
};

/// claim_jobs() under the tenants' caps: the jobs among `ids` that fit are
/// claimed, those over their tenant's cap deferred, the rest (not claimable)
/// in neither list. With caps off, the same as claim_jobs().
capped_claim claim_jobs_capped(pqxx::work& w, std::span<const std::string> ids,
                               const std::string& worker, std::chrono::milliseconds lease,
                               const tenant_caps& caps);

}  // namespace jobs
