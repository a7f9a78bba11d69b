// ctest-labels: dashboard
// Pausing a queue against the real API, worker, RabbitMQ and PostgreSQL: a
// worker keeps what it received but had not started, so pausing and
// resuming never spends the quorum queue's delivery limit on a job.
#include "common/db.hpp"
#include "queues/amqp.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>
#include <boost/json.hpp>

#include <thread>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

TEST_CASE("a job held by a worker survives more pauses than the delivery limit") {
  scratch s;
  // Delivery limit 3: handing the held message back at each pause would
  // dead-letter it at the third (and the job would run only thanks to the
  // API's dead-letter recovery).
  const std::map<std::string, std::string> env{{"JOBS_QUEUE_DELIVERY_LIMIT", "3"}};
  platform p(s, {}, env);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto slow =
      submit_job(h, key, R"({"queue":"processing","type":"noop","payload":{"sleep_ms":8000}})");
  auto held =
      submit_job(h, key, R"({"queue":"processing","type":"noop","payload":{"echo":"held"}})");
  // One handler thread, prefetch 2: `slow` runs, `held` is received and waits.
  p.add_worker("processing", {{"JOBS_QUEUE_DELIVERY_LIMIT", "3"},
                              {"JOBS_WORKER_CONCURRENCY", "1"},
                              {"JOBS_WORKER_PREFETCH", "2"}});
  REQUIRE(wait_until([&] { return state_of(s.pg_url, slow) == "running"; }, 30s));
  std::this_thread::sleep_for(300ms);
  CHECK(state_of(s.pg_url, held) == "queued");

  for (int i = 0; i < 5; ++i) {
    auto r = h.post_json("/v1/admin/queues/processing/pause", "", key);
    REQUIRE_MESSAGE(r.status == 200, r.status, " ", r.body);
    std::this_thread::sleep_for(600ms);  // the worker hears it within a round (200 ms)
    CHECK(state_of(s.pg_url, held) == "queued");
    r = h.post_json("/v1/admin/queues/processing/resume", "", key);
    REQUIRE_MESSAGE(r.status == 200, r.status, " ", r.body);
    std::this_thread::sleep_for(600ms);
  }
  REQUIRE(wait_until([&] { return state_of(s.pg_url, slow) == "succeeded"; }, 30s));
  CHECK(wait_until([&] { return state_of(s.pg_url, held) == "succeeded"; }, 30s));
  CHECK(count(s.pg_url, "SELECT attempts FROM jobs WHERE id = '" + held + "'") == 1);
  amqp_connection c(parse_amqp_url(s.amqp_url), 30);
  CHECK(inspect_queue(c, dead_queue).messages == 0);
}
