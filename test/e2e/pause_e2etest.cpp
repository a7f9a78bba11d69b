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
      submit_job(h, key, R"({"queue":"processing","type":"noop","payload":{"sleep_ms":12000}})");
  auto held =
      submit_job(h, key, R"({"queue":"processing","type":"noop","payload":{"echo":"held"}})");
  // One handler thread, prefetch 2: `slow` runs, `held` is received and waits.
  p.add_worker("processing", {{"JOBS_QUEUE_DELIVERY_LIMIT", "3"},
                              {"JOBS_WORKER_CONCURRENCY", "1"},
                              {"JOBS_WORKER_PREFETCH", "2"}});
  REQUIRE(wait_until([&] { return state_of(s.pg_url, slow) == "running"; }, 30s));
  std::this_thread::sleep_for(300ms);
  CHECK(state_of(s.pg_url, held) == "queued");

  // `held` waits only while `slow` runs (about 6 s of 12 here); a machine
  // slow enough to outlast it must not fail the check, so each pause counts
  // only if `slow` still ran after it.
  int held_through = 0;
  for (int i = 0; i < 5; ++i) {
    auto r = h.post_json("/v1/admin/queues/processing/pause", "", key);
    REQUIRE_MESSAGE(r.status == 200, r.status, " ", r.body);
    std::this_thread::sleep_for(600ms);  // the worker hears it within a round (200 ms)
    auto held_state = state_of(s.pg_url, held);
    if (state_of(s.pg_url, slow) != "running") break;
    CHECK(held_state == "queued");
    ++held_through;
    r = h.post_json("/v1/admin/queues/processing/resume", "", key);
    REQUIRE_MESSAGE(r.status == 200, r.status, " ", r.body);
    std::this_thread::sleep_for(600ms);
  }
  CHECK(held_through > 3);  // more pauses than the delivery limit
  h.post_json("/v1/admin/queues/processing/resume", "", key);
  REQUIRE(wait_until([&] { return state_of(s.pg_url, slow) == "succeeded"; }, 30s));
  CHECK(wait_until([&] { return state_of(s.pg_url, held) == "succeeded"; }, 30s));
  CHECK(count(s.pg_url, "SELECT attempts FROM jobs WHERE id = '" + held + "'") == 1);
  amqp_connection c(parse_amqp_url(s.amqp_url), 30);
  CHECK(inspect_queue(c, dead_queue).messages == 0);
}

TEST_CASE("no job starts once the pause call has returned, however soon it is submitted") {
  // The claim tests the pause in its own snapshot: jobs submitted the moment
  // the pause returns are never claimed, though the worker hears of the
  // pause (NOTIFY) only a little later. On resume they all run, once.
  scratch s;
  platform p(s);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  const std::string noop = R"({"queue":"processing","type":"noop","payload":{}})";
  auto first = submit_job(h, key, noop);
  REQUIRE(wait_until([&] { return state_of(s.pg_url, first) == "succeeded"; }, 30s));

  auto r = h.post_json("/v1/admin/queues/processing/pause", "", key);
  REQUIRE_MESSAGE(r.status == 200, r.status, " ", r.body);
  std::vector<std::string> ids;
  for (int i = 0; i < 30; ++i) ids.push_back(submit_job(h, key, noop));
  std::this_thread::sleep_for(1500ms);  // time for any claim to show, not a synchronisation
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE started_at IS NOT NULL") == 1);

  r = h.post_json("/v1/admin/queues/processing/resume", "", key);
  REQUIRE_MESSAGE(r.status == 200, r.status, " ", r.body);
  CHECK(wait_until(
      [&] { return count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded'") == 31; },
      30s));
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE attempts <> 1") == 0);
}
