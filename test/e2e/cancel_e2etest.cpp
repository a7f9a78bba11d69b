// Cancellation and execution timeouts, the whole platform as processes.
// ctest-labels: fault
#include "common/db.hpp"
#include "common/job.hpp"
#include "common/time.hpp"
#include "support/live.hpp"
#include "support/openapi.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/json.hpp>

#include <atomic>
#include <map>
#include <mutex>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

http_reply cancel(http_client& h, const std::string& key, const std::string& id) {
  return h.post_json("/v1/jobs/" + id + "/cancel", "", key);
}

void check_contract(const std::string& component, const http_reply& r) {
  auto v = openapi_contract().violations(component, r.json());
  CHECK_MESSAGE(v.empty(), (v.empty() ? "" : v.front()));
}

}  // namespace

TEST_CASE("a cancelled scheduled job ends cancelled and never runs") {
  scratch s;
  platform p(s, {"processing"}, {}, true);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  // Far enough ahead that the cancel below comes before it is due on a busy
  // machine (due first, it could be running: a 202).
  auto at = format_rfc3339(std::chrono::system_clock::now() + 4s);
  auto body = R"({"queue":"processing","type":"test.count","payload":{},"run_at":")" + at + "\"}";
  auto doomed = submit_job(h, key, body);
  auto control = submit_job(h, key, body);  // due at the same time, not cancelled

  auto r = cancel(h, key, doomed);
  CHECK(r.status == 200);
  CHECK(r.json().at("state") == "cancelled");
  CHECK(r.json().at("id") == doomed.c_str());
  CHECK_FALSE(r.json().at("cancelled_at").is_null());
  CHECK_FALSE(r.json().at("finished_at").is_null());
  check_contract("Job", r);

  // Once the control job has run, the cancelled one was due too.
  REQUIRE(wait_until([&] { return state_of(s.pg_url, control) == "succeeded"; }, 30s));
  CHECK(state_of(s.pg_url, doomed) == "cancelled");
  CHECK_FALSE(handled(s.pg_url).contains(doomed));
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts WHERE job_id = '" + doomed + "'") == 0);
}

TEST_CASE("a job cancelled while queued is dropped by the worker that gets it later") {
  scratch s;
  platform p(s, {}, {}, true);  // no worker yet
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  const std::string body = R"({"queue":"processing","type":"test.count","payload":{}})";
  auto doomed = submit_job(h, key, body);
  CHECK(state_of(s.pg_url, doomed) == "queued");
  auto r = cancel(h, key, doomed);
  CHECK(r.status == 200);
  CHECK(r.json().at("state") == "cancelled");
  auto control = submit_job(h, key, body);  // behind it in the queue

  p.add_worker("processing", {{"JOBS_WORKER_CONCURRENCY", "1"}});
  REQUIRE(wait_until([&] { return state_of(s.pg_url, control) == "succeeded"; }, 30s));
  CHECK(state_of(s.pg_url, doomed) == "cancelled");
  CHECK(count(s.pg_url, "SELECT attempts FROM jobs WHERE id = '" + doomed + "'") == 0);
  CHECK_FALSE(handled(s.pg_url).contains(doomed));
  CHECK(handled(s.pg_url).at(control) == 1);
}

TEST_CASE("a running job is stopped by its cancel and ends cancelled quickly") {
  scratch s;
  platform p(s);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto id =
      submit_job(h, key, R"({"queue":"processing","type":"noop","payload":{"sleep_ms":5000}})");
  REQUIRE(wait_until([&] { return state_of(s.pg_url, id) == "running"; }, 30s));

  auto asked = std::chrono::steady_clock::now();
  auto r = cancel(h, key, id);
  CHECK(r.status == 202);
  CHECK(r.json().at("state") == "running");
  CHECK_FALSE(r.json().at("cancel_requested_at").is_null());
  check_contract("Job", r);

  REQUIRE(wait_until([&] { return state_of(s.pg_url, id) == "cancelled"; }, 10s));
  auto took = std::chrono::steady_clock::now() - asked;
  MESSAGE("cancelled after ", std::chrono::duration_cast<std::chrono::milliseconds>(took).count(),
          " ms");
  CHECK(took < 4s);  // the handler sleeps 5 s; it stopped on the flag

  auto job = h.get("/v1/jobs/" + id, key);
  REQUIRE(job.status == 200);
  check_contract("Job", job);
  auto o = job.json().as_object();
  CHECK(o.at("attempts") == 1);
  CHECK_FALSE(o.at("cancelled_at").is_null());
  CHECK_FALSE(o.at("finished_at").is_null());
  CHECK(o.at("result").is_null());
  auto history = o.at("attempt_history").as_array();
  REQUIRE(history.size() == 1);
  CHECK(history[0].at("outcome") == "cancelled");

  // Now final: a second cancel is refused.
  auto again = cancel(h, key, id);
  CHECK(again.status == 409);
  CHECK(again.json().at("code") == "not_cancellable");
}

TEST_CASE("a job over its timeout_ms fails each attempt as timed out and ends dead") {
  scratch s;
  platform p(s);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto id = submit_job(
      h, key,
      R"({"queue":"processing","type":"noop","payload":{"sleep_ms":3000},"timeout_ms":300,"max_attempts":2,
          "backoff":{"base_ms":20,"jitter":"none"}})");
  REQUIRE(wait_until([&] { return state_of(s.pg_url, id) == "dead"; }, 30s));

  auto job = h.get("/v1/jobs/" + id, key).json().as_object();
  CHECK(job.at("timeout_ms") == 300);
  // The backoff the worker applied: the one sent, the default cap.
  CHECK(job.at("backoff") ==
        boost::json::parse(R"({"base_ms":20,"cap_ms":3600000,"jitter":"none"})"));
  CHECK(job.at("attempts") == 2);
  CHECK(job.at("error") == "timed out after 300 ms");
  auto history = job.at("attempt_history").as_array();
  REQUIRE(history.size() == 2);
  CHECK(history[0].at("outcome") == "failed");
  CHECK(history[1].at("outcome") == "dead");
  for (const auto& a : history) CHECK(a.at("error") == "timed out after 300 ms");
  // Each attempt was stopped near its timeout, not after the 3 s sleep.
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts WHERE job_id = '" + id +
                            "' AND finished_at - started_at < interval '2 seconds'") == 2);
}

TEST_CASE("the worker's default timeout applies to jobs without timeout_ms") {
  scratch s;
  platform p(s, {}, {});
  p.add_worker("processing", {{"JOBS_WORKER_JOB_TIMEOUT_MS", "400"}});
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto slow = submit_job(
      h, key,
      R"({"queue":"processing","type":"noop","payload":{"sleep_ms":3000},"max_attempts":1})");
  auto quick =
      submit_job(h, key, R"({"queue":"processing","type":"noop","payload":{"sleep_ms":50}})");
  REQUIRE(wait_until([&] { return state_of(s.pg_url, slow) == "dead"; }, 30s));
  CHECK(h.get("/v1/jobs/" + slow, key).json().at("error") == "timed out after 400 ms");
  CHECK(wait_until([&] { return state_of(s.pg_url, quick) == "succeeded"; }, 30s));
}

TEST_CASE("a handler that does not stop within the grace is written off; its result is dropped") {
  scratch s;
  platform p(s, {}, {});
  // No grace: the job is recorded the moment it is stopped, while its
  // handler still sleeps. One thread, so the next job proves it came back.
  p.add_worker("processing",
               {{"JOBS_WORKER_CANCEL_GRACE_MS", "0"}, {"JOBS_WORKER_CONCURRENCY", "1"}});
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto id =
      submit_job(h, key, R"({"queue":"processing","type":"noop","payload":{"sleep_ms":5000}})");
  REQUIRE(wait_until([&] { return state_of(s.pg_url, id) == "running"; }, 30s));
  CHECK(cancel(h, key, id).status == 202);
  REQUIRE(wait_until([&] { return state_of(s.pg_url, id) == "cancelled"; }, 10s));
  auto job = h.get("/v1/jobs/" + id, key).json().as_object();
  CHECK(std::string(job.at("error").as_string()).find("did not stop within 0 ms") !=
        std::string::npos);

  auto next = submit_job(h, key, R"({"queue":"processing","type":"noop","payload":{}})");
  CHECK(wait_until([&] { return state_of(s.pg_url, next) == "succeeded"; }, 30s));
  // The written-off handler's late return changed nothing.
  CHECK(state_of(s.pg_url, id) == "cancelled");
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts WHERE job_id = '" + id + "'") == 1);
}

TEST_CASE("cancel answers 409 for a finished job and 404 for another tenant's or no job") {
  scratch s;
  platform p(s);
  auto acme = create_key(s.pg_url, "acme");
  auto globex = create_key(s.pg_url, "globex");
  http_client h(p.port);
  auto id = submit_job(h, acme, R"({"queue":"processing","type":"noop","payload":{}})");
  REQUIRE(wait_until([&] { return state_of(s.pg_url, id) == "succeeded"; }, 30s));

  auto r = cancel(h, acme, id);
  CHECK(r.status == 409);
  CHECK(r.headers["content-type"] == "application/problem+json");
  CHECK(r.json().at("code") == "not_cancellable");
  check_contract("Problem", r);

  auto other = submit_job(h, acme,
                          R"({"queue":"processing","type":"noop","payload":{},)"
                          R"("run_at":"2099-01-01T00:00:00Z"})");
  r = cancel(h, globex, other);
  CHECK(r.status == 404);
  CHECK(r.json().at("code") == "not_found");
  CHECK(state_of(s.pg_url, other) == "scheduled");
  CHECK(cancel(h, acme, new_job_id().value).status == 404);
  CHECK(cancel(h, acme, other).status == 200);
}

TEST_CASE("fault 9: cancel racing with a worker's claim, 1,000 times: cancelled or succeeded") {
  scratch s;
  platform p(s, {}, {}, true);
  p.add_worker("processing", {{"JOBS_WORKER_CONCURRENCY", "8"}});
  auto key = create_key(s.pg_url, "acme");
  constexpr int total = 1000, threads = 4;
  std::mutex mu;
  std::map<std::string, int> answer;  // job id -> the cancel's status
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t)
    clients.emplace_back([&, t] {
      http_client h(p.port);
      for (int i = t; i < total; i += threads) {
        // A short sleep, so some cancels find the job running.
        auto r = h.post_json(
            "/v1/jobs",
            fmt::format(
                R"({{"queue":"processing","type":"test.count","payload":{{"sleep_ms":{}}}}})",
                i % 3 * 10),
            key);
        if (r.status != 202) continue;  // counted below
        auto id = std::string(r.json().at("id").as_string());
        auto c = h.post_json("/v1/jobs/" + id + "/cancel", "", key);
        std::lock_guard lk(mu);
        answer[id] = c.status;
      }
    });
  for (auto& c : clients) c.join();
  REQUIRE(answer.size() == total);
  CHECK(wait_until(
      [&] {
        return count(s.pg_url,
                     "SELECT count(*) FROM jobs WHERE state NOT IN ('succeeded', 'cancelled', "
                     "'dead')") == 0;
      },
      120s));

  auto done = handled(s.pg_url);
  auto c = pg_connect(s.pg_url);
  pqxx::nontransaction n(*c);
  std::map<int, int> statuses;
  long lost = 0, duplicated = 0, cancelled = 0, succeeded = 0;
  for (const auto& row : n.exec("SELECT id::text, state::text FROM jobs")) {
    auto id = row[0].as<std::string>();
    auto state = row[1].as<std::string>();
    int completions = done.contains(id) ? done.at(id) : 0;
    ++statuses[answer.at(id)];
    bool ok = false;
    if (state == "cancelled") {
      ++cancelled;
      ok = completions == 0 && answer.at(id) != 409;
    } else if (state == "succeeded") {
      ++succeeded;
      ok = completions == 1 && answer.at(id) != 200;
    }
    if (!ok && ++lost <= 5)
      MESSAGE("job ", id, " ", state, " handled ", completions, " cancel answered ", answer.at(id));
    if (completions > 1) ++duplicated;
  }
  MESSAGE("lost=", lost, " duplicated=", duplicated, " (cancelled=", cancelled,
          " succeeded=", succeeded, "; cancel answered 200: ", statuses[200],
          ", 202: ", statuses[202], ", 409: ", statuses[409], ")");
  CHECK(cancelled + succeeded == total);
  CHECK(lost == 0);
  CHECK(duplicated == 0);
  // Only the answers the endpoint documents.
  CHECK(statuses[200] + statuses[202] + statuses[409] == total);
}
