#pragma once
// When a failed attempt runs again: exponential backoff, with full jitter by
// default.
//
//   ceiling(attempt) = min(cap, base * 2^(attempt-1))
//   full:  delay = uniform(0, ceiling)
//   equal: delay = ceiling/2 + uniform(0, ceiling/2)
//   none:  delay = ceiling
//
// Full jitter spreads retries of jobs that failed together (an outage) so
// they don't come back in a thundering herd; `equal` and `none` keep the
// gaps growing, for jobs that prefer a predictable schedule. Defaults: base
// 1 s, cap 1 h, full jitter; a job may override each.
// Thread-safety: pure; the random draw is passed in.

#include "common/job.hpp"

#include <chrono>
#include <optional>
#include <string_view>

namespace jobs {

struct retry_policy {
  enum class jitter_mode { full, equal, none };
  std::chrono::milliseconds base{job_limits::default_backoff_base_ms};
  std::chrono::milliseconds cap{job_limits::default_backoff_cap_ms};
  jitter_mode jitter = jitter_mode::full;

  /// The ceiling for `attempt` (1 = the first attempt just failed).
  std::chrono::milliseconds ceiling(int attempt) const;
  /// The delay for a uniform draw `u` in [0, 1).
  std::chrono::milliseconds delay(int attempt, double u) const;
};

/// "full", "equal", "none"; nullopt otherwise.
std::optional<retry_policy::jitter_mode> parse_jitter(std::string_view s);

}  // namespace jobs
