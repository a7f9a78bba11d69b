#pragma once
// The supervisor's metrics (served by common/metrics_server.hpp on
// JOBS_SUPERVISOR_METRICS_PORT), updated at each tick with the values it
// writes to its pool rows, so they match GET /v1/queues:
//
//   jobs_supervisor_workers_desired{queue}       desired_workers() of the last signal
//   jobs_supervisor_workers_running{queue}       worker processes alive (draining included)
//   jobs_supervisor_workers_target{queue}        the target after the cool-downs
//   jobs_supervisor_workers_min|max{queue}       the pool's bounds
//   jobs_supervisor_queue_ready|unacked{queue}   the scaling inputs: broker messages,
//   jobs_supervisor_oldest_waiting_age_seconds{queue}  the oldest queued job's wait,
//   jobs_supervisor_completed_per_second{queue}  and the observed completion rate
//   jobs_supervisor_worker_restarts_total{queue} workers that died unasked (and were replaced)
//   jobs_supervisor_scale_events_total{queue,direction}  target changes, direction up|down
//
// Thread-safety: as metrics::registry.

#include "common/metrics.hpp"

namespace jobs {

struct supervisor_metrics {
  explicit supervisor_metrics(metrics::registry& reg)
      : desired(gauge(reg, "workers_desired", "Desired workers from the last scaling signal")),
        running(gauge(reg, "workers_running", "Worker processes alive, draining included")),
        target(gauge(reg, "workers_target", "The pool's target after the cool-downs")),
        min(gauge(reg, "workers_min", "The pool's minimum workers")),
        max(gauge(reg, "workers_max", "The pool's maximum workers")),
        ready(gauge(reg, "queue_ready", "Ready messages in the queue (scaling input)")),
        unacked(gauge(reg, "queue_unacked", "Unacknowledged messages (scaling input)")),
        oldest_age(gauge(reg, "oldest_waiting_age_seconds",
                         "The oldest queued job's wait (scaling input)")),
        completed_rate(
            gauge(reg, "completed_per_second", "Observed completion rate (scaling input)")),
        restarts(reg.add_counter("jobs_supervisor_worker_restarts_total",
                                 "Workers that exited without being asked", {"queue"})),
        scale_events(reg.add_counter("jobs_supervisor_scale_events_total",
                                     "Changes of a pool's target", {"queue", "direction"})) {}

  metrics::family<metrics::gauge>&desired, &running, &target, &min, &max, &ready, &unacked,
      &oldest_age, &completed_rate;
  metrics::family<metrics::counter>&restarts, &scale_events;

 private:
  static metrics::family<metrics::gauge>& gauge(metrics::registry& reg, const char* name,
                                                const char* help) {
    return reg.add_gauge(std::string("jobs_supervisor_") + name, help, {"queue"});
  }
};

}  // namespace jobs
