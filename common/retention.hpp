#pragma once
// Retention of finished jobs: a job `succeeded`, `cancelled` or `dead` for
// longer than its state's retention is deleted with its attempts and events
// (the API runs prune_finished_jobs every minute, api/periodic_task.hpp).
// Jobs in any other state are never deleted. A retention of zero keeps that
// state for ever. Deleting a job also frees its idempotency key.
//
// Several API processes may prune at once: rows are taken FOR UPDATE SKIP
// LOCKED, so each deletes different ones.

#include <pqxx/connection>

#include <chrono>

namespace jobs {

struct retention_policy {
  std::chrono::seconds succeeded{7 * 86400};  ///< 0: kept for ever
  std::chrono::seconds cancelled{7 * 86400};
  std::chrono::seconds dead{30 * 86400};
  int batch = 1000;       ///< jobs deleted per transaction
  int max_batches = 100;  ///< per state and call, so that one call stays short
};

/// Deletes the finished jobs past their retention; returns how many.
long prune_finished_jobs(pqxx::connection& c, const retention_policy& p);

}  // namespace jobs
