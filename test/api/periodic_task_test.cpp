// Unit tests of how a periodic task's run of failures is logged
// (api/periodic_task.hpp, failure_log): the first failure, one line a
// minute after it with the failures in between, and the recovery.
#include "api/periodic_task.hpp"

#include <doctest/doctest.h>

#include <chrono>

using namespace std::chrono_literals;
using jobs::failure_log;

TEST_CASE("a run of failures logs its first, then one line a minute, then its end") {
  failure_log log(1min);
  const auto t0 = failure_log::clock::time_point{} + 1h;

  CHECK_FALSE(log.succeeded(t0));  // nothing failed: nothing to say

  auto first = log.failed(t0);
  REQUIRE(first);
  CHECK(first->failed_rounds == 1);
  CHECK(first->unlogged_failures == 0);

  // A round every 200 ms for just under a minute: silent.
  int lines = 0;
  for (auto t = t0 + 200ms; t < t0 + 1min; t += 200ms) lines += log.failed(t) ? 1 : 0;
  CHECK(lines == 0);

  auto minute = log.failed(t0 + 1min);
  REQUIRE(minute);
  CHECK(minute->failed_rounds == 301);
  CHECK(minute->unlogged_failures == 299);
  CHECK_FALSE(log.failed(t0 + 1min + 200ms));

  auto end = log.succeeded(t0 + 1min + 400ms);
  REQUIRE(end);
  CHECK(end->failed_rounds == 302);
  CHECK(end->after == 1min + 400ms);
  CHECK_FALSE(log.succeeded(t0 + 1min + 600ms));

  // The next run starts afresh: its first failure is logged at once.
  auto again = log.failed(t0 + 1min + 800ms);
  REQUIRE(again);
  CHECK(again->failed_rounds == 1);
  CHECK(again->unlogged_failures == 0);
}
