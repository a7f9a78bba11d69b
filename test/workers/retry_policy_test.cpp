// Unit tests of exponential backoff with full jitter (workers/retry_policy.hpp).
#include "workers/retry_policy.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <climits>
#include <cmath>

namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

}  // namespace

TEST_CASE("the defaults are base 1 s and cap 1 h") {
  jobs::retry_policy p;
  CHECK(p.base == 1000ms);
  CHECK(p.cap == 3600000ms);
}

TEST_CASE("ceiling doubles from base and stops at the cap") {
  jobs::retry_policy p;  // base 1 s, cap 1 h
  CHECK(p.ceiling(1) == 1000ms);
  CHECK(p.ceiling(2) == 2000ms);
  CHECK(p.ceiling(3) == 4000ms);
  CHECK(p.ceiling(4) == 8000ms);
  CHECK(p.ceiling(12) == 2048000ms);  // 1 s * 2^11, still under an hour
  CHECK(p.ceiling(13) == 3600000ms);  // 1 s * 2^12 = 4096 s is capped
  CHECK(p.ceiling(14) == 3600000ms);
  CHECK(p.ceiling(100) == 3600000ms);
}

TEST_CASE("ceiling with another base and cap") {
  jobs::retry_policy p{250ms, 10000ms};
  CHECK(p.ceiling(1) == 250ms);
  CHECK(p.ceiling(2) == 500ms);
  CHECK(p.ceiling(6) == 8000ms);
  CHECK(p.ceiling(7) == 10000ms);  // 250 ms * 2^6 = 16 s is capped
  CHECK(p.ceiling(8) == 10000ms);
}

TEST_CASE("ceiling never exceeds a cap smaller than the base") {
  jobs::retry_policy p{5000ms, 2000ms};
  CHECK(p.ceiling(1) == 2000ms);
  CHECK(p.ceiling(5) == 2000ms);
}

TEST_CASE("ceiling never decreases with the attempt number") {
  jobs::retry_policy p{3ms, 1000000ms};
  auto prev = p.ceiling(1);
  for (int attempt = 2; attempt <= 200; ++attempt) {
    auto c = p.ceiling(attempt);
    CAPTURE(attempt);
    CHECK(c >= prev);
    CHECK(c <= p.cap);
    prev = c;
  }
  CHECK(prev == p.cap);
}

TEST_CASE("large attempt numbers reach the cap without overflowing") {
  jobs::retry_policy p;
  for (int attempt : {63, 64, 65, 1000, 1 << 20, INT_MAX}) {
    CAPTURE(attempt);
    CHECK(p.ceiling(attempt) == p.cap);
    CHECK(p.delay(attempt, 0.5) == p.cap / 2);
  }
  // A cap near the top of the range: base * 2^(attempt-1) overflows 64 bits
  // long before the cap, and the ceiling must still be the cap.
  jobs::retry_policy huge{1000ms, milliseconds::max()};
  for (int attempt : {60, 100}) {
    CAPTURE(attempt);
    CHECK(huge.ceiling(attempt) == milliseconds::max());
  }
  jobs::retry_policy big{1000ms, milliseconds{1LL << 62}};
  CHECK(big.ceiling(100) == milliseconds{1LL << 62});
}

TEST_CASE("delay is the draw scaled to the ceiling") {
  jobs::retry_policy p;
  CHECK(p.delay(1, 0.0) == 0ms);
  CHECK(p.delay(20, 0.0) == 0ms);
  CHECK(p.delay(1, 0.5) == 500ms);
  CHECK(p.delay(3, 0.25) == 1000ms);  // ceiling 4 s
  CHECK(p.delay(13, 0.5) == 1800000ms);
}

TEST_CASE("delay as u approaches 1 is close to, and not above, the ceiling") {
  jobs::retry_policy p;
  for (int attempt : {1, 5, 13, 50}) {
    CAPTURE(attempt);
    auto ceiling = p.ceiling(attempt);
    auto d = p.delay(attempt, std::nextafter(1.0, 0.0));
    CHECK(d <= ceiling);
    CHECK(d >= ceiling - 1ms);
  }
}

TEST_CASE("delay clamps u to [0, 1]") {
  jobs::retry_policy p;
  CHECK(p.delay(3, -0.5) == 0ms);
  CHECK(p.delay(3, -1e300) == 0ms);
  for (double u : {1.0, 1.5, 1e300, HUGE_VAL}) {
    CAPTURE(u);
    auto d = p.delay(3, u);
    CHECK(d <= p.ceiling(3));
    CHECK(d >= p.ceiling(3) - 1ms);
  }
  CHECK(p.delay(3, -HUGE_VAL) == 0ms);
}

TEST_CASE(
    "jitter modes: full spans [0, ceiling], equal [ceiling/2, ceiling], none is the ceiling") {
  jobs::retry_policy p;
  p.base = std::chrono::milliseconds(1000);
  using ms = std::chrono::milliseconds;
  p.jitter = jobs::retry_policy::jitter_mode::full;
  CHECK(p.delay(3, 0.0) == ms(0));
  CHECK(p.delay(3, 0.5) == ms(2000));
  p.jitter = jobs::retry_policy::jitter_mode::equal;
  CHECK(p.delay(3, 0.0) == ms(2000));
  CHECK(p.delay(3, 1.0) == ms(4000));
  p.jitter = jobs::retry_policy::jitter_mode::none;
  CHECK(p.delay(1, 0.3) == ms(1000));
  CHECK(p.delay(2, 0.9) == ms(2000));
  CHECK(p.delay(3, 0.0) == ms(4000));
  CHECK(jobs::parse_jitter("equal") == jobs::retry_policy::jitter_mode::equal);
  CHECK_FALSE(jobs::parse_jitter("Full").has_value());
}
