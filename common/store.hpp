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
// Implemented by concern: store.cpp (reads, cancel, retry, the id and JSON
// helpers), store_submit.cpp (the group commit's INSERT, publish batches),
// store_claims.cpp (the worker's claims, completions and leases),
// store_recovery.cpp (the scheduler's due, unconfirmed and lost jobs; the
// dead-letter recovery's requeue check and burials).

#include "common/job.hpp"

#include <pqxx/pqxx>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace jobs {

/// PostgreSQL's JSON text made compact: no whitespace outside strings
/// (numbers keep their text).
std::string compact_json(std::string_view text);

/// '{a,b,c}' for a uuid[] parameter; the ids were checked to be UUIDs by the
/// callers, and anything else is refused here (std::invalid_argument) rather
/// than quoted.
std::string uuid_array(std::span<const std::string> ids);

/// SQL: true when the row `j` of jobs may be claimed now (queued; scheduled
/// or failed and due; running with its lease expired and no cancel asked).
/// A CASE on purpose: statements that name their rows by id must look them
/// up by the primary key. A plain `state = 'queued' OR …` lets the planner
/// read the partial indexes on the state (jobs_waiting, jobs_active,
/// jobs_due) whole instead, from row estimates that are stale for a column
/// that changes this often: a 6-row claim visited 1,900 buffers that way.
inline constexpr const char* claimable_sql = R"(CASE j.state
      WHEN 'queued' THEN true
      WHEN 'scheduled' THEN j.run_at <= now()
      WHEN 'failed' THEN j.run_at <= now()
      WHEN 'running' THEN j.lease_expires_at < now() AND j.cancel_requested_at IS NULL
      ELSE false END)";

/// SQL: the row `j`'s queue is not paused (queue_controls: an admin's pause).
/// A claim tests it in its own snapshot, so once a pause has committed no
/// claim takes a job of that queue, whenever its workers hear of it.
inline constexpr const char* queue_not_paused_sql =
    "NOT EXISTS (SELECT 1 FROM queue_controls qc WHERE qc.queue = j.queue AND qc.paused)";

/// SQL: claimable_sql in a queue not paused, or the row `j` is one this
/// worker (`$2`) already holds running: its own claim whose COMMIT it could
/// not confirm (the connection lost during it), taken back as it is.
inline const std::string own_or_claimable_sql =
    std::string("(j.state::text = 'running' AND j.worker_id = $2 OR ") + claimable_sql + " AND " +
    queue_not_paused_sql + ")";

/// Of the jobs `ids` a claim did not take: whether `queue` is paused now,
/// and which of them are claimable now (claimable_sql). A worker keeps the
/// messages of a paused queue for the resume, and claims again a job that
/// became claimable since (the pause lifted in between).
struct unclaimed_check {
  bool paused = false;
  std::vector<std::string> claimable;
};
unclaimed_check check_unclaimed(pqxx::transaction_base& t, const std::string& queue,
                                std::span<const std::string> ids);

/// SQL: the SET list of a claim of the row `j` by worker `$2` with a lease of
/// `$3` ms. A row taken back (own_or_claimable_sql) keeps its attempt count.
/// The start is the clock once the row is had, not the transaction's start,
/// which may precede a wait for a row lock (or the tenant caps' lock).
inline constexpr const char* claim_set_sql = R"(state = 'running',
         attempts = CASE WHEN j.state::text = 'running' AND j.worker_id = $2
                         THEN j.attempts ELSE j.attempts + 1 END,
         started_at = clock_timestamp(), worker_id = $2,
         lease_expires_at = clock_timestamp() + $3 * interval '1 millisecond', updated_at = now())";

struct new_job {
  job_id id;
  tenant_id tenant;
  std::string queue;
  std::string type;
  std::string payload_json;             ///< serialized, already schema-valid
  job_state state = job_state::queued;  ///< queued, or scheduled when run_at is in the future
  int priority = 0;
  int max_attempts = job_limits::default_max_attempts;
  std::string run_at;           ///< RFC 3339, empty for now
  int timeout_ms = 0;           ///< execution timeout per attempt; 0: the worker's default
  std::string idempotency_key;  ///< empty: none (common/idempotency.hpp)
  std::string request_hash;     ///< with a key: the submission's fingerprint
  int backoff_base_ms = 0;      ///< retry backoff of this job; 0: the worker's default
  int backoff_cap_ms = 0;       ///< 0: the worker's default
  std::string backoff_jitter;   ///< full, equal, none; empty: the worker's default
  std::string trace_id;         ///< of the submitting request (common/trace.hpp); empty: none
};

/// Inserts all rows in one statement (group commit: one round trip, one WAL
/// flush) and returns the ids inserted: a row whose idempotency key another
/// job of its tenant holds (inserted earlier in the same call included) is
/// skipped, and the caller looks up the holder (find_key_holders).
std::vector<std::string> insert_jobs(pqxx::work& w, std::span<const new_job> jobs);

/// True when a job of `jobs` has an idempotency key: its group commit then
/// goes through insert_jobs' ON CONFLICT path and the key look-ups.
bool has_idempotency_keys(std::span<const new_job> jobs);

struct inserted_jobs {
  std::vector<std::string> ids;  ///< every row, in order
  std::int64_t batch = 0;        ///< the publish batch of the queued ones; 0: none queued
};
/// Jobs without idempotency keys, and the publish batch of the queued ones
/// (record_publish_batch), in one statement: run it outside a transaction
/// block and it commits on its own, one round trip for a group commit.
inserted_jobs insert_unkeyed_jobs(pqxx::transaction_base& t, std::span<const new_job> jobs,
                                  std::chrono::milliseconds grace);

/// The job as the API shows it (JSON text), or nullopt when it does not
/// exist for this tenant.
std::optional<std::string> find_job_json(pqxx::connection& c, const tenant_id& t, const job_id& id);

struct job_filter {
  std::string queue;   ///< empty: any
  std::string state;   ///< empty: any; else a job_state name
  std::string before;  ///< cursor: only ids older than this one; empty: from the newest
  int limit = 50;
  std::string type;            ///< empty: any
  std::string created_after;   ///< RFC 3339, inclusive; empty: no bound
  std::string created_before;  ///< RFC 3339, exclusive; empty: no bound
  std::string text;  ///< empty: any; else the job's id or its first 8 or more characters, or a
                     ///< substring (any case) of its payload or last error
};
/// {"jobs":[…], "next_cursor": id|null} newest first.
std::string list_jobs_json(pqxx::connection& c, const tenant_id& t, const job_filter& f);
/// The statement list_jobs_json() runs ($1 tenant, $2 queue, $3 state, $4 before,
/// $5 limit, $6 type, $7 and $8 created after and before, $9 text), for tests of its plan.
const std::string& list_jobs_statement();

struct claimed_job {
  std::string id, tenant, queue, type, payload_json;
  int attempt = 0;
  int max_attempts = 0;
  int timeout_ms = 0;       ///< 0: the worker's default
  int backoff_base_ms = 0;  ///< 0: the worker's default retry policy
  int backoff_cap_ms = 0;
  std::string backoff_jitter;  ///< empty: the worker's default
  std::string trace_id;        ///< empty: none
  /// The worker's own number for this claim, unique in its process (an
  /// attempt number repeats once a retry resets the attempts). Not stored.
  std::uint64_t claim = 0;
};
/// Claims the claimable jobs among `ids` for `worker`; the rest are not
/// returned (already done, cancelled, running elsewhere or unknown). A
/// running job whose lease expired is taken over only if no cancel was
/// requested (the rescuer cancels those).
std::vector<claimed_job> claim_jobs(pqxx::transaction_base& w, std::span<const std::string> ids,
                                    const std::string& worker, std::chrono::milliseconds lease);

struct job_outcome {
  std::string id;
  int attempt = 0;
  job_state state = job_state::succeeded;  ///< succeeded, failed, dead, scheduled or cancelled
  std::string result_json;                 ///< for succeeded
  std::string error;                       ///< for failed/dead
  std::string run_at;                      ///< RFC 3339, for failed (retry) and scheduled (snooze)
};
/// Records outcomes of attempts this worker claimed, with an attempt row
/// each. Returns the ids that landed (the others lost a race, e.g. a cancel).
/// A job whose cancel was requested ends `cancelled` unless its outcome is
/// `succeeded` (the handler finished anyway), even if the worker missed the
/// request.
std::vector<std::string> complete_jobs(pqxx::transaction_base& w,
                                       std::span<const job_outcome> outcomes,
                                       const std::string& worker);

struct worker_round {
  std::vector<std::string> completed;  ///< as complete_jobs() returns
  std::vector<claimed_job> claimed;    ///< as claim_jobs() returns
};
/// complete_jobs(), then claim_jobs(), in one statement when there are both:
/// one round trip, and in a pqxx::nontransaction one implicit transaction.
/// A job named by both is completed, not claimed (a worker claims only what
/// it does not hold, so it should not happen).
worker_round complete_and_claim(pqxx::transaction_base& w, std::span<const job_outcome> outcomes,
                                std::span<const std::string> ids, const std::string& worker,
                                std::chrono::milliseconds lease);

/// Locks the rows of `outcomes` that this worker's attempt still owns (so
/// their completion will land) and returns their ids. Run first in the
/// completion transaction when some outcome has commit hooks.
std::vector<std::string> lock_owned_attempts(pqxx::work& w, std::span<const job_outcome> outcomes,
                                             const std::string& worker);

/// What extend_leases did: the jobs whose lease it extended (the others
/// are no longer this worker's: their lease ran out and they were taken),
/// and those among them whose cancel was requested (in case their NOTIFY
/// was missed).
struct lease_renewal {
  std::vector<std::string> extended, cancel_requested;
};
/// Extends the lease of jobs this worker is running.
lease_renewal extend_leases(pqxx::work& w, std::span<const std::string> ids,
                            const std::string& worker, std::chrono::milliseconds lease);

/// What cancel_job did.
enum class cancel_result {
  not_found,        ///< no such job for this tenant
  cancelled,        ///< it was scheduled, queued or failed: now cancelled, for good
  requested,        ///< it is running: its worker is asked to stop
  not_cancellable,  ///< it is already final
};
struct cancel_outcome {
  cancel_result result = cancel_result::not_found;
  job_state state = job_state::queued;  ///< the state the job was in
};
/// The channel on which cancel_job tells workers about running jobs; the
/// payload is the job id.
inline constexpr const char* cancel_channel = "jobs_cancel";
/// Cancels tenant `t`'s job under its row lock: a scheduled, queued or
/// failed job becomes cancelled (a worker that receives its message later
/// drops it); a running one gets cancel_requested_at and a NOTIFY on
/// `cancel_channel`, delivered when `w` commits.
cancel_outcome cancel_job(pqxx::work& w, const tenant_id& t, const job_id& id);

/// What retry_job did.
enum class retry_result {
  not_found,      ///< no such job for this tenant
  retried,        ///< it was dead or failed: scheduled to run now, attempts reset
  not_retryable,  ///< any other state
};
struct retry_outcome {
  retry_result result = retry_result::not_found;
  job_state state = job_state::dead;  ///< the state the job was in
};
/// A client's retry of tenant `t`'s dead or failed job: it becomes
/// `scheduled` for now with its attempts reset (its attempt history stays),
/// so the scheduler publishes it within one interval, crash-safe.
retry_outcome retry_job(pqxx::work& w, const tenant_id& t, const job_id& id);

struct due_job {
  std::string id, tenant, queue, type;
};
/// What a scheduler round has to do, read in one statement outside any
/// transaction: whether some scheduled or failed job is due, some publish
/// batch is past its deadline, some running job's lease has expired (each
/// kind's earliest time against now). Rows another scheduler holds count
/// too (the round's own locks then skip them).
struct round_work {
  bool due = false, unconfirmed = false, lost = false;
};
round_work pending_round_work(pqxx::connection& c);
/// Locks (SKIP LOCKED) up to `limit` scheduled or failed jobs whose run_at
/// has come; the caller publishes them, then `mark_queued` in the same transaction.
std::vector<due_job> lock_due_jobs(pqxx::work& w, int limit);
void mark_queued(pqxx::work& w, std::span<const std::string> ids);

/// The outbox of a group commit (schemas/migrations/0013_publish_batches.sql):
/// records the queued jobs `ids` about to be published, in the transaction
/// that inserts them; returns the batch's id. Unless settled within `grace`,
/// the recovery publishes those still queued.
std::int64_t record_publish_batch(pqxx::work& w, std::span<const std::string> ids,
                                  std::chrono::milliseconds grace);
/// Every job of these batches was confirmed (or withdrawn): forget them.
void settle_publish_batches(pqxx::work& w, std::span<const std::int64_t> batches);

struct unconfirmed_jobs {
  std::vector<std::int64_t> batches;  ///< past their deadline, locked (SKIP LOCKED)
  std::vector<due_job> jobs;          ///< their jobs still queued, locked
};
/// Up to `limit` batches whose confirms never all came (the API died
/// first). The caller publishes the jobs, then settles the batches in the
/// same transaction.
unconfirmed_jobs lock_unconfirmed_jobs(pqxx::work& w, int limit);

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

/// The jobs among `ids` (UUIDs) still `queued`: those whose dead-lettered
/// message must be published again (api/dead_letter_recovery.hpp).
std::vector<due_job> queued_among(pqxx::transaction_base& t, std::span<const std::string> ids);
/// A `queued` job no worker ever claimed ends `dead` with `error` (an event
/// records it). False when it was no longer queued.
bool bury_queued_job(pqxx::work& w, const std::string& id, const std::string& error);

}  // namespace jobs
