#pragma once
// How many workers a queue wants: one pure function, used by the
// supervisor (workers/supervisor/) to scale and by the API (`GET
// /v1/queues`) to show the same number to any external autoscaler.
//
// The signal counts work waiting *and* in flight:
//   backlog   = ready + unacked (messages in the queue, and those delivered
//               to workers and not yet acknowledged: running or prefetched)
//   by_backlog = ceil(backlog / target_backlog_per_worker)
//   by_drain   = ceil(backlog / (target_drain_s * rate_per_worker)), when a
//               drain-time target is set and a completion rate was observed
//               (rate_per_worker = completed_per_s / running)
//   desired   = max(by_backlog, by_drain), and at least running + 1 when the
//               oldest waiting job has waited over max_wait_s (falling behind)
//   clamped to [min_workers, max_workers]; an empty queue wants min_workers.
// Cool-downs are not in here: the supervisor applies them to this number.
//
// Policies come from `JOBS_SUPERVISOR_POOLS` (parse_pools below):
//   queue=MIN..MAX[,backlog=N][,drain_s=N][,max_wait_s=N][,up_ms=N][,down_ms=N][;queue=…]
// e.g. "processing=1..8,backlog=20;email=1..2;webhooks=1..2".
//
// Thread-safety: pure functions.

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace jobs {

struct config;

struct scaling_policy {
  int min_workers = 1;
  int max_workers = 4;
  double target_backlog_per_worker = 16;  ///< ready + unacked messages per worker
  double target_drain_s = 0;              ///< 0: off
  double max_wait_s = 0;                  ///< 0: off
  std::chrono::milliseconds scale_up_cooldown{10000};
  std::chrono::milliseconds scale_down_cooldown{60000};
};

/// What the supervisor and the API observe of one queue.
struct queue_signal {
  long ready = 0;
  long unacked = 0;
  double oldest_waiting_age_s = 0;
  double completed_per_s = 0;
  int running = 0;  ///< workers running now
};

/// The JOBS_SUPERVISOR_* defaults of `c` (a pool's min..max come from its spec).
scaling_policy policy_defaults(const config& c);

/// The desired number of workers (see the formula above).
int desired_workers(const queue_signal& s, const scaling_policy& p);

struct pool_spec {
  std::string queue;
  scaling_policy policy;
};

struct pools_error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
/// Parses JOBS_SUPERVISOR_POOLS over the `defaults`; throws pools_error
/// naming the bad part (unknown queue or key, min > max, max < 1, ...).
std::vector<pool_spec> parse_pools(std::string_view spec, const scaling_policy& defaults);

}  // namespace jobs
