#pragma once
// Token buckets per API key and per tenant: each holds up to `burst` tokens
// and refills at `per_second`; a request takes one token from its key's
// bucket and one from its tenant's (a batch one per job). Without enough,
// it is refused with how long until there will be: the router answers 429
// with Retry-After. A rate of 0 turns that limit off.
//
// The buckets live in each API process: with N API processes behind a load
// balancer a client gets up to N times the rate (divide the settings by N).
// Idle buckets (full again) are dropped, so memory follows the active keys.
//
// Thread-safety: take() from any thread.

#include <array>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace jobs {

struct rate_limits {
  double key_per_second = 0, key_burst = 0;
  double tenant_per_second = 0, tenant_burst = 0;

  /// The most tokens one request can ever be given: the smaller burst of
  /// the limits that are on (a key's bucket never holds more), or 0 when
  /// both are off (no ceiling). A batch of more jobs can never pass.
  double max_request_cost() const;
};

class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;
  explicit rate_limiter(rate_limits l);

  /// Takes `n` tokens from both buckets, or none: nullopt when allowed,
  /// else how long until both would hold `n`, and which limit it was.
  struct refusal {
    std::chrono::milliseconds wait;
    const char* limit;  ///< "key" or "tenant"
  };
  /// The buckets a request drew from, as they are after it (or as they
  /// were, when it was refused), for its response's RateLimit field.
  struct quota {
    const char* name = "";  ///< "key" or "tenant"
    double tokens = 0;      ///< below 0 after a batch larger than the burst overdrew it
    double per_second = 0, burst = 0;
  };
  struct quotas {
    std::array<quota, 2> of{};
    int n = 0;  ///< the limits that are on
  };
  std::optional<refusal> take(const std::string& key_hash, const std::string& tenant, double n,
                              clock::time_point now = clock::now(), quotas* seen = nullptr);

  /// The RateLimit-Policy field (draft-ietf-httpapi-ratelimit-headers):
  /// each limit that is on as `"name";q=BURST;w=SECONDS`, w the time an
  /// empty bucket takes to fill. Empty when both are off.
  const std::string& policy_field() const { return policy_; }
  /// The RateLimit field: `"name";r=REMAINING;t=SECONDS` for each, t the
  /// time until the bucket is full again.
  static std::string field(const quotas& q);

 private:
  struct bucket {
    double tokens;
    clock::time_point at;
  };
  void refill(bucket& b, double rate, double burst, clock::time_point now);
  void sweep(clock::time_point now);

  rate_limits limits_;
  std::string policy_;
  std::mutex mu_;
  std::unordered_map<std::string, bucket> keys_, tenants_;
  clock::time_point next_sweep_{};
};

}  // namespace jobs
