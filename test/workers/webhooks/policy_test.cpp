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

TEST_CASE("a failed answer's body is quoted on one line, at most 200 bytes, valid UTF-8") {
  CHECK(body_excerpt("") == "");
  CHECK(body_excerpt(" \r\n\t ") == "");
  CHECK(body_excerpt(R"({"error":"busy"})") == R"({"error":"busy"})");
  // Newlines, tabs, other controls, DEL and C1 controls collapse into one space.
  CHECK(body_excerpt("\r\n<html>\r\n  <head>\t<title>502 Bad\x01\x7f Gateway</title>\n\n") ==
        "<html> <head> <title>502 Bad Gateway</title>");
  CHECK(body_excerpt("a\xC2\x85z") == "a z");
  CHECK(body_excerpt("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") ==
        "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  // Malformed bytes, overlong forms and surrogates become U+FFFD.
  CHECK(body_excerpt("a\xFFz") == "a\xEF\xBF\xBDz");
  CHECK(body_excerpt("a\xC0\xAFz") == "a\xEF\xBF\xBD\xEF\xBF\xBDz");
  CHECK(body_excerpt("a\xED\xA0\x80z") == "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDz");
  CHECK(body_excerpt("end\xE2\x82") == "end\xEF\xBF\xBD\xEF\xBF\xBD");

  // A long multi-line page: its first 200 bytes, cut where a character ends.
  std::string page = "<!DOCTYPE html>\n<html>\n";
  for (int i = 0; i < 100; ++i) page += "  <p>line " + std::to_string(i) + "</p>\r\n";
  auto e = body_excerpt(page);
  CHECK(e.size() <= 200 + 3);
  CHECK(e.ends_with("\u2026"));
  CHECK(e.starts_with("<!DOCTYPE html> <html> <p>line 0</p> <p>line 1</p>"));
  CHECK(e.find_first_of("\r\n\t") == std::string::npos);
  CHECK(e.find("  ") == std::string::npos);
  std::string euros;
  for (int i = 0; i < 100; ++i) euros += "\xE2\x82\xAC";  // 3 bytes each
  auto cut = body_excerpt(euros, 10);
  CHECK(cut == "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\u2026");  // 9 bytes, not a broken 10th
  CHECK(body_excerpt(std::string(200, 'x')) == std::string(200, 'x'));
  CHECK(body_excerpt(std::string(201, 'x')) == std::string(200, 'x') + "\u2026");
}
