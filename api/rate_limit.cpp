#include "api/rate_limit.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace jobs {

double rate_limits::max_request_cost() const {
  double most = 0;
  if (key_per_second > 0) most = key_burst;
  if (tenant_per_second > 0) most = most > 0 ? std::min(most, tenant_burst) : tenant_burst;
  return most;
}

rate_limiter::rate_limiter(rate_limits l) : limits_(l) {
  auto add = [&](const char* name, double rate, double burst) {
    if (rate <= 0) return;
    if (!policy_.empty()) policy_ += ", ";
    policy_ += fmt::format("\"{}\";q={};w={}", name, static_cast<long long>(std::floor(burst)),
                           std::max(1LL, static_cast<long long>(std::ceil(burst / rate))));
  };
  add("key", limits_.key_per_second, limits_.key_burst);
  add("tenant", limits_.tenant_per_second, limits_.tenant_burst);
}

std::string rate_limiter::field(const quotas& q) {
  std::string out;
  for (int i = 0; i < q.n; ++i) {
    const auto& b = q.of[static_cast<std::size_t>(i)];
    auto remaining = static_cast<long long>(std::floor(std::max(0.0, b.tokens)));
    auto full = b.tokens >= b.burst
                    ? 0LL
                    : static_cast<long long>(std::ceil((b.burst - b.tokens) / b.per_second));
    if (!out.empty()) out += ", ";
    out += fmt::format("\"{}\";r={};t={}", b.name, remaining, full);
  }
  return out;
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
                                                        clock::time_point now, quotas* seen) {
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
  auto report = [&] {
    if (!seen) return;
    seen->n = 0;
    if (k) seen->of[seen->n++] = {"key", k->tokens, limits_.key_per_second, limits_.key_burst};
    if (t)
      seen->of[seen->n++] = {"tenant", t->tokens, limits_.tenant_per_second, limits_.tenant_burst};
  };
  std::optional<refusal> refused;
  if (k)
    if (auto w = wait(*k, limits_.key_per_second, limits_.key_burst); w.count() > 0)
      refused = refusal{w, "key"};
  if (t && !refused)
    if (auto w = wait(*t, limits_.tenant_per_second, limits_.tenant_burst); w.count() > 0)
      refused = refusal{w, "tenant"};
  if (!refused) {
    if (k) k->tokens -= n;
    if (t) t->tokens -= n;
  }
  report();
  return refused;
}

}  // namespace jobs
