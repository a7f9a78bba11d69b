// jobs-worker: consumes one queue and runs its jobs (see workers/worker.hpp).
//   jobs-worker [--queue NAME] [--concurrency N]
//   jobs-worker [--queue NAME] check-config   check the JOBS_* settings of
//                                 that queue's worker (workers/settings.hpp), exit
// With JOBS_WORKER_METRICS_PORT set, serves GET /metrics there (workers/worker_metrics.hpp).
// Settings: JOBS_* environment variables (common/config.hpp).
#include "common/config.hpp"
#include "common/log.hpp"
#include "common/metrics_server.hpp"
#include "common/signals.hpp"
#include "workers/email/email.hpp"
#include "workers/settings.hpp"
#include "workers/webhooks/webhooks.hpp"
#include "workers/worker.hpp"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

int main(int argc, char** argv) {
  using namespace jobs;
  bool check_only = false;  // jobs-worker check-config
  try {
    auto env = process_environment();
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "check-config") {
        check_only = true;
      } else if ((a == "--queue" || a == "--concurrency") && i + 1 < argc) {
        env[a == "--queue" ? "JOBS_WORKER_QUEUE" : "JOBS_WORKER_CONCURRENCY"] = argv[++i];
      } else {
        std::cerr << "usage: jobs-worker [--queue email|processing|webhooks] [--concurrency N]\n"
                     "       jobs-worker [--queue NAME] check-config\n";
        return 2;
      }
    }
    auto cfg = load_config(env);
    set_log_level(cfg.log_level);
    check_worker_settings(cfg, cfg.worker_queue);
    if (check_only) return 0;

    block_stop_signals();

    handler_registry handlers;
    register_processing_handlers(handlers);
    if (cfg.worker_queue == "email") register_email_handlers(handlers, email_options_from(cfg));
    if (cfg.test_handlers) register_test_handlers(handlers);
    // Declared before the worker, so it outlives it: late completions are harmless.
    std::unique_ptr<webhooks::webhook_service> hooks;
    if (cfg.worker_queue == "webhooks") {
      hooks = std::make_unique<webhooks::webhook_service>(
          webhooks::webhook_options{.pg_url = cfg.pg_url,
                                    .allow = cfg.webhook_allow,
                                    .ca_file = cfg.webhook_ca_file,
                                    .timeout = cfg.webhook_timeout,
                                    .connect_timeout = cfg.webhook_connect_timeout,
                                    .response_limit = cfg.webhook_response_limit,
                                    .idle_per_origin = cfg.webhook_idle_per_origin,
                                    .breaker_failures = cfg.webhook_breaker_failures,
                                    .breaker_cooldown = cfg.webhook_breaker_cooldown});
      webhooks::register_webhook_handlers(handlers, *hooks);
    }
    metrics::registry registry;
    worker_metrics measures(registry);
    measures.lost.with({cfg.worker_queue});  // at 0 from the start, as dashboards expect
    std::unique_ptr<metrics_server> metrics_http;
    if (cfg.worker_metrics_port > 0)
      metrics_http =
          std::make_unique<metrics_server>(metrics_server_options{.address = cfg.metrics_addr,
                                                                  .port = cfg.worker_metrics_port,
                                                                  .token = cfg.metrics_token},
                                           registry);
    worker w({.pg_url = cfg.pg_url,
              .amqp_url = cfg.amqp_url,
              .queue = cfg.worker_queue,
              .concurrency = cfg.worker_concurrency,
              .async_inflight = cfg.worker_async_inflight,
              .prefetch = cfg.worker_prefetch,
              .heartbeat_s = cfg.amqp_heartbeat_s,
              .delivery_limit = cfg.queue_delivery_limit,
              .dead_letter_max = cfg.dead_letter_max,
              .lease = cfg.worker_lease,
              .shutdown = cfg.worker_shutdown,
              .job_timeout = cfg.worker_job_timeout,
              .cancel_grace = cfg.worker_cancel_grace,
              .round_gap = cfg.worker_round_gap,
              .caps = {cfg.tenant_max_running, cfg.tenant_defer},
              .test_fault = cfg.test_fault,
              .metrics = &measures},
             handlers);
    set_log_context({{"queue", cfg.worker_queue}, {"worker_id", w.id()}});
    stop_signals stop([&] { w.stop(); });
    w.run();
    log_info("worker stopped", {{"worker_id", w.id()},
                                {"succeeded", w.stats().succeeded.load()},
                                {"failed", w.stats().failed.load()},
                                {"dead", w.stats().dead.load()},
                                {"deferred", w.stats().deferred.load()},
                                {"dropped", w.stats().dropped.load()},
                                {"lost_leases", w.stats().lost.load()}});
    if (auto left = w.handlers_left()) {
      // Their threads would be joined for as long as they run: a stop takes
      // the drain deadline and the grace, not a handler's whim.
      log_warn("handlers still running at exit; not waiting for them",
               {{"handlers", static_cast<std::int64_t>(left)}});
      std::fflush(nullptr);
      std::_Exit(0);
    }
    return 0;
  } catch (const std::exception& e) {
    log_error(check_only ? "a setting is wrong" : "worker failed to start", {{"error", e.what()}});
    return 1;
  }
}
