#include "workers/detail/outcome.hpp"

#include "common/text.hpp"

#include <fmt/format.h>
#include <boost/json/serialize.hpp>

#include <algorithm>

namespace jobs::detail {

retry_policy job_retry_policy(const retry_policy& defaults, const claimed_job& job) {
  auto p = defaults;
  if (job.backoff_base_ms > 0) p.base = std::chrono::milliseconds(job.backoff_base_ms);
  if (job.backoff_cap_ms > 0) p.cap = std::chrono::milliseconds(job.backoff_cap_ms);
  if (auto j = parse_jitter(job.backoff_jitter)) p.jitter = *j;
  return p;
}

namespace {
// True when `v` nests arrays or objects more than `limit` deep (recursing at
// most limit + 1 levels).
bool deeper_than(const boost::json::value& v, std::size_t limit) {
  if (const auto* a = v.if_array()) {
    if (limit == 0) return true;
    return std::any_of(a->begin(), a->end(),
                       [&](const auto& e) { return deeper_than(e, limit - 1); });
  }
  if (const auto* o = v.if_object()) {
    if (limit == 0) return true;
    return std::any_of(o->begin(), o->end(),
                       [&](const auto& kv) { return deeper_than(kv.value(), limit - 1); });
  }
  return false;
}
}  // namespace

job_outcome decide_outcome(const claimed_job& job, const handler_result& result,
                           const retry_policy& defaults, double u, sys_time now) {
  job_outcome out{job.id, job.attempt};
  // Whatever the handler returns is stored: a malformed byte or a NUL in
  // its text, or a NaN or an infinity among its numbers, would make
  // PostgreSQL refuse the outcome, and the job would stay running, its
  // completion retried for ever.
  // A result past the limits below (which PostgreSQL may refuse too, and a
  // client reading the job must take whole) ends the job dead: the same
  // handler would return it again.
  if (auto* v = std::get_if<boost::json::value>(&result)) {
    if (deeper_than(*v, max_result_depth))
      return decide_outcome(job,
                            handler_error::permanent(fmt::format(
                                "the handler's result nests deeper than {}", max_result_depth)),
                            defaults, u, now);
    out.state = job_state::succeeded;
    if (is_storable(*v)) {
      out.result_json = boost::json::serialize(*v);
    } else {
      auto stored = *v;
      make_storable(stored);
      out.result_json = boost::json::serialize(stored);
    }
    if (out.result_json.size() > max_result_bytes)
      return decide_outcome(
          job,
          handler_error::permanent(fmt::format(
              "the handler's result is {} bytes, over the limit of {}: keep large output "
              "elsewhere and return where it is",
              out.result_json.size(), max_result_bytes)),
          defaults, u, now);
    return out;
  }
  const auto& e = std::get<handler_error>(result);
  out.error = e.message.empty() ? "failed" : utf8_text(e.message, max_error_bytes);
  if (e.what == handler_error::kind::snooze) {
    // Its message says why it waits, in the attempt's row only: the job's
    // error stays the last failed attempt's.
    out.state = job_state::scheduled;
    out.error = utf8_text(e.message, max_error_bytes);
    out.run_at = format_rfc3339(e.snooze_until);
  } else if (e.what == handler_error::kind::permanent || job.attempt >= job.max_attempts) {
    out.state = job_state::dead;
  } else {
    out.state = job_state::failed;
    out.run_at = e.retry_at
                     ? format_rfc3339(std::max(*e.retry_at, now))
                     : format_rfc3339(now + job_retry_policy(defaults, job).delay(job.attempt, u));
  }
  return out;
}

}  // namespace jobs::detail
