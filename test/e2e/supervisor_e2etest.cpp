// ctest-labels: scaling
// jobs-supervisor (workers/supervisor/supervisor.hpp) against the real
// platform: it scales a pool with the queue's depth, drains without
// interrupting a job, and replaces a worker killed with -9. GET /v1/queues
// is read throughout and checked against the OpenAPI document. Its /metrics
// agree with GET /v1/queues, and each worker gets its own metrics port.
#include "common/db.hpp"
#include "common/keys.hpp"
#include "support/live.hpp"
#include "support/openapi.hpp"
#include "support/prom_text.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <signal.h>
#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

// The pids of the processes whose parent is `parent`.
std::set<int> children_of(int parent) {
  std::set<int> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    int ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent && state != 'Z') out.insert(std::stoi(name));
  }
  return out;
}

struct queues_view {
  http_client& http;
  std::string key;
  openapi_contract contract;
  // GET /v1/queues, checked against the contract; the `processing` entry.
  boost::json::object processing() {
    auto r = http.get("/v1/queues", key);
    REQUIRE(r.status == 200);
    auto body = r.json();
    auto errors = contract.violations("QueueList", body);
    CHECK_MESSAGE(errors.empty(), r.body);
    for (const auto& q : body.at("queues").as_array())
      if (q.at("name") == "processing") return q.as_object();
    FAIL("no processing queue in " << r.body);
    return {};
  }
  int running() { return static_cast<int>(processing().at("workers").at("running").as_int64()); }
};

// The platform without workers of its own, and a supervisor running its
// pools with `settings` (read every 200 ms unless they say otherwise).
struct supervised {
  supervised(scratch& s, const std::map<std::string, std::string>& settings,
             std::map<std::string, std::string> platform_env = {})
      : p(s, {}, std::move(platform_env)),
        key(create_key(s.pg_url, "acme")),
        log(p.log_dir + "/supervisor.log"),
        sup(binary("jobs-supervisor"), {}, with(p.env, settings), log),
        h(p.port),
        q{h, key, {}} {}
  static std::map<std::string, std::string> with(std::map<std::string, std::string> env,
                                                 const std::map<std::string, std::string>& more) {
    env["JOBS_SUPERVISOR_INTERVAL_MS"] = "200";
    for (const auto& [k, v] : more) env[k] = v;
    return env;
  }
  platform p;
  std::string key, log;
  process sup;
  http_client h;
  queues_view q;
};

void submit_sleepers(http_client& h, const std::string& key, int n, int sleep_ms) {
  for (int done = 0; done < n;) {
    std::string body = R"({"jobs":[)";
    int in_batch = std::min(100, n - done);
    for (int i = 0; i < in_batch; ++i)
      body += (i ? "," : "") +
              fmt::format(R"({{"queue":"processing","type":"noop","payload":{{"sleep_ms":{}}}}})",
                          sleep_ms);
    body += "]}";
    auto r = h.post_json("/v1/jobs/batch", body, key);
    REQUIRE_MESSAGE(r.status == 202, r.body);
    done += in_batch;
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

long occurrences(const std::string& text, const std::string& what) {
  long n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a flood scales a pool from min to max and back; no job is interrupted") {
  scratch s;
  // Long jobs and a short down cool-down: workers are drained while they run jobs.
  // The broker given as a list whose first node is down: the queue figures
  // the supervisor scales by are read from the next (they once took the
  // whole list for one URL, and never scaled).
  auto at = s.amqp_url.find('@') + 1, slash = s.amqp_url.find('/', at);
  auto listed = fmt::format("{}127.0.0.1:{}{},{}", s.amqp_url.substr(0, at), free_port(),
                            s.amqp_url.substr(slash), s.amqp_url.substr(at, slash - at));
  supervised run(s, {{"JOBS_SUPERVISOR_POOLS", "processing=1..4,backlog=4,up_ms=300,down_ms=500"},
                     {"JOBS_WORKER_CONCURRENCY", "2"},
                     {"JOBS_AMQP_URL", listed}});
  auto& [p, key, log, sup, h, q] = run;
  REQUIRE_MESSAGE(wait_until([&] { return q.running() == 1; }, 20s), "no first worker; see ", log);
  auto idle = q.processing();
  CHECK(idle.at("workers").at("min") == 1);
  CHECK(idle.at("workers").at("max") == 4);
  CHECK(idle.at("workers").at("desired") == 1);
  CHECK(idle.at("workers").at("supervised") == true);

  constexpr int jobs = 64;
  submit_sleepers(h, key, jobs, 1500);
  int peak = 0;
  long peak_backlog = 0;
  double oldest = 0;
  bool at_max = wait_until(
      [&] {
        auto v = q.processing();
        peak_backlog =
            std::max(peak_backlog, v.at("ready").as_int64() + v.at("unacked").as_int64());
        oldest = std::max(oldest, v.at("oldest_waiting_age_s").to_number<double>());
        peak = std::max(peak, static_cast<int>(v.at("workers").at("running").as_int64()));
        return peak == 4;
      },
      20s);
  REQUIRE_MESSAGE(at_max, "the pool never reached its maximum (peak ", peak, "); see ", log);
  CHECK(peak_backlog > 8);
  CHECK(oldest > 0);
  CHECK(children_of(sup.pid()).size() == 4);

  auto succeeded = [&] {
    return count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded'");
  };
  REQUIRE_MESSAGE(wait_until([&] { return succeeded() == jobs; }, 40s), "jobs did not finish");
  double rate = q.processing().at("completed_per_s").to_number<double>();
  CHECK(rate > 1);
  REQUIRE_MESSAGE(wait_until([&] { return q.running() == 1; }, 20s),
                  "the pool did not return to its minimum; see ", log);
  CHECK(q.processing().at("workers").at("desired") == 1);
  CHECK(children_of(sup.pid()).size() == 1);

  // Nothing was interrupted: one attempt each, each succeeded.
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded' AND attempts = 1") ==
        jobs);
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts") == jobs);
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts WHERE outcome <> 'succeeded'") == 0);
  auto text = read_file(log);
  CHECK(occurrences(text, R"("msg":"worker drained")") >= 3);
  CHECK(occurrences(text, R"("msg":"scaling")") >= 2);
  CHECK(occurrences(text, R"("msg":"worker died)") == 0);
  // Some worker was asked to drain while it ran jobs (the workers log to
  // the supervisor's stderr), and those jobs still succeeded once.
  bool busy_drain = false;
  for (int n = 1; n <= 2; ++n)
    busy_drain |= occurrences(text, fmt::format(R"("msg":"worker draining","running":{})", n)) > 0;
  CHECK_MESSAGE(busy_drain, "no worker was drained while running a job; see ", log);
  MESSAGE("peak workers ", peak, ", peak backlog ", peak_backlog, ", completion rate ", rate, "/s");

  sup.signal(SIGTERM);
  CHECK(sup.wait(30s) == 0);
  CHECK(count(s.pg_url, "SELECT count(*) FROM worker_pools") == 0);
}

TEST_CASE("a paused queue's backlog scales nothing; a worker started while paused takes nothing") {
  scratch s;
  supervised run(s, {{"JOBS_SUPERVISOR_POOLS", "processing=1..4,backlog=4,up_ms=300,down_ms=500"},
                     {"JOBS_SUPERVISOR_RESTART_BACKOFF_MS", "200"},
                     {"JOBS_WORKER_CONCURRENCY", "2"}});
  auto& [p, key, log, sup, h, q] = run;
  REQUIRE_MESSAGE(wait_until([&] { return q.processing().at("consumers") == 1; }, 20s),
                  "no first worker; see ", log);
  auto r = h.post_json("/v1/admin/queues/processing/pause", "", key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  // The worker hears of it and cancels its consumer before the jobs come.
  REQUIRE(wait_until([&] { return q.processing().at("consumers") == 0; }, 10s));
  constexpr int jobs = 40;
  submit_sleepers(h, key, jobs, 100);
  // Several supervisor ticks (200 ms) over a backlog ten times `backlog`.
  for (int i = 0; i < 10; ++i) {
    auto v = q.processing();
    CHECK(v.at("workers").at("desired") == 1);
    CHECK(v.at("workers").at("running") == 1);
    CHECK(v.at("ready") == jobs);
    std::this_thread::sleep_for(300ms);
  }
  CHECK(children_of(sup.pid()).size() == 1);

  // Its replacement starts while the queue is paused: it takes no message.
  auto before = children_of(sup.pid());
  REQUIRE(before.size() == 1);
  ::kill(*before.begin(), SIGKILL);
  REQUIRE_MESSAGE(wait_until(
                      [&] {
                        auto now = children_of(sup.pid());
                        return now.size() == 1 && now != before;
                      },
                      15s),
                  "the killed worker was not replaced; see ", log);
  REQUIRE_MESSAGE(
      wait_until([&] { return occurrences(read_file(log), "waiting to consume") == 1; }, 15s),
      "the new worker did not say it waits; see ", log);
  std::this_thread::sleep_for(500ms);
  auto v = q.processing();
  CHECK(v.at("consumers") == 0);
  CHECK(v.at("ready") == jobs);
  CHECK(v.at("unacked") == 0);
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'queued'") == jobs);

  r = h.post_json("/v1/admin/queues/processing/resume", "", key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  REQUIRE_MESSAGE(
      wait_until(
          [&] {
            return count(s.pg_url,
                         "SELECT count(*) FROM jobs WHERE state = 'succeeded' AND attempts = 1") ==
                   jobs;
          },
          40s),
      "the jobs did not run after the resume; see ", log);
}

TEST_CASE("a supervised worker killed with -9 is replaced and its jobs complete") {
  scratch s;
  supervised run(s,
                 {{"JOBS_SUPERVISOR_POOLS", "processing=2..2"},
                  {"JOBS_SUPERVISOR_RESTART_BACKOFF_MS", "200"},
                  {"JOBS_WORKER_CONCURRENCY", "4"}},
                 {{"JOBS_WORKER_LEASE_MS", "2000"}});
  auto& [p, key, log, sup, h, q] = run;
  REQUIRE(wait_until([&] { return q.processing().at("consumers") == 2; }, 20s));

  constexpr int jobs = 40;
  submit_sleepers(h, key, jobs, 500);
  int victim = 0;
  REQUIRE(wait_until(
      [&] {
        auto c = jobs::pg_connect(s.pg_url);
        pqxx::nontransaction n(*c);
        auto r = n.exec("SELECT worker_id FROM jobs WHERE state = 'running' LIMIT 1");
        if (r.empty()) return false;
        auto id = r[0][0].as<std::string>();  // host:pid:random
        auto a = id.find(':'), b = id.rfind(':');
        victim = std::stoi(id.substr(a + 1, b - a - 1));
        return true;
      },
      20s));
  auto before = children_of(sup.pid());
  REQUIRE(before.contains(victim));
  ::kill(victim, SIGKILL);
  bool replaced = wait_until(
      [&] {
        auto now = children_of(sup.pid());
        return now.size() == 2 && !now.contains(victim);
      },
      15s);
  CHECK_MESSAGE(replaced, "the killed worker was not replaced; see ", log);
  REQUIRE(wait_until(
      [&] {
        return count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded'") == jobs;
      },
      40s));
  // The killed worker's jobs were rescued and ran again.
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE attempts > 1") >= 1);
  auto text = read_file(log);
  CHECK(occurrences(text, R"("msg":"worker died; restarting it after a backoff")") == 1);
  CHECK(occurrences(text, "signal 9") == 1);
}

TEST_CASE("GET /v1/queues without a supervisor: any key reads it, the broker's consumers count") {
  scratch s;
  platform p(s, {"processing"});
  auto admin = create_key(s.pg_url, "acme");
  std::string viewer;
  {
    auto c = jobs::pg_connect(s.pg_url);
    viewer = jobs::create_api_key(*c, jobs::tenant_id{"acme"}, "dashboard", "viewer");
  }
  http_client h(p.port);
  CHECK(h.get("/v1/queues", "jk_nonsense").status == 401);
  queues_view q{h, viewer, {}};
  REQUIRE(wait_until([&] { return q.processing().at("consumers") == 1; }, 20s));
  auto v = q.processing();
  CHECK(v.at("workers").at("supervised") == false);
  CHECK(v.at("workers").at("running") == 1);
  CHECK(v.at("workers").at("min") == 1);
  CHECK(v.at("workers").at("max") == 4);
  CHECK(v.at("ready") == 0);
  CHECK(v.at("unacked") == 0);
  CHECK(v.at("oldest_waiting_age_s").to_number<double>() == 0);

  // A job that waits (no email worker here) shows in ready and its age.
  auto r = h.post_json(
      "/v1/jobs",
      R"({"queue":"email","type":"send","payload":{"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"t"}})",
      admin);
  REQUIRE_MESSAGE(r.status == 202, r.body);
  openapi_contract contract;
  bool seen = wait_until(
      [&] {
        auto body = h.get("/v1/queues", admin).json();
        CHECK(contract.violations("QueueList", body).empty());
        for (const auto& e : body.at("queues").as_array())
          if (e.at("name") == "email")
            return e.at("ready") == 1 && e.at("consumers") == 0 &&
                   e.at("oldest_waiting_age_s").to_number<double>() > 0.2 &&
                   e.at("workers").at("desired") == 1;
        return false;
      },
      10s);
  CHECK(seen);
}

TEST_CASE("SIGTERM to the supervisor drains its busy workers: running jobs finish, none is lost") {
  scratch s;
  supervised run(s,
                 {{"JOBS_SUPERVISOR_POOLS", "processing=2..2"}, {"JOBS_WORKER_CONCURRENCY", "2"}});
  auto& [p, key, log, sup, h, q] = run;
  REQUIRE(wait_until([&] { return q.processing().at("consumers") == 2; }, 20s));
  constexpr int jobs = 12;
  submit_sleepers(h, key, jobs, 2000);
  auto running = [&] {
    return count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'running'");
  };
  REQUIRE(wait_until([&] { return running() == 4; }, 20s));
  sup.signal(SIGTERM);
  CHECK(sup.wait(30s) == 0);
  // The four jobs in flight finished; the rest wait in the queue, untouched.
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded' AND attempts = 1") ==
        4);
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'queued' AND attempts = 0") ==
        jobs - 4);
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts WHERE outcome <> 'succeeded'") == 0);
  CHECK(count(s.pg_url, "SELECT count(*) FROM worker_pools") == 0);
  // The messages the drained workers held go back as the broker closes
  // their connections, a moment after they exit.
  CHECK(wait_until([&] { return q.processing().at("ready") == jobs - 4; }, 10s));
}

TEST_CASE("the supervisor's /metrics match GET /v1/queues; each worker has its own metrics port") {
  scratch s;
  int sup_port = free_port();
  int worker_base = free_port_run(3);
  supervised run(s, {{"JOBS_SUPERVISOR_POOLS", "processing=2..3;email=1..1"},
                     {"JOBS_SUPERVISOR_METRICS_PORT", std::to_string(sup_port)},
                     {"JOBS_WORKER_METRICS_PORT", std::to_string(worker_base)},
                     {"JOBS_METRICS_ADDR", "127.0.0.1"}});
  auto& [p, key, log, sup, h, q] = run;
  REQUIRE_MESSAGE(wait_until([&] { return q.processing().at("consumers") == 2; }, 20s),
                  "no workers; see ", log);

  auto scrape = [&] {
    http_client m(sup_port);
    auto r = m.get("/metrics", "");
    REQUIRE(r.status == 200);
    return parse_prom_text(r.body);  // throws on any malformed line
  };
  auto gauge = [](const prom_families& f, const std::string& name, const std::string& queue) {
    return prom_sum(f, name, {{"queue", queue}});
  };
  // Both are read at the supervisor's ticks: wait for one where they agree.
  bool agree = wait_until(
      [&] {
        auto f = scrape();
        // The first tick may come before the workers are started.
        if (gauge(f, "jobs_supervisor_workers_running", "processing") != 2 ||
            gauge(f, "jobs_supervisor_workers_running", "email") != 1)
          return false;
        auto body = h.get("/v1/queues", key).json();
        for (const auto& e : body.at("queues").as_array()) {
          auto name = std::string(e.at("name").as_string());
          if (name != "processing" && name != "email") continue;
          const auto& w = e.at("workers");
          if (gauge(f, "jobs_supervisor_workers_desired", name) != w.at("desired").as_int64() ||
              gauge(f, "jobs_supervisor_workers_running", name) != w.at("running").as_int64() ||
              gauge(f, "jobs_supervisor_workers_min", name) != w.at("min").as_int64() ||
              gauge(f, "jobs_supervisor_workers_max", name) != w.at("max").as_int64())
            return false;
        }
        return true;
      },
      10s);
  CHECK_MESSAGE(agree, "the supervisor's gauges never matched GET /v1/queues");
  auto f = scrape();
  INFO(http_client(sup_port).get("/metrics", "").body);
  CHECK(gauge(f, "jobs_supervisor_workers_running", "processing") == 2);
  CHECK(gauge(f, "jobs_supervisor_workers_max", "processing") == 3);
  CHECK(gauge(f, "jobs_supervisor_workers_running", "email") == 1);
  CHECK(f.at("jobs_supervisor_workers_desired").type == "gauge");
  CHECK(f.contains("jobs_supervisor_queue_ready"));
  CHECK(f.contains("jobs_supervisor_queue_unacked"));
  CHECK(f.contains("jobs_supervisor_oldest_waiting_age_seconds"));
  CHECK(f.contains("jobs_supervisor_completed_per_second"));
  CHECK(f.at("jobs_supervisor_worker_restarts_total").type == "counter");
  CHECK(f.at("jobs_supervisor_scale_events_total").type == "counter");

  // Three workers, three ports: base + slot 0, 1, 2; each serves a worker's metrics.
  for (int slot = 0; slot < 3; ++slot) {
    bool up = wait_until(
        [&] {
          try {
            http_client w(worker_base + slot);
            auto r = w.get("/metrics", "");
            return r.status == 200 && parse_prom_text(r.body).contains("jobs_in_flight");
          } catch (const std::exception&) {
            return false;
          }
        },
        10s);
    CHECK_MESSAGE(up, "no worker metrics on port base + ", slot, "; see ", log);
  }

  // A worker killed with -9 counts as a restart.
  auto kids = children_of(sup.pid());
  REQUIRE(kids.size() == 3);
  auto victim = *kids.begin();
  ::kill(victim, SIGKILL);
  bool counted = wait_until(
      [&] { return prom_sum(scrape(), "jobs_supervisor_worker_restarts_total") == 1; }, 10s);
  CHECK(counted);
  // One stopped by an operator's SIGTERM drains and exits 0: it is replaced,
  // and is no restart (no death in a row).
  auto stopped = *std::next(kids.begin());
  ::kill(stopped, SIGTERM);
  bool replaced = wait_until(
      [&] {
        auto now = children_of(sup.pid());
        return now.size() == 3 && !now.contains(stopped) && !now.contains(victim);
      },
      30s);
  CHECK_MESSAGE(replaced, "see ", log);
  CHECK(prom_sum(scrape(), "jobs_supervisor_worker_restarts_total") == 1);
  {
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(text.find("worker exited cleanly, unasked; replacing it") != std::string::npos);
  }
  sup.signal(SIGTERM);
  CHECK(sup.wait(30s) == 0);
}
