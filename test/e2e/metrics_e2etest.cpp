// ctest-labels: dashboard
// GET /metrics on the API and on a worker, scraped after real jobs ran: the
// output parses as strict Prometheus text, and its counters match the jobs.
// A trace id sent in `traceparent` reaches the worker's log line for its job.
#include "support/live.hpp"
#include "support/prom_text.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/json.hpp>

#include <fstream>
#include <regex>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;
namespace http = boost::beast::http;

namespace {

prom_families scrape(int port) {
  http_client h(port);
  auto r = h.request(http::verb::get, "/metrics");
  REQUIRE(r.status == 200);
  CHECK(r.headers["content-type"].starts_with("text/plain; version=0.0.4"));
  return parse_prom_text(r.body);  // throws (failing the test) on any malformed line
}

// The worker's JSON log lines about `job_id`.
std::vector<boost::json::object> log_lines(const std::string& file, const std::string& job_id) {
  std::vector<boost::json::object> out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(job_id) == std::string::npos) continue;
    auto v = boost::json::parse(line);  // every line is one JSON object
    if (v.as_object().contains("job_id") && v.at("job_id") == job_id.c_str())
      out.push_back(v.as_object());
  }
  return out;
}

}  // namespace

TEST_CASE("a fresh API's and worker's /metrics have the series dashboards plot, at 0") {
  scratch s;
  platform p(s, {});
  int worker_port = free_port();
  p.add_worker("processing", {{"JOBS_WORKER_METRICS_PORT", std::to_string(worker_port)}});
  http_client h(p.port);
  // A counter first seen at its first increment shows "No data", and
  // rate() misses that increment.
  auto has_series = [](const prom_families& f, const std::string& family,
                       const std::map<std::string, std::string>& labels) {
    auto it = f.find(family);
    if (it == f.end()) return false;
    return std::any_of(it->second.samples.begin(), it->second.samples.end(),
                       [&](const prom_sample& x) { return x.labels == labels && x.value == 0; });
  };
  auto fresh = parse_prom_text(h.get("/metrics", "").body);
  CHECK(has_series(fresh, "jobs_submitted_total", {{"queue", "email"}, {"type", "send"}}));
  CHECK(has_series(fresh, "jobs_submitted_total", {{"queue", "processing"}, {"type", "noop"}}));
  CHECK(has_series(fresh, "jobs_dead_letters_total", {{"action", "buried"}}));
  CHECK(wait_until(
      [&] {
        try {
          auto worker_fresh = parse_prom_text(http_client(worker_port).get("/metrics", "").body);
          return has_series(worker_fresh, "jobs_lost_attempts_total", {{"queue", "processing"}});
        } catch (const std::exception&) {
          return false;  // not listening yet
        }
      },
      10s));
}

TEST_CASE("/metrics of the API and the worker count the jobs that ran") {
  scratch s;
  platform p(s, {}, {{"JOBS_LOG_LEVEL", "debug"}}, /*test_handlers=*/true);
  int worker_port = free_port();
  p.add_worker("processing", {{"JOBS_WORKER_METRICS_PORT", std::to_string(worker_port)}});
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);

  constexpr int ok_jobs = 25, dead_jobs = 3;
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  std::string traced_id, untraced_id;
  for (int i = 0; i < ok_jobs; ++i) {
    std::map<std::string, std::string> headers{{"authorization", "Bearer " + key},
                                               {"content-type", "application/json"}};
    if (i == 0) headers["traceparent"] = "00-" + trace + "-00f067aa0ba902b7-01";
    auto r = h.request(
        http::verb::post, "/v1/jobs",
        fmt::format(R"({{"queue":"processing","type":"noop","payload":{{"echo":{}}}}})", i),
        headers);
    REQUIRE(r.status == 202);
    (i == 0 ? traced_id : untraced_id) = std::string(r.json().at("id").as_string());
  }
  for (int i = 0; i < dead_jobs; ++i) {
    auto r = h.post_json(
        "/v1/jobs",
        R"({"queue":"processing","type":"test.fail_always","payload":{},"max_attempts":1})", key);
    REQUIRE(r.status == 202);
  }
  CHECK(h.get("/v1/jobs/" + traced_id, key).status == 200);
  CHECK(h.get("/v1/jobs/00000000-0000-0000-0000-000000000000", key).status == 404);
  CHECK(h.request(http::verb::get, "/no/such/route").status == 404);

  REQUIRE_MESSAGE(wait_until(
                      [&] {
                        return count(s.pg_url,
                                     "SELECT count(*) FROM jobs WHERE state IN "
                                     "('succeeded','dead')") == ok_jobs + dead_jobs;
                      },
                      60s),
                  "jobs did not finish; see ", p.log_dir);

  {  // the API's counters, histograms and gauges
    auto m = scrape(p.port);
    CHECK(m.at("jobs_submitted_total").type == "counter");
    CHECK(prom_sum(m, "jobs_submitted_total", {{"queue", "processing"}, {"type", "noop"}}) ==
          ok_jobs);
    CHECK(prom_sum(m, "jobs_submitted_total", {{"type", "test.fail_always"}}) == dead_jobs);
    CHECK(m.at("jobs_http_request_duration_seconds").type == "histogram");
    CHECK(prom_sum(m, "jobs_http_request_duration_seconds_count",
                   {{"method", "POST"}, {"route", "/v1/jobs"}, {"status", "202"}}) ==
          ok_jobs + dead_jobs);
    // Routes are labelled by their template, never by the raw path.
    CHECK(prom_sum(m, "jobs_http_request_duration_seconds_count",
                   {{"route", "/v1/jobs/{id}"}, {"status", "200"}}) == 1);
    CHECK(prom_sum(m, "jobs_http_request_duration_seconds_count",
                   {{"route", "/v1/jobs/{id}"}, {"status", "404"}}) == 1);
    CHECK(prom_sum(m, "jobs_http_request_duration_seconds_count",
                   {{"route", "unmatched"}, {"status", "404"}}) == 1);
    for (const auto& sample : m.at("jobs_http_request_duration_seconds").samples)
      CHECK(sample.labels.at("route").find(traced_id) == std::string::npos);
    CHECK(prom_sum(m, "jobs_publish_confirm_seconds_count") == ok_jobs + dead_jobs);
    // Every accepted job went through one group commit: the commits' job
    // counts add up to the jobs, and there is at least one commit.
    CHECK(prom_sum(m, "jobs_submit_commit_jobs_sum") == ok_jobs + dead_jobs);
    CHECK(prom_sum(m, "jobs_submit_commit_seconds_count") >= 1);
    CHECK(prom_sum(m, "jobs_submit_commit_seconds_count") ==
          prom_sum(m, "jobs_submit_commit_jobs_count"));
    CHECK(prom_sum(m, "jobs_db_pool_connections", {{"pool", "api"}}) > 0);
    CHECK(m.contains("jobs_db_pool_in_use"));
    CHECK(prom_sum(m, "jobs_in_state", {{"queue", "processing"}, {"state", "succeeded"}}) ==
          ok_jobs);
    CHECK(prom_sum(m, "jobs_in_state", {{"queue", "processing"}, {"state", "dead"}}) == dead_jobs);
    CHECK(prom_sum(m, "jobs_queue_depth", {{"queue", "processing"}}) == 0);
    CHECK(prom_sum(m, "jobs_queue_oldest_age_seconds", {{"queue", "processing"}}) == 0);
    // From GET /v1/queues' reader: the broker's view.
    CHECK(prom_sum(m, "jobs_queue_consumers", {{"queue", "processing"}}) == 1);
    CHECK(prom_sum(m, "jobs_queue_ready", {{"queue", "processing"}}) == 0);
    CHECK(m.contains("jobs_queue_workers_desired"));
  }

  {  // the worker's counters, histograms and gauges
    prom_families m;
    // The in-flight gauge is set once per coordinator round.
    CHECK(wait_until(
        [&] {
          m = scrape(worker_port);
          return prom_sum(m, "jobs_in_flight", {{"queue", "processing"}}) == 0 &&
                 prom_sum(m, "jobs_completed_total") == ok_jobs + dead_jobs;
        },
        10s));
    CHECK(prom_sum(m, "jobs_completed_total",
                   {{"queue", "processing"}, {"type", "noop"}, {"state", "succeeded"}}) == ok_jobs);
    CHECK(prom_sum(m, "jobs_completed_total", {{"type", "test.fail_always"}, {"state", "dead"}}) ==
          dead_jobs);
    CHECK(m.at("jobs_attempt_duration_seconds").type == "histogram");
    CHECK(prom_sum(m, "jobs_attempt_duration_seconds_count") == ok_jobs + dead_jobs);
    CHECK(prom_sum(m, "jobs_db_pool_connections", {{"pool", "worker"}}) == 1);
  }

  {  // the trace id of traceparent reaches the worker's log line for the job
    auto file = p.log_dir + "/worker-processing-0.log";
    std::vector<boost::json::object> lines;
    CHECK(wait_until([&] { return !(lines = log_lines(file, traced_id)).empty(); }, 10s));
    REQUIRE(!lines.empty());
    CHECK(lines.back().at("trace_id") == trace.c_str());
    // A request without traceparent starts a trace of its own.
    auto other = log_lines(file, untraced_id);
    REQUIRE(!other.empty());
    auto id = std::string(other.back().at("trace_id").as_string());
    CHECK(std::regex_match(id, std::regex("[0-9a-f]{32}")));
    CHECK(id != trace);
  }
}
