#pragma once
// jobs-supervisor: runs the worker pools of one host, scaled by queue depth.
//
// For each pool (a queue with a scaling policy, common/scaling.hpp) it runs
// between min and max `jobs-worker --queue Q` processes. Every `interval`:
//   1. reads the signal: ready and consumers from the broker (passive
//      queue.declare), unacked, completion rate and oldest waiting age from
//      PostgreSQL (common/queue_stats.hpp), and its own running workers;
//   2. computes desired_workers() and applies the cool-downs (scaler.hpp),
//      logging each change of target with its inputs ("scaling");
//   3. starts workers up to the target; above it, drains the newest ones:
//      SIGTERM, on which a worker stops consuming, finishes and commits its
//      jobs in flight, and exits (workers/worker.hpp); a drain that
//      outlasts `drain_timeout` is ended with SIGKILL (its jobs are rescued
//      by their leases, like any crash);
//   4. writes its pools' heartbeat rows (worker_pools), which GET
//      /v1/queues reads.
// A worker that exits without being asked (a crash, kill -9) is replaced
// after a backoff: `restart_backoff`, doubling with each death in a row,
// up to 60 s; a worker that lived 60 s resets it. One that exits cleanly
// (status 0: stopped by a SIGTERM from elsewhere, drained) is replaced
// after `restart_backoff`, and is no death.
// Worker metrics ports: with `worker_metrics_port` set, workers cannot all
// bind that one port, so each gets base + slot (see the option below); slots
// are reused as workers exit, so they stay below the sum of the pools' max
// plus those still draining.
// stop() (SIGTERM, SIGINT) drains every worker, removes the heartbeat rows
// and makes run() return. If the supervisor itself dies, its workers get
// SIGTERM from the kernel (PR_SET_PDEATHSIG) and drain.
//
// Errors: run() throws only on bad options; a broker or database that is
// away is logged and the pools keep their size until it is back.
// Thread-safety: run() on the thread that blocked the signals (main).

#include "common/scaling.hpp"
#include "workers/supervisor/supervisor_metrics.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace jobs {

struct supervisor_options {
  std::string pg_url;
  std::string amqp_url;
  std::vector<pool_spec> pools;
  std::string worker_bin;  ///< the jobs-worker binary
  std::chrono::milliseconds interval{2000};
  std::chrono::milliseconds restart_backoff{1000};
  std::chrono::milliseconds drain_timeout{45000};
  supervisor_metrics* metrics = nullptr;  ///< when set, updated each tick (supervisor_metrics.hpp)
  /// > 0: each worker gets JOBS_WORKER_METRICS_PORT = this + its slot, the
  /// lowest index (0, 1, ...) no other live worker of this supervisor holds;
  /// 0: the workers inherit the variable as it is (unset or 0: no /metrics).
  int worker_metrics_port = 0;
};

/// Runs the pools until SIGTERM or SIGINT, which it takes itself: call
/// with those signals (and SIGCHLD) blocked, as block_supervisor_signals does.
void block_supervisor_signals();
int run_supervisor(const supervisor_options& o);

}  // namespace jobs
