#pragma once
// A worker process's metrics (served by common/metrics_server.hpp on
// JOBS_WORKER_METRICS_PORT):
//
//   jobs_completed_total{queue,type,state}          attempts recorded, by the state they left
//                                                   the job in (succeeded, failed, dead,
//                                                   cancelled, scheduled)
//   jobs_attempt_duration_seconds{queue,type}       histogram: claim to recorded outcome
//   jobs_in_flight{queue}                           jobs claimed and not yet recorded
//   jobs_db_pool_connections|in_use|waiting{pool="worker"}  the coordinator's connection
//
// Thread-safety: as metrics::registry.

#include "common/db_metrics.hpp"
#include "common/job.hpp"
#include "common/metrics.hpp"

#include <string_view>

namespace jobs {

struct worker_metrics {
  explicit worker_metrics(metrics::registry& reg)
      : completed(reg.add_counter("jobs_completed_total", "Job attempts recorded, by outcome",
                                  {"queue", "type", "state"})),
        attempt_seconds(reg.add_histogram("jobs_attempt_duration_seconds",
                                          "Job attempt time, claim to recorded outcome",
                                          {"queue", "type"}, metrics::duration_buckets())),
        in_flight(reg.add_gauge("jobs_in_flight", "Jobs claimed and not yet recorded", {"queue"})),
        lost(reg.add_counter("jobs_lost_attempts_total",
                             "Attempts whose outcome was not recorded: the job was taken from "
                             "this worker after its lease ran out",
                             {"queue"})),
        pools(reg) {}

  void record(std::string_view queue, std::string_view type, job_state s, double seconds) {
    completed.with({queue, type, to_string(s)}).inc();
    attempt_seconds.with({queue, type}).observe(seconds);
  }

  metrics::family<metrics::counter>& completed;
  metrics::family<metrics::histogram>& attempt_seconds;
  metrics::family<metrics::gauge>& in_flight;
  metrics::family<metrics::counter>& lost;
  db_pool_gauges pools;
};

}  // namespace jobs
