#include "workers/email/throttle.hpp"

#include <algorithm>
#include <cmath>

namespace jobs::email {

domain_throttle::booking domain_throttle::reserve(const std::string& key,
                                                  const std::vector<std::string>& domains,
                                                  clock::time_point now, clock::duration max_wait) {
  if (rate_ <= 0 || domains.empty()) return {true, now};
  std::lock_guard lk(mu_);
  if (auto it = kept_.find(key); it != kept_.end()) {
    const auto at = it->second;
    if (at - now > max_wait) return {false, at};  // woke early: snooze again
    kept_.erase(it);
    return {true, std::max(at, now)};
  }
  const auto interval =
      std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(1.0 / rate_));
  // A burst of one second's worth: the bucket holds max(1, rate) messages.
  const auto tolerance = interval * static_cast<long>(std::max(1.0, std::floor(rate_)) - 1);
  clock::time_point at = now;
  for (const auto& d : domains) {
    auto it = tat_.find(d);
    if (it != tat_.end()) at = std::max(at, it->second - tolerance);
  }
  // Forget domains idle long enough that their bucket is full again, and
  // bookings a minute overdue (their jobs went elsewhere).
  if (tat_.size() > 10'000) std::erase_if(tat_, [&](const auto& e) { return e.second <= now; });
  if (kept_.size() > 10'000)
    std::erase_if(kept_, [&](const auto& e) { return e.second + std::chrono::minutes(1) < now; });
  for (const auto& d : domains) {
    auto& tat = tat_[d];
    tat = std::max(tat, at) + interval;
  }
  if (at - now <= max_wait) return {true, at};
  kept_[key] = at;
  return {false, at};
}

std::size_t domain_throttle::tracked() const {
  std::lock_guard lk(mu_);
  return tat_.size() + kept_.size();
}

}  // namespace jobs::email
