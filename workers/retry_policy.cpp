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
  auto c = static_cast<double>(ceiling(attempt).count());
  double d = jitter == jitter_mode::full    ? c * u
             : jitter == jitter_mode::equal ? c / 2 + c / 2 * u
                                            : c;
  return std::chrono::milliseconds(static_cast<long long>(d));
}

std::optional<retry_policy::jitter_mode> parse_jitter(std::string_view s) {
  if (s == "full") return retry_policy::jitter_mode::full;
  if (s == "equal") return retry_policy::jitter_mode::equal;
  if (s == "none") return retry_policy::jitter_mode::none;
  return std::nullopt;
}

}  // namespace jobs
