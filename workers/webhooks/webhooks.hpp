#pragma once
// The webhooks queue: job type `deliver` POSTs (or PUTs) a signed JSON body
// to a URL and records the answer. See README, "Webhooks".
//
// A webhook_service owns one I/O thread running the HTTP client
// (http_client.hpp); its handler is async (workers/handler.hpp), so a
// worker keeps JOBS_WORKER_ASYNC_INFLIGHT deliveries in flight at once.
// For each job it:
//   1. parses the payload (payload.hpp); a bad one is dead at once;
//   2. finds the tenant's endpoint (the job's `endpoint`, else "default")
//      with its secrets (endpoints.hpp); none (read fresh from PostgreSQL)
//      or no usable secret: nothing is sent, the attempt fails and the job
//      is retried on the standard schedule (the tenant may create it
//      meanwhile); paused by the circuit breaker: snoozed until the pause
//      ends;
//   3. signs it (signature.hpp) with the job id as webhook-id and sends it;
//   4. turns the answer into the outcome (policy.hpp): a result
//      {status, latency_ms, body (first 4 KiB)}, or an error with the status
//      and a one-line excerpt of the body (body_excerpt), retried at
//      Retry-After or the endpoint's schedule.
//
// Thread-safety: deliver() from any thread. Destroy the service after the
// worker that uses it: deliveries still in flight then end unreported.

#include "workers/handler.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace jobs::webhooks {

struct webhook_options {
  std::string pg_url;
  std::string allow;    ///< JOBS_WEBHOOK_ALLOW
  std::string ca_file;  ///< JOBS_WEBHOOK_CA_FILE
  std::chrono::milliseconds timeout{15000};
  std::chrono::milliseconds connect_timeout{5000};
  std::size_t response_limit = 64 << 10;
  int idle_per_origin = 16;
  int breaker_failures = 20;
  std::chrono::milliseconds breaker_cooldown{60000};
};

class webhook_service {
 public:
  /// Starts the I/O thread. Throws std::invalid_argument / runtime_error on
  /// a bad allow-list or CA file.
  explicit webhook_service(webhook_options o);
  ~webhook_service();
  webhook_service(const webhook_service&) = delete;
  webhook_service& operator=(const webhook_service&) = delete;

  /// The async handler of webhooks.deliver.
  void deliver(const job_context& ctx, completion done);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Registers webhooks.deliver, served by `s`.
void register_webhook_handlers(handler_registry& r, webhook_service& s);

}  // namespace jobs::webhooks
