#include "measure.hpp"

#include "common/cpu_work.hpp"

#include <pqxx/nontransaction>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include <unistd.h>

namespace jobs::bench {

namespace {

// Fields of /proc/PID/stat after the command name: [0] is field 3 (state).
std::vector<std::string> stat_fields(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  auto close = line.rfind(')');
  std::vector<std::string> out;
  if (close == std::string::npos) return out;
  std::istringstream rest(line.substr(close + 2));
  for (std::string f; rest >> f;) out.push_back(f);
  return out;
}

long status_kb(int pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(name + ":")) return std::stol(line.substr(name.size() + 1));
  return 0;
}

// Voluntary and involuntary switches of each of the process's threads.
long task_switches(const std::string& pid) {
  // Threads and processes come and go while this reads: one gone counts 0,
  // and an iterator that fails (its directory gone) ends the walk.
  long n = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator t("/proc/" + pid + "/task", ec), end; !ec && t != end;
       t.increment(ec)) {
    std::ifstream in(t->path() / "status");
    for (std::string line; std::getline(in, line);)
      if (line.starts_with("voluntary_ctxt_switches:") ||
          line.starts_with("nonvoluntary_ctxt_switches:"))
        n += std::strtol(line.c_str() + line.find(':') + 1, nullptr, 10);
  }
  return n;
}

// The processes whose parent is `pid` now (PostgreSQL's backends). Like
// task_switches(), the walk neither throws nor stops for a process that
// ends while it reads.
std::vector<int> children_of(int pid) {
  std::vector<int> out;
  std::error_code ec;
  for (std::filesystem::directory_iterator e("/proc", ec), end; !ec && e != end; e.increment(ec)) {
    auto name = e->path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    auto c = stat_fields(std::stoi(name));
    if (c.size() >= 2 && std::stoi(c[1]) == pid) out.push_back(std::stoi(name));
  }
  return out;
}

}  // namespace

long context_switches(int pid, bool children) {
  long n = task_switches(std::to_string(pid));
  if (children)
    for (int c : children_of(pid)) n += task_switches(std::to_string(c));
  return n;
}

std::optional<submit_counters> read_submit_counters(int api_port) {
  namespace asio = boost::asio;
  namespace http = boost::beast::http;
  try {
    asio::io_context io;
    asio::ip::tcp::socket sock(io);
    sock.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(api_port)});
    http::request<http::empty_body> req{http::verb::get, "/metrics", 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(sock, req);
    boost::beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(sock, buf, res);
    if (res.result() != http::status::ok) return std::nullopt;
    // Text exposition: `name[{labels}] value [timestamp]`; these series have no labels.
    std::map<std::string, double> seen;
    std::istringstream in(res.body());
    for (std::string line; std::getline(in, line);) {
      if (!line.starts_with("jobs_submit_commit_") && !line.starts_with("jobs_publish_confirm_"))
        continue;
      std::istringstream fields(line);
      std::string name;
      double value = 0;
      if (fields >> name >> value) seen[name] = value;
    }
    auto get = [&](const char* name) -> std::optional<double> {
      auto it = seen.find(name);
      return it == seen.end() ? std::nullopt : std::optional(it->second);
    };
    auto commit_s = get("jobs_submit_commit_seconds_sum");
    auto commits = get("jobs_submit_commit_seconds_count");
    auto jobs = get("jobs_submit_commit_jobs_sum");
    auto confirm_s = get("jobs_publish_confirm_seconds_sum");
    auto confirms = get("jobs_publish_confirm_seconds_count");
    if (!commit_s || !commits || !jobs || !confirm_s || !confirms) return std::nullopt;
    return submit_counters{.commit_seconds = *commit_s,
                           .confirm_seconds = *confirm_s,
                           .commits = std::lround(*commits),
                           .committed_jobs = std::lround(*jobs),
                           .confirms = std::lround(*confirms)};
  } catch (const std::exception&) {
    return std::nullopt;  // reported as absent; the run still measured
  }
}

std::optional<detail::cpu_ticks> machine_ticks() {
  std::ifstream in("/proc/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  return detail::parse_cpu_ticks(line);
}

core_speed probe_core_speed() {
  using ns = std::chrono::duration<double, std::nano>;
  core_speed out;
  // Integer work: a chain where each step needs the last, for about 50 ms.
  std::uint64_t x = 0x9e3779b97f4a7c15ULL, steps = 0;
  auto start = thread_cpu_time();
  auto took = start - start;
  while (took < std::chrono::milliseconds(50)) {
    x = integer_chain(x, 100000);
    steps += 100000;
    took = thread_cpu_time() - start;
  }
  out.int_steps_per_us = static_cast<double>(steps) / (ns(took).count() / 1000);
  // Memory: one cycle through 32 MiB in a random order (Sattolo's shuffle),
  // so that every load waits for the one before and few hit a cache.
  std::vector<std::uint32_t> next(std::size_t{8} << 20);
  for (std::uint32_t i = 0; i < next.size(); ++i) next[i] = i;
  std::mt19937 rng(42);
  for (auto i = next.size() - 1; i > 0; --i)
    std::swap(next[i], next[std::uniform_int_distribution<std::size_t>(0, i - 1)(rng)]);
  std::uint32_t at = 0;
  constexpr int loads = 1 << 20;
  start = thread_cpu_time();
  for (int i = 0; i < loads; ++i) {
    at = next[at];
    asm volatile("" : "+r"(at));
  }
  out.mem_load_ns = ns(thread_cpu_time() - start).count() / loads;
  volatile std::uint64_t sink = x + at;  // the work is observable
  (void)sink;
  return out;
}

double cpu_seconds(int pid, bool children) {
  static const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  auto f = stat_fields(pid);
  if (f.size() < 15) return 0;
  // utime 14, stime 15, cutime 16, cstime 17 (1-based over the whole line).
  double t = std::stod(f[11]) + std::stod(f[12]);
  if (!children) return t / tick;
  t += std::stod(f[13]) + std::stod(f[14]);
  for (int child : children_of(pid)) {
    auto c = stat_fields(child);
    if (c.size() >= 13) t += std::stod(c[11]) + std::stod(c[12]);
  }
  return t / tick;
}

long rss_bytes(int pid) { return status_kb(pid, "VmRSS") * 1024; }
long peak_rss_bytes(int pid) { return status_kb(pid, "VmHWM") * 1024; }

pg_counters read_counters(pqxx::connection& c) {
  pqxx::nontransaction n(c);
  // Pending statistics reach pg_stat_database at most a second late.
  auto r = n.exec(
      "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()), "
      "pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint");
  return {r[0][0].as<long>(), r[0][1].as<long>()};
}

completion read_completion(pqxx::connection& c, const std::string& tenant) {
  pqxx::nontransaction n(c);
  auto r = n.exec_params(
      "SELECT count(*), count(*) FILTER (WHERE state = 'succeeded'), "
      "  count(*) FILTER (WHERE state IN ('dead', 'cancelled')), "
      "  extract(epoch FROM max(finished_at) - min(created_at))::float8, "
      "  percentile_disc(ARRAY[0.5, 0.95, 0.99, 0.999]) WITHIN GROUP "
      "    (ORDER BY extract(epoch FROM finished_at - created_at) * 1000)::float8[] "
      "FROM jobs WHERE tenant_id = $1",
      tenant);
  completion out;
  out.total = r[0][0].as<long>();
  out.succeeded = r[0][1].as<long>();
  out.other_final = r[0][2].as<long>();
  double span = r[0][3].is_null() ? 0 : r[0][3].as<double>();
  out.jobs_per_s = span > 0 ? static_cast<double>(out.succeeded) / span : 0;
  if (!r[0][4].is_null()) {
    auto text = r[0][4].as<std::string>();  // {a,b,c,d}
    std::vector<double> p;
    std::istringstream in(text.substr(1, text.size() - 2));
    for (std::string x; std::getline(in, x, ',');) p.push_back(std::stod(x));
    if (p.size() == 4) {
      out.e2e_p50_ms = p[0];
      out.e2e_p95_ms = p[1];
      out.e2e_p99_ms = p[2];
      out.e2e_p999_ms = p[3];
    }
  }
  return out;
}

bool any_unfinished(pqxx::connection& c, const std::string& tenant) {
  pqxx::nontransaction n(c);
  // Whether one is left, not how many: the poll's cost must not grow with
  // the backlog (a count every 20 ms over 50,000 waiting jobs cost
  // PostgreSQL more CPU than the jobs did, and slowed the run it measured).
  return !n.exec_params(
               "SELECT 1 FROM jobs WHERE tenant_id = $1 AND "
               "state IN ('scheduled', 'queued', 'running', 'failed') LIMIT 1",
               tenant)
              .empty();
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

}  // namespace jobs::bench
