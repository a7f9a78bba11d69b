// Unit tests of the token buckets (api/rate_limit.hpp), on a given clock.
#include "api/rate_limit.hpp"

#include <doctest/doctest.h>

using namespace std::chrono_literals;
using jobs::rate_limiter;

TEST_CASE("a bucket allows its burst, then its rate, and says how long to wait") {
  rate_limiter r({.key_per_second = 10, .key_burst = 5, .tenant_per_second = 0, .tenant_burst = 0});
  auto t0 = rate_limiter::clock::now();
  for (int i = 0; i < 5; ++i) CHECK_FALSE(r.take("k", "t", 1, t0));
  auto no = r.take("k", "t", 1, t0);
  REQUIRE(no);
  CHECK(no->wait == 100ms);
  CHECK(std::string(no->limit) == "key");
  CHECK_FALSE(r.take("k", "t", 1, t0 + 100ms));
  CHECK(r.take("k", "t", 1, t0 + 150ms));
  // Refills up to the burst, no further.
  for (int i = 0; i < 5; ++i) CHECK_FALSE(r.take("k", "t", 1, t0 + 60s));
  CHECK(r.take("k", "t", 1, t0 + 60s));
  CHECK_FALSE(r.take("other", "t", 1, t0));
}

TEST_CASE("a refused request takes nothing from either bucket") {
  rate_limiter r({.key_per_second = 1, .key_burst = 10, .tenant_per_second = 1, .tenant_burst = 2});
  auto t0 = rate_limiter::clock::now();
  CHECK_FALSE(r.take("k", "t", 2, t0));
  auto no = r.take("k", "t", 1, t0);
  REQUIRE(no);
  CHECK(std::string(no->limit) == "tenant");
  CHECK(no->wait == 1000ms);
  // The key bucket still has its 8.
  CHECK_FALSE(r.take("k", "u", 8, t0));
  CHECK(r.take("k", "u", 1, t0));
}

TEST_CASE("a request larger than the burst waits for a full bucket, then overdraws it") {
  rate_limiter r(
      {.key_per_second = 100, .key_burst = 10, .tenant_per_second = 0, .tenant_burst = 0});
  auto t0 = rate_limiter::clock::now();
  CHECK_FALSE(r.take("k", "t", 5, t0));
  auto no = r.take("k", "t", 50, t0);
  REQUIRE(no);
  CHECK(no->wait == 50ms);
  CHECK_FALSE(r.take("k", "t", 50, t0 + 50ms));
  CHECK(r.take("k", "t", 1, t0 + 50ms));
}

TEST_CASE("no limits: everything passes") {
  rate_limiter r({});
  for (int i = 0; i < 1000; ++i) CHECK_FALSE(r.take("k", "t", 1000));
}

TEST_CASE("the RateLimit fields: each limit on, what is left and when it is full again") {
  rate_limiter both(
      {.key_per_second = 10, .key_burst = 25, .tenant_per_second = 4, .tenant_burst = 10});
  CHECK(both.policy_field() == R"("key";q=25;w=3, "tenant";q=10;w=3)");
  auto t0 = rate_limiter::clock::now();
  rate_limiter::quotas seen;
  CHECK_FALSE(both.take("k", "t", 7, t0, &seen));
  REQUIRE(seen.n == 2);
  CHECK(rate_limiter::field(seen) == R"("key";r=18;t=1, "tenant";r=3;t=2)");
  // Refused: what the buckets hold, untouched.
  CHECK(both.take("k", "t", 5, t0, &seen));
  CHECK(rate_limiter::field(seen) == R"("key";r=18;t=1, "tenant";r=3;t=2)");
  // Overdrawn by a batch over the burst: nothing left, full after the debt.
  rate_limiter key_only(
      {.key_per_second = 100, .key_burst = 10, .tenant_per_second = 0, .tenant_burst = 0});
  CHECK(key_only.policy_field() == R"("key";q=10;w=1)");
  CHECK_FALSE(key_only.take("k", "t", 50, t0, &seen));
  REQUIRE(seen.n == 1);
  CHECK(rate_limiter::field(seen) == R"("key";r=0;t=1)");
  rate_limiter off({});
  CHECK(off.policy_field().empty());
  seen.n = 5;
  CHECK_FALSE(off.take("k", "t", 1, t0, &seen));
  CHECK(seen.n == 5);  // no limit on: nothing reported, the router adds no field
}
