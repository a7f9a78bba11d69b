// Dead-lettered messages of jobs still `queued`, against the real API,
// worker, RabbitMQ and PostgreSQL (api/dead_letter_recovery.hpp): the API
// publishes them again, a bounded number of times, and `jobs.dead` keeps a
// copy of every dead letter for people. And a queue the broker lost: bulk
// requeue publishes its queued jobs again.
#include "common/db.hpp"
#include "queues/amqp.hpp"
#include "queues/consumer.hpp"
#include "queues/publisher.hpp"
#include "support/live.hpp"
#include "support/prom_text.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <thread>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

// The next message `c` receives (prefetch 1: the only one in hand).
delivery next_delivery(consumer& c) {
  std::vector<delivery> got;
  REQUIRE(wait_until(
      [&] {
        c.poll(got, 50, -1);
        return !got.empty();
      },
      20s));
  REQUIRE(got.size() == 1);
  return got[0];
}

// Takes the next message off `processing` and rejects it without requeue:
// the quorum queue dead-letters it, as it does one that reached the
// delivery limit. Returns its `x-jobs-rescues` header ("" when absent).
std::string dead_letter_next(consumer& c) {
  auto d = next_delivery(c);
  c.reject(d.tag, /*requeue=*/false);
  return d.headers.contains("x-jobs-rescues") ? d.headers.at("x-jobs-rescues") : "";
}

// jobs_dead_letters_total{action} on the API's /metrics.
double dead_letters(int port, const std::string& action) {
  http_client h(port);
  auto r = h.request(boost::beast::http::verb::get, "/metrics");
  REQUIRE(r.status == 200);
  return prom_sum(parse_prom_text(r.body), "jobs_dead_letters_total", {{"action", action}});
}

unsigned messages_in(const scratch& s, std::string_view queue) {
  amqp_connection c(parse_amqp_url(s.amqp_url), 30);
  return inspect_queue(c, queue).messages;
}

}  // namespace

TEST_CASE("a queued job whose message was dead-lettered is published again and runs once") {
  scratch s;
  platform p(s, {}, {}, true);  // no worker yet
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto id = submit_job(h, key, R"({"queue":"processing","type":"test.count","payload":{}})");
  {
    consumer c(parse_amqp_url(s.amqp_url), 30, "processing", 1, {10});
    CHECK(dead_letter_next(c) == "");
    // The API's recovery sends it again, counted.
    auto again = next_delivery(c);
    CHECK(again.headers["x-jobs-rescues"] == "1");
    CHECK(again.message_id == id);
  }  // unacked: back to the queue for the worker
  CHECK(state_of(s.pg_url, id) == "queued");
  p.add_worker("processing");
  CHECK(wait_until([&] { return state_of(s.pg_url, id) == "succeeded"; }, 30s));
  CHECK(handled(s.pg_url).at(id) == 1);
  // The dead letter's copy for people stays; the recovery's was consumed.
  CHECK(messages_in(s, dead_queue) == 1);
  CHECK(wait_until([&] { return messages_in(s, rescue_queue) == 0; }, 10s));
  CHECK(dead_letters(p.port, "republished") == 1);
  CHECK(dead_letters(p.port, "buried") == 0);
}

TEST_CASE("a job whose message keeps being dead-lettered ends dead; other dead letters stay put") {
  scratch s;
  platform p(s, {}, {}, true);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto id = submit_job(h, key, R"({"queue":"processing","type":"test.count","payload":{}})");
  {
    consumer c(parse_amqp_url(s.amqp_url), 30, "processing", 1, {10});
    // The first dead letter and three republished copies.
    for (int rescues = 0; rescues <= 3; ++rescues)
      CHECK(dead_letter_next(c) == (rescues == 0 ? "" : std::to_string(rescues)));
    REQUIRE(wait_until([&] { return state_of(s.pg_url, id) == "dead"; }, 20s));
    // No fifth copy.
    std::vector<delivery> none;
    c.poll(none, 1000, -1);
    CHECK(none.empty());
  }
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE id = '" + id +
                            "' AND last_error LIKE 'its message was dead-lettered 4 times%' "
                            "AND finished_at IS NOT NULL AND attempts = 0") == 1);
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_events WHERE job_id = '" + id +
                            "' AND from_state = 'queued' AND to_state = 'dead'") == 1);

  // A body that is no job: a worker dead-letters it with the reason, the
  // recovery drops its copy, and jobs.dead keeps it with the job's four.
  publisher pub({s.amqp_url, 30, 10s, {10}});
  REQUIRE(wait_until([&] { return pub.connected(); }, 10s));
  std::atomic<bool> confirmed{false};
  pub.publish("processing", "garbage", "not json",
              [&](bool ok, std::string_view) { confirmed = ok; });
  REQUIRE(wait_until([&] { return confirmed.load(); }, 10s));
  p.add_worker("processing");
  CHECK(wait_until([&] { return messages_in(s, dead_queue) == 5; }, 20s));
  CHECK(wait_until([&] { return messages_in(s, rescue_queue) == 0; }, 10s));
  CHECK(messages_in(s, "processing") == 0);
  CHECK(state_of(s.pg_url, id) == "dead");
  CHECK(wait_until([&] { return dead_letters(p.port, "dropped") == 1; }, 10s));
  CHECK(dead_letters(p.port, "republished") == 3);
  CHECK(dead_letters(p.port, "buried") == 1);
  // What jobs.dead holds, for operators: GET /v1/queues and /metrics.
  CHECK(h.get("/v1/queues", key).json().at("dead_letters") == 5);
  http_client scrape(p.port);
  auto m = scrape.request(boost::beast::http::verb::get, "/metrics");
  CHECK(prom_sum(parse_prom_text(m.body), "jobs_dead_letter_messages", {}) == 5);
  // jobs.dead deleted by hand (to apply a new bound): the figures go on.
  {
    amqp_connection c(parse_amqp_url(s.amqp_url), 30);
    amqp_queue_delete(c.raw(), amqp_connection::channel, as_bytes(dead_queue), 0, 0);
    c.check_rpc("queue.delete");
  }
  auto after = h.get("/v1/queues", key);
  CHECK(after.status == 200);
  CHECK(after.json().at("dead_letters") == 0);
  auto m2 = scrape.request(boost::beast::http::verb::get, "/metrics");
  CHECK(prom_sum(parse_prom_text(m2.body), "jobs_dead_letter_messages", {}) == 0);
}

TEST_CASE("workers killed past the delivery limit: the jobs they held unclaimed still run, once") {
  scratch s;
  // Delivery limit 1: a message handed back by two dead workers is dead-lettered.
  const std::map<std::string, std::string> env{{"JOBS_QUEUE_DELIVERY_LIMIT", "1"},
                                               {"JOBS_WORKER_LEASE_MS", "2000"}};
  platform p(s, {}, env, true);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i)
    ids.push_back(submit_job(
        h, key, R"({"queue":"processing","type":"test.count","payload":{"sleep_ms":1500}})"));
  // One handler thread, prefetch 4: each worker claims one job and holds the
  // others unclaimed when it is killed.
  auto worker_env = env;
  worker_env["JOBS_WORKER_CONCURRENCY"] = "1";
  worker_env["JOBS_WORKER_PREFETCH"] = "4";
  for (int kill = 0; kill < 2; ++kill) {
    auto since = count(s.pg_url, "SELECT (extract(epoch FROM now()) * 1000)::bigint");
    auto& w = p.add_worker("processing", worker_env);
    REQUIRE(wait_until(
        [&] {
          return count(s.pg_url,
                       "SELECT count(*) FROM jobs WHERE state = 'running' AND started_at >= "
                       "to_timestamp(" +
                           std::to_string(since) + " / 1000.0)") == 1;
        },
        20s));
    std::this_thread::sleep_for(200ms);
    w.signal(SIGKILL);
    REQUIRE(w.wait(10s) != -1);
  }
  // The messages held through both kills were dead-lettered; the recovery
  // published them again.
  REQUIRE(wait_until([&] { return messages_in(s, dead_queue) >= 2; }, 20s));
  p.add_worker("processing", {{"JOBS_QUEUE_DELIVERY_LIMIT", "1"},
                              {"JOBS_WORKER_LEASE_MS", "2000"},
                              {"JOBS_WORKER_CONCURRENCY", "4"}});
  CHECK(wait_until(
      [&] { return count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded'") == 4; },
      60s));
  auto done = handled(s.pg_url);
  for (const auto& id : ids) CHECK(done[id] == 1);
  CHECK(dead_letters(p.port, "republished") >= 2);
}

TEST_CASE("a queue the broker lost: bulk requeue publishes its queued jobs again, each runs once") {
  scratch s;
  platform p(s, {}, {}, true);  // no worker yet
  auto key = create_key(s.pg_url, "acme");
  auto other = create_key(s.pg_url, "other");
  http_client h(p.port);
  const std::string job = R"({"queue":"processing","type":"test.count","payload":{}})";
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(submit_job(h, key, job));
  auto others = submit_job(h, other, job);
  // The broker loses them (a purged queue, a lost volume): PostgreSQL still
  // says queued, and nothing would ever run them.
  {
    amqp_connection c(parse_amqp_url(s.amqp_url), 30);
    CHECK(purge_queue(c, "processing") == 5);
  }
  // One more, whose message the broker keeps: requeued too, it has two.
  ids.push_back(submit_job(h, key, job));
  auto post = [&](const std::string& target) {
    return h.request(boost::beast::http::verb::post, target, "",
                     {{"authorization", "Bearer " + key}});
  };
  auto dry = post("/v1/admin/jobs/requeue?queue=processing&dry_run=true");
  REQUIRE(dry.status == 200);
  CHECK(dry.json().at("matched") == 5);
  auto done = post("/v1/admin/jobs/requeue?queue=processing");
  REQUIRE(done.status == 200);
  CHECK(done.json().at("action") == "requeue");
  CHECK(done.json().at("applied") == 5);
  CHECK(done.json().at("complete") == true);
  // The scheduler publishes them again with confirms: five new messages
  // beside the one kept; the other tenant's job is not touched.
  CHECK(wait_until([&] { return messages_in(s, "processing") == 6; }, 20s));
  CHECK(wait_until(
      [&] {
        return count(s.pg_url,
                     "SELECT count(*) FROM jobs WHERE state = 'queued' AND tenant_id = 'acme'") ==
               5;
      },
      10s));
  for (const auto& id : ids)
    CHECK(count(s.pg_url, "SELECT count(*) FROM job_events WHERE job_id = '" + id +
                              "' AND from_state = 'queued' AND to_state = 'scheduled'") == 1);
  p.add_worker("processing");
  CHECK(wait_until(
      [&] {
        return count(
                   s.pg_url,
                   "SELECT count(*) FROM jobs WHERE state = 'succeeded' AND tenant_id = 'acme'") ==
               5;
      },
      30s));
  // The second message of the last job is dropped at its claim.
  CHECK(wait_until([&] { return messages_in(s, "processing") == 0; }, 10s));
  auto ran = handled(s.pg_url);
  for (const auto& id : ids) CHECK(ran[id] == 1);
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts") == 5);
  CHECK(state_of(s.pg_url, others) == "queued");
  // Nothing queued is left to requeue.
  auto again = post("/v1/admin/jobs/requeue?queue=processing");
  CHECK(again.json().at("applied") == 0);
  // Only queued jobs: a state filter naming another is a mistake, said so.
  auto wrong = post("/v1/admin/jobs/requeue?state=succeeded&dry_run=true");
  CHECK(wrong.status == 400);
  CHECK(wrong.json().at("code") == "invalid_field");
  CHECK(wrong.json().at("parameter") == "state");
  CHECK(std::string(wrong.json().at("detail").as_string()) ==
        "requeue applies to jobs that are queued; state=succeeded matches none");
  CHECK(post("/v1/admin/jobs/requeue2").status == 404);
}
