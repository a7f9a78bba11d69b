#include "common/queue_stats.hpp"

#include "common/job.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace jobs {

namespace {

// One row per known queue; $1 is the queues, comma-separated, $2 the rate
// window in seconds.
constexpr const char* facts_sql = R"(
  SELECT q.queue,
    (SELECT count(*) FROM jobs j WHERE j.state = 'running' AND j.queue = q.queue),
    (SELECT count(*) FROM jobs j WHERE j.state = 'queued' AND j.queue = q.queue),
    (SELECT count(*) FROM job_attempts a
      WHERE a.finished_at > now() - $2 * interval '1 second' AND a.queue = q.queue),
    (SELECT coalesce(extract(epoch FROM now() - min(j.queued_at)), 0)::float8 FROM jobs j
      WHERE j.state = 'queued' AND j.queue = q.queue),
    coalesce((SELECT c.paused FROM queue_controls c WHERE c.queue = q.queue), false)
  FROM unnest(string_to_array($1, ',')) AS q(queue))";

constexpr const char* pools_sql = R"(
  SELECT queue, running, min_workers, max_workers, target_backlog_per_worker, target_drain_s,
         max_wait_s, scale_up_cooldown_ms, scale_down_cooldown_ms
  FROM worker_pools WHERE expires_at > now() ORDER BY heartbeat_at DESC)";

constexpr const char* heartbeat_sql = R"(
  INSERT INTO worker_pools (supervisor_id, queue, running, desired, min_workers, max_workers,
                            target_backlog_per_worker, target_drain_s, max_wait_s,
                            scale_up_cooldown_ms, scale_down_cooldown_ms, heartbeat_at, expires_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now(), now() + $12 * interval '1 millisecond')
  ON CONFLICT (supervisor_id, queue) DO UPDATE SET
    running = excluded.running, desired = excluded.desired,
    min_workers = excluded.min_workers, max_workers = excluded.max_workers,
    target_backlog_per_worker = excluded.target_backlog_per_worker,
    target_drain_s = excluded.target_drain_s, max_wait_s = excluded.max_wait_s,
    scale_up_cooldown_ms = excluded.scale_up_cooldown_ms,
    scale_down_cooldown_ms = excluded.scale_down_cooldown_ms,
    heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at)";

double round3(double v) { return std::round(v * 1000) / 1000; }

}  // namespace

queue_signal queue_stats::signal() const {
  return {.ready = ready,
          .unacked = unacked,
          .oldest_waiting_age_s = oldest_waiting_age_s,
          .completed_per_s = completed_per_s,
          .running = running};
}

std::vector<queue_stats> read_queue_stats(pqxx::connection& c,
                                          const std::map<std::string, broker_queue>& broker,
                                          const scaling_policy& defaults) {
  std::string names;
  for (auto q : known_queues) names += (names.empty() ? "" : ",") + std::string(q);
  pqxx::read_transaction r(c);
  std::vector<queue_stats> out;
  for (const auto& row : r.exec_params(facts_sql, names, static_cast<long>(rate_window.count()))) {
    queue_stats s;
    s.name = row[0].as<std::string>();
    s.policy = defaults;
    auto b = broker.find(s.name);
    if (b != broker.end()) {
      s.ready = b->second.ready;
      s.consumers = b->second.consumers;
    }
    long running_jobs = row[1].as<long>();
    long queued_jobs = row[2].as<long>();
    s.unacked = running_jobs + std::max(0L, queued_jobs - s.ready);
    s.completed_per_s = static_cast<double>(row[3].as<long>()) / rate_window.count();
    s.oldest_waiting_age_s = std::max(0.0, row[4].as<double>());
    s.paused = row[5].as<bool>();
    out.push_back(std::move(s));
  }
  for (const auto& row : r.exec(pools_sql)) {
    auto name = row[0].as<std::string>();
    auto it = std::find_if(out.begin(), out.end(), [&](auto& s) { return s.name == name; });
    if (it == out.end()) continue;
    // Rows come newest first: the newest supervisor's policy wins.
    if (!it->supervised) {
      it->supervised = true;
      it->policy.min_workers = row[2].as<int>();
      it->policy.max_workers = row[3].as<int>();
      it->policy.target_backlog_per_worker = row[4].as<double>();
      it->policy.target_drain_s = row[5].as<double>();
      it->policy.max_wait_s = row[6].as<double>();
      it->policy.scale_up_cooldown = std::chrono::milliseconds(row[7].as<long>());
      it->policy.scale_down_cooldown = std::chrono::milliseconds(row[8].as<long>());
    }
    it->running += row[1].as<int>();
  }
  for (auto& s : out) {
    if (!s.supervised) s.running = static_cast<int>(s.consumers);
    // A paused queue's backlog waits for an admin, not for more workers.
    s.desired = s.paused ? s.policy.min_workers : desired_workers(s.signal(), s.policy);
  }
  return out;
}

std::string queue_stats_json(const std::vector<queue_stats>& queues, unsigned dead_letters) {
  std::string out = R"({"queues":[)";
  for (std::size_t i = 0; i < queues.size(); ++i) {
    const auto& q = queues[i];
    out += fmt::format(
        R"({}{{"name":"{}","ready":{},"unacked":{},"consumers":{},"workers":{{"running":{},)"
        R"("desired":{},"min":{},"max":{},"supervised":{}}},"completed_per_s":{},)"
        R"("oldest_waiting_age_s":{},"paused":{}}})",
        i ? "," : "", q.name, q.ready, q.unacked, q.consumers, q.running, q.desired,
        q.policy.min_workers, q.policy.max_workers, q.supervised, round3(q.completed_per_s),
        round3(q.oldest_waiting_age_s), q.paused);
  }
  return out + fmt::format(R"(],"dead_letters":{}}})", dead_letters);
}

void write_pool_heartbeat(pqxx::connection& c, const std::string& supervisor_id,
                          const std::string& queue, int running, int desired,
                          const scaling_policy& p, std::chrono::milliseconds ttl) {
  pqxx::work w(c);
  w.exec_params(heartbeat_sql, supervisor_id, queue, running, desired, p.min_workers, p.max_workers,
                p.target_backlog_per_worker, p.target_drain_s, p.max_wait_s,
                static_cast<long>(p.scale_up_cooldown.count()),
                static_cast<long>(p.scale_down_cooldown.count()), static_cast<long>(ttl.count()));
  w.commit();
}

void delete_pool_heartbeats(pqxx::connection& c, const std::string& supervisor_id) {
  pqxx::work w(c);
  w.exec_params("DELETE FROM worker_pools WHERE supervisor_id = $1", supervisor_id);
  w.commit();
}

}  // namespace jobs
