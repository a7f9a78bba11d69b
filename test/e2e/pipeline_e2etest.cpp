// The whole platform as processes: API and workers against real RabbitMQ and
// PostgreSQL, driven over HTTP.
#include "common/db.hpp"
#include "common/time.hpp"
#include "queues/consumer.hpp"
#include "queues/publisher.hpp"
#include "support/live.hpp"
#include "support/openapi.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <csignal>
#include <map>
#include <mutex>
#include <string_view>
#include <thread>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

std::string sha256_hex(const std::string& s) {
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr);
  std::string out;
  for (unsigned i = 0; i < n; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}

// Submits `n` noop jobs to the processing queue with `payload`, each accepted.
void submit_noops(http_client& h, const std::string& key, int n, std::string_view payload) {
  auto body = fmt::format(R"({{"queue":"processing","type":"noop","payload":{}}})", payload);
  for (int i = 0; i < n; ++i) REQUIRE(h.post_json("/v1/jobs", body, key).status == 202);
}

long succeeded(const std::string& pg_url) {
  return count(pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded'");
}

// Waits until `total` jobs succeeded.
bool all_succeed(const std::string& pg_url, long total, std::chrono::seconds within) {
  return wait_until([&] { return succeeded(pg_url) == total; }, within);
}

}  // namespace

TEST_CASE("1,000 jobs of mixed types from three tenants each succeed exactly once") {
  scratch s;
  platform p(s);
  std::vector<std::string> tenants{"acme", "globex", "initech"};
  std::map<std::string, std::string> keys;
  for (auto& t : tenants) keys[t] = create_key(s.pg_url, t);

  // What each job must produce, by job id.
  struct expectation {
    std::string tenant, type;
    boost::json::value result;
  };
  std::mutex mu;
  std::map<std::string, expectation> expected;
  std::atomic<int> refused{0};
  constexpr int total = 1000, threads = 4;
  const std::string csv = "region,amount\\nnorth,10\\nsouth,5\\nnorth,2.5\\n";

  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      http_client h(p.port);
      for (int i = t; i < total; i += threads) {
        const auto& tenant = tenants[i % tenants.size()];
        std::string body, type;
        boost::json::value result;
        switch (i % 3) {
          case 0:
            type = "noop";
            body =
                fmt::format(R"({{"queue":"processing","type":"noop","payload":{{"echo":{}}}}})", i);
            result = boost::json::object{{"ok", true}, {"echo", i}};
            break;
          case 1: {
            type = "hash";
            auto input = fmt::format("job-{}", i);
            body = fmt::format(
                R"({{"queue":"processing","type":"hash","payload":{{"input":"{}"}}}})", input);
            result = boost::json::parse(R"({"algorithm":"sha256","encoding":"hex","bytes":)" +
                                        std::to_string(input.size()) + R"(,"digest":")" +
                                        sha256_hex(input) + "\"}");
            break;
          }
          default:
            type = "csv.aggregate";
            body =
                R"({"queue":"processing","type":"csv.aggregate","priority":3,"payload":{"csv":")" +
                csv +
                R"(","group_by":["region"],"aggregates":[{"op":"sum","column":"amount"},{"op":"count"}]}})";
            result = boost::json::parse(
                R"({"rows":[{"region":"north","sum_amount":12.5,"count":2},{"region":"south","sum_amount":5,"count":1}],"row_count":3,"group_count":2})");
        }
        auto r = h.post_json("/v1/jobs", body, keys[tenant]);
        if (r.status != 202) {
          ++refused;
          MESSAGE("refused: ", r.status, " ", r.body);
          continue;
        }
        if (i < 10) {
          auto v = openapi_contract().violations("Accepted", r.json());
          CHECK_MESSAGE(v.empty(), (v.empty() ? "" : v.front()));
        }
        auto id = std::string(r.json().at("id").as_string());
        std::lock_guard lk(mu);
        expected[id] = {tenant, type, result};
      }
    });
  }
  for (auto& c : clients) c.join();
  REQUIRE(refused == 0);
  REQUIRE(expected.size() == total);

  bool done = all_succeed(s.pg_url, total, 120s);
  CHECK_MESSAGE(done, "succeeded: ", succeeded(s.pg_url));

  // Not a benchmark (scripts/bench is), a smoke number for the README.
  MESSAGE("1,000 jobs from first submission to last completion: ",
          count(s.pg_url,
                "SELECT (extract(epoch FROM max(finished_at) - min(created_at)) * 1000)::bigint "
                "FROM jobs"),
          " ms");

  // Exactly once: one attempt each, no extra jobs, and the right results.
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs") == total);
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE attempts <> 1") == 0);
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts") == total);
  auto c = pg_connect(s.pg_url);
  pqxx::nontransaction n(*c);
  int wrong = 0;
  for (const auto& row : n.exec("SELECT id::text, tenant_id, type, result::text FROM jobs")) {
    auto it = expected.find(row[0].as<std::string>());
    REQUIRE(it != expected.end());
    bool ok = it->second.tenant == row[1].as<std::string>() &&
              it->second.type == row[2].as<std::string>() &&
              boost::json::parse(row[3].as<std::string>()) == it->second.result;
    if (!ok && ++wrong <= 3)
      MESSAGE("job ", row[0].as<std::string>(), " result ", row[3].as<std::string>());
  }
  CHECK(wrong == 0);

  // Through the API: each tenant reads its own jobs and nobody else's.
  http_client h(p.port);
  openapi_contract contract;
  int checked = 0;
  for (const auto& [id, e] : expected) {
    if (++checked > 30) break;
    auto own = h.get("/v1/jobs/" + id, keys[e.tenant]);
    REQUIRE(own.status == 200);
    auto v = contract.violations("Job", own.json());
    CHECK_MESSAGE(v.empty(), (v.empty() ? "" : v.front()));
    CHECK(own.json().at("state") == "succeeded");
    CHECK(own.json().at("result") == e.result);
    for (const auto& t : tenants) {
      if (t == e.tenant) continue;
      auto other = h.get("/v1/jobs/" + id, keys[t]);
      CHECK(other.status == 404);
      CHECK(other.headers["content-type"] == "application/problem+json");
      CHECK(contract.violations("Problem", other.json()).empty());
    }
  }
  auto listed = h.get("/v1/jobs?limit=500&state=succeeded", keys["acme"]).json();
  auto lv = contract.violations("JobList", listed);
  CHECK_MESSAGE(lv.empty(), (lv.empty() ? "" : lv.front()));
  for (const auto& j : listed.at("jobs").as_array())
    CHECK(expected.at(std::string(j.at("id").as_string())).tenant == "acme");
}

TEST_CASE("bad requests get problem details, and nothing is recorded") {
  scratch s;
  platform p(s);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);

  auto r = h.post_json(
      "/v1/jobs",
      R"({"queue":"processing","type":"hash","payload":{"algorithm":"sha256","input":7}})", key);
  CHECK(r.status == 400);
  CHECK(r.headers["content-type"] == "application/problem+json");
  CHECK(r.json().at("code") == "payload_invalid");
  CHECK(r.json().at("pointer") == "/payload/input");
  CHECK(openapi_contract().violations("Problem", r.json()).empty());

  r = h.post_json("/v1/jobs", R"({"queue":"nope","type":"hash","payload":{}})", key);
  CHECK(r.status == 400);
  CHECK(r.json().at("code") == "unknown_queue");

  r = h.post_json("/v1/jobs", R"({"queue":"processing","type":"hash",)", key);
  CHECK(r.status == 400);
  CHECK(r.json().at("code") == "invalid_json");

  r = h.post_json("/v1/jobs", R"({"queue":"processing","type":"noop","payload":{}})", "jk_wrong");
  CHECK(r.status == 401);

  // Over the body limit (1 MiB by default): 413 as soon as the headers say
  // so, and the connection closes. A raw socket, so the client doesn't fail
  // on writing the rest of a body the server no longer reads.
  {
    namespace asio = boost::asio;
    asio::io_context ioc;
    asio::ip::tcp::socket sock(ioc);
    sock.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(p.port)});
    std::string head =
        "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(2 << 20) +
        "\r\n\r\n{\"queue\":\"processing\"";
    asio::write(sock, asio::buffer(head));
    boost::beast::flat_buffer buf;
    boost::beast::http::response<boost::beast::http::string_body> res;
    boost::beast::http::read(sock, buf, res);
    CHECK(res.result_int() == 413);
    CHECK(boost::json::parse(res.body()).at("code") == "body_too_large");
    CHECK_FALSE(res.keep_alive());
  }
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs") == 0);
}

TEST_CASE("SIGTERM drains a worker: jobs in flight finish, the rest wait for the next worker") {
  scratch s;
  platform p(s, {});
  auto key = create_key(s.pg_url, "acme");
  auto& first = p.add_worker("processing", {{"JOBS_WORKER_CONCURRENCY", "4"}});
  http_client h(p.port);
  constexpr int total = 40;
  submit_noops(h, key, total, R"({"sleep_ms":300})");
  REQUIRE(wait_until(
      [&] { return count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'running'") > 0; },
      30s));
  first.signal(SIGTERM);
  CHECK(first.wait(30s) == 0);
  // Nothing was left running or lost: every job either finished or waits queued.
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'running'") == 0);
  auto finished = succeeded(s.pg_url);
  CHECK(finished > 0);
  CHECK(finished < total);
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'queued'") == total - finished);

  p.add_worker("processing", {{"JOBS_WORKER_CONCURRENCY", "8"}});
  CHECK(all_succeed(s.pg_url, total, 60s));
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE attempts <> 1") == 0);
}

TEST_CASE("a drain past its deadline hands the running jobs back, their attempts not counted") {
  scratch s;
  platform p(s, {}, {}, true);
  auto key = create_key(s.pg_url, "acme");
  auto& first = p.add_worker("processing", {{"JOBS_WORKER_CONCURRENCY", "4"},
                                            {"JOBS_WORKER_SHUTDOWN_MS", "1000"},
                                            {"JOBS_WORKER_CANCEL_GRACE_MS", "1000"}});
  http_client h(p.port);
  // One attempt each: a lease rescue (a counted attempt) would leave them dead.
  auto job = [&](const std::string& type, int sleep_ms) {
    return submit_job(h, key,
                      R"({"queue":"processing","type":")" + type + R"(","payload":{"sleep_ms":)" +
                          std::to_string(sleep_ms) + R"(},"max_attempts":1})");
  };
  // noop snoozes when stopped, test.count fails ("stopped before finishing"),
  // test.ignore_stop never looks: written off after the grace, and the
  // worker exits without waiting for it (its 60 s would outlast the wait).
  std::vector<std::string> ids{job("noop", 60000), job("test.count", 60000),
                               job("test.ignore_stop", 60000)};
  REQUIRE(wait_until(
      [&] { return count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'running'") == 3; },
      30s));
  first.signal(SIGTERM);
  CHECK(first.wait(30s) == 0);
  for (const auto& id : ids) {
    INFO(id);
    auto st = state_of(s.pg_url, id);
    CHECK((st == "scheduled" || st == "queued"));
  }
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE attempts = 0") == 3);
  CHECK(count(s.pg_url,
              "SELECT count(*) FROM job_attempts WHERE outcome = 'scheduled' AND error LIKE "
              "'the worker stopped (1000 ms drain deadline) before the job ended; back to the "
              "queue%'") == 3);
  CHECK(count(s.pg_url, "SELECT count(*) FROM test_handled") == 0);
  // The next worker runs them again as their first attempt.
  p.add_worker("processing",
               {{"JOBS_WORKER_CONCURRENCY", "4"}, {"JOBS_WORKER_SHUTDOWN_MS", "1000"}});
  CHECK(wait_until(
      [&] {
        return count(s.pg_url,
                     "SELECT count(*) FROM jobs WHERE state = 'running' AND attempts = 1") == 3;
      },
      30s));
}

TEST_CASE("CPU-bound jobs that keep every core busy each succeed once") {
  // 16 handler threads burning CPU on this machine's cores: the worker holds
  // back rounds while they saturate it (workers/detail/round_hold.hpp), and
  // every outcome still lands, once.
  scratch s;
  platform p(s, {});
  auto key = create_key(s.pg_url, "acme");
  p.add_worker("processing", {{"JOBS_WORKER_CONCURRENCY", "16"}});
  http_client h(p.port);
  constexpr int total = 160;
  submit_noops(h, key, total, R"({"cpu_ms":25})");
  CHECK(all_succeed(s.pg_url, total, 120s));
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE attempts <> 1") == 0);
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts WHERE outcome = 'succeeded'") == total);
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts") == total);
}

TEST_CASE("while the machine is busy, a worker's small rounds are spaced by its gap") {
  // JOBS_TEST_FAULT=worker_machine_busy makes the worker read the machine as
  // fully busy (workers/detail/round_hold.hpp, round_pace). Jobs arriving 25 ms
  // apart then land in rounds at least the gap apart, each carrying several;
  // with a gap of 0 the same arrivals get a round each.
  constexpr int total = 20;
  // finished_at is the completing statement's now(): one value per round.
  constexpr auto rounds = "SELECT count(DISTINCT finished_at) FROM jobs";
  constexpr auto arrivals_ms =
      "SELECT (extract(epoch FROM max(created_at) - min(created_at)) * 1000)::bigint FROM jobs";
  constexpr auto closest_ms = R"(
    SELECT coalesce(min(extract(epoch FROM d) * 1000), 0)::bigint FROM (
      SELECT f - lag(f) OVER (ORDER BY f) AS d FROM (SELECT DISTINCT finished_at AS f FROM jobs) x
    ) y WHERE d IS NOT NULL)";
  auto run = [&](const char* gap_ms) {
    scratch s;
    platform p(s, {});
    auto key = create_key(s.pg_url, "acme");
    p.add_worker("processing", {{"JOBS_TEST_FAULT", "worker_machine_busy"},
                                {"JOBS_WORKER_ROUND_GAP_MS", gap_ms},
                                {"JOBS_WORKER_CONCURRENCY", "128"}});
    http_client h(p.port);
    for (int i = 0; i < total; ++i) {
      submit_noops(h, key, 1, "{}");
      std::this_thread::sleep_for(25ms);
    }
    REQUIRE(all_succeed(s.pg_url, total, 30s));
    CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts") == total);
    return std::tuple{count(s.pg_url, rounds), count(s.pg_url, closest_ms),
                      count(s.pg_url, arrivals_ms)};
  };
  auto [paced, paced_closest, span] = run("300");
  MESSAGE("gap 300 ms: " << paced << " rounds, the closest " << paced_closest
                         << " ms apart, arrivals over " << span << " ms");
  // A round per 300 ms of arrivals (about 500 ms of them, longer on a busy
  // machine), then the last outcomes.
  CHECK(paced <= span / 300 + 3);
  CHECK(paced_closest >= 250);
  auto [free, free_closest, free_span] = run("0");
  MESSAGE("gap 0: " << free << " rounds, the closest " << free_closest
                    << " ms apart, arrivals over " << free_span << " ms");
  CHECK(free >= 10);
}

TEST_CASE("while the machine is busy, the API's small group commits are spaced by its gap") {
  // JOBS_TEST_FAULT=api_machine_busy makes the API read the machine as fully
  // busy (api/submitter.hpp, round_pace). Submissions arriving 25 ms apart,
  // each from a client of its own, then share commits at least the gap
  // apart; with a gap of 0 the same arrivals get a commit each.
  constexpr int total = 20;
  // created_at is the group commit's now(): one value per commit. The first
  // commit, a warm-up's (the submitter's connection opened), is left out.
  constexpr auto measured =
      "SELECT DISTINCT created_at AS c FROM jobs "
      "WHERE created_at > (SELECT min(created_at) FROM jobs)";
  auto commits = fmt::format("SELECT count(*) FROM ({}) x", measured);
  auto closest_ms = fmt::format(R"(
    SELECT coalesce(min(extract(epoch FROM d) * 1000), 0)::bigint FROM (
      SELECT c - lag(c) OVER (ORDER BY c) AS d FROM ({}) x
    ) y WHERE d IS NOT NULL)",
                                measured);
  auto run = [&](const char* gap_ms) {
    scratch s;
    platform p(s, {"processing"},
               {{"JOBS_TEST_FAULT", "api_machine_busy"}, {"JOBS_SUBMIT_COMMIT_GAP_MS", gap_ms}});
    auto key = create_key(s.pg_url, "acme");
    http_client warm(p.port);
    submit_noops(warm, key, 1, "{}");
    std::this_thread::sleep_for(500ms);
    std::atomic<int> accepted{0};
    auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> clients;
    for (int i = 0; i < total; ++i)
      clients.emplace_back([&, i] {
        http_client h(p.port);
        std::this_thread::sleep_until(start + i * 25ms);
        try {
          if (h.post_json("/v1/jobs", R"({"queue":"processing","type":"noop","payload":{}})", key)
                  .status == 202)
            ++accepted;
        } catch (const std::exception&) {  // not accepted: counted below
        }
      });
    for (auto& c : clients) c.join();
    auto span_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count();
    CHECK(accepted == total);
    REQUIRE(all_succeed(s.pg_url, total + 1, 30s));
    return std::tuple{count(s.pg_url, commits), count(s.pg_url, closest_ms), span_ms};
  };
  auto [paced, paced_closest, span] = run("300");
  MESSAGE("gap 300 ms: " << paced << " commits, the closest " << paced_closest
                         << " ms apart, the last 202 after " << span << " ms");
  // A commit per 300 ms of arrivals (about 500 ms of them, longer on a busy
  // machine), the first at once.
  CHECK(paced <= span / 300 + 2);
  // Commits begin 300 ms apart; their statements' now() may drift by a
  // backend's wait for a core.
  CHECK(paced_closest >= 200);
  auto [free, free_closest, free_span] = run("0");
  MESSAGE("gap 0: " << free << " commits, the closest " << free_closest << " ms apart, the last "
                    << "202 after " << free_span << " ms");
  CHECK(free >= 10);
}

TEST_CASE("kill -9 of a worker loses nothing: its jobs are rescued when their lease expires") {
  scratch s;
  platform p(s, {});
  auto key = create_key(s.pg_url, "acme");
  std::map<std::string, std::string> short_lease{{"JOBS_WORKER_LEASE_MS", "2000"},
                                                 {"JOBS_WORKER_CONCURRENCY", "4"}};
  auto& doomed = p.add_worker("processing", short_lease);
  http_client h(p.port);
  constexpr int total = 40;
  submit_noops(h, key, total, R"({"sleep_ms":400})");
  REQUIRE(wait_until(
      [&] { return count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'running'") > 0; },
      30s));
  doomed.signal(SIGKILL);
  doomed.wait(10s);
  auto lost = count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'running'");
  CHECK(lost > 0);

  p.add_worker("processing", short_lease);
  CHECK(all_succeed(s.pg_url, total, 60s));
  // Each lost attempt is on record, and no job succeeded twice.
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts WHERE error LIKE 'worker lost%'") ==
        lost);
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE attempts = 2") == lost);
  CHECK(count(s.pg_url,
              "SELECT count(*) FROM (SELECT job_id FROM job_attempts WHERE outcome = 'succeeded' "
              "GROUP BY job_id HAVING count(*) > 1) d") == 0);
}

TEST_CASE("jobs with a future run_at run when due, each exactly once") {
  scratch s;
  platform p(s);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  // Spread over two seconds, so the scheduler publishes them in several rounds.
  constexpr int total = 30;
  auto start = std::chrono::system_clock::now() + 1500ms;
  for (int i = 0; i < total; ++i) {
    auto at = jobs::format_rfc3339(start + std::chrono::milliseconds(70 * i));
    auto r = h.post_json(
        "/v1/jobs", R"({"queue":"processing","type":"noop","payload":{},"run_at":")" + at + "\"}",
        key);
    REQUIRE(r.status == 202);
    CHECK(r.json().at("state") == "scheduled");
  }
  CHECK(all_succeed(s.pg_url, total, 30s));
  // Each went in scheduled and was queued by the scheduler (their states
  // now would race it: the first are due while the last are submitted).
  CHECK(count(s.pg_url,
              "SELECT count(*) FROM job_events WHERE from_state IS NULL "
              "AND to_state = 'scheduled'") == total);
  CHECK(count(s.pg_url,
              "SELECT count(*) FROM job_events WHERE from_state = 'scheduled' "
              "AND to_state = 'queued'") == total);
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'queued'") == 0);
  // None ran before its time.
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE started_at < run_at") == 0);
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts") == total);
}

TEST_CASE("a message that is not a job goes to the dead-letter queue with the reason") {
  scratch s;
  platform p(s);
  jobs::publisher pub({s.amqp_url, 30, 10s, {10}});
  REQUIRE(wait_until([&] { return pub.connected(); }, 10s));
  std::atomic<int> confirmed{0};
  pub.publish("processing", "garbage-1", "this is not json",
              [&](bool ok, std::string_view) { confirmed += ok; });
  pub.publish("processing", "garbage-2",
              R"({"id":"nope","tenant":"t","queue":"processing","type":"noop"})",
              [&](bool ok, std::string_view) { confirmed += ok; });
  REQUIRE(wait_until([&] { return confirmed == 2; }, 10s));

  jobs::consumer dead(jobs::parse_amqp_url(s.amqp_url), 30, std::string(jobs::dead_queue), 10,
                      {10});
  std::vector<jobs::delivery> got;
  CHECK(wait_until(
      [&] {
        dead.poll(got, 50, -1);
        return got.size() >= 2;
      },
      30s));
  REQUIRE(got.size() == 2);
  std::map<std::string, std::string> reasons;
  for (auto& d : got) {
    reasons[d.message_id] = d.headers["x-dead-reason"];
    CHECK(d.headers["x-original-queue"] == "processing");
    dead.ack(d.tag);
  }
  CHECK(reasons["garbage-1"] == "body is not one JSON document");
  CHECK(reasons["garbage-2"] == "id is not a UUID");
}

TEST_CASE("a dead job retried through the API runs again, its history kept") {
  scratch s;
  platform p(s, {"processing"}, {}, true);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto r = h.post_json(
      "/v1/jobs",
      R"({"queue":"processing","type":"test.fail_always","payload":{},"max_attempts":2,)"
      R"("backoff":{"base_ms":50}})",
      key);
  REQUIRE(r.status == 202);
  auto id = std::string(r.json().at("id").as_string());
  auto state = [&] {
    return std::string(h.get("/v1/jobs/" + id, key).json().at("state").as_string());
  };
  REQUIRE(wait_until([&] { return state() == "dead"; }, 30s));
  CHECK(h.get("/v1/jobs?state=dead", key).json().at("jobs").as_array().size() == 1);

  auto retried = h.request(boost::beast::http::verb::post, "/v1/jobs/" + id + "/retry", "",
                           {{"authorization", "Bearer " + key}});
  CHECK(retried.status == 202);
  CHECK(retried.json().at("state") == "scheduled");
  CHECK(retried.json().at("attempts") == 0);
  CHECK(retried.json().at("life") == 2);
  CHECK(retried.json()
            .at("error")
            .is_null());  // the new life starts clean; the history keeps the old
  CHECK(retried.json().at("started_at").is_null());
  // It runs its two attempts again and dies again; all four attempts are on record.
  CHECK(wait_until([&] { return count(s.pg_url, "SELECT count(*) FROM job_attempts") == 4; }, 30s));
  CHECK(wait_until([&] { return state() == "dead"; }, 30s));
  // Each attempt says which life it belongs to: 1, 1, then 2, 2.
  auto again = h.get("/v1/jobs/" + id, key).json();
  CHECK(again.at("life") == 2);
  auto history = again.at("attempt_history").as_array();
  REQUIRE(history.size() == 4);
  for (std::size_t i = 0; i < history.size(); ++i) {
    CHECK(history[i].at("life") == (i < 2 ? 1 : 2));
    CHECK(history[i].at("attempt") == static_cast<int>(i % 2) + 1);
  }

  auto done = h.post_json("/v1/jobs", R"({"queue":"processing","type":"noop","payload":{}})", key);
  auto done_id = std::string(done.json().at("id").as_string());
  REQUIRE(wait_until(
      [&] { return h.get("/v1/jobs/" + done_id, key).json().at("state") == "succeeded"; }, 30s));
  auto refused = h.request(boost::beast::http::verb::post, "/v1/jobs/" + done_id + "/retry", "",
                           {{"authorization", "Bearer " + key}});
  CHECK(refused.status == 409);
  CHECK(refused.json().at("code") == "not_retryable");
  CHECK(refused.json().at("detail") ==
        "the job's state is succeeded: only a dead or failed job can be retried");
}

TEST_CASE("commit hooks that fail in one round retry their attempts alone; the rest land") {
  // One batch, claimed eight at a time: each round completes several jobs
  // whose second hook fails (a division by zero) after their first wrote,
  // beside jobs whose hooks succeed, and two whose result is over the
  // worker's limit (dead: their hooks must not run).
  scratch s;
  platform p(s, {}, {}, true);
  p.add_worker("processing", {{"JOBS_WORKER_CONCURRENCY", "8"}});
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  boost::json::array batch;
  for (int i = 0; i < 26; ++i)
    batch.push_back(boost::json::parse(
        i == 5 || i == 17 ? R"({"queue":"processing","type":"test.count",)"
                            R"("payload":{"result_bytes":1100000}})"
        : i % 3 == 0      ? R"({"queue":"processing","type":"test.count","payload":{}})"
                          : R"({"queue":"processing","type":"test.hook_fail",)"
                            R"("payload":{"hook_fail_times":1},"backoff":{"base_ms":50}})"));
  auto r = h.post_json("/v1/jobs/batch",
                       boost::json::serialize(boost::json::object{{"jobs", batch}}), key);
  REQUIRE_MESSAGE(r.status == 202, r.body);
  CHECK(all_succeed(s.pg_url, 24, 60s));
  CHECK(wait_until(
      [&] { return count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'dead'") == 2; }, 30s));
  CHECK(count(s.pg_url,
              "SELECT count(*) FROM jobs WHERE type = 'test.hook_fail' AND attempts = 2 "
              "AND state = 'succeeded'") == 15);
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE type = 'test.count' AND attempts = 1") ==
        11);
  CHECK(count(s.pg_url,
              "SELECT count(*) FROM job_attempts WHERE error LIKE "
              "'commit hook failed: %division by zero%'") == 15);
  // Each success counted once: the failed attempts' counts were undone, and
  // the dead jobs' hooks never ran.
  auto once = handled(s.pg_url);
  CHECK(once.size() == 24);
  for (const auto& [id, n] : once) CHECK_MESSAGE(n == 1, id);
  CHECK(count(s.pg_url,
              "SELECT count(*) FROM test_handled t JOIN jobs j ON j.id = t.job_id "
              "WHERE j.state <> 'succeeded'") == 0);
}

TEST_CASE("the API serves keep-alive connections on each of its threads and stops with them open") {
  scratch s;
  platform p(s, {}, {{"JOBS_HTTP_THREADS", "3"}});
  auto key = create_key(s.pg_url, "acme");
  // Connections are dealt to the threads in turn: nine cover each thread's
  // context three times, and each answers several requests on one connection.
  std::vector<std::unique_ptr<http_client>> clients;
  for (int i = 0; i < 9; ++i) clients.push_back(std::make_unique<http_client>(p.port));
  for (int round = 0; round < 3; ++round)
    for (auto& c : clients)
      REQUIRE(c->post_json("/v1/jobs", R"({"queue":"processing","type":"noop","payload":{}})", key)
                  .status == 202);
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs") == 27);
  // The connections stay open and idle; stop closes them and every thread's
  // context runs out of work, so the process exits.
  p.api->signal(SIGTERM);
  CHECK(p.api->wait(20s) == 0);
}
