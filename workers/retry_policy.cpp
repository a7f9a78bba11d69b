#include "workers/retry_policy.hpp"

#include <algorithm>

namespace jobs {

std::chrono::milliseconds retry_policy::ceiling(int attempt) const {
  auto c = base;
  for (int i = 1; i < attempt && c < cap; ++i) {
    if (c > cap / 2) return cap;  // doubling would pass the cap (or overflow)
    c *= 2;
  }
  return std::min(c, cap);
}

std::chrono::milliseconds retry_policy::delay(int attempt, double u) const {
  u = std::clamp(u, 0.0, 1.0);
  return std::chrono::milliseconds(
      static_cast<long long>(static_cast<double>(ceiling(attempt).count()) * u));
}

}  // namespace jobs
