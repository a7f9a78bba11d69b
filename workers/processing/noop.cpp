#include "workers/processing/processing.hpp"

#include "common/cpu_work.hpp"

#include <boost/json.hpp>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <tuple>

namespace jobs::processing {
namespace {

// JSON Schema's "integer" admits 5.0, so integral doubles count too.
std::optional<std::int64_t> integer_in_range(const boost::json::value& v, std::int64_t max) {
  if (v.is_int64() && v.get_int64() >= 0 && v.get_int64() <= max) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(max)) {
    return static_cast<std::int64_t>(v.get_uint64());
  }
  if (v.is_double()) {
    const double d = v.get_double();
    if (d >= 0 && d <= static_cast<double>(max) && std::trunc(d) == d) {
      return static_cast<std::int64_t>(d);
    }
  }
  return std::nullopt;
}

handler_error stopped(const char* what) {
  // Snooze rather than fail: a worker shutting down should not use up an attempt.
  return handler_error{handler_error::kind::snooze, what, std::chrono::system_clock::now()};
}

}  // namespace

handler_result noop_handler(const job_context& ctx) {
  const auto* payload = ctx.payload.if_object();
  if (!payload) return handler_error::permanent("payload must be a JSON object");

  std::int64_t sleep_ms = 0, cpu_ms = 0;
  for (auto [name, max, out] : {std::tuple{"sleep_ms", noop_limits::max_sleep_ms, &sleep_ms},
                                std::tuple{"cpu_ms", noop_limits::max_cpu_ms, &cpu_ms}}) {
    const auto* v = payload->if_contains(name);
    if (!v) continue;
    auto ms = integer_in_range(*v, max);
    if (!ms)
      return handler_error::permanent(std::string(name) + " must be an integer from 0 to " +
                                      std::to_string(max));
    *out = *ms;
  }

  if (cpu_ms > 0) {
    // Thread CPU time, so a busy machine stretches the step instead of shortening it.
    const auto until = thread_cpu_time() + std::chrono::milliseconds(cpu_ms);
    std::uint64_t x = 0x9e3779b97f4a7c15ULL;
    while (thread_cpu_time() < until) {
      if (ctx.stop_requested()) return stopped("stopped while computing");
      x = integer_chain(x, 10000);
    }
    volatile std::uint64_t sink = x;  // the loop's work is observable
    (void)sink;
  }

  if (sleep_ms > 0) {
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + std::chrono::milliseconds(sleep_ms);
    for (auto now = clock::now(); now < deadline; now = clock::now()) {
      if (ctx.stop_requested()) return stopped("stopped while sleeping");
      std::this_thread::sleep_for(
          std::min<clock::duration>(noop_limits::sleep_step, deadline - now));
    }
  }

  boost::json::object result;
  result["ok"] = true;
  if (const auto* echo = payload->if_contains("echo")) result["echo"] = *echo;
  return boost::json::value(std::move(result));
}

}  // namespace jobs::processing
