// ctest-labels: scaling
// The supervisor's cool-downs (workers/supervisor/scaler.hpp), on a fake clock.
#include "workers/supervisor/scaler.hpp"

#include <doctest/doctest.h>

using namespace jobs;
using namespace std::chrono_literals;

namespace {
scaling_policy policy() {
  scaling_policy p;
  p.min_workers = 1;
  p.max_workers = 6;
  p.scale_up_cooldown = 10s;
  p.scale_down_cooldown = 30s;
  return p;
}
}  // namespace

TEST_CASE("starts at the minimum and scales up at once, then once per cool-down") {
  scaler s(policy());
  scaler::clock::time_point t{};
  CHECK(s.target() == 1);
  CHECK(s.step(4, t) == 4);
  CHECK(s.step(6, t + 5s) == 4);  // within the up cool-down
  CHECK(s.step(6, t + 10s) == 6);
  CHECK(s.step(9, t + 30s) == 6);  // clamped to max
}

TEST_CASE("scales down only after the desired count stayed low for the cool-down") {
  scaler s(policy());
  scaler::clock::time_point t{};
  s.step(6, t);
  CHECK(s.step(2, t + 1s) == 6);
  CHECK(s.step(3, t + 20s) == 6);
  CHECK(s.step(6, t + 25s) == 6);  // back up: the low window restarts
  CHECK(s.step(2, t + 26s) == 6);
  CHECK(s.step(1, t + 50s) == 6);
  // Low since 26 s: at 56 s it goes to the highest desired seen meanwhile.
  CHECK(s.step(1, t + 56s) == 2);
  CHECK(s.step(1, t + 70s) == 2);
  CHECK(s.step(1, t + 99s) == 2);  // low only since 70 s
  CHECK(s.step(1, t + 100s) == 1);
}

TEST_CASE("a scale-down waits the cool-down after a scale-up") {
  auto p = policy();
  p.scale_down_cooldown = 5s;
  scaler s(p);
  scaler::clock::time_point t{};
  s.step(5, t);
  CHECK(s.step(1, t + 1s) == 5);
  CHECK(s.step(1, t + 6s) == 1);
  CHECK(s.step(0, t + 20s) == 1);  // never below min
}
