// GET /v1/queues: the router's route and the platform's backend for it
// (common/queue_stats.hpp).
#include "api/async.hpp"
#include "api/platform.hpp"
#include "api/router.hpp"
#include "common/job.hpp"
#include "common/log.hpp"
#include "common/queue_stats.hpp"
#include "queues/brokers.hpp"

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace jobs {

boost::asio::awaitable<http_response> router::list_queues(const request_context& ctx) {
  auto body = co_await backend_.queue_stats();
  co_return json_response(http::status::ok, std::move(body), ctx.req);
}

boost::asio::awaitable<std::string> api_backend::queue_stats() {
  throw std::runtime_error("this backend has no queue statistics");
  co_return std::string();
}

// The broker's side of the numbers is read on a thread of the source's own,
// never while holding one of the pool's database connections: a broker that
// does not answer (frozen, its host gone) held one for up to its timeouts per
// request, and a dashboard polling GET /v1/queues then starved every other
// read of connections. Requests that arrive during a read wait for the next
// one, which serves them all; each waits at most broker_read_most.
struct platform_backend::stats_source {
  struct broker_read {
    std::map<std::string, broker_queue> queues;
    std::string error;  // empty: read
  };
  using done_fn = std::function<void(broker_read)>;

  std::optional<broker_list> brokers;  // the nodes, tried in turn
  int heartbeat_s = 0;
  scaling_policy defaults;

  std::mutex mu;
  std::condition_variable cv;
  std::vector<done_fn> waiting;  // under mu
  bool stopping = false;         // under mu
  std::thread reader;
  std::unique_ptr<amqp_connection> conn;  // the reader's; reopened after a failure

  ~stats_source() {
    {
      std::lock_guard lk(mu);
      stopping = true;
    }
    cv.notify_all();
    if (reader.joinable()) reader.join();
  }

  void read(done_fn done) {
    {
      std::lock_guard lk(mu);
      waiting.push_back(std::move(done));
    }
    cv.notify_one();
  }

  void run() {
    for (;;) {
      std::vector<done_fn> now;
      {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return stopping || !waiting.empty(); });
        if (stopping) return;
        now.swap(waiting);
      }
      broker_read r;
      try {
        r.queues = read_broker();
      } catch (const std::exception& e) {
        r.error = e.what();
      }
      for (auto& done : now) done(r);
    }
  }

  std::map<std::string, broker_queue> read_broker() {
    for (int attempt = 0;; ++attempt) {
      try {
        if (!conn) conn = brokers->connect(heartbeat_s);
        std::map<std::string, broker_queue> out;
        for (auto q : known_queues) {
          auto n = inspect_queue(*conn, q);
          out[std::string(q)] = {n.messages, n.consumers};
        }
        try {
          auto dead = inspect_queue(*conn, dead_queue);
          out[std::string(dead_queue)] = {dead.messages, dead.consumers};
        } catch (const amqp_error& e) {
          // Deleted by hand (to apply a new bound): none kept until a
          // process declares it again at its start.
          if (!e.channel_closed || e.reply_code != AMQP_NOT_FOUND) throw;
          conn->reopen_channel();
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
  s->brokers.emplace(amqp_url);
  // Used only on requests: without heartbeats the broker does not close it
  // for missing them between requests.
  s->heartbeat_s = 0;
  s->defaults = defaults;
  s->reader = std::thread([raw = s.get()] { raw->run(); });
  stats_ = std::move(s);
}

boost::asio::awaitable<std::optional<std::map<std::string, broker_queue>>>
platform_backend::read_broker_queues(std::chrono::milliseconds most) {
  auto start = [s = stats_](std::function<void(stats_source::broker_read)> done) {
    s->read(std::move(done));
  };
  auto got = co_await await_callback_for<stats_source::broker_read>(std::move(start), most);
  if (!got) {
    log_warn("the message broker did not answer a queue read in time",
             {{"deadline_ms", static_cast<std::int64_t>(most.count())}});
    co_return std::nullopt;
  }
  if (!got->error.empty()) {
    log_warn("cannot read the broker's queues", {{"error", got->error}});
    co_return std::nullopt;
  }
  co_return std::move(got->queues);
}

boost::asio::awaitable<std::string> platform_backend::queue_stats() {
  if (!stats_) throw std::runtime_error("queue statistics are not enabled");
  auto broker = co_await read_broker_queues(broker_read_most);
  if (!broker) throw amqp_error("the message broker's queues could not be read");
  // By value: a call past its deadline may still run after this coroutine.
  auto op = [broker = std::move(*broker), s = stats_](pqxx::connection& c) {
    auto dead = broker.find(std::string(dead_queue));
    return queue_stats_json(read_queue_stats(c, broker, s->defaults),
                            dead == broker.end() ? 0 : dead->second.ready);
  };
  auto json = co_await db_call(reads_, op);
  co_return json;
}

// Here for stats_source: the metrics show what GET /v1/queues shows. The
// broker's gauges keep their last values when it does not answer in time.
boost::asio::awaitable<void> platform_backend::refresh_metrics(api_metrics& m) {
  m.broker_accepting.set(pub_.accepting() ? 1 : 0);
  m.broker_blocked.set(pub_.blocked() ? 1 : 0);
  std::optional<std::map<std::string, broker_queue>> broker;
  auto began = std::chrono::steady_clock::now();
  if (stats_) broker = co_await read_broker_queues(metrics_refresh_most / 2);
  auto left = std::max(std::chrono::milliseconds(500),
                       metrics_refresh_most - std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  std::chrono::steady_clock::now() - began));
  auto read = [&m, broker = std::move(broker), s = stats_](pqxx::connection& c) {
    m.read_job_counts(c);
    if (s && broker) {
      m.set_queue_stats(read_queue_stats(c, *broker, s->defaults));
      // The broker answered: a dead-letter queue it does not list (deleted,
      // as when a new bound is applied) holds nothing, as GET /v1/queues says.
      auto dead = broker->find(std::string(dead_queue));
      m.dead_letter_messages.set(dead == broker->end() ? 0.0
                                                       : static_cast<double>(dead->second.ready));
    }
    return 0;
  };
  try {
    co_await db_call(reads_, read, left);
  } catch (...) {
    m.database_up.set(0);
    throw;
  }
  m.database_up.set(1);
}

}  // namespace jobs
