#pragma once
// The worker daemon's engine: consumes one queue and runs its jobs.
//
// One coordinator thread owns the RabbitMQ consumer and a PostgreSQL
// connection; `concurrency` handler threads run the handlers, and up to
// `async_inflight` jobs of async handlers run beside them (their handlers
// only start on a thread; the prefetch is raised to hold that many too).
// For each round the coordinator:
//   1. receives deliveries (up to the prefetch window);
//   2. claims as many as there are free handler threads (or async slots), in one UPDATE
//      (compare-and-set from `queued`, and only while the queue is not
//      paused); a message whose job is not claimable (finished, cancelled,
//      running elsewhere) is acked and dropped, one whose queue was paused is
//      kept for the resume (check_unclaimed, common/store.hpp); with
//      per-tenant caps (common/tenant_caps.hpp), one over its tenant's cap is
//      deferred (scheduled again, attempt not counted) and acked;
//   3. commits the outcomes of finished handlers in one transaction, with an
//      attempt row each, and only then acks their messages;
//   4. extends the leases of running jobs every lease/3;
//   5. stops jobs that were cancelled or passed their timeout (below).
// A message that is not a job message is rejected to the dead-letter queue.
// If RabbitMQ or PostgreSQL goes away, it reconnects with backoff; unacked
// messages are redelivered by the broker and claims keep that safe.
//
// Cancellation and timeouts: the coordinator LISTENs on `jobs_cancel` (and
// sees cancel_requested_at when it renews leases, in case a NOTIFY was
// missed); a job running longer than its timeout_ms (default `job_timeout`)
// is stopped too. Stopping sets the job's stop flag (ctx.stop_requested()).
// A handler that then returns an error ends the attempt `cancelled`, or
// failed "timed out after N ms" (retried, or dead when no attempt is left);
// one that returns a result anyway succeeded. A handler that has not
// returned `cancel_grace` after its flag was set is written off: the job is
// recorded without it (compare-and-set from running) and its message acked
// once that lands;
// its thread stays busy until it returns, and its result is discarded. The
// coordinator wakes at least every 200 ms for this.
//
// stop() (from SIGTERM) stops consuming, lets running handlers finish and
// commits them (bounded by `shutdown`), then run() returns; what was
// received but not started goes back to the queue. When the drain deadline
// passes, every handler still running is asked to stop, and its job is
// handed back: `scheduled`, due now, the attempt not counted (what the
// handler returns is ignored unless it is a result; one that has not
// returned `cancel_grace` later is written off and its job handed back
// without it). If that cannot be recorded within the grace and 5 s more
// (the database away), run() returns anyway and the leases bring the jobs back.
//
// Thread-safety: construct, then run() on one thread; stop() from any.

#include "common/tenant_caps.hpp"
#include "workers/handler.hpp"
#include "workers/retry_policy.hpp"
#include "workers/worker_metrics.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

namespace jobs {

struct worker_options {
  std::string pg_url;
  std::string amqp_url;  ///< one amqp:// URL or a comma-separated list (queues/brokers.hpp)
  std::string queue = "processing";
  std::string worker_id;  ///< empty: host:pid:random
  int concurrency = 8;
  int async_inflight = 256;  ///< jobs of async handlers in flight at once (handler.hpp)
  int prefetch = 16;
  int heartbeat_s = 30;
  int delivery_limit = 10;
  long dead_letter_max = 100000;  ///< topology_options (queues/amqp.hpp)
  std::chrono::milliseconds lease{60000};
  std::chrono::milliseconds shutdown{30000};
  std::chrono::milliseconds job_timeout{300000};  ///< for jobs without their own timeout_ms
  std::chrono::milliseconds cancel_grace{5000};   ///< a stopped handler's time to return
  /// While the machine is busy, a small round waits this long after the last
  /// (workers/detail/round_hold.hpp, round_pace); 0: never.
  std::chrono::milliseconds round_gap{4};
  retry_policy retry;
  tenant_caps caps;  ///< per-tenant running caps; off by default
  /// tests only: "worker_crash_after_commit", "worker_broker_lost_after_commit",
  /// "worker_machine_busy" (the machine reads as fully busy: rounds are paced)
  std::string test_fault;
  worker_metrics* metrics = nullptr;  ///< when set, updated as jobs end (worker_metrics.hpp)
};

class worker {
 public:
  worker(worker_options o, const handler_registry& handlers);
  ~worker();
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  /// Blocks until stop() and the drain complete. Throws only for bad options.
  void run();
  void stop() noexcept;
  const std::string& id() const { return opts_.worker_id; }
  /// After run(): handlers that have not returned (written off, or left
  /// running when the worker gave up on recording them). The worker cannot
  /// be destroyed while they run: the process ends without waiting instead.
  std::size_t handlers_left() const;

  struct counters {
    /// failed: retry scheduled; snoozed: back to scheduled; dropped: a message
    /// whose job was not claimable; rejected: not a job message (dead-lettered);
    /// timed_out: jobs stopped by their timeout; deferred: over their tenant's cap;
    /// lost: attempts whose outcome was not recorded, the job having been
    /// taken from this worker (its lease ran out).
    std::atomic<long> claimed{0}, succeeded{0}, failed{0}, dead{0}, snoozed{0}, dropped{0},
        rejected{0}, cancelled{0}, timed_out{0}, deferred{0}, lost{0};
  };
  const counters& stats() const { return stats_; }

 private:
  struct impl;
  worker_options opts_;
  const handler_registry& handlers_;
  counters stats_;
  std::unique_ptr<impl> impl_;
};

}  // namespace jobs
