// Per-tenant caps on running jobs (common/tenant_caps.hpp), the whole
// platform as processes: a tenant's flood does not starve another tenant.
// ctest-labels: security
#include "common/db.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/json.hpp>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

std::string batch_of(int n, int sleep_ms) {
  std::string body = R"({"jobs":[)";
  for (int i = 0; i < n; ++i)
    body +=
        fmt::format(R"({}{{"queue":"processing","type":"test.count","payload":{{"sleep_ms":{}}}}})",
                    i ? "," : "", sleep_ms);
  return body + "]}";
}

std::vector<std::string> submit_batch(http_client& h, const std::string& key, int n, int sleep_ms) {
  auto r = h.post_json("/v1/jobs/batch", batch_of(n, sleep_ms), key);
  REQUIRE_MESSAGE(r.status == 202, r.status, " ", r.body);
  std::vector<std::string> ids;
  auto doc = r.json();
  for (const auto& j : doc.at("jobs").as_array()) ids.emplace_back(j.at("id").as_string().c_str());
  return ids;
}

long succeeded(const std::string& pg_url, const std::string& tenant) {
  return count(pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded' AND tenant_id = '" +
                           tenant + "'");
}

// The most attempts of `tenant` that were running at one instant, from the
// attempts' recorded start and end times.
long max_overlap(const std::string& pg_url, const std::string& tenant) {
  return count(pg_url, fmt::format(R"(
    WITH a AS (SELECT a.started_at, a.finished_at FROM job_attempts a
               JOIN jobs j ON j.id = a.job_id WHERE j.tenant_id = '{}')
    SELECT coalesce(max((SELECT count(*) FROM a b
                         WHERE b.started_at <= x.started_at AND b.finished_at > x.started_at)), 0)
    FROM a x)",
                                   tenant));
}

}  // namespace

TEST_CASE("a tenant's flood of slow jobs leaves room for another tenant, within its cap") {
  scratch s;
  // Two workers of 4 threads each; every tenant may run 2 jobs at once, but
  // bravo has an override of 5.
  platform p(s, {}, {{"JOBS_TENANT_MAX_RUNNING", "2"}, {"JOBS_TENANT_DEFER_MS", "300"}}, true);
  {
    auto c = pg_connect(s.pg_url);
    pqxx::nontransaction n(*c);
    n.exec("INSERT INTO tenant_limits (tenant_id, max_running) VALUES ('bravo', 5)");
  }
  auto alpha_key = create_key(s.pg_url, "alpha");
  auto bravo_key = create_key(s.pg_url, "bravo");
  http_client h(p.port);
  auto alpha = submit_batch(h, alpha_key, 200, 150);
  auto bravo = submit_batch(h, bravo_key, 10, 150);  // behind all of alpha's in the queue
  p.add_worker("processing", {{"JOBS_WORKER_CONCURRENCY", "4"}});
  p.add_worker("processing", {{"JOBS_WORKER_CONCURRENCY", "4"}});

  REQUIRE(wait_until([&] { return succeeded(s.pg_url, "bravo") == 10; }, 60s));
  auto alpha_done = succeeded(s.pg_url, "alpha");
  MESSAGE("alpha jobs done when bravo's 10 were: ", alpha_done);
  CHECK(alpha_done < 100);  // without the cap, bravo waits for nearly all of alpha's

  REQUIRE(wait_until([&] { return succeeded(s.pg_url, "alpha") == 200; }, 180s));
  auto alpha_peak = max_overlap(s.pg_url, "alpha");
  auto bravo_peak = max_overlap(s.pg_url, "bravo");
  MESSAGE("most running at once: alpha ", alpha_peak, ", bravo ", bravo_peak);
  CHECK(alpha_peak <= 2);
  CHECK(alpha_peak >= 1);
  CHECK(bravo_peak <= 5);
  CHECK(bravo_peak > 2);  // its override, not the default, applied

  // Deferring a job does not spend its attempts: each ran once, in one attempt.
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE attempts <> 1") == 0);
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts") == 210);
  auto runs = handled(s.pg_url);
  CHECK(runs.size() == 210);
  for (const auto& id : alpha) CHECK(runs[id] == 1);
  for (const auto& id : bravo) CHECK(runs[id] == 1);
}
