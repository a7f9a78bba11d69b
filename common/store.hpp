#pragma once
// The jobs tables (schemas/migrations) seen from C++: every read and every
// state transition the platform makes, each one SQL statement, batched.
//
// Transitions are compare-and-set: a claim only takes a `queued` job, a due
// `scheduled`/`failed` one whose publishing transaction has not committed
// yet, or a `running` one whose lease expired, a completion only lands on the attempt
// that claimed it. So a redelivered message, a late worker or a job cancelled
// meanwhile never moves a job backwards or runs it to completion twice.
//
// Functions take an open transaction or connection and throw pqxx errors;
// callers commit. Thread-safety: free functions on caller-owned connections.

#include "common/job.hpp"

#include <pqxx/pqxx>

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace jobs {

struct new_job {
  job_id id;
  tenant_id tenant;
  std::string queue;
  std::string type;
  std::string payload_json;             ///< serialized, already schema-valid
  job_state state = job_state::queued;  ///< queued, or scheduled when run_at is in the future
  int priority = 0;
  int max_attempts = job_limits::default_max_attempts;
  std::string run_at;  ///< RFC 3339, empty for now
};

/// Inserts all rows in one statement (group commit: one round trip, one WAL flush).
void insert_jobs(pqxx::work& w, std::span<const new_job> jobs);

/// The job as the API shows it (JSON text), or nullopt when it does not
/// exist for this tenant.
std::optional<std::string> find_job_json(pqxx::connection& c, const tenant_id& t, const job_id& id);

struct job_filter {
  std::string queue;   ///< empty: any
  std::string state;   ///< empty: any; else a job_state name
  std::string before;  ///< cursor: only ids older than this one; empty: from the newest
  int limit = 50;
};
/// {"jobs":[…], "next_cursor": id|null} newest first.
std::string list_jobs_json(pqxx::connection& c, const tenant_id& t, const job_filter& f);

struct claimed_job {
  std::string id, tenant, queue, type, payload_json;
  int attempt = 0;
  int max_attempts = 0;
};
/// Claims the claimable jobs among `ids` for `worker`; the rest are not
/// returned (already done, cancelled, running elsewhere or unknown).
std::vector<claimed_job> claim_jobs(pqxx::work& w, std::span<const std::string> ids,
                                    const std::string& worker, std::chrono::milliseconds lease);

struct job_outcome {
  std::string id;
  int attempt = 0;
  job_state state = job_state::succeeded;  ///< succeeded, failed, dead or scheduled
  std::string result_json;                 ///< for succeeded
  std::string error;                       ///< for failed/dead
  std::string run_at;                      ///< RFC 3339, for failed (retry) and scheduled (snooze)
};
/// Records outcomes of attempts this worker claimed, with an attempt row
/// each. Returns the ids that landed (the others lost a race, e.g. a cancel).
std::vector<std::string> complete_jobs(pqxx::work& w, std::span<const job_outcome> outcomes,
                                       const std::string& worker);

/// Extends the lease of jobs this worker is running.
void extend_leases(pqxx::work& w, std::span<const std::string> ids, const std::string& worker,
                   std::chrono::milliseconds lease);

struct due_job {
  std::string id, tenant, queue, type;
};
/// Locks (SKIP LOCKED) up to `limit` scheduled or failed jobs whose run_at
/// has come; the caller publishes them, then `mark_queued` in the same transaction.
std::vector<due_job> lock_due_jobs(pqxx::work& w, int limit);
void mark_queued(pqxx::work& w, std::span<const std::string> ids);

/// Locks (SKIP LOCKED) up to `limit` running jobs whose lease expired: their
/// worker died or lost PostgreSQL. `exhausted` when no attempt is left.
struct lost_job {
  due_job job;
  bool exhausted = false;
};
std::vector<lost_job> lock_lost_jobs(pqxx::work& w, int limit);
/// Ends the lost attempt (an attempt row with the error) and moves the jobs
/// to `to`: queued (the caller has republished them) or dead.
void rescue_lost_jobs(pqxx::work& w, std::span<const std::string> ids, job_state to);

}  // namespace jobs
