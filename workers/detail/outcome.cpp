#include "workers/detail/outcome.hpp"

#include "common/text.hpp"

#include <boost/json/serialize.hpp>

namespace jobs::detail {

retry_policy job_retry_policy(const retry_policy& defaults, const claimed_job& job) {
  auto p = defaults;
  if (job.backoff_base_ms > 0) p.base = std::chrono::milliseconds(job.backoff_base_ms);
  if (job.backoff_cap_ms > 0) p.cap = std::chrono::milliseconds(job.backoff_cap_ms);
  if (auto j = parse_jitter(job.backoff_jitter)) p.jitter = *j;
  return p;
}

job_outcome decide_outcome(const claimed_job& job, const handler_result& result,
                           const retry_policy& defaults, double u, sys_time now) {
  job_outcome out{job.id, job.attempt};
  // Whatever the handler returns is stored: a malformed byte or a NUL in
  // its text, or a NaN or an infinity among its numbers, would make
  // PostgreSQL refuse the outcome, and the job would stay running, its
  // completion retried for ever.
  if (auto* v = std::get_if<boost::json::value>(&result)) {
    out.state = job_state::succeeded;
    if (is_storable(*v)) {
      out.result_json = boost::json::serialize(*v);
    } else {
      auto stored = *v;
      make_storable(stored);
      out.result_json = boost::json::serialize(stored);
    }
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
