#include "api/api_metrics.hpp"

#include "common/job.hpp"

#include <map>

namespace jobs {

namespace {
// The states a job is still in, from their partial indexes (jobs_active,
// jobs_due): work proportional to the jobs in them, not to the table.
constexpr const char* open_counts_sql = R"(
  SELECT queue, state::text, count(*),
         coalesce(extract(epoch FROM now() - min(queued_at) FILTER (WHERE state = 'queued')), 0)::float8
  FROM jobs WHERE state IN ('scheduled', 'queued', 'running') GROUP BY queue, state
  UNION ALL
  SELECT queue, 'failed', count(*), 0 FROM jobs WHERE state = 'failed' GROUP BY queue)";

// The final states: no index holds them, so this reads the whole table.
constexpr const char* final_counts_sql = R"(
  SELECT queue, state::text, count(*) FROM jobs
  WHERE state IN ('succeeded', 'dead', 'cancelled') GROUP BY queue, state)";

constexpr std::string_view open_states[] = {"scheduled", "queued", "running", "failed"};
constexpr std::string_view final_states[] = {"succeeded", "dead", "cancelled"};

using counts = std::map<std::pair<std::string, std::string>, double>;

// Every known queue gets a value for each of `states`, 0 when it has none.
template <std::size_t N>
void set_counts(metrics::family<metrics::gauge>& g, const counts& got,
                const std::string_view (&states)[N]) {
  for (auto q : known_queues)
    for (auto s : states) {
      auto it = got.find({std::string(q), std::string(s)});
      g.with({q, s}).set(it == got.end() ? 0 : it->second);
    }
}
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
      unconfirmed(reg.add_counter("jobs_publish_unconfirmed_total",
                                  "Job messages given up without the broker's confirm in time", {})
                      .with({})),
      broker_accepting(reg.add_gauge("jobs_broker_accepting",
                                     "1 while the broker takes and confirms messages "
                                     "(submissions to run now are accepted), else 0",
                                     {})
                           .with({})),
      broker_blocked(reg.add_gauge("jobs_broker_blocked",
                                   "1 while the broker blocks publishing (a memory or disk "
                                   "alarm), else 0",
                                   {})
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
      database_up(reg.add_gauge("jobs_database_up",
                                "1 when this scrape read the job gauges from PostgreSQL, 0 "
                                "when it could not (they keep their last values)",
                                {})
                      .with({})),
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
                                    "Worker processes the scaling policy asks for", {"queue"})),
      dead_letter_messages(reg.add_gauge("jobs_dead_letter_messages",
                                         "Messages kept in the dead-letter queue jobs.dead "
                                         "(the newest JOBS_DEAD_LETTER_MAX)",
                                         {})
                               .with({})) {
  // Every series a dashboard plots exists from the start, at 0: a counter
  // first seen at its first increment shows "No data", and rate() misses
  // that increment.
  for (const char* action : {"republished", "buried", "dropped"}) dead_letters.with({action});
}

void api_metrics::know_job_types(const schema_registry& schemas) {
  for (auto queue : known_queues)
    for (const auto& type : schemas.types(queue)) submitted.with({queue, type});
}

void api_metrics::set_queue_stats(const std::vector<queue_stats>& stats) {
  for (const auto& q : stats) {
    ready.with({q.name}).set(static_cast<double>(q.ready));
    unacked.with({q.name}).set(static_cast<double>(q.unacked));
    consumers.with({q.name}).set(static_cast<double>(q.consumers));
    workers.with({q.name}).set(q.running);
    workers_desired.with({q.name}).set(q.desired);
  }
}

std::string api_metrics::open_counts_statement() { return open_counts_sql; }

void api_metrics::read_job_counts(pqxx::connection& c, std::chrono::steady_clock::time_point now) {
  pqxx::read_transaction tx(c);
  counts open;
  std::map<std::string, double> ages;
  for (const auto& r : tx.exec(open_counts_sql)) {
    open[{r[0].as<std::string>(), r[1].as<std::string>()}] = r[2].as<double>();
    if (r[1].as<std::string>() == "queued") ages[r[0].as<std::string>()] = r[3].as<double>();
  }
  set_counts(in_state, open, open_states);
  for (auto q : known_queues) {
    std::string queue(q);
    auto it = open.find({queue, "queued"});
    depth.with({q}).set(it == open.end() ? 0 : it->second);
    oldest_age.with({q}).set(ages.contains(queue) ? ages[queue] : 0);
  }
  {
    std::lock_guard lock(final_mutex_);
    if (final_read_ && now - *final_read_ < final_every) return;
    final_read_ = now;  // this call recounts; concurrent ones keep the last values
  }
  try {
    counts done;
    for (const auto& r : tx.exec(final_counts_sql))
      done[{r[0].as<std::string>(), r[1].as<std::string>()}] = r[2].as<double>();
    set_counts(in_state, done, final_states);
  } catch (...) {
    std::lock_guard lock(final_mutex_);
    final_read_.reset();  // the next scrape tries again
    throw;
  }
}

}  // namespace jobs
