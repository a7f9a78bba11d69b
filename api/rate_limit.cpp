#include "api/rate_limit.hpp"

#include <algorithm>
#include <cmath>

namespace jobs {

double rate_limits::max_request_cost() const {
  double most = 0;
  if (key_per_second > 0) most = key_burst;
  if (tenant_per_second > 0) most = most > 0 ? std::min(most, tenant_burst) : tenant_burst;
  return most;
}

void rate_limiter::refill(bucket& b, double rate, double burst, clock::time_point now) {
  double dt = std::chrono::duration<double>(now - b.at).count();
  if (dt > 0) b.tokens = std::min(burst, b.tokens + dt * rate);
  b.at = std::max(b.at, now);
}

void rate_limiter::sweep(clock::time_point now) {
  if (now < next_sweep_) return;
  next_sweep_ = now + std::chrono::seconds(10);
  auto full = [&](std::unordered_map<std::string, bucket>& m, double rate, double burst) {
    for (auto it = m.begin(); it != m.end();) {
      refill(it->second, rate, burst, now);
      it = it->second.tokens >= burst ? m.erase(it) : std::next(it);
    }
  };
  full(keys_, limits_.key_per_second, limits_.key_burst);
  full(tenants_, limits_.tenant_per_second, limits_.tenant_burst);
}

std::optional<rate_limiter::refusal> rate_limiter::take(const std::string& key_hash,
                                                        const std::string& tenant, double n,
                                                        clock::time_point now) {
  bool by_key = limits_.key_per_second > 0, by_tenant = limits_.tenant_per_second > 0;
  if (!by_key && !by_tenant) return std::nullopt;
  std::lock_guard lk(mu_);
  sweep(now);
  auto get = [&](std::unordered_map<std::string, bucket>& m, const std::string& id, double rate,
                 double burst) -> bucket& {
    auto [it, fresh] = m.try_emplace(id, bucket{burst, now});
    if (!fresh) refill(it->second, rate, burst, now);
    return it->second;
  };
  // How long until `b` holds n tokens (a request larger than the burst
  // waits for a full bucket and is then allowed to overdraw it).
  auto wait = [&](const bucket& b, double rate, double burst) {
    double need = std::min(n, burst) - b.tokens;
    return need <= 0 ? std::chrono::milliseconds(0)
                     : std::chrono::milliseconds(static_cast<long>(std::ceil(need / rate * 1000)));
  };
  bucket* k = by_key ? &get(keys_, key_hash, limits_.key_per_second, limits_.key_burst) : nullptr;
  bucket* t =
      by_tenant ? &get(tenants_, tenant, limits_.tenant_per_second, limits_.tenant_burst) : nullptr;
  if (k)
    if (auto w = wait(*k, limits_.key_per_second, limits_.key_burst); w.count() > 0)
      return refusal{w, "key"};
  if (t)
    if (auto w = wait(*t, limits_.tenant_per_second, limits_.tenant_burst); w.count() > 0)
      return refusal{w, "tenant"};
  if (k) k->tokens -= n;
  if (t) t->tokens -= n;
  return std::nullopt;
}

}  // namespace jobs
