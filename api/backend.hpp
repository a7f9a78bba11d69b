#pragma once
// What the router needs from the rest of the platform. The platform's
// implementation (api/platform.hpp) uses PostgreSQL and RabbitMQ; the
// router's unit tests use an in-memory one.
//
// Errors: a backend throws when a server it needs is unreachable; the router
// answers 503 `unavailable` (with Retry-After) and logs the reason.

#include "api/api_metrics.hpp"
#include "api/key_request.hpp"
#include "api/submission.hpp"
#include "api/webhook_endpoints.hpp"
#include "common/admin_store.hpp"
#include "common/keys.hpp"
#include "common/problem.hpp"
#include "common/store.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace jobs {

struct readiness {
  bool database = false;
  /// "accepting" when the broker confirms what it is sent, else why not:
  /// "unreachable", "blocked" (a memory or disk alarm) or "stalled"
  /// (publisher::state).
  std::string broker_state = "unreachable";
  bool broker() const { return broker_state == "accepting"; }
  bool ok() const { return database && broker(); }
};

/// What a cancel did, and the job afterwards.
struct cancel_reply {
  cancel_outcome outcome;
  std::string job;  ///< the job's JSON as find_job shows it; empty when not found
};

/// What a retry did, and the job afterwards.
struct retry_reply {
  retry_outcome outcome;
  std::string job;  ///< the job's JSON as find_job shows it; empty when not found
};

// Coroutine arguments are references: callers await at once, and GCC 12
// mishandles temporaries in co_await expressions (see api/async.hpp).
class api_backend {
 public:
  virtual ~api_backend() = default;
  /// The principal of a live key, or nullopt.
  virtual boost::asio::awaitable<std::optional<principal>> authenticate(
      const std::string& api_key) = 0;
  /// Changes whenever cached key lookups are dropped (a key was revoked): a
  /// lookup made before a change may be stale.
  virtual std::uint64_t key_epoch() const { return 0; }
  /// Records and publishes the job: accepted (committed and confirmed), a
  /// replay of the job its idempotency key already names, or the problem to
  /// answer (409 idempotency_key_reused when that job was another request).
  virtual boost::asio::awaitable<submit_result> submit(const new_job& job) = 0;
  /// The same for many jobs (a batch request): one result per job, in order.
  /// The default submits them one after another; the platform's backend
  /// hands them to the write path together so they share group commits.
  virtual boost::asio::awaitable<std::vector<submit_result>> submit_many(
      const std::vector<new_job>& jobs);
  /// The job's JSON, or nullopt if the tenant has no such job.
  virtual boost::asio::awaitable<std::optional<std::string>> find_job(const tenant_id& t,
                                                                      const job_id& id) = 0;
  virtual boost::asio::awaitable<std::string> list_jobs(const tenant_id& t,
                                                        const job_filter& f) = 0;
  /// Cancels the tenant's job (common/store.hpp, cancel_job).
  virtual boost::asio::awaitable<cancel_reply> cancel_job(const tenant_id& t, const job_id& id) = 0;
  /// Retries the tenant's dead or failed job (common/store.hpp, retry_job).
  virtual boost::asio::awaitable<retry_reply> retry_job(const tenant_id& t, const job_id& id) = 0;
  virtual boost::asio::awaitable<readiness> ready() = 0;
  /// Refreshes the gauges of `m` that are read from the servers (queue
  /// depths) before a scrape of GET /metrics. The default does nothing.
  virtual boost::asio::awaitable<void> refresh_metrics(api_metrics& m);

  /// API keys of the tenant (common/keys.hpp): the new key's JSON (with the
  /// key, shown once), the list, and a revocation (nullopt: no such key).
  virtual boost::asio::awaitable<std::string> create_key(const tenant_id& t,
                                                         const key_request& k) = 0;
  virtual boost::asio::awaitable<std::string> list_keys(const tenant_id& t) = 0;
  virtual boost::asio::awaitable<std::optional<std::string>> revoke_key(const tenant_id& t,
                                                                        const std::string& id) = 0;
  // Webhook endpoints (api/webhook_endpoints.hpp). A backend without them
  // throws, which the router answers with 503.
  /// (created, the endpoint's JSON).
  virtual boost::asio::awaitable<std::pair<bool, std::string>> put_webhook_endpoint(
      const tenant_id& t, const std::string& name, const webhook_endpoint_spec& spec);
  virtual boost::asio::awaitable<std::optional<std::string>> find_webhook_endpoint(
      const tenant_id& t, const std::string& name);
  virtual boost::asio::awaitable<std::string> list_webhook_endpoints(const tenant_id& t);
  /// The deleted endpoint's JSON, or nullopt when there was none.
  virtual boost::asio::awaitable<std::optional<std::string>> delete_webhook_endpoint(
      const tenant_id& t, const std::string& name);

  // The admin dashboard (common/admin_store.hpp; api/admin_routes.cpp). A
  // backend without them throws, which the router answers with 503.
  virtual boost::asio::awaitable<std::optional<std::string>> job_events(const tenant_id& t,
                                                                        const job_id& id);
  virtual boost::asio::awaitable<long> count_bulk(const tenant_id& t, const job_filter& f,
                                                  bulk_action a);
  virtual boost::asio::awaitable<bulk_outcome> apply_bulk(const tenant_id& t, const job_filter& f,
                                                          bulk_action a);
  /// False when the queue already was so.
  virtual boost::asio::awaitable<bool> set_queue_paused(const std::string& queue, bool paused,
                                                        const std::string& by);
  virtual boost::asio::awaitable<std::string> queue_overview();
  virtual boost::asio::awaitable<std::optional<std::string>> queue_history(
      const std::string& range);
  /// GET /v1/queues: {"queues":[…]} (common/queue_stats.hpp). A backend
  /// without it throws (503).
  virtual boost::asio::awaitable<std::string> queue_stats();
};

}  // namespace jobs
