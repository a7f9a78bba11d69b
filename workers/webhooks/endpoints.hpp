#pragma once
// The tenants' webhook endpoints, as the worker reads them from PostgreSQL
// (table webhook_endpoints, schemas/migrations/0005_webhooks.sql): signing
// secrets, an optional retry schedule, and the circuit breaker's state,
// shared by every worker process.
//
// Circuit breaker: each retryable failure of a delivery adds one to the
// endpoint's consecutive_failures; at `threshold` the endpoint is paused
// until now + `cooldown` (each further failure extends the pause). A
// success resets both (in the transaction that records it). While paused,
// its jobs are snoozed until the pause ends: they wait, their attempts not
// counted. When the pause ends, deliveries go out again (half-open); the
// first failures pause it again at once.
//
// An endpoint found is cached for `cache_ttl` per process, with no
// invalidation: a change (a PUT's new secrets or schedule, a deletion, the
// breaker's state from other processes) is seen within `cache_ttl`. A miss
// is never cached: find() returns nullopt only after reading PostgreSQL in
// that call. Failures are written by a background thread, so the I/O thread
// never blocks on PostgreSQL.
//
// Thread-safety: all members may be called from any thread.

#include "common/db.hpp"
#include "workers/webhooks/policy.hpp"

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace jobs::webhooks {

struct endpoint {
  std::vector<std::string> keys;  ///< decoded signing keys, 1 or 2 (rotation)
  std::optional<retry_schedule> schedule;
  int consecutive_failures = 0;
  std::optional<std::chrono::system_clock::time_point> paused_until;
};

class endpoint_store {
 public:
  endpoint_store(std::string pg_url, int threshold, std::chrono::milliseconds cooldown,
                 std::chrono::milliseconds cache_ttl = std::chrono::seconds(1));

  /// nullopt when the tenant has no such endpoint in PostgreSQL now (read
  /// fresh, never from the cache). Throws pqxx errors.
  std::optional<endpoint> find(const std::string& tenant, const std::string& name);
  /// Counts a retryable failure (asynchronously).
  void record_failure(const std::string& tenant, const std::string& name);
  /// The statement that resets the breaker, for a success's commit hook.
  static void reset(pqxx::transaction_base& tx, const std::string& tenant, const std::string& name);

 private:
  struct cached {
    endpoint ep;
    std::chrono::steady_clock::time_point until;
  };
  std::string url_;
  int threshold_;
  std::chrono::milliseconds cooldown_, ttl_;
  std::mutex mu_;
  std::unique_ptr<pqxx::connection> conn_;
  std::map<std::pair<std::string, std::string>, cached> cache_;
  db_pool writer_;
};

}  // namespace jobs::webhooks
