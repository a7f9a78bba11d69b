// GET /v1/queues: the router's route and the platform's backend for it
// (common/queue_stats.hpp).
#include "api/async.hpp"
#include "api/platform.hpp"
#include "api/router.hpp"
#include "common/job.hpp"
#include "common/queue_stats.hpp"

namespace jobs {

boost::asio::awaitable<http_response> router::list_queues(const request_context& ctx) {
  auto body = co_await backend_.queue_stats();
  co_return json_response(http::status::ok, std::move(body), ctx.req);
}

boost::asio::awaitable<std::string> api_backend::queue_stats() {
  throw std::runtime_error("this backend has no queue statistics");
  co_return std::string();
}

struct platform_backend::stats_source {
  amqp_address broker;
  int heartbeat_s = 0;
  scaling_policy defaults;
  std::mutex mu;
  std::unique_ptr<amqp_connection> conn;  ///< under mu; reopened after a failure

  std::map<std::string, broker_queue> read_broker() {
    std::lock_guard lk(mu);
    for (int attempt = 0;; ++attempt) {
      try {
        if (!conn) conn = std::make_unique<amqp_connection>(broker, heartbeat_s);
        std::map<std::string, broker_queue> out;
        for (auto q : known_queues) {
          auto n = inspect_queue(*conn, q);
          out[std::string(q)] = {n.messages, n.consumers};
        }
        return out;
      } catch (const amqp_error&) {
        // A connection idle past its heartbeats is closed by the broker: one more try.
        conn.reset();
        if (attempt > 0) throw;
      }
    }
  }
};

void platform_backend::enable_queue_stats(const std::string& amqp_url, scaling_policy defaults) {
  auto s = std::make_shared<stats_source>();
  s->broker = parse_amqp_url(amqp_url);
  // Used only on requests: without heartbeats the broker does not close it
  // for missing them between requests.
  s->heartbeat_s = 0;
  s->defaults = defaults;
  stats_ = std::move(s);
}

boost::asio::awaitable<std::string> platform_backend::queue_stats() {
  if (!stats_) throw std::runtime_error("queue statistics are not enabled");
  auto op = [s = stats_](pqxx::connection& c) {
    auto broker = s->read_broker();
    return queue_stats_json(read_queue_stats(c, broker, s->defaults));
  };
  auto json = co_await db_call(reads_, op);
  co_return json;
}

// Here for stats_source: the metrics show what GET /v1/queues shows.
boost::asio::awaitable<void> platform_backend::refresh_metrics(api_metrics& m) {
  auto read = [&m, s = stats_](pqxx::connection& c) {
    m.read_job_counts(c);
    if (s) m.set_queue_stats(read_queue_stats(c, s->read_broker(), s->defaults));
    return 0;
  };
  co_await db_call(reads_, read, metrics_refresh_most);
}

}  // namespace jobs
