// ctest-labels: webhooks
// What a webhook answer means and when it is retried (workers/webhooks/policy.hpp).
#include "workers/webhooks/policy.hpp"

#include <doctest/doctest.h>

using namespace jobs::webhooks;
using namespace std::chrono_literals;

TEST_CASE("2xx succeeds; 408, 429, 5xx and 3xx are retried; other 4xx are permanent") {
  for (int s : {200, 201, 202, 204, 299}) CHECK(classify_status(s) == verdict::success);
  for (int s : {408, 429, 500, 502, 503, 504, 599, 301, 302, 307, 308})
    CHECK(classify_status(s) == verdict::retryable);
  for (int s : {400, 401, 403, 404, 405, 410, 413, 422, 100, 600})
    CHECK(classify_status(s) == verdict::permanent);
}

TEST_CASE("Retry-After as seconds or an HTTP-date, clamped") {
  auto now = std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
  CHECK(parse_retry_after("120", now) == 120s);
  CHECK(parse_retry_after(" 0 ", now) == 0s);
  CHECK(parse_retry_after("999999999", now) == 24h);
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now) == 30s);
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now) == 0s);  // past
  CHECK(parse_retry_after("Mon, 07 Nov 1994 08:49:37 GMT", now, 1h) == 1h);
  CHECK_FALSE(parse_retry_after("", now));
  CHECK_FALSE(parse_retry_after("-5", now));
  CHECK_FALSE(parse_retry_after("1.5", now));
  CHECK_FALSE(parse_retry_after("soon", now));
  CHECK_FALSE(parse_retry_after("Sun, 06 Foo 1994 08:50:07 GMT", now));
}

TEST_CASE("the default schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then 10 h") {
  auto s = retry_schedule::standard();
  CHECK(s.after(1) == 5s);
  CHECK(s.after(2) == 5min);
  CHECK(s.after(3) == 30min);
  CHECK(s.after(4) == 2h);
  CHECK(s.after(5) == 5h);
  CHECK(s.after(6) == 10h);
  CHECK(s.after(7) == 10h);
  CHECK(s.after(50) == 10h);
  retry_schedule custom{{100ms, 200ms}};
  CHECK(custom.after(1) == 100ms);
  CHECK(custom.after(3) == 200ms);
  CHECK(retry_schedule{}.after(1) == 0ms);
}
