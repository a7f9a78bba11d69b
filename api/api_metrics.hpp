#pragma once
// The API process's metrics (served at GET /metrics by the router):
//
//   jobs_submitted_total{queue,type}                     jobs accepted (202), replays not counted
//   jobs_http_request_duration_seconds{method,route,status}  histogram; route is the
//                                                        route's template ("/v1/jobs/{id}"),
//                                                        "unmatched" for 404s
//   jobs_publish_confirm_seconds                         histogram: publish() to broker ack
//   jobs_publish_unconfirmed_total                       messages given up without a confirm
//                                                        (JOBS_PUBLISH_TIMEOUT_MS)
//   jobs_broker_accepting                                1 while submissions to run now are
//                                                        taken (publisher::accepting()), else 0
//   jobs_broker_blocked                                  1 while the broker blocks publishing
//                                                        (a memory or disk alarm), else 0
//   jobs_submit_commit_seconds                           histogram: one group commit of the
//                                                        submitter (its INSERT and commit)
//   jobs_submit_commit_jobs                              histogram: jobs per group commit
//   jobs_dead_letters_total{action}                      dead letters the dead-letter recovery
//                                                        handled: republished, buried (job
//                                                        ended dead), dropped
//   jobs_db_pool_connections|in_use|waiting{pool="api"}  (common/db_metrics.hpp)
//   jobs_queue_depth{queue}                              jobs queued (published, not yet claimed)
//   jobs_database_up                                     1 when the scrape read the job gauges
//                                                        from PostgreSQL, 0 when it could not
//                                                        (they then keep their last values)
//   jobs_queue_oldest_age_seconds{queue}                 age of the oldest queued job; 0 if none
//   jobs_queue_ready|unacked|consumers{queue}            as GET /v1/queues (common/queue_stats.hpp)
//   jobs_queue_workers{queue}, jobs_queue_workers_desired{queue}   the same
//   jobs_dead_letter_messages                            messages kept in jobs.dead
//   jobs_in_state{queue,state}                           jobs in each state (the final
//                                                        states: recounted every
//                                                        final_every, at most)
//
// The queue gauges are read at scrape time: depth, age and jobs_in_state
// from PostgreSQL (read_job_counts), the rest from GET /v1/queues' reader
// when the API has it enabled. The states a job is still in are counted at
// every scrape from their partial indexes, at a cost that follows the jobs
// in them; the final states (succeeded, dead, cancelled) need a scan of the
// whole table, which retention keeps for days, so they are recounted at most
// every `final_every` (JOBS_METRICS_FINAL_COUNT_S) and keep their last
// values in between.
//
// Thread-safety: as metrics::registry; read_job_counts from any thread, each on
// its own connection.

#include "common/db_metrics.hpp"
#include "common/metrics.hpp"
#include "common/queue_stats.hpp"
#include "common/schema.hpp"

#include <pqxx/pqxx>

#include <chrono>
#include <mutex>
#include <optional>

namespace jobs {

struct api_metrics {
  explicit api_metrics(metrics::registry& reg);
  /// jobs_submitted_total at 0 for every job type the schemas define.
  void know_job_types(const schema_registry& schemas);

  metrics::registry& registry;
  metrics::family<metrics::counter>& submitted;
  metrics::family<metrics::histogram>& http;
  metrics::histogram& confirm_seconds;
  metrics::counter& unconfirmed;
  metrics::gauge& broker_accepting;
  metrics::gauge& broker_blocked;
  metrics::histogram& commit_seconds;
  metrics::histogram& commit_jobs;
  metrics::family<metrics::counter>& dead_letters;
  db_pool_gauges pools;
  metrics::gauge& database_up;
  metrics::family<metrics::gauge>& depth;
  metrics::family<metrics::gauge>& oldest_age;
  metrics::family<metrics::gauge>& in_state;
  metrics::family<metrics::gauge>& ready;
  metrics::family<metrics::gauge>& unacked;
  metrics::family<metrics::gauge>& consumers;
  metrics::family<metrics::gauge>& workers;
  metrics::family<metrics::gauge>& workers_desired;
  metrics::gauge& dead_letter_messages;

  /// Sets depth, oldest_age and in_state from the jobs table; in_state's
  /// final states only when `final_every` has passed since they were last
  /// read (one caller recounts, concurrent ones keep the last values).
  void read_job_counts(pqxx::connection& c, std::chrono::steady_clock::time_point now =
                                                std::chrono::steady_clock::now());
  std::chrono::seconds final_every{60};  ///< 0: at every call
  /// The statement read_job_counts runs at every call (for tests of its plan).
  static std::string open_counts_statement();
  /// Sets ready, unacked, consumers, workers and workers_desired.
  void set_queue_stats(const std::vector<queue_stats>& stats);

 private:
  std::mutex final_mutex_;
  std::optional<std::chrono::steady_clock::time_point> final_read_;  // guarded
};

}  // namespace jobs
