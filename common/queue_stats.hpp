#pragma once
// What `GET /v1/queues` shows and the supervisor scales on: per queue the
// broker's counts, PostgreSQL's view of the work, the supervised workers
// and the desired worker count (common/scaling.hpp).
//
//   ready                 messages in the queue, not delivered (the broker:
//                         passive queue.declare)
//   unacked               delivered to a worker, not acknowledged yet:
//                         the queue's `running` jobs plus its `queued` jobs
//                         beyond `ready` (prefetched by a worker, not claimed
//                         yet), from PostgreSQL; never negative
//   consumers             consumers of the queue (the broker)
//   workers.running       worker processes of live supervisors (summed over
//                         them; without any supervisor, the broker's consumers)
//   workers.desired       desired_workers() of the numbers here
//   workers.min/max       the newest live supervisor's policy, else defaults
//   completed_per_s       attempts of the queue's jobs finished in the last
//                         `rate_window` (60 s), per second
//   oldest_waiting_age_s  age of the oldest `queued` job since it was queued
//   paused                an admin paused the queue (common/admin_store.hpp): its
//                         workers take nothing, and desired stays at min
//
// Supervisors publish their pools with write_pool_heartbeat; a row lives
// until `expires_at`, so a dead supervisor's rows vanish by themselves.
// Functions throw pqxx errors. Thread-safety: caller-owned connections.

#include "common/scaling.hpp"

#include <pqxx/pqxx>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace jobs {

inline constexpr std::chrono::seconds rate_window{60};

/// The broker's counts of one queue.
struct broker_queue {
  long ready = 0;
  long consumers = 0;
};

struct queue_stats {
  std::string name;
  long ready = 0;
  long unacked = 0;
  long consumers = 0;
  int running = 0;
  int desired = 0;
  bool supervised = false;  ///< some live supervisor runs this queue's pool
  scaling_policy policy;
  double completed_per_s = 0;
  double oldest_waiting_age_s = 0;
  bool paused = false;
  queue_signal signal() const;
};

/// Every known queue (common/job.hpp) with PostgreSQL's facts, the live
/// pools and `broker` (queues missing there count 0) combined; policies of
/// unsupervised queues are `defaults`.
std::vector<queue_stats> read_queue_stats(pqxx::connection& c,
                                          const std::map<std::string, broker_queue>& broker,
                                          const scaling_policy& defaults);

/// {"queues":[{name, ready, unacked, consumers, workers:{running, desired,
/// min, max}, completed_per_s, oldest_waiting_age_s, paused}, …]}
std::string queue_stats_json(const std::vector<queue_stats>& queues, unsigned dead_letters);

/// Upserts the supervisor's row for `queue`, alive for `ttl`.
void write_pool_heartbeat(pqxx::connection& c, const std::string& supervisor_id,
                          const std::string& queue, int running, int desired,
                          const scaling_policy& p, std::chrono::milliseconds ttl);
/// Removes the supervisor's rows (at its stop).
void delete_pool_heartbeats(pqxx::connection& c, const std::string& supervisor_id);

}  // namespace jobs
