// jobs-bench: one benchmark run against a running platform, printed as one
// JSON line (scripts/bench starts the platform, runs the matrix of workloads
// and prints the table).
//
//   jobs-bench --port P --pg-url URL --amqp-url URL [options]
//     --workload noop|cpu|webhook  noop: nothing; cpu: a 10 ms CPU-bound step (noop's
//                              cpu_ms); webhook: webhooks.deliver to an in-process sink
//     --sink-delay-ms D        webhook: the sink answers 200 after D ms (default 0)
//     --payload-bytes N        payload size (padded), default 256
//     --batch N                0: POST /v1/jobs; N: POST /v1/jobs/batch, N jobs a request
//     --jobs N                 jobs in all (default 10000)
//     --duration S             instead of --jobs, with --rate: rate × S jobs (a soak)
//     --connections C          keep-alive connections (default 16)
//     --rate R                 open loop at R jobs/s; 0 (default): closed loop
//     --ceiling-messages M     also measure the broker's ceiling with M messages (0: no)
//     --pid NAME=PID           a process to account CPU and memory to (api, worker,
//                              webhook_worker, rabbitmq, postgres; postgres counts its
//                              backends too; memory is reported for all but the last two);
//                              repeatable, also with one NAME: several processes (two
//                              workers) whose CPU is summed and whose largest RSS is shown
//     --latency-trace FILE     one line a request, in the order answered: when it was due
//                              (ms from the start), its HTTP status (0: no answer) and
//                              how long the answer took from then (ms)
//     --timeout S              give up waiting for completion after S s (default 300)
//
// Each run submits under a tenant of its own, so PostgreSQL's timestamps of
// exactly its jobs give the end-to-end numbers: jobs/s from the first
// created_at to the last finished_at, latency finished_at - created_at.
// The webhook workload also reports `deliveries` (requests the sink
// answered) and `undelivered` (succeeded jobs whose request the sink never
// saw: the run fails if there is one).
#include "ceiling.hpp"
#include "loadgen.hpp"
#include "measure.hpp"
#include "sink.hpp"
#include "webhook.hpp"

#include "common/db.hpp"
#include "common/keys.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <sys/resource.h>

using namespace jobs;
using namespace jobs::bench;

namespace {

struct options {
  int port = 0;
  std::string pg_url, amqp_url, workload = "noop";
  int payload_bytes = 256, batch = 0, jobs = 10000, connections = 16, ceiling_messages = 0;
  int sink_delay_ms = 0, duration_s = 0;
  double rate = 0;
  int timeout_s = 300;
  std::map<std::string, std::vector<int>> pids;
  std::string latency_trace;
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument("missing value after " + a);
    std::string v = argv[++i];
    if (a == "--port")
      o.port = std::stoi(v);
    else if (a == "--pg-url")
      o.pg_url = v;
    else if (a == "--amqp-url")
      o.amqp_url = v;
    else if (a == "--workload")
      o.workload = v;
    else if (a == "--payload-bytes")
      o.payload_bytes = std::stoi(v);
    else if (a == "--batch")
      o.batch = std::stoi(v);
    else if (a == "--jobs")
      o.jobs = std::stoi(v);
    else if (a == "--connections")
      o.connections = std::stoi(v);
    else if (a == "--rate")
      o.rate = std::stod(v);
    else if (a == "--sink-delay-ms")
      o.sink_delay_ms = std::stoi(v);
    else if (a == "--duration")
      o.duration_s = std::stoi(v);
    else if (a == "--ceiling-messages")
      o.ceiling_messages = std::stoi(v);
    else if (a == "--timeout")
      o.timeout_s = std::stoi(v);
    else if (a == "--pid" && v.find('=') != std::string::npos) {
      auto& pids = o.pids[v.substr(0, v.find('='))];
      int pid = std::stoi(v.substr(v.find('=') + 1));
      if (std::find(pids.begin(), pids.end(), pid) == pids.end()) pids.push_back(pid);
    } else if (a == "--latency-trace")
      o.latency_trace = v;
    else
      throw std::invalid_argument("unknown option " + a);
  }
  if (o.port <= 0 || o.pg_url.empty())
    throw std::invalid_argument("--port and --pg-url are needed");
  if (o.workload != "noop" && o.workload != "cpu" && o.workload != "webhook")
    throw std::invalid_argument("--workload is noop, cpu or webhook");
  if (o.duration_s > 0) {
    if (o.rate <= 0) throw std::invalid_argument("--duration needs --rate");
    o.jobs = static_cast<int>(o.rate * o.duration_s);
  }
  if (o.ceiling_messages > 0 && o.amqp_url.empty())
    throw std::invalid_argument("--ceiling-messages needs --amqp-url");
  return o;
}

// The CPU a `cpu` job's handler burns.
constexpr int cpu_job_ms = 10;

// One submission whose payload serializes to about `bytes` bytes.
std::string job_body(const options& o) {
  std::string head = o.workload == "cpu"
                         ? R"({"cpu_ms":)" + std::to_string(cpu_job_ms) + R"(,"pad":")"
                         : std::string(R"({"pad":")");
  auto fixed = head.size() + 2;
  std::string pad(static_cast<std::size_t>(o.payload_bytes) > fixed ? o.payload_bytes - fixed : 0,
                  'x');
  return R"({"queue":"processing","type":"noop","payload":)" + head + pad + R"("}})";
}

// This process's CPU seconds: the load generator's (and the webhook sink's).
double own_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

// This process's context switches, its ended threads' included.
long own_switches() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_nvcsw + u.ru_nivcsw;
}

struct snapshot {
  std::map<std::string, double> cpu;
  std::map<std::string, long> switches;
  double own_cpu = 0;
  std::optional<detail::cpu_ticks> machine;
  pg_counters pg;
};

snapshot take(const options& o, pqxx::connection& c, bool with_pg) {
  snapshot s;
  for (const auto& [name, pids] : o.pids)
    for (int pid : pids) {
      s.cpu[name] += cpu_seconds(pid, name == "postgres");
      s.switches[name] += context_switches(pid, name == "postgres");
    }
  s.switches["bench"] = own_switches();
  s.own_cpu = own_cpu_seconds();
  s.machine = machine_ticks();
  if (with_pg) s.pg = read_counters(c);
  return s;
}

double round2(double v) { return std::round(v * 100) / 100; }

// --latency-trace: whether the slow 202s come together (a stall of the
// machine or of one server) or are spread over the run. Opened before the
// run, so that a path it cannot write fails at once.
void write_latency_trace(std::ofstream& out, const std::string& path, const load_result& load) {
  out << "# due_ms status ms\n";
  for (std::size_t i = 0; i < load.accept_ms.size(); ++i)
    out << fmt::format("{:.2f} {} {:.2f}\n", load.due_ms[i], load.status[i], load.accept_ms[i]);
  if (!out.flush()) throw std::runtime_error("could not write " + path);
}

// JSON with numbers as people write them (Boost.JSON 1.81 prints 12.5 as 1.25E1).
std::string to_text(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::double_: return fmt::format("{}", v.get_double());
    case boost::json::kind::object: {
      std::string out = "{";
      for (const auto& kv : v.get_object()) {
        if (out.size() > 1) out += ',';
        out += boost::json::serialize(boost::json::string(kv.key())) + ":" + to_text(kv.value());
      }
      return out + "}";
    }
    default: return boost::json::serialize(v);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    auto o = parse(argc, argv);
    auto db = pg_connect(o.pg_url);
    boost::json::object line;
    line["workload"] = o.workload;
    line["batch"] = o.batch > 0;
    line["batch_size"] = o.batch > 0 ? o.batch : 1;
    line["payload_bytes"] = o.payload_bytes;
    line["mode"] = o.rate > 0 ? "open" : "closed";
    if (o.rate > 0) line["rate"] = o.rate;
    line["connections"] = o.connections;
    line["jobs"] = o.jobs;
    auto speed = probe_core_speed();
    line["core_speed"] = {{"int_steps_per_us", round2(speed.int_steps_per_us)},
                          {"mem_load_ns", round2(speed.mem_load_ns)}};

    double slower_ceiling = 0;
    if (o.ceiling_messages > 0) {
      auto ceil = measure_ceiling(o.amqp_url, o.ceiling_messages,
                                  static_cast<std::size_t>(o.payload_bytes));
      line["ceiling_publish_per_s"] = std::round(ceil.publish_per_s);
      line["ceiling_consume_per_s"] = std::round(ceil.consume_per_s);
      slower_ceiling = std::min(ceil.publish_per_s, ceil.consume_per_s);
    }

    std::string tenant = fmt::format("bench-{}", std::random_device{}());
    auto key = create_api_key(*db, tenant_id{tenant}, "bench", "submitter");
    std::unique_ptr<delivery_sink> sink;
    if (o.workload == "webhook") {
      sink = std::make_unique<delivery_sink>(std::chrono::milliseconds(o.sink_delay_ms));
      create_webhook_endpoint(*db, o.port, tenant);
      line["sink_delay_ms"] = o.sink_delay_ms;
    }
    auto body = sink ? webhook_job(sink->port(), o.payload_bytes) : job_body(o);
    std::ofstream trace;
    if (!o.latency_trace.empty()) {
      trace.open(o.latency_trace);
      if (!trace) throw std::runtime_error("cannot write " + o.latency_trace);
    }
    // The API's counters are read outside what is measured: a scrape of its
    // /metrics runs queries of its own for the gauges.
    auto api0 = read_submit_counters(o.port);
    auto before = take(o, *db, true);
    auto load = run_load({.port = o.port,
                          .api_key = key,
                          .jobs = o.jobs,
                          .batch = o.batch,
                          .connections = o.connections,
                          .rate = o.rate,
                          .job = [&](int) { return body; }});
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.timeout_s);
    // Completion times come from PostgreSQL, so the poll's pace costs no precision.
    while (any_unfinished(*db, tenant) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto after_cpu = take(o, *db, false);
    // Pending statistics reach pg_stat_database within a second.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    auto after_pg = read_counters(*db);
    auto api1 = read_submit_counters(o.port);  // its queries neither in the CPU nor the commits
    auto done = read_completion(*db, tenant);

    line["accepted"] = load.accepted;
    line["refused"] = load.refused;
    if (!load.first_refusal.empty()) line["first_refusal"] = load.first_refusal;
    line["succeeded"] = done.succeeded;
    line["unfinished"] = done.total - done.succeeded - done.other_final;
    line["submit_per_s"] =
        std::round(load.accepted / std::chrono::duration<double>(load.took).count());
    line["jobs_per_s"] = std::round(done.jobs_per_s);
    if (slower_ceiling > 0) line["ceiling_ratio"] = round2(done.jobs_per_s / slower_ceiling);
    auto& a = load.accept_ms;
    line["accept_p50_ms"] = round2(percentile(a, 50));
    line["accept_p95_ms"] = round2(percentile(a, 95));
    line["accept_p99_ms"] = round2(percentile(a, 99));
    line["accept_p999_ms"] = round2(percentile(a, 99.9));
    if (o.rate > 0) line["max_send_lag_ms"] = round2(load.max_send_lag_ms);
    if (trace.is_open()) write_latency_trace(trace, o.latency_trace, load);
    line["e2e_p50_ms"] = round2(done.e2e_p50_ms);
    line["e2e_p95_ms"] = round2(done.e2e_p95_ms);
    line["e2e_p99_ms"] = round2(done.e2e_p99_ms);
    line["e2e_p999_ms"] = round2(done.e2e_p999_ms);
    double per_k = done.succeeded > 0 ? 1000.0 / static_cast<double>(done.succeeded) : 0;
    boost::json::object cpu, peak, rss;
    double ms_per_job = 0;  // every process's CPU a job (s a 1k jobs are ms a job)
    boost::json::object processes;
    for (const auto& [name, pids] : o.pids) {
      double ms = (after_cpu.cpu[name] - before.cpu[name]) * per_k;
      ms_per_job += ms;
      cpu[name] = round2(ms);
      if (pids.size() > 1) processes[name] = pids.size();
      if (name == "rabbitmq" || name == "postgres") continue;
      long peak_bytes = 0, rss_now = 0;
      for (int pid : pids) {
        peak_bytes = std::max(peak_bytes, peak_rss_bytes(pid));
        rss_now = std::max(rss_now, rss_bytes(pid));
      }
      peak[name] = round2(static_cast<double>(peak_bytes) / (1 << 20));
      rss[name] = round2(static_cast<double>(rss_now) / (1 << 20));
    }
    line["cpu_s_per_1k_jobs"] = cpu;
    if (!processes.empty()) line["processes"] = processes;
    // The handlers' 10 ms of a cpu job are in the worker's CPU: the rest of
    // every process given is what the platform spent on the job.
    if (o.workload == "cpu" && done.succeeded > 0 && o.pids.contains("worker")) {
      line["platform_overhead_pct"] =
          std::round((ms_per_job - cpu_job_ms) / cpu_job_ms * 1000) / 10;
    }
    // The whole machine over the run: the cores' time used, taken by the
    // hypervisor (steal: this VM had work but no core), and idle.
    // Counters that went back (the kernel's iowait may) leave the split out.
    if (const auto& m0 = before.machine, &m1 = after_cpu.machine;
        m0 && m1 && m1->all > m0->all && m1->busy >= m0->busy && m1->steal >= m0->steal &&
        m1->all - m0->all >= m1->busy - m0->busy) {
      auto all = static_cast<double>(m1->all - m0->all);
      auto pct = [&](std::uint64_t ticks) {
        return std::round(static_cast<double>(ticks) / all * 1000) / 10;
      };
      auto busy = m1->busy - m0->busy, steal = m1->steal - m0->steal;
      line["machine_cpu_pct"] = {{"used", pct(busy - steal)},
                                 {"steal", pct(steal)},
                                 {"idle", pct(m1->all - m0->all - busy)}};
    }
    boost::json::object switches;
    for (const auto& [name, n] : after_cpu.switches)
      switches[name] = round2(static_cast<double>(n - before.switches[name]) * per_k / 1000);
    line["switches_per_job"] = switches;
    // Where a 202 waits: the group commit, then the broker's confirm.
    if (api0 && api1 && api1->commits > api0->commits) {
      auto commits = static_cast<double>(api1->commits - api0->commits);
      line["commit_mean_ms"] =
          round2((api1->commit_seconds - api0->commit_seconds) * 1000 / commits);
      line["jobs_per_commit"] =
          round2(static_cast<double>(api1->committed_jobs - api0->committed_jobs) / commits);
    }
    if (api0 && api1 && api1->confirms > api0->confirms)
      line["confirm_mean_ms"] = round2((api1->confirm_seconds - api0->confirm_seconds) * 1000 /
                                       static_cast<double>(api1->confirms - api0->confirms));
    line["bench_cpu_s_per_1k_jobs"] = round2((after_cpu.own_cpu - before.own_cpu) * per_k);
    line["peak_rss_mb"] = peak;
    line["rss_mb"] = rss;
    if (done.succeeded > 0) {
      line["pg_commits_per_job"] =
          round2(static_cast<double>(after_pg.commits - before.pg.commits) / done.succeeded);
      line["wal_bytes_per_job"] =
          std::round(static_cast<double>(after_pg.wal_bytes - before.pg.wal_bytes) /
                     static_cast<double>(done.succeeded));
    }
    long missing = 0;
    if (sink) {
      line["deliveries"] = sink->deliveries();
      line["sink_connections"] = sink->connections();
      missing = undelivered(*db, tenant, sink->ids());
      line["undelivered"] = missing;
      if (missing > 0)
        std::cerr << "jobs-bench: " << missing << " jobs succeeded without reaching the sink\n";
    }
    std::cout << to_text(line) << std::endl;
    return done.succeeded == o.jobs && missing == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "jobs-bench: " << e.what() << "\n";
    return 2;
  }
}
