#pragma once
// What the admin dashboard reads and does in PostgreSQL (schemas/migrations
// 0012_dashboard.sql): a job's state timeline, bulk retry/cancel/requeue of
// the jobs matching a filter, paused queues, and queue history.
//
// Job operations are confined to one tenant, like the rest of the API;
// queue-level figures (depths, history, pauses) are the platform's.
// Functions take a caller-owned connection and throw pqxx errors.
// Thread-safety: free functions on caller-owned connections.

#include "common/store.hpp"

#include <pqxx/pqxx>

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace jobs {

/// {"events":[{"from","to","attempt","worker_id","at"}]} oldest first, or
/// nullopt when the tenant has no such job.
std::optional<std::string> job_events_json(pqxx::connection& c, const tenant_id& t,
                                           const job_id& id);

enum class bulk_action { cancel, retry, requeue };
struct bulk_limits {
  int batch = 500;         ///< jobs changed per transaction
  long max_jobs = 100000;  ///< per request; the answer says when more remain
};
/// The states `a` applies to, in the order the docs list them.
std::span<const std::string_view> bulk_states(bulk_action a);
/// How many of the tenant's jobs match `f` (its cursor and limit ignored)
/// and are in a state the action applies to: cancel takes scheduled, queued,
/// failed and running jobs (a running one is asked to stop), retry takes
/// dead and failed ones, requeue queued ones (their messages published
/// again: for a broker that lost them, a purged queue or a lost volume).
long count_bulk(pqxx::connection& c, const tenant_id& t, const job_filter& f, bulk_action a);
struct bulk_outcome {
  long applied = 0;      ///< changed now (cancel: also the running ones asked to stop)
  bool complete = true;  ///< false: max_jobs reached and more matched
};
/// Applies the action to every matching job, `batch` rows per transaction
/// (rows locked by someone else are skipped), each change a normal
/// transition (cancel_job / retry_job semantics). Requeue hands the queued
/// jobs back to the scheduler (`scheduled`, due at their `run_at`), which
/// publishes them again with confirms; a job whose old message still
/// exists gets two, and the second is dropped at its claim. Only jobs
/// queued before the request are taken, never one it requeued.
bulk_outcome apply_bulk(pqxx::connection& c, const tenant_id& t, const job_filter& f, bulk_action a,
                        const bulk_limits& l = {});

/// The channel on which a queue's pause or resume is announced; the
/// payload is the queue's name.
inline constexpr const char* pause_channel = "jobs_queue_pause";
/// Pauses or resumes a queue (persisted; NOTIFY on `pause_channel` at
/// commit). False when it already was (nothing changed, `changed_at` kept).
bool set_queue_paused(pqxx::work& w, const std::string& queue, bool paused, const std::string& by);
bool queue_paused(pqxx::connection& c, const std::string& queue);

/// Per queue: scheduled, ready (queued), running, oldest_waiting_age_s,
/// paused, and from the last minute of history in/out rates and success and
/// failure counts. {"queues":[{...}], "sampled_at": ...}
std::string queue_overview_json(pqxx::connection& c);

/// History resolutions: 10 s points kept an hour, 1 min a day, 10 min a week.
struct history_range {
  const char* name;
  int resolution_s;
  int keep_s;
};
inline constexpr history_range history_ranges[] = {
    {"hour", 10, 3600}, {"day", 60, 86400}, {"week", 600, 7 * 86400}};
/// Records one 10 s point per queue (the window since the last one) and
/// folds it into the coarser buckets, then prunes what is past keeping.
/// Safe in several processes at once: one takes an advisory lock, the
/// others skip. Returns false when another process holds it or there was
/// nothing new to record.
bool sample_queue_history(pqxx::connection& c);
/// {"range","resolution_s","queues":{"<q>":[{"t",scheduled,ready,running,
/// submitted,succeeded,failed,dead,cancelled}]}} of the range named `range`
/// ("hour", "day", "week"); nullopt for another name.
std::optional<std::string> queue_history_json(pqxx::connection& c, const std::string& range);

}  // namespace jobs
