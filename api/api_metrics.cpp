#include "api/api_metrics.hpp"

#include "common/job.hpp"

#include <map>

namespace jobs {

namespace {
constexpr const char* queue_stats_sql = R"(
  SELECT queue, state::text, count(*),
         coalesce(extract(epoch FROM now() - min(queued_at) FILTER (WHERE state = 'queued')), 0)::float8
  FROM jobs GROUP BY queue, state)";

constexpr std::string_view all_states[] = {"scheduled", "queued", "running",  "succeeded",
                                           "failed",    "dead",   "cancelled"};
}  // namespace

api_metrics::api_metrics(metrics::registry& reg)
    : registry(reg),
      submitted(reg.add_counter("jobs_submitted_total", "Jobs accepted by the API (202)",
                                {"queue", "type"})),
      http(reg.add_histogram("jobs_http_request_duration_seconds",
                             "HTTP requests by route template and status",
                             {"method", "route", "status"}, metrics::latency_buckets())),
      confirm_seconds(reg.add_histogram("jobs_publish_confirm_seconds",
                                        "Time from publishing a job message to the broker's ack",
                                        {}, metrics::latency_buckets())
                          .with({})),
      commit_seconds(reg.add_histogram("jobs_submit_commit_seconds",
                                       "One group commit of submitted jobs (INSERT and commit)", {},
                                       metrics::latency_buckets())
                         .with({})),
      commit_jobs(reg.add_histogram("jobs_submit_commit_jobs", "Jobs per group commit", {},
                                    {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000})
                      .with({})),
      dead_letters(reg.add_counter("jobs_dead_letters_total",
                                   "Dead-lettered messages handled by the dead-letter recovery: "
                                   "republished, buried (the job ended dead) or dropped",
                                   {"action"})),
      pools(reg),
      depth(reg.add_gauge("jobs_queue_depth", "Jobs queued and not yet claimed", {"queue"})),
      oldest_age(reg.add_gauge("jobs_queue_oldest_age_seconds",
                               "Age of the oldest queued job (0: none)", {"queue"})),
      in_state(reg.add_gauge("jobs_in_state", "Jobs in each state now", {"queue", "state"})),
      ready(reg.add_gauge("jobs_queue_ready", "Messages in the broker's queue, not delivered",
                          {"queue"})),
      unacked(reg.add_gauge("jobs_queue_unacked", "Jobs delivered to workers, not acknowledged",
                            {"queue"})),
      consumers(
          reg.add_gauge("jobs_queue_consumers", "Consumers of the broker's queue", {"queue"})),
      workers(
          reg.add_gauge("jobs_queue_workers", "Worker processes of live supervisors", {"queue"})),
      workers_desired(reg.add_gauge("jobs_queue_workers_desired",
                                    "Worker processes the scaling policy asks for", {"queue"})) {}

void api_metrics::set_queue_stats(const std::vector<queue_stats>& stats) {
  for (const auto& q : stats) {
    ready.with({q.name}).set(static_cast<double>(q.ready));
    unacked.with({q.name}).set(static_cast<double>(q.unacked));
    consumers.with({q.name}).set(static_cast<double>(q.consumers));
    workers.with({q.name}).set(q.running);
    workers_desired.with({q.name}).set(q.desired);
  }
}

void api_metrics::read_job_counts(pqxx::connection& c) {
  pqxx::read_transaction tx(c);
  auto rows = tx.exec(queue_stats_sql);
  // Every known queue and state gets a value, 0 when it has no jobs.
  std::map<std::pair<std::string, std::string>, double> counts;
  std::map<std::string, double> ages;
  for (const auto& r : rows) {
    counts[{r[0].as<std::string>(), r[1].as<std::string>()}] = r[2].as<double>();
    if (r[1].as<std::string>() == "queued") ages[r[0].as<std::string>()] = r[3].as<double>();
  }
  for (auto q : known_queues) {
    std::string queue(q);
    for (auto s : all_states) {
      auto it = counts.find({queue, std::string(s)});
      in_state.with({q, s}).set(it == counts.end() ? 0 : it->second);
    }
    auto it = counts.find({queue, "queued"});
    depth.with({q}).set(it == counts.end() ? 0 : it->second);
    oldest_age.with({q}).set(ages.contains(queue) ? ages[queue] : 0);
  }
}

}  // namespace jobs
