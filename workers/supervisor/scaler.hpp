#pragma once
// A pool's target worker count over time: desired_workers() (common/
// scaling.hpp) with the policy's cool-downs, kept apart from processes so
// it is tested with an injected clock.
//
//   up:   the target rises to the desired number at once, but at most once
//         per scale_up_cooldown;
//   down: the target falls only after the desired number stayed below it
//         for a whole scale_down_cooldown (and that long after the last
//         change), to the highest desired number seen meanwhile.
//
// Thread-safety: a value.

#include "common/scaling.hpp"

#include <chrono>
#include <optional>

namespace jobs {

class scaler {
 public:
  using clock = std::chrono::steady_clock;
  explicit scaler(scaling_policy p) : policy_(p), target_(p.min_workers) {}

  /// Feeds one reading of the desired count; returns the target afterwards.
  int step(int desired, clock::time_point now);
  int target() const { return target_; }
  const scaling_policy& policy() const { return policy_; }

 private:
  scaling_policy policy_;
  int target_;
  std::optional<clock::time_point> last_up_, last_change_, below_since_;
  int below_max_ = 0;
};

}  // namespace jobs
