// Unit tests of RFC 3339 parsing and formatting (common/time.hpp).
#include "common/time.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>

namespace {

using namespace std::chrono;
using instant = jobs::sys_time;

// A UTC instant from calendar fields, independent of the code under test.
instant utc(int y, unsigned mo, unsigned d, int h, int mi, int s,
            nanoseconds frac = nanoseconds{0}) {
  auto days = sys_days{year{y} / month{mo} / day{d}};
  return time_point_cast<system_clock::duration>(days + hours{h} + minutes{mi} + seconds{s} + frac);
}

instant parse_ok(std::string_view s) {
  auto t = jobs::parse_rfc3339(s);
  INFO("input: " << s);
  REQUIRE(t.has_value());
  return *t;
}

}  // namespace

TEST_CASE("parse_rfc3339: UTC with Z or z") {
  CHECK(parse_ok("2026-11-22T04:15:48Z") == utc(2026, 11, 22, 4, 15, 48));
  CHECK(parse_ok("2026-11-22T04:15:48z") == utc(2026, 11, 22, 4, 15, 48));
  CHECK(parse_ok("1970-01-01T00:00:00Z") == instant{});
  // The latest whole second a nanosecond system_clock holds.
  CHECK(parse_ok("2262-04-11T23:47:16Z") == utc(2262, 4, 11, 23, 47, 16));
  CHECK(parse_ok("2024-02-29T12:00:00Z") == utc(2024, 2, 29, 12, 0, 0));  // leap year
}

TEST_CASE("parse_rfc3339: offsets are converted to UTC") {
  // +05:30 is ahead of UTC: 10:00 there is 04:30 UTC.
  CHECK(parse_ok("2026-11-22T10:00:00+05:30") == utc(2026, 11, 22, 4, 30, 0));
  // -08:00 is behind UTC: 20:00 there is 04:00 UTC on the next day.
  CHECK(parse_ok("2026-11-22T20:00:00-08:00") == utc(2026, 11, 23, 4, 0, 0));
  // Crossing a year boundary backwards.
  CHECK(parse_ok("2027-01-01T01:00:00+02:00") == utc(2026, 12, 31, 23, 0, 0));
  CHECK(parse_ok("2026-11-22T04:15:48+00:00") == utc(2026, 11, 22, 4, 15, 48));
  CHECK(parse_ok("2026-11-22T04:15:48-00:00") == utc(2026, 11, 22, 4, 15, 48));
  CHECK(parse_ok("2026-11-22T04:15:48.250+01:00") ==
        utc(2026, 11, 22, 3, 15, 48, milliseconds{250}));
}

TEST_CASE("parse_rfc3339: fractions of any number of digits, nanoseconds kept") {
  const auto base = utc(2026, 11, 22, 4, 15, 48);
  struct row {
    const char* text;
    nanoseconds frac;
  };
  const row rows[] = {
      {"2026-11-22T04:15:48.1Z", nanoseconds{100'000'000}},
      {"2026-11-22T04:15:48.12Z", nanoseconds{120'000'000}},
      {"2026-11-22T04:15:48.123Z", nanoseconds{123'000'000}},
      {"2026-11-22T04:15:48.1234Z", nanoseconds{123'400'000}},
      {"2026-11-22T04:15:48.12345Z", nanoseconds{123'450'000}},
      {"2026-11-22T04:15:48.123456Z", nanoseconds{123'456'000}},
      {"2026-11-22T04:15:48.1234567Z", nanoseconds{123'456'700}},
      {"2026-11-22T04:15:48.12345678Z", nanoseconds{123'456'780}},
      {"2026-11-22T04:15:48.123456789Z", nanoseconds{123'456'789}},
      {"2026-11-22T04:15:48.000000001Z", nanoseconds{1}},
      {"2026-11-22T04:15:48.999999999Z", nanoseconds{999'999'999}},
      {"2026-11-22T04:15:48.0Z", nanoseconds{0}},
      // RFC 3339's time-secfrac is 1*DIGIT: past nine, cut (not rounded).
      {"2026-11-22T04:15:48.1234567891Z", nanoseconds{123'456'789}},
      {"2026-11-22T04:15:48.99999999999999999999999Z", nanoseconds{999'999'999}},
  };
  for (const auto& r : rows) {
    std::string_view text = r.text;
    CAPTURE(text);
    auto t = parse_ok(r.text);
    CHECK(duration_cast<nanoseconds>(t - base) == r.frac);
  }
}

TEST_CASE("parse_rfc3339: a leap second :60 is clamped to :59, only where one can be") {
  CHECK(parse_ok("2016-12-31T23:59:60Z") == utc(2016, 12, 31, 23, 59, 59));
  CHECK(parse_ok("2015-06-30T23:59:60Z") == utc(2015, 6, 30, 23, 59, 59));
  // The same UTC second, in local time.
  CHECK(parse_ok("2017-01-01T05:29:60+05:30") == utc(2016, 12, 31, 23, 59, 59));
  CHECK(parse_ok("2016-12-31T18:59:60-05:00") == utc(2016, 12, 31, 23, 59, 59));
  auto with_frac = parse_ok("2016-12-31T23:59:60.5Z");
  CHECK(with_frac >= utc(2016, 12, 31, 23, 59, 59));
  CHECK(with_frac < utc(2017, 1, 1, 0, 0, 1));
  // Not the last second of a month in UTC: no such time.
  for (std::string_view no :
       {"2030-01-01T00:00:60Z", "2016-12-31T23:58:60Z", "2016-12-30T23:59:60Z",
        "2016-12-31T23:59:60+01:00", "2016-02-28T23:59:60Z"}) {
    INFO(no);
    CHECK_FALSE(jobs::parse_rfc3339(no));
  }
}

// The header accepts years up to 9999, but a sys_time (nanoseconds in a
// 64-bit count) ends in April 2262. A later date must never come back as some
// other instant: it is either refused or at least as late as the clock can go.
// Otherwise a run_at in 2300 is taken for a date in the past and runs at once.
TEST_CASE("parse_rfc3339: years past the clock's range never wrap around") {
  const auto last = parse_ok("2262-04-11T23:47:16Z");
  for (std::string_view late :
       {"2262-04-12T00:00:00Z", "2300-01-01T00:00:00Z", "2999-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59+00:00"}) {
    CAPTURE(late);
    auto t = jobs::parse_rfc3339(late);
    if (t) {
      INFO("parsed as " << t->time_since_epoch().count() << " ns since the epoch");
      CHECK(*t >= last);
    }
  }
}

TEST_CASE("parse_rfc3339: invalid forms are refused") {
  for (std::string_view bad : {
           "",
           "2026-11-22",                  // date only
           "2026-11-22 04:15:48Z",        // space for T
           "2026-11-2204:15:48Z",         // T missing
           "2026-11-22T04:15:48",         // zone missing
           "2026-11-22T04:15:48.123",     // zone missing after a fraction
           "2026-13-22T04:15:48Z",        // month 13
           "2026-00-22T04:15:48Z",        // month 0
           "2026-02-30T04:15:48Z",        // February 30
           "2025-02-29T04:15:48Z",        // not a leap year
           "2026-04-31T04:15:48Z",        // April has 30 days
           "2026-11-00T04:15:48Z",        // day 0
           "1969-12-31T23:59:59Z",        // before 1970
           "0000-01-01T00:00:00Z",        // before 1970
           "2026-11-22T24:00:00Z",        // hour 24
           "2026-11-22T04:60:48Z",        // minute 60
           "2026-11-22T04:15:61Z",        // second 61
           "2026-11-22T04:15:48.Z",       // fraction without digits
           "2026-11-22T04:15:48,5Z",      // comma fraction
           "2026-11-22T04:15:48Zjunk",    // trailing junk
           "2026-11-22T04:15:48Z ",       // trailing space
           " 2026-11-22T04:15:48Z",       // leading space
           "2026-11-22T04:15:48+05:30x",  // junk after an offset
           "2026-11-22T04:15:48+0530",    // offset without colon
           "2026-11-22T04:15:48+05",      // offset without minutes
           "2026-11-22T04:15:48+5:30",    // one-digit offset hour
           "2026-11-22T04:15:48+24:00",   // offset hour 24
           "2026-11-22T04:15:48+05:60",   // offset minute 60
           "2026-11-22T04:15:48UTC",      // zone name
           "2026/11/22T04:15:48Z",        // slashes
           "26-11-22T04:15:48Z",          // two-digit year
           "2026-1-22T04:15:48Z",         // one-digit month
           "2026-11-22T4:15:48Z",         // one-digit hour
           "2026-11-22T04:15Z",           // seconds missing
           "+2026-11-22T04:15:48Z",       // signed year
           "2026-11-22T04:15:48ZZ",       // two zones
       }) {
    CAPTURE(bad);
    CHECK_FALSE(jobs::parse_rfc3339(bad).has_value());
  }
}

TEST_CASE("format_rfc3339: UTC with milliseconds") {
  CHECK(jobs::format_rfc3339(utc(2026, 11, 22, 4, 15, 48, milliseconds{123})) ==
        "2026-11-22T04:15:48.123Z");
  CHECK(jobs::format_rfc3339(instant{}) == "1970-01-01T00:00:00.000Z");
  CHECK(jobs::format_rfc3339(utc(2030, 1, 2, 3, 4, 5)) == "2030-01-02T03:04:05.000Z");
  CHECK(jobs::format_rfc3339(utc(2030, 1, 2, 3, 4, 5, milliseconds{7})) ==
        "2030-01-02T03:04:05.007Z");
  CHECK(jobs::format_rfc3339(utc(2262, 4, 11, 23, 47, 16, milliseconds{854})) ==
        "2262-04-11T23:47:16.854Z");
  // Sub-millisecond digits are dropped, never rounded up into the next second.
  CHECK(jobs::format_rfc3339(utc(2026, 11, 22, 4, 15, 48, nanoseconds{999'999'999})) ==
        "2026-11-22T04:15:48.999Z");
}

TEST_CASE("format_rfc3339_us: UTC with microseconds, the rest cut") {
  CHECK(jobs::format_rfc3339_us(utc(2026, 11, 22, 4, 15, 48, nanoseconds{123'456'789})) ==
        "2026-11-22T04:15:48.123456Z");
  CHECK(jobs::format_rfc3339_us(instant{}) == "1970-01-01T00:00:00.000000Z");
  CHECK(jobs::format_rfc3339_us(utc(2030, 1, 2, 3, 4, 5, microseconds{7})) ==
        "2030-01-02T03:04:05.000007Z");
  CHECK(jobs::format_rfc3339_us(utc(2026, 11, 22, 4, 15, 48, nanoseconds{999'999'999})) ==
        "2026-11-22T04:15:48.999999Z");
}

TEST_CASE("format_rfc3339 and parse_rfc3339 round trip") {
  const instant times[] = {
      instant{},
      utc(2026, 11, 22, 4, 15, 48, milliseconds{123}),
      utc(2000, 2, 29, 0, 0, 0),
      utc(2038, 1, 19, 3, 14, 8, milliseconds{1}),  // past the 32-bit time_t limit
      utc(2099, 12, 31, 23, 59, 59, milliseconds{999}),
  };
  for (auto t : times) {
    auto text = jobs::format_rfc3339(t);
    CAPTURE(text);
    CHECK(parse_ok(text) == t);
    CHECK(jobs::format_rfc3339(parse_ok(text)) == text);
  }
  // Parsed text with an offset formats as the same instant in UTC.
  CHECK(jobs::format_rfc3339(parse_ok("2026-11-22T10:00:00.5+05:30")) ==
        "2026-11-22T04:30:00.500Z");
}
