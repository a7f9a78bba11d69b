// watch (and submit --wait): poll a job until it is final.
#include "api/cli/commands.hpp"

#include "api/cli/output.hpp"
#include "common/job.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <optional>
#include <ostream>
#include <thread>

namespace jobs::cli {

namespace {

// Final states (common/job.hpp): nothing happens to the job after them
// unless someone retries it. `failed` is not one: a retry is scheduled.
bool is_final(const std::string& s) {
  auto state = parse_job_state(s);
  return state && jobs::is_final(*state);
}

std::string now_utc() {
  auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  return fmt::format("{:%H:%M:%S}", now);
}

std::string change_line(const boost::json::object& job) {
  auto state = text(job, "state");
  auto line = fmt::format("{}  {:<10} attempt {}/{}", now_utc(), state, text(job, "attempts"),
                          text(job, "max_attempts"));
  if (state == "running" && !text(job, "cancel_requested_at").empty()) line += "  (stop requested)";
  if (state == "failed" || state == "dead" || state == "cancelled")
    if (auto e = text(job, "error"); !e.empty()) line += "  error: " + clip(e, 200);
  if (state == "succeeded")
    if (auto r = text(job, "result"); !r.empty()) line += "  result: " + clip(r, 200);
  return line;
}

}  // namespace

follow_pace parse_follow_pace(const parsed_args& a) {
  follow_pace p;
  if (auto v = a.get("interval")) p.interval = parse_duration(*v, "interval");
  if (p.interval < std::chrono::milliseconds(100))
    throw usage_error("--interval: at least 100ms, please");
  if (auto v = a.get("timeout")) {
    p.timeout = parse_duration(*v, "timeout");
    if (p.timeout.count() <= 0)
      throw usage_error("--timeout: more than 0 (leave it out to wait with no limit)");
  }
  return p;
}

int follow_job(const context& c, const std::string& id, follow_pace pace,
               std::chrono::milliseconds max_outage) {
  const auto interval = pace.interval, timeout = pace.timeout;
  using clock = std::chrono::steady_clock;
  const auto deadline = timeout.count() > 0 ? clock::now() + timeout : clock::time_point::max();
  const auto target = "/v1/jobs/" + url_encode(id);
  std::string last;  // state and attempts seen last
  std::optional<clock::time_point> outage_since;
  for (;;) {
    std::optional<api_answer> answer;
    try {
      answer = call(c, "GET", target);
    } catch (const std::exception& e) {
      auto* refused = dynamic_cast<const api_error*>(&e);
      bool transient = dynamic_cast<const connection_error*>(&e) != nullptr ||
                       (refused && (refused->status == 429 || refused->status == 503));
      auto now = clock::now();
      if (!transient || now + interval > deadline ||
          (outage_since && now - *outage_since > max_outage))
        throw;
      if (!outage_since) {
        c.err << "jobsctl: " << e.what() << "; trying again\n";
        outage_since = now;
      }
      std::this_thread::sleep_for(interval);
      continue;
    }
    if (outage_since) c.err << "jobsctl: the API answers again\n";
    outage_since.reset();
    const auto& a = *answer;
    const auto& job = a.json.as_object();
    auto state = text(job, "state");
    auto seen = state + "/" + text(job, "attempts") + "/" + text(job, "cancel_requested_at");
    if (seen != last) {
      if (c.json)
        print_raw(c, a);
      else
        c.out << change_line(job) << "\n";
      c.out.flush();
      last = seen;
    }
    if (is_final(state)) return state == "succeeded" ? 0 : 4;
    if (clock::now() + interval > deadline) {
      c.err << fmt::format("jobsctl: job {} is still {} after {} ms\n", id, state, timeout.count());
      return 5;
    }
    std::this_thread::sleep_for(interval);
  }
}

}  // namespace jobs::cli
