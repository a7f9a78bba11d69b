// ctest-labels: scaling
#include "common/scaling.hpp"
#include "common/config.hpp"

#include <doctest/doctest.h>

using namespace jobs;

namespace {
scaling_policy policy(int min, int max, double backlog) {
  scaling_policy p;
  p.min_workers = min;
  p.max_workers = max;
  p.target_backlog_per_worker = backlog;
  return p;
}
}  // namespace

TEST_CASE("an empty queue wants its minimum") {
  CHECK(desired_workers({}, policy(1, 8, 10)) == 1);
  CHECK(desired_workers({}, policy(0, 8, 10)) == 0);
  CHECK(desired_workers({.running = 5}, policy(2, 8, 10)) == 2);
}

TEST_CASE("ready and unacked messages both count as backlog") {
  auto p = policy(1, 8, 10);
  CHECK(desired_workers({.ready = 30}, p) == 3);
  CHECK(desired_workers({.unacked = 30}, p) == 3);
  CHECK(desired_workers({.ready = 15, .unacked = 16}, p) == 4);
  CHECK(desired_workers({.ready = 1}, p) == 1);
  // Work in flight keeps workers that would otherwise be drained.
  CHECK(desired_workers({.ready = 0, .unacked = 41, .running = 5}, p) == 5);
}

TEST_CASE("the result is clamped to min..max") {
  auto p = policy(2, 4, 10);
  CHECK(desired_workers({.ready = 5}, p) == 2);
  CHECK(desired_workers({.ready = 1000}, p) == 4);
  CHECK(desired_workers({.ready = -5, .unacked = -1}, p) == 2);
}

TEST_CASE("a drain-time target uses the observed completion rate per worker") {
  auto p = policy(1, 20, 1000);
  p.target_drain_s = 10;
  // 2 workers finish 4 jobs/s: 2 per worker; 200 waiting in 10 s needs 10 workers.
  CHECK(desired_workers({.ready = 200, .completed_per_s = 4, .running = 2}, p) == 10);
  // No rate observed yet: the backlog rule alone.
  CHECK(desired_workers({.ready = 200, .completed_per_s = 0, .running = 2}, p) == 1);
  CHECK(desired_workers({.ready = 200, .completed_per_s = 4, .running = 0}, p) == 1);
  // Fast enough already: the backlog target still holds.
  CHECK(desired_workers({.ready = 10, .completed_per_s = 100, .running = 2}, p) == 1);
}

TEST_CASE("a job waiting too long adds a worker") {
  auto p = policy(1, 6, 100);
  p.max_wait_s = 30;
  CHECK(desired_workers({.ready = 5, .oldest_waiting_age_s = 10, .running = 3}, p) == 1);
  CHECK(desired_workers({.ready = 5, .oldest_waiting_age_s = 31, .running = 3}, p) == 4);
  CHECK(desired_workers({.ready = 5, .oldest_waiting_age_s = 31, .running = 6}, p) == 6);
}

TEST_CASE("pools parse with per-queue settings over the defaults") {
  scaling_policy d;
  d.target_backlog_per_worker = 16;
  auto pools =
      parse_pools("processing=1..8,backlog=20,drain_s=30,up_ms=500,down_ms=2000; email=0..2", d);
  REQUIRE(pools.size() == 2);
  CHECK(pools[0].queue == "processing");
  CHECK(pools[0].policy.min_workers == 1);
  CHECK(pools[0].policy.max_workers == 8);
  CHECK(pools[0].policy.target_backlog_per_worker == 20);
  CHECK(pools[0].policy.target_drain_s == 30);
  CHECK(pools[0].policy.scale_up_cooldown == std::chrono::milliseconds(500));
  CHECK(pools[0].policy.scale_down_cooldown == std::chrono::milliseconds(2000));
  CHECK(pools[1].queue == "email");
  CHECK(pools[1].policy.min_workers == 0);
  CHECK(pools[1].policy.target_backlog_per_worker == 16);
}

TEST_CASE("bad pool specs are refused") {
  scaling_policy d;
  for (const char* bad : {"", "processing", "processing=3..2", "processing=1..0", "nope=1..2",
                          "processing=1..2;processing=1..3", "processing=1..2,backlog=0",
                          "processing=1..2,color=red", "processing=a..b", "processing=1-2"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_pools(bad, d), pools_error);
  }
}

TEST_CASE("the supervisor's settings are read and checked") {
  auto c = load_config({{"JOBS_SUPERVISOR_TARGET_BACKLOG", "5"},
                        {"JOBS_SUPERVISOR_SCALE_DOWN_COOLDOWN_MS", "1500"}});
  auto p = policy_defaults(c);
  CHECK(p.target_backlog_per_worker == 5);
  CHECK(p.scale_down_cooldown == std::chrono::milliseconds(1500));
  CHECK_THROWS_AS(load_config({{"JOBS_SUPERVISOR_TARGET_BACKLOG", "0"}}), config_error);
  CHECK_THROWS_AS(load_config({{"JOBS_SUPERVISOR_INTERVAL_MS", "x"}}), config_error);
}
