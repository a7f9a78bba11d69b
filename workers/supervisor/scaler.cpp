#include "workers/supervisor/scaler.hpp"

#include <algorithm>

namespace jobs {

int scaler::step(int desired, clock::time_point now) {
  desired = std::clamp(desired, policy_.min_workers, policy_.max_workers);
  if (desired >= target_) below_since_.reset();
  if (desired > target_) {
    if (!last_up_ || now - *last_up_ >= policy_.scale_up_cooldown) {
      target_ = desired;
      last_up_ = last_change_ = now;
    }
    return target_;
  }
  if (desired < target_) {
    if (!below_since_) {
      below_since_ = now;
      below_max_ = desired;
    }
    below_max_ = std::max(below_max_, desired);
    bool settled = now - *below_since_ >= policy_.scale_down_cooldown;
    bool quiet = !last_change_ || now - *last_change_ >= policy_.scale_down_cooldown;
    if (settled && quiet) {
      target_ = below_max_;
      last_change_ = now;
      below_since_.reset();
    }
  }
  return target_;
}

}  // namespace jobs
