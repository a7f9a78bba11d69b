// jobs-supervisor: runs a host's worker pools, scaled by queue depth
// (see workers/supervisor/supervisor.hpp).
//   jobs-supervisor [--pools SPEC]
//   jobs-supervisor [--pools SPEC] check-config   check its settings and its
//                                  workers' (for each pool: workers/settings.hpp)
//                                  and exit
// Settings: JOBS_* environment variables (common/config.hpp), the pools in
// JOBS_SUPERVISOR_POOLS or --pools (common/scaling.hpp). Workers inherit the
// environment, except JOBS_WORKER_METRICS_PORT: when set, each worker gets
// that port + its slot (supervisor.hpp). With JOBS_SUPERVISOR_METRICS_PORT
// set, serves GET /metrics there (supervisor_metrics.hpp).
#include "common/config.hpp"
#include "common/log.hpp"
#include "common/metrics_server.hpp"
#include "workers/settings.hpp"
#include "workers/supervisor/supervisor.hpp"

#include <unistd.h>

#include <filesystem>
#include <iostream>

int main(int argc, char** argv) {
  using namespace jobs;
  try {
    auto env = process_environment();
    bool check_only = false;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--pools" && i + 1 < argc) {
        env["JOBS_SUPERVISOR_POOLS"] = argv[++i];
      } else if (a == "check-config") {
        check_only = true;
      } else {
        std::cerr << "usage: jobs-supervisor [--pools 'processing=1..4,backlog=16;email=1..2']\n"
                     "       jobs-supervisor [--pools SPEC] check-config\n";
        return 2;
      }
    }
    if (check_only) {
      try {
        check_supervisor_settings(load_config(env));
        return 0;
      } catch (const std::exception& e) {
        log_error("a setting is wrong", {{"error", e.what()}});
        return 1;
      }
    }
    auto cfg = load_config(env);
    set_log_level(cfg.log_level);
    // A setting its workers would stop on stops it now, not them for ever.
    check_supervisor_settings(cfg);
    block_supervisor_signals();
    // Workers get the pools as the supervisor read them, --pools included.
    setenv("JOBS_SUPERVISOR_POOLS", cfg.supervisor_pools.c_str(), 1);
    auto bin = supervisor_worker_bin(cfg);
    metrics::registry registry;
    supervisor_metrics measures(registry);
    for (const auto& p : parse_pools(cfg.supervisor_pools, policy_defaults(cfg))) {
      measures.restarts.with({p.queue});  // at 0 from the start, as dashboards expect
      for (const char* direction : {"up", "down"}) measures.scale_events.with({p.queue, direction});
    }
    std::unique_ptr<metrics_server> metrics_http;
    if (cfg.supervisor_metrics_port > 0)
      metrics_http = std::make_unique<metrics_server>(
          metrics_server_options{.address = cfg.metrics_addr,
                                 .port = cfg.supervisor_metrics_port,
                                 .token = cfg.metrics_token},
          registry);
    return run_supervisor(
        {.pg_url = cfg.pg_url,
         .amqp_url = cfg.amqp_url,
         .pools = parse_pools(cfg.supervisor_pools, policy_defaults(cfg)),
         .worker_bin = bin,
         .interval = cfg.supervisor_interval,
         .restart_backoff = cfg.supervisor_restart_backoff,
         .drain_timeout = cfg.worker_shutdown + cfg.worker_cancel_grace + std::chrono::seconds(10),
         .metrics = &measures,
         .worker_metrics_port = cfg.worker_metrics_port});
  } catch (const std::exception& e) {
    log_error("supervisor failed to start", {{"error", e.what()}});
    return 1;
  }
}
