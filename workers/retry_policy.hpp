#pragma once
// When a failed attempt runs again: exponential backoff with full jitter.
//
//   delay(attempt) = uniform(0, min(cap, base * 2^(attempt-1)))
//
// Full jitter spreads retries of jobs that failed together (an outage) so
// they don't come back in a thundering herd. Defaults: base 1 s, cap 1 h.
// Thread-safety: pure; the random draw is passed in.

#include <chrono>

namespace jobs {

struct retry_policy {
  std::chrono::milliseconds base{1000};
  std::chrono::milliseconds cap{3600 * 1000};

  /// The ceiling for `attempt` (1 = the first attempt just failed).
  std::chrono::milliseconds ceiling(int attempt) const;
  /// The delay for a uniform draw `u` in [0, 1).
  std::chrono::milliseconds delay(int attempt, double u) const;
};

}  // namespace jobs
