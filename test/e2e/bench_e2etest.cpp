// ctest-labels: bench
// scripts/bench's load generator against a live platform: a small run of
// each mode must complete every job and report every field. No timing is
// asserted (numbers are scripts/bench's business, not a test's). The
// webhook workload must see each succeeded job's request at its sink.
#include "support/files.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <fstream>
#include <vector>

using namespace jobs;
using namespace jobs::test;

namespace {

// The test PostgreSQL's postmaster: jobs-bench counts it with its backends.
std::string postmaster_pid() {
  std::ifstream f(require_env("JOBS_TEST_DIR") + "/pg/postmaster.pid");
  std::string pid;
  std::getline(f, pid);
  REQUIRE_MESSAGE(!pid.empty(), "no postmaster.pid");
  return pid;
}

// Every worker of the platform is accounted as `worker`.
boost::json::object run_bench(const scratch& s, const platform& p, const std::string& args) {
  std::string workers;
  for (const auto& w : p.workers) workers += fmt::format(" --pid worker={}", w->pid());
  auto cmd = fmt::format(
      "'{}' --port {} --pg-url '{}' --amqp-url '{}' --pid api={}{} --pid postgres={} {}",
      binary("jobs-bench"), p.port, s.pg_url, s.amqp_url, p.api->pid(), workers, postmaster_pid(),
      args);
  auto text = command_output(cmd);
  INFO("jobs-bench printed: " << text);
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  REQUIRE_FALSE(ec);
  REQUIRE(v.is_object());
  return v.as_object();
}

void check_fields(const boost::json::object& o, int jobs) {
  INFO(boost::json::serialize(o));
  CHECK(o.at("accepted") == jobs);
  CHECK(o.at("refused") == 0);
  CHECK(o.at("succeeded") == jobs);
  CHECK(o.at("unfinished") == 0);
  for (const char* f : {"jobs_per_s", "accept_p99_ms", "e2e_p50_ms", "e2e_p99_ms",
                        "pg_commits_per_job", "wal_bytes_per_job"}) {
    REQUIRE_MESSAGE(o.contains(f), f);
    CHECK(o.at(f).to_number<double>() > 0);
  }
  CHECK(o.at("cpu_s_per_1k_jobs").as_object().contains("api"));
  // Present; a small run can round to 0.00 s.
  CHECK(o.at("bench_cpu_s_per_1k_jobs").to_number<double>() >= 0);
  CHECK(o.at("peak_rss_mb").at("worker").to_number<double>() > 0);
  // Every job woke the API at least once (a request read, an answer written).
  CHECK(o.at("switches_per_job").at("api").to_number<double>() > 0);
  CHECK(o.at("switches_per_job").as_object().contains("bench"));
  // The 202's two waits, from the API's own /metrics.
  for (const char* f : {"commit_mean_ms", "jobs_per_commit", "confirm_mean_ms"}) {
    REQUIRE_MESSAGE(o.contains(f), f);
    CHECK(o.at(f).to_number<double>() > 0);
  }
  CHECK(o.at("jobs_per_commit").to_number<double>() <= jobs);
  // The whole machine's CPU time over the run, split three ways.
  const auto& m = o.at("machine_cpu_pct").as_object();
  double used = m.at("used").to_number<double>(), steal = m.at("steal").to_number<double>(),
         idle = m.at("idle").to_number<double>();
  CHECK(used > 0);  // this platform ran jobs
  CHECK(steal >= 0);
  CHECK(idle >= 0);
  CHECK(used + steal + idle == doctest::Approx(100).epsilon(0.005));
  // The cores' speed, probed before the run on the bench's own CPU clock.
  CHECK(o.at("core_speed").at("int_steps_per_us").to_number<double>() > 0);
  CHECK(o.at("core_speed").at("mem_load_ns").to_number<double>() > 0);
  // Only a cpu run knows what its handlers spent.
  CHECK(o.contains("platform_overhead_pct") == (o.at("workload") == "cpu"));
}

}  // namespace

TEST_CASE("jobs-bench runs single POSTs, batches and an open loop to completion") {
  scratch s;
  platform p(s);
  auto single = run_bench(s, p, "--jobs 200 --connections 4 --ceiling-messages 500");
  check_fields(single, 200);
  CHECK(single.at("batch") == false);
  CHECK(single.at("ceiling_publish_per_s").to_number<double>() > 0);
  CHECK(single.at("ceiling_ratio").to_number<double>() > 0);
  // PostgreSQL's CPU and switches are its backends' (children_of in
  // test/bench/measure.cpp): the postmaster alone does next to nothing.
  CHECK(single.at("cpu_s_per_1k_jobs").at("postgres").to_number<double>() > 0);
  CHECK(single.at("switches_per_job").at("postgres").to_number<double>() > 0);

  auto batch = run_bench(s, p, "--jobs 500 --batch 50 --connections 2 --payload-bytes 1024");
  check_fields(batch, 500);
  CHECK(batch.at("batch") == true);
  CHECK(batch.at("payload_bytes") == 1024);

  auto open = run_bench(s, p, "--jobs 100 --rate 200 --connections 8 --workload cpu");
  check_fields(open, 100);
  CHECK(open.at("mode") == "open");
  CHECK(open.at("workload") == "cpu");
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE payload ? 'cpu_ms'") == 100);
  // The worker's CPU past its handlers' 10 ms a job, the API's and
  // PostgreSQL's: more than nothing.
  CHECK(open.at("platform_overhead_pct").to_number<double>() > 0);

  auto trace = require_env("JOBS_TEST_DIR") + "/" + s.name + "-latency.txt";
  auto timed =
      run_bench(s, p, "--rate 100 --duration 1 --connections 2 --latency-trace '" + trace + "'");
  check_fields(timed, 100);
  CHECK(timed.at("mode") == "open");
  CHECK_FALSE(timed.contains("processes"));  // one process a name
  // Paced, not sent at once: the last of 100 jobs at 100/s is due at 0.99 s,
  // so however fast the API answers, the submissions take that long.
  CHECK(timed.at("submit_per_s").to_number<double>() <= 102);
  // One line a request: its due time (k / 100 s), its status and latency.
  std::ifstream in(trace);
  std::string header;
  std::getline(in, header);
  CHECK(header == "# due_ms status ms");
  std::vector<double> due;
  double d = 0, ms = 0;
  int status = 0;
  while (in >> d >> status >> ms) {
    due.push_back(d);
    CHECK(status == 202);
    CHECK(ms > 0);
  }
  REQUIRE(due.size() == 100);
  std::sort(due.begin(), due.end());
  CHECK(due.front() == doctest::Approx(0).epsilon(0.01));
  CHECK(due.back() == doctest::Approx(990).epsilon(0.01));
}

TEST_CASE("jobs-bench accounts several processes of one name together") {
  scratch s;
  platform p(s, {"processing", "processing"});
  // Both consuming before the jobs come, or the first could take them all.
  for (int n : {0, 1}) {
    auto log = p.log_dir + "/worker-processing-" + std::to_string(n) + ".log";
    REQUIRE_MESSAGE(
        wait_until([&] { return file_text(log).find("worker consuming") != std::string::npos; },
                   std::chrono::seconds(30)),
        log);
  }
  // The first worker also on its own: `worker` must count both.
  auto two = run_bench(
      s, p,
      fmt::format("--pid first={} --jobs 400 --batch 50 --connections 2", p.workers.at(0)->pid()));
  check_fields(two, 400);
  CHECK(two.at("processes").at("worker") == 2);
  CHECK_FALSE(two.at("processes").as_object().contains("first"));
  // The broker spread the messages over both consumers.
  CHECK(count(s.pg_url, "SELECT count(DISTINCT worker_id) FROM job_attempts") == 2);
  // So the second worker woke for its jobs too, and the sum is larger.
  const auto& switches = two.at("switches_per_job");
  CHECK(switches.at("worker").to_number<double>() > switches.at("first").to_number<double>());
  const auto& cpu = two.at("cpu_s_per_1k_jobs");
  CHECK(cpu.at("worker").to_number<double>() >= cpu.at("first").to_number<double>());
}

TEST_CASE("jobs-bench's webhook workload delivers every job to its own sink") {
  scratch s;
  platform p(s, {"webhooks"}, {{"JOBS_WEBHOOK_ALLOW", "127.0.0.1/32"}});
  auto single = run_bench(s, p, "--workload webhook --sink-delay-ms 5 --jobs 300 --connections 4");
  check_fields(single, 300);
  CHECK(single.at("workload") == "webhook");
  CHECK(single.at("sink_delay_ms") == 5);
  CHECK(single.at("deliveries").to_number<long>() >= 300);
  CHECK(single.at("undelivered") == 0);

  auto batch = run_bench(s, p, "--workload webhook --jobs 400 --batch 100 --connections 2");
  check_fields(batch, 400);
  CHECK(batch.at("deliveries").to_number<long>() >= 400);
  CHECK(batch.at("undelivered") == 0);
  CHECK(count(s.pg_url,
              "SELECT count(*) FROM jobs WHERE queue = 'webhooks' AND state = 'succeeded' "
              "AND result->>'status' = '200'") == 700);
}
