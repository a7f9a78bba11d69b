#pragma once
// What a delivery's answer means, and when a failed one is tried again.
//
//   2xx                                  success
//   408, 429, 5xx, timeouts, connection  retryable: again at Retry-After if the receiver
//   errors                               sent one, else at the schedule's next gap
//   3xx                                  retryable failure; redirects are never followed
//   other 4xx (and 1xx)                  permanent: the job is dead at once
//
// The default schedule follows the field's practice (Svix): the first
// attempt at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; an
// endpoint may set its own gaps. A job gets max_attempts attempts in all
// (set it to 8 for the whole default schedule).
//
// Pure; the current time is passed in.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jobs::webhooks {

enum class verdict { success, retryable, permanent };

verdict classify_status(int status);

/// A Retry-After value (delta-seconds or an HTTP-date) as a delay from
/// `now`, at least zero and at most `cap`; nullopt when malformed.
std::optional<std::chrono::seconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now,
    std::chrono::seconds cap = std::chrono::hours(24));

/// A response body as a failed attempt's error quotes it: one line (each run
/// of whitespace and control characters, C1 included, becomes one space; no
/// leading or trailing space), valid UTF-8 (a malformed byte becomes U+FFFD),
/// at most `limit` bytes cut at a character boundary, "…" appended when cut.
std::string body_excerpt(std::string_view body, std::size_t limit = 200);

struct retry_schedule {
  /// The gap after failed attempt n is gaps[n-1] (the last repeats).
  std::vector<std::chrono::milliseconds> gaps;
  static retry_schedule standard();
  std::chrono::milliseconds after(int attempt) const;
};

}  // namespace jobs::webhooks
